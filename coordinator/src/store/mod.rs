//! The store: objects with revisions, and watches from a revision.
//!
//! Every write takes the next global revision, and an object's `resourceVersion` is the
//! revision that last wrote it. A write is acknowledged only once it is durable. Watches
//! deliver Added/Modified/Deleted in revision order with no gaps; a revision older than
//! the retained history answers [`StoreError::Expired`] so the client relists.
//!
//! [`Store`] is the seam between the API server and a backend: [`redb_store::RedbStore`]
//! is the embedded default; an etcd backend will sit behind the same trait.

pub mod crypt;
pub mod redb_store;

use serde_json::Value;
use skiff_api::selector::Selector;
use skiff_api::{Kind, ObjectKey};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// An object as stored: its key, the revision that last wrote it, and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Where it lives.
    pub key: ObjectKey,
    /// `resourceVersion`.
    pub revision: u64,
    /// The object, `metadata.resourceVersion` included.
    pub json: Arc<str>,
}

impl Stored {
    /// The object as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).expect("the store holds valid JSON")
    }
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The revision the page reflects.
    pub revision: u64,
    /// The objects, in key order.
    pub items: Vec<Stored>,
    /// More objects follow the last one.
    pub more: bool,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted (the event carries the last state).
    Deleted,
}

/// One change, as watchers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreEvent {
    /// The revision of the change.
    pub revision: u64,
    /// Added, Modified or Deleted.
    pub kind: EventType,
    /// The object after the change (for Deleted: its last state).
    pub object: Stored,
    /// The object's labels, for selector filtering.
    pub labels: BTreeMap<String, String>,
}

/// A write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create; `AlreadyExists` if the key is taken.
    Create(Value),
    /// Replace; `expected` is a `resourceVersion` precondition.
    Update {
        /// The new object.
        object: Value,
        /// Fail with Conflict unless the stored revision is this.
        expected: Option<u64>,
    },
    /// Delete; `expected` is a `resourceVersion` precondition.
    Delete {
        /// Which.
        key: ObjectKey,
        /// Fail with Conflict unless the stored revision is this.
        expected: Option<u64>,
    },
    /// Delete a namespace and everything in it, each deletion its own revision.
    DeleteNamespace(String),
}

/// Which events a watch wants.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    /// The kind.
    pub kind: Kind,
    /// A namespace, or all.
    pub namespace: Option<String>,
    /// A label selector.
    pub selector: Selector,
}

impl WatchFilter {
    /// Does this event pass the filter?
    pub fn matches(&self, e: &StoreEvent) -> bool {
        e.object.key.kind == self.kind
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == e.object.key.namespace)
            && self.selector.matches(&e.labels)
    }
}

/// Store failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such object.
    #[error("{0} not found")]
    NotFound(ObjectKey),
    /// The key is taken.
    #[error("{0} already exists")]
    AlreadyExists(ObjectKey),
    /// A precondition failed.
    #[error("the object has been modified; please apply your changes to the latest version and try again (stored resourceVersion {stored}, yours {given})")]
    Conflict {
        /// The stored revision.
        stored: u64,
        /// The revision the caller expected.
        given: u64,
    },
    /// The requested revision was compacted.
    #[error(
        "too old resource version: {requested} (the oldest a watch may start from is {oldest})"
    )]
    Expired {
        /// What was asked.
        requested: u64,
        /// The oldest revision a watch may resume from.
        oldest: u64,
    },
    /// The object is not well formed (no kind, name...).
    #[error("invalid object: {0}")]
    Invalid(String),
    /// The backend failed: the write was not acknowledged.
    #[error("store failure: {0}")]
    Backend(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
}

/// A stream of events from a watch.
pub trait WatchStream: Send {
    /// The next matching event; `Expired` if the watcher fell behind the retained history.
    fn next(&mut self) -> impl Future<Output = Result<Arc<StoreEvent>, StoreError>> + Send;
}

/// A backend.
pub trait Store: Send + Sync + 'static {
    /// The watch stream type.
    type Watch: WatchStream + 'static;

    /// Applies one write; resolves once it is durable.
    fn write(&self, op: WriteOp) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;
    /// Reads one object.
    fn get(&self, key: &ObjectKey) -> Result<Option<Stored>, StoreError>;
    /// A page of a kind (optionally in one namespace), in key order, starting after
    /// `after` (`namespace/name`), with the revision it reflects.
    fn list_page(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Every object of a kind (optionally in one namespace). For small kinds and tests;
    /// the API pages.
    fn list(&self, kind: Kind, namespace: Option<&str>) -> Result<(u64, Vec<Stored>), StoreError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let mut revision = None;
        loop {
            let page = self.list_page(kind, namespace, after.as_deref(), 1024)?;
            revision.get_or_insert(page.revision);
            after = page
                .items
                .last()
                .map(|s| format!("{}/{}", s.key.namespace, s.key.name));
            let more = page.more;
            out.extend(page.items);
            if !more {
                return Ok((revision.unwrap_or(0), out));
            }
        }
    }
    /// Events with a revision greater than `since`.
    fn watch(&self, filter: WatchFilter, since: u64) -> Result<Self::Watch, StoreError>;
    /// The latest committed revision.
    fn revision(&self) -> u64;
}

/// Parses the key of a JSON object.
pub fn key_of(v: &Value) -> Result<ObjectKey, StoreError> {
    let kind_name = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let kind = Kind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == kind_name)
        .ok_or_else(|| StoreError::Invalid(format!("unknown kind {kind_name:?}")))?;
    let meta = v.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| StoreError::Invalid("metadata.name is missing".into()))?;
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind.namespaced() == namespace.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{kind} {name:?}: namespace {namespace:?} does not fit the kind"
        )));
    }
    Ok(ObjectKey {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// The labels of a JSON object.
pub fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The pure part of a write: given the stored object (if any), what to store and which
/// event to emit at `revision`. The backend supplies the current state and persists the
/// result.
pub fn plan(
    op_object: Option<&Value>,
    current: Option<&Stored>,
    key: &ObjectKey,
    expected: Option<u64>,
    revision: u64,
    create: bool,
) -> Result<(EventType, Value), StoreError> {
    if let (Some(e), Some(c)) = (expected, current) {
        if e != c.revision {
            return Err(StoreError::Conflict {
                stored: c.revision,
                given: e,
            });
        }
    }
    match (op_object, current) {
        (Some(new), None) if create => {
            let mut v = new.clone();
            let m = meta_mut(&mut v);
            m.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
            if new.get("spec").is_some() {
                m.entry("generation").or_insert(Value::from(1));
            }
            Ok((EventType::Added, v))
        }
        (Some(_), Some(_)) if create => Err(StoreError::AlreadyExists(key.clone())),
        (Some(_), None) => Err(StoreError::NotFound(key.clone())),
        (Some(new), Some(cur)) => {
            let old = cur.value();
            let mut v = new.clone();
            let old_gen = old.pointer("/metadata/generation").and_then(Value::as_i64);
            let spec_changed = old.get("spec") != new.get("spec");
            let m = meta_mut(&mut v);
            // Identity and history are the store's, whatever the update says.
            for f in ["uid", "creationTimestamp"] {
                match old.pointer(&format!("/metadata/{f}")) {
                    Some(x) => {
                        m.insert(f.into(), x.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            m.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
            if let Some(g) = old_gen {
                m.insert(
                    "generation".into(),
                    Value::from(if spec_changed { g + 1 } else { g }),
                );
            }
            Ok((EventType::Modified, v))
        }
        (None, None) => Err(StoreError::NotFound(key.clone())),
        (None, Some(cur)) => {
            let mut v = cur.value();
            meta_mut(&mut v).insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
            Ok((EventType::Deleted, v))
        }
    }
}

fn meta_mut(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    let obj = v.as_object_mut().expect("objects are JSON objects");
    obj.entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
        .expect("metadata is an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> ObjectKey {
        ObjectKey {
            kind: Kind::ConfigMap,
            namespace: "default".into(),
            name: "a".into(),
        }
    }

    #[test]
    fn plan_create_update_delete() {
        let obj = json!({"kind": "Deployment", "metadata": {"name": "a", "uid": "u1"}, "spec": {"replicas": 1}});
        let (t, v) = plan(Some(&obj), None, &key(), None, 5, true).unwrap();
        assert_eq!(t, EventType::Added);
        assert_eq!(v["metadata"]["resourceVersion"], "5");
        assert_eq!(v["metadata"]["generation"], 1);
        let stored = Stored {
            key: key(),
            revision: 5,
            json: v.to_string().into(),
        };
        let mut upd = obj.clone();
        upd["spec"]["replicas"] = json!(2);
        upd["metadata"]["uid"] = json!("forged");
        let (_, v2) = plan(Some(&upd), Some(&stored), &key(), Some(5), 6, false).unwrap();
        assert_eq!(v2["metadata"]["generation"], 2);
        assert_eq!(v2["metadata"]["uid"], "u1");
        let e = plan(Some(&upd), Some(&stored), &key(), Some(4), 6, false).unwrap_err();
        assert_eq!(
            e,
            StoreError::Conflict {
                stored: 5,
                given: 4
            }
        );
        let (t, v3) = plan(None, Some(&stored), &key(), None, 7, false).unwrap();
        assert_eq!(
            (t, v3["metadata"]["resourceVersion"].as_str()),
            (EventType::Deleted, Some("7"))
        );
        assert!(matches!(
            plan(Some(&obj), Some(&stored), &key(), None, 8, true),
            Err(StoreError::AlreadyExists(_))
        ));
    }
}
