//! ServiceAccounts, as Kubernetes' ServiceAccount admission and controller keep them:
//! every namespace gets its `default` account when it is created (and at start, for
//! namespaces from before); a new pod runs as `default` unless it names an account, the
//! account must exist, and its `imagePullSecrets` go to a pod that names none. Tokens
//! (`serviceaccounts/token`) are signed by `sa_token`, bound to a pod when asked; a node
//! gets them only for the accounts of pods bound to it.

use super::*;
use crate::sa_token::{Grant, Ref};
use skiff_api::access::ServiceAccount;

/// The account a pod runs as when it names none.
pub(super) const DEFAULT_ACCOUNT: &str = "default";

/// The `default` ServiceAccount of a namespace.
pub(super) fn default_account(namespace: &str) -> Object {
    let mut sa = ServiceAccount {
        api_version: "v1".into(),
        kind: "ServiceAccount".into(),
        ..Default::default()
    };
    sa.metadata.name = Some(DEFAULT_ACCOUNT.into());
    sa.metadata.namespace = Some(namespace.into());
    Object::ServiceAccount(sa)
}

/// An apply of a pod keeps what admission set and the manifest leaves out: its account,
/// and the requests and limits its LimitRange gave it (a pod's spec is immutable).
pub(super) fn carry_admitted(current: &Object, next: &mut Object) {
    let (Object::Pod(c), Object::Pod(n)) = (current, next) else {
        return;
    };
    if n.spec.service_account_name.is_none() {
        n.spec
            .service_account_name
            .clone_from(&c.spec.service_account_name);
    }
    if n.spec.service_account.is_none() {
        n.spec.service_account.clone_from(&c.spec.service_account);
    }
    if !c
        .metadata
        .annotations
        .contains_key(super::quota::LIMIT_RANGER)
    {
        return;
    }
    let cur = c.spec.init_containers.iter().chain(&c.spec.containers);
    let by_name: std::collections::HashMap<&str, _> =
        cur.map(|x| (x.name.as_str(), &x.resources)).collect();
    let spec = &mut n.spec;
    for x in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        let Some(Some(had)) = by_name.get(x.name.as_str()) else {
            continue;
        };
        let r = x.resources.get_or_insert_with(Default::default);
        for (k, q) in &had.requests {
            r.requests.entry(k.clone()).or_insert_with(|| q.clone());
        }
        for (k, q) in &had.limits {
            r.limits.entry(k.clone()).or_insert_with(|| q.clone());
        }
    }
}

impl<S: Store> Api<S> {
    /// Admission of a new pod: its account named (both fields), existing, and its pull
    /// secrets given.
    pub(super) fn admit_service_account(&self, o: &mut Object) -> Result<(), ApiError> {
        let Object::Pod(p) = o else {
            return Ok(());
        };
        let name = p
            .spec
            .service_account_name
            .clone()
            .or_else(|| p.spec.service_account.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_ACCOUNT.into());
        p.spec.service_account_name = Some(name.clone());
        p.spec.service_account = Some(name.clone());
        let ns = p.metadata.namespace().to_string();
        let key = ObjectKey {
            kind: Kind::ServiceAccount,
            namespace: ns.clone(),
            name: name.clone(),
        };
        let Some(stored) = self.store.get(&key).map_err(store_err)? else {
            return Err(err(
                ErrorCode::Forbidden,
                format!(
                    "pods {:?} is forbidden: error looking up service account {ns}/{name}: serviceaccount {name:?} not found",
                    p.metadata.name.as_deref().unwrap_or("")
                ),
            ));
        };
        if p.spec.image_pull_secrets.is_empty() {
            if let Object::ServiceAccount(sa) = stored_object(&stored)? {
                p.spec.image_pull_secrets = sa.image_pull_secrets;
            }
        }
        Ok(())
    }

    /// Creates the `default` ServiceAccount of `namespace` unless it is there.
    pub(super) async fn ensure_default_account(&self, namespace: &str) -> Result<(), ApiError> {
        match self.create(default_account(namespace)).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A `Request::ServiceAccountToken`.
    pub(super) async fn service_account_token(
        &self,
        id: &Identity,
        req: Request,
    ) -> Result<Response, ApiError> {
        let Request::ServiceAccountToken {
            namespace,
            name,
            audiences,
            expiration_seconds,
            pod,
        } = req
        else {
            return Err(err(ErrorCode::Internal, "not a token request"));
        };
        if expiration_seconds < crate::sa_token::MIN_EXPIRATION {
            return Err(err(
                ErrorCode::Invalid,
                format!("TokenRequest.authentication.k8s.io {name:?} is invalid: spec.expirationSeconds: Invalid value: {expiration_seconds}: may not specify a duration less than 10 minutes"),
            ));
        }
        let key = ObjectKey {
            kind: Kind::ServiceAccount,
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let Object::ServiceAccount(sa) = stored_object(&self.current(&key)?)? else {
            return Err(err(
                ErrorCode::Internal,
                "a ServiceAccount key held another kind",
            ));
        };
        let node = match id {
            Identity::Admin(_) => None,
            Identity::Node(n) => Some(n.clone()),
            Identity::Anonymous => return Err(err(ErrorCode::Unauthorized, "Unauthorized")),
        };
        let bound = match &pod {
            None if node.is_some() => {
                return Err(authz::forbidden_verb(
                    id,
                    "request a token that is not bound to one of its pods",
                ))
            }
            None => None,
            Some((pod_name, uid)) => {
                Some(self.token_pod(id, &namespace, &name, pod_name, uid, node.as_deref())?)
            }
        };
        let node_ref = match &node {
            Some(n) => {
                let nk = ObjectKey {
                    kind: Kind::Node,
                    namespace: String::new(),
                    name: n.clone(),
                };
                let uid = self
                    .store
                    .get(&nk)
                    .map_err(store_err)?
                    .and_then(|s| {
                        s.value()
                            .pointer("/metadata/uid")?
                            .as_str()
                            .map(String::from)
                    })
                    .unwrap_or_default();
                Some(Ref {
                    name: n.clone(),
                    uid,
                })
            }
            None => None,
        };
        let audiences = if audiences.is_empty() {
            vec![crate::sa_token::ISSUER.to_string()]
        } else {
            audiences
        };
        let grant = Grant {
            namespace: &namespace,
            account: Ref {
                name: name.clone(),
                uid: sa.metadata.uid.clone().unwrap_or_default(),
            },
            pod: bound,
            node: node_ref,
            audiences,
            expiration_seconds,
        };
        let (token, expires) = self
            .pki
            .tokens
            .issue(&grant, now(), &uid())
            .map_err(|e| err(ErrorCode::Internal, e))?;
        Ok(Response::AccountToken { token, expires })
    }

    /// The pod a token is to be bound to: there, the same pod (`uid`), running as the
    /// account, and, for a node, bound to it.
    fn token_pod(
        &self,
        id: &Identity,
        namespace: &str,
        account: &str,
        pod_name: &str,
        uid: &str,
        node: Option<&str>,
    ) -> Result<Ref, ApiError> {
        let pk = ObjectKey {
            kind: Kind::Pod,
            namespace: namespace.to_string(),
            name: pod_name.to_string(),
        };
        let Object::Pod(p) = stored_object(&self.current(&pk)?)? else {
            return Err(err(ErrorCode::Internal, "a Pod key held another kind"));
        };
        let p_uid = p.metadata.uid.clone().unwrap_or_default();
        if !uid.is_empty() && uid != p_uid {
            return Err(err(
                ErrorCode::Conflict,
                format!("the UID in the bound object reference ({uid}) does not match the UID in record ({p_uid}); the object might have been deleted and then recreated"),
            ));
        }
        if p.spec.service_account_name.as_deref() != Some(account) {
            return Err(err(
                ErrorCode::BadRequest,
                format!(
                    "cannot bind token for serviceaccount {account:?} to pod {pod_name:?}: the pod runs as {:?}",
                    p.spec.service_account_name.as_deref().unwrap_or("")
                ),
            ));
        }
        if let Some(n) = node {
            if p.spec.node_name.as_deref() != Some(n) {
                return Err(authz::forbidden_verb(
                    id,
                    &format!("request a token for pod {pod_name:?}, which is not bound to it"),
                ));
            }
        }
        Ok(Ref {
            name: pod_name.to_string(),
            uid: p_uid,
        })
    }

    /// The uid of a stored object, if it is there.
    fn uid_of(&self, key: &ObjectKey) -> Result<Option<String>, String> {
        let s = self.store.get(key).map_err(|e| e.to_string())?;
        Ok(s.and_then(|s| {
            s.value()
                .pointer("/metadata/uid")?
                .as_str()
                .map(String::from)
        }))
    }

    /// The account a bearer token speaks for: the token verified for the API's audience,
    /// and the pod it is bound to still there (the same pod, not one of the same name).
    pub fn authenticate_token(&self, token: &str) -> Result<crate::sa_token::Claims, String> {
        let c = self
            .pki
            .tokens
            .verify(token, crate::sa_token::ISSUER, now())?;
        if let Some(p) = &c.kube.pod {
            let key = ObjectKey {
                kind: Kind::Pod,
                namespace: c.kube.namespace.clone(),
                name: p.name.clone(),
            };
            if self.uid_of(&key)?.as_deref() != Some(p.uid.as_str()) {
                return Err(format!("the pod {:?} it was bound to is gone", p.name));
            }
        }
        let key = ObjectKey {
            kind: Kind::ServiceAccount,
            namespace: c.kube.namespace.clone(),
            name: c.kube.serviceaccount.name.clone(),
        };
        if self.uid_of(&key)?.as_deref() != Some(c.kube.serviceaccount.uid.as_str()) {
            return Err(format!(
                "the ServiceAccount {:?} it was issued for is gone",
                c.kube.serviceaccount.name
            ));
        }
        Ok(c)
    }

    /// At start: every namespace has its `default` account.
    pub(super) async fn bootstrap_accounts(&self) -> Result<(), ApiError> {
        let (_, namespaces) = self.store.list(Kind::Namespace, None).map_err(store_err)?;
        for n in namespaces {
            if let Object::Namespace(ns) = stored_object(&n)? {
                if ns.metadata.deletion_timestamp.is_none() {
                    self.ensure_default_account(ns.metadata.name()).await?;
                }
            }
        }
        Ok(())
    }
}
