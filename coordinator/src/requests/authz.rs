//! Who may do what: one place decides what each identity may read, list, watch, write
//! and delete. Admins may do anything; a node sees the pods bound to it, the ConfigMaps and
//! Secrets those pods use (and the TLS Secrets of Ingresses, which every node serves),
//! every Node, Service, Endpoints, Ingress and PersistentVolume; it writes its own Node's
//! status and the metadata a kubelet may set (`node_restriction.rs`), Events about itself
//! and its pods, the status of its pods, and one change to a volume provisioned on it
//! (removing the cleanup finalizer once it removed the directory); it deletes only its own
//! pods (confirming their deletion).

use super::node_restriction::node_write_problem;
use super::*;
use skiff_api::object::NodeReads;
use skiff_api::storage::{LOCAL_PATH_CLEANUP, PROVISIONED_NODE};

/// The rule a refused Event names.
const EVENT_RULE: &str = "NodeRestriction: a node reports Events only about itself and the pods bound to it, in their namespace";

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
        let mut key = o.key();
        if key.kind.namespaced() && key.namespace.is_empty() {
            key.namespace = "default".into();
        }
        let refuse = |why: String| err(ErrorCode::Forbidden, why);
        match o {
            Object::Node(new) => {
                let old = match self.store.get(&key).map_err(store_err)? {
                    Some(s) => match stored_object(&s)? {
                        Object::Node(old) => Some(old),
                        _ => None,
                    },
                    None => None,
                };
                match node_write_problem(n, old.as_ref(), new, status) {
                    Some(why) => Err(refuse(why)),
                    None => Ok(()),
                }
            }
            Object::Event(ev) => {
                if let Some(s) = self.store.get(&key).map_err(store_err)? {
                    let same = matches!(stored_object(&s)?, Object::Event(old) if old.involved_object == ev.involved_object);
                    if !same {
                        return Err(refuse(format!(
                            "node {n:?} may not change what Event {:?} is about ({EVENT_RULE})",
                            key.name
                        )));
                    }
                }
                if self.event_about_own(n, &key.namespace, &ev.involved_object)? {
                    Ok(())
                } else {
                    let r = &ev.involved_object;
                    Err(refuse(format!(
                        "node {n:?} may not report an Event about {} {:?} in namespace {:?} ({EVENT_RULE})",
                        r.kind.as_deref().unwrap_or("<no kind>"),
                        r.name.as_deref().unwrap_or_default(),
                        key.namespace
                    )))
                }
            }
            Object::PersistentVolume(pv) if !status => {
                let old = match self.store.get(&key).map_err(store_err)? {
                    Some(s) => match stored_object(&s)? {
                        Object::PersistentVolume(old) => Some(old),
                        _ => None,
                    },
                    None => None,
                };
                match old {
                    Some(old) if node_cleans_up(n, &old, pv) => Ok(()),
                    _ => Err(refuse(format!(
                        "node {n:?} may not write PersistentVolume {:?} (a node only removes {LOCAL_PATH_CLEANUP} from a volume provisioned on it once it is being deleted)",
                        key.name
                    ))),
                }
            }
            Object::Pod(_) if status => match self.store.get(&key).map_err(store_err)? {
                Some(s) if self.pod_on_node(id, &s) => Ok(()),
                _ => Err(refuse(format!(
                    "node {n:?} may not update the status of pod {:?} in namespace {:?} (a node writes the status of the pods bound to it only)",
                    key.name, key.namespace
                ))),
            },
            _ => Err(forbidden(
                id,
                if status { "update status of" } else { "write" },
                &key,
            )),
        }
    }

    /// Whether an Event in `namespace` about `r` is one node `n` may report: about its own
    /// Node, or about a pod bound to it in the Event's namespace.
    fn event_about_own(
        &self,
        n: &str,
        namespace: &str,
        r: &skiff_api::meta::ObjectReference,
    ) -> Result<bool, ApiError> {
        let name = r.name.as_deref().unwrap_or_default();
        match r.kind.as_deref() {
            Some("Node") => Ok(name == n),
            Some("Pod") if r.namespace.as_deref().unwrap_or(namespace) == namespace => {
                let key = ObjectKey {
                    kind: Kind::Pod,
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                };
                Ok(self.store.get(&key).map_err(store_err)?.is_some_and(|s| {
                    s.value().pointer("/spec/nodeName").and_then(Value::as_str) == Some(n)
                }))
            }
            _ => Ok(false),
        }
    }
}

/// Whether `new` is `old`, a volume provisioned on node `n` and being deleted, with the
/// node's cleanup finalizer removed (its directory is gone) and nothing else changed.
fn node_cleans_up(
    n: &str,
    old: &skiff_api::storage::PersistentVolume,
    new: &skiff_api::storage::PersistentVolume,
) -> bool {
    let mut expect = old.metadata.clone();
    expect.finalizers.retain(|f| f != LOCAL_PATH_CLEANUP);
    let mut got = new.metadata.clone();
    got.resource_version.clone_from(&expect.resource_version);
    got.managed_fields.clone_from(&expect.managed_fields);
    old.metadata
        .annotations
        .get(PROVISIONED_NODE)
        .map(String::as_str)
        == Some(n)
        && old.metadata.deletion_timestamp.is_some()
        && old.metadata.finalizers.len() != expect.finalizers.len()
        && got == expect
        && new.spec == old.spec
}
