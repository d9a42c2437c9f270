//! ServiceAccounts, as Kubernetes' ServiceAccount admission and controller keep them:
//! every namespace gets its `default` account when it is created (and at start, for
//! namespaces from before); a new pod runs as `default` unless it names an account, the
//! account must exist, and its `imagePullSecrets` go to a pod that names none.

use super::*;
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
