//! Who may do what: one place decides what each identity may read, list, watch, write
//! and delete. Admins may do anything; a node sees the pods bound to it, the ConfigMaps and
//! Secrets those pods use (and the TLS Secrets of Ingresses, which every node serves),
//! every Node, Service, Endpoints and Ingress; it writes its own Node, Events, and the
//! status of its pods; it deletes only its own pods (confirming their deletion).

use super::*;
use skiff_api::object::NodeReads;

pub(super) fn forbidden_verb(id: &Identity, what: &str) -> ApiError {
    err(
        ErrorCode::Forbidden,
        format!("{} may not {what}", id.name()),
    )
}

pub(super) fn forbidden(id: &Identity, verb: &str, key: &ObjectKey) -> ApiError {
    err(
        ErrorCode::Forbidden,
        format!(
            "{} {:?} is forbidden: {} may not {verb} it",
            resource(key.kind),
            key.name,
            id.name()
        ),
    )
}

/// What a node may read of a kind: the kind's row in `skiff_api::object` says.
fn node_reads(kind: Kind) -> NodeReads {
    kind.info().node_reads
}

impl<S: Store> Api<S> {
    pub(super) fn admin_only(&self, id: &Identity) -> Result<(), ApiError> {
        match id {
            Identity::Admin(_) => Ok(()),
            _ => Err(err(
                ErrorCode::Forbidden,
                format!("{} may not manage join tokens", id.name()),
            )),
        }
    }

    /// Checks a watch request; returns the extra filter a node identity is held to.
    pub fn authorize_watch(&self, id: &Identity, kind: Kind) -> Result<(), ApiError> {
        if *id == Identity::Anonymous {
            return Err(err(
                ErrorCode::Unauthorized,
                "Unauthorized: no client certificate",
            ));
        }
        self.authorize_list(id, kind)
    }

    pub(super) fn authorize_list(&self, id: &Identity, kind: Kind) -> Result<(), ApiError> {
        let allowed = match id {
            Identity::Admin(_) => true,
            Identity::Node(_) => node_reads(kind) != NodeReads::Nothing,
            Identity::Anonymous => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(err(
                ErrorCode::Forbidden,
                format!("{} may not list {}", id.name(), resource(kind)),
            ))
        }
    }

    /// Whether `id` may read a stored object: the one decision behind gets, and behind
    /// which listed and watched objects are shown.
    fn may_read(&self, id: &Identity, s: &Stored) -> Result<bool, ApiError> {
        match id {
            Identity::Admin(_) => Ok(true),
            Identity::Node(n) => match node_reads(s.key.kind) {
                NodeReads::All => Ok(true),
                NodeReads::BoundPods => Ok(self.pod_on_node(id, s)),
                NodeReads::UsedByItsPods => self.referenced_by_node_pods(n, &s.key),
                NodeReads::Nothing => Ok(false),
            },
            Identity::Anonymous => Ok(false),
        }
    }

    /// Whether a listed or watched object may be shown to `id`.
    pub fn visible_to(&self, id: &Identity, s: &Stored) -> bool {
        self.may_read(id, s).unwrap_or(false)
    }

    /// Whether a watch event may be shown to `id` (a node's pods by the event's memo).
    pub fn event_visible_to(&self, id: &Identity, e: &crate::store::StoreEvent) -> bool {
        match (id, e.object.key.kind) {
            (Identity::Node(n), Kind::Pod) => e.node_name() == Some(n.as_str()),
            _ => self.visible_to(id, &e.object),
        }
    }

    pub(super) fn pod_on_node(&self, id: &Identity, s: &Stored) -> bool {
        let Identity::Node(n) = id else { return false };
        s.value().pointer("/spec/nodeName").and_then(Value::as_str) == Some(n.as_str())
    }

    pub(super) fn authorize_read(&self, id: &Identity, s: &Stored) -> Result<(), ApiError> {
        if self.may_read(id, s)? {
            Ok(())
        } else {
            Err(forbidden(id, "get", &s.key))
        }
    }

    /// A node deletes only its own pods (confirming their deletion); admins anything.
    pub(super) fn authorize_delete(&self, id: &Identity, key: &ObjectKey) -> Result<(), ApiError> {
        if matches!(id, Identity::Admin(_)) {
            return Ok(());
        }
        let s = self.current(key)?;
        if key.kind == Kind::Pod && self.pod_on_node(id, &s) {
            Ok(())
        } else {
            Err(forbidden(id, "delete", key))
        }
    }

    /// Whether a node may read a ConfigMap or Secret: one its pods use, or (a Secret) the
    /// certificate of an Ingress, which every node serves.
    pub(super) fn referenced_by_node_pods(
        &self,
        node: &str,
        key: &ObjectKey,
    ) -> Result<bool, ApiError> {
        if key.kind == Kind::Secret {
            let (_, ingresses) = self
                .store
                .list(Kind::Ingress, Some(&key.namespace))
                .map_err(store_err)?;
            for i in ingresses {
                if let Ok(Object::Ingress(ing)) = stored_object(&i) {
                    if ing.tls_secret_names().contains(&key.name) {
                        return Ok(true);
                    }
                }
            }
        }
        let (_, pods) = self
            .store
            .list(Kind::Pod, Some(&key.namespace))
            .map_err(store_err)?;
        for p in pods {
            let Ok(Object::Pod(pod)) = stored_object(&p) else {
                continue;
            };
            if pod.spec.node_name.as_deref() != Some(node) {
                continue;
            }
            let names = if key.kind == Kind::Secret {
                pod.spec.secret_names()
            } else {
                pod.spec.config_map_names()
            };
            if names.contains(&key.name) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) async fn authorize_write(
        &self,
        id: &Identity,
        o: &Object,
        status: bool,
    ) -> Result<(), ApiError> {
        let Identity::Node(n) = id else { return Ok(()) };
        let key = o.key();
        let allowed = match o.kind() {
            Kind::Node => key.name == *n,
            Kind::Event => true,
            Kind::Pod if status => {
                let mut k = key.clone();
                if k.namespace.is_empty() {
                    k.namespace = "default".into();
                }
                match self.store.get(&k).map_err(store_err)? {
                    Some(s) => self.pod_on_node(id, &s),
                    None => false,
                }
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden(
                id,
                if status { "update status of" } else { "write" },
                &key,
            ))
        }
    }
}
