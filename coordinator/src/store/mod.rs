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
pub mod wal;

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
    /// Facts read from the object once, for every watcher of the event.
    pub memo: EventMemo,
}

/// Facts about an event's object read once and shared by every watcher (a thousand
/// nodes watching pods must not each parse every pod).
#[derive(Debug, Clone, Default)]
pub struct EventMemo {
    node_name: std::sync::OnceLock<Option<String>>,
}

impl PartialEq for EventMemo {
    fn eq(&self, _: &Self) -> bool {
        // A cache of what the object says: never part of an event's identity.
        true
    }
}

impl StoreEvent {
    /// A pod's `spec.nodeName`, read once.
    pub fn node_name(&self) -> Option<&str> {
        self.memo
            .node_name
            .get_or_init(|| {
                #[derive(serde::Deserialize)]
                struct P {
                    spec: Option<S>,
                }
                #[derive(serde::Deserialize)]
                struct S {
                    #[serde(rename = "nodeName")]
                    node_name: Option<String>,
                }
                serde_json::from_str::<P>(&self.object.json)
                    .ok()
                    .and_then(|p| p.spec?.node_name)
            })
            .as_deref()
    }
}

/// An object ready to store: its JSON split where the revision goes, so the writer
/// only splices digits in. Callers prepare objects in parallel; the single writer
/// thread does as little as possible.
#[derive(Debug, Clone)]
pub struct Put {
    /// Where it goes.
    pub key: ObjectKey,
    /// Its labels (for watch filters).
    pub labels: BTreeMap<String, String>,
    head: String,
    tail: String,
}

impl Put {
    /// Prepares a JSON object. Its `metadata.resourceVersion` is set by the store;
    /// everything else (uid, generation...) is stored as given.
    pub fn new(mut v: Value) -> Result<Put, StoreError> {
        let key = key_of(&v)?;
        let labels = labels_of(&v);
        let (head, tail) = split_at_sentinel(&mut v, |v, s| {
            meta_mut(v).insert("resourceVersion".into(), Value::String(s));
        });
        Ok(Put {
            key,
            labels,
            head,
            tail,
        })
    }

    /// Prepares a typed object (the API's path: no intermediate `Value`).
    pub fn from_object(o: &mut skiff_api::Object) -> Result<Put, StoreError> {
        o.set_type_meta();
        if o.meta().name().is_empty() {
            return Err(StoreError::Invalid("metadata.name is missing".into()));
        }
        let key = o.key();
        let labels = o.meta().labels.clone();
        let (head, tail) = split_at_sentinel(o, |o, s| o.meta_mut().resource_version = Some(s));
        Ok(Put {
            key,
            labels,
            head,
            tail,
        })
    }

    /// The JSON with `revision` as its resourceVersion.
    pub fn render(&self, revision: u64) -> String {
        let rev = revision.to_string();
        let mut s = String::with_capacity(self.head.len() + rev.len() + self.tail.len());
        s.push_str(&self.head);
        s.push_str(&rev);
        s.push_str(&self.tail);
        s
    }
}

/// Serializes `obj` with a resourceVersion sentinel that occurs exactly once and splits
/// the text around it.
fn split_at_sentinel<T: serde::Serialize>(
    obj: &mut T,
    set: impl Fn(&mut T, String),
) -> (String, String) {
    for n in 0u32.. {
        let sentinel = format!("\u{1}rv{n}\u{1}");
        set(obj, sentinel.clone());
        let text = serde_json::to_string(obj).expect("objects serialize");
        let needle = serde_json::to_string(&sentinel).expect("strings serialize");
        let mut found = text.match_indices(&needle);
        if let (Some((at, _)), None) = (found.next(), found.next()) {
            return (
                format!("{}\"", &text[..at]),
                format!("\"{}", &text[at + needle.len()..]),
            );
        }
    }
    unreachable!("some sentinel occurs exactly once")
}

/// A write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create; `AlreadyExists` if the key is taken.
    Create(Put),
    /// Replace; `expected` is a `resourceVersion` precondition.
    Update {
        /// The new object.
        put: Put,
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

impl WriteOp {
    /// A create of a JSON object.
    pub fn create(v: Value) -> Result<WriteOp, StoreError> {
        Ok(WriteOp::Create(Put::new(v)?))
    }

    /// An update of a JSON object, optionally only from revision `expected`.
    pub fn update(v: Value, expected: Option<u64>) -> Result<WriteOp, StoreError> {
        Ok(WriteOp::Update {
            put: Put::new(v)?,
            expected,
        })
    }
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

/// A backend's failure (I/O, encoding, a damaged file) as a [`StoreError`].
pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
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
    /// Whether an object exists (without reading it out).
    fn contains(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        self.get(key).map(|s| s.is_some())
    }
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
    /// The retained events matching `filter` with a revision in `since+1..=until`
    /// (`Expired` when `since` is older than the history).
    fn history(
        &self,
        filter: &WatchFilter,
        since: u64,
        until: u64,
    ) -> Result<Vec<Arc<StoreEvent>>, StoreError>;
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

/// The pure part of a write: given the stored revision of the key (if any), whether
/// the write may happen and what event it makes.
pub fn precondition(
    key: &ObjectKey,
    current: Option<u64>,
    create: bool,
    delete: bool,
    expected: Option<u64>,
) -> Result<EventType, StoreError> {
    match (current, create) {
        (Some(_), true) => return Err(StoreError::AlreadyExists(key.clone())),
        (None, false) => return Err(StoreError::NotFound(key.clone())),
        _ => {}
    }
    if let (Some(e), Some(c)) = (expected, current) {
        if e != c {
            return Err(StoreError::Conflict {
                stored: c,
                given: e,
            });
        }
    }
    Ok(if create {
        EventType::Added
    } else if delete {
        EventType::Deleted
    } else {
        EventType::Modified
    })
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
    fn preconditions() {
        let k = key();
        assert_eq!(
            precondition(&k, None, true, false, None),
            Ok(EventType::Added)
        );
        assert!(matches!(
            precondition(&k, Some(3), true, false, None),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            precondition(&k, None, false, false, None),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(
            precondition(&k, Some(3), false, false, Some(3)),
            Ok(EventType::Modified)
        );
        assert_eq!(
            precondition(&k, Some(3), false, false, Some(2)),
            Err(StoreError::Conflict {
                stored: 3,
                given: 2
            })
        );
        assert_eq!(
            precondition(&k, Some(3), false, true, None),
            Ok(EventType::Deleted)
        );
    }

    #[test]
    fn put_splices_the_revision() {
        let v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default",
            "annotations": {"resourceVersion": "\u{1}rv0\u{1}"}}, "data": {"x": "\u{1}rv1\u{1}"}});
        let p = Put::new(v).unwrap();
        let out: Value = serde_json::from_str(&p.render(42)).unwrap();
        assert_eq!(out["metadata"]["resourceVersion"], "42");
        assert_eq!(
            out["metadata"]["annotations"]["resourceVersion"],
            "\u{1}rv0\u{1}"
        );
        assert_eq!(out["data"]["x"], "\u{1}rv1\u{1}");
    }
}
