//! Controllers: each one a pure function from what the cluster holds (a [`Cache`] and the
//! time) to the writes that move it towards what was asked ([`Action`]s). The runner in
//! [`runner`] keeps the cache from the store's watches, runs them and performs the writes.
//!
//! Every controller is level-triggered: it looks at the whole state each time, not at
//! the change that woke it, so a missed or repeated wake-up changes nothing.

pub mod budget;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod gc;
pub mod hpa;
pub mod hpa_calc;
pub mod ingress;
pub mod job;
pub mod job_index;
pub mod node_lifecycle;
pub mod quota;
pub mod replicaset;
pub mod runner;
pub mod spam;
pub mod statefulset;
pub mod storage;

use crate::HashMap;
use skiff_api::meta::{ObjectMeta, OwnerReference};
use skiff_api::pod::Pod;
use skiff_api::util::parse_rfc3339;
use skiff_api::workloads::PodTemplateSpec;
use skiff_api::{Kind, Object, ObjectKey, Typed};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use skiff_api::conditions::{
    is_active, is_available, is_finished, is_pending_schedule, is_ready, phase, set_condition,
};
pub use skiff_api::well_known::{
    FOREGROUND, ORPHAN, POD_TEMPLATE_HASH, REVISION, REVISION_HASH, TAINT_NOT_READY,
    TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE,
};

/// The kinds the controllers read.
pub const WATCHED: [Kind; 17] = [
    Kind::Node,
    Kind::Service,
    Kind::Endpoints,
    Kind::Ingress,
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::Deployment,
    Kind::DaemonSet,
    Kind::StatefulSet,
    Kind::Job,
    Kind::HorizontalPodAutoscaler,
    Kind::PodDisruptionBudget,
    Kind::CronJob,
    Kind::PersistentVolume,
    Kind::PersistentVolumeClaim,
    Kind::StorageClass,
    Kind::ResourceQuota,
];

pub use skiff_api::wire::Propagation;

/// A write a controller wants.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create this object (`generateName` honoured).
    Create(Object),
    /// Replace this object; its `resourceVersion` is a precondition.
    Update(Object),
    /// Replace this object's status; its `resourceVersion` is a precondition.
    Status(Object),
    /// Delete an object (pods bound to a node end gracefully unless `force`).
    Delete {
        /// Which.
        key: ObjectKey,
        /// Only if it still has this uid.
        uid: String,
        /// What becomes of its dependents.
        propagation: Propagation,
        /// At once, without the node's graceful stop (pods).
        force: bool,
    },
    /// Delete an object unless one of `unless` (key and uid) exists when checked against
    /// the store itself (the cache may lag behind).
    DeleteUnless {
        /// Which.
        key: ObjectKey,
        /// Only if it still has this uid.
        uid: String,
        /// Objects whose existence spares it.
        unless: Vec<(ObjectKey, Option<String>)>,
        /// At once (pods).
        force: bool,
    },
    /// Remove a finalizer; an object being deleted goes when its last one is removed.
    RemoveFinalizer {
        /// Which.
        key: ObjectKey,
        /// Only if it still has this uid.
        uid: String,
        /// The finalizer.
        finalizer: String,
    },
    /// Bind a pod to a node.
    Bind {
        /// The pod.
        key: ObjectKey,
        /// Only if it still has this uid.
        uid: String,
        /// The node.
        node: String,
        /// The pod as the cache holds it: bound from it unless it changed since.
        seen: Option<Entry>,
        /// Claim volumes' node directories (volume name → path), for its annotations.
        volumes: BTreeMap<String, String>,
    },
    /// Record an Event about an object.
    Event {
        /// What it is about.
        about: ObjectKey,
        /// Its uid.
        uid: String,
        /// Normal or Warning.
        warning: bool,
        /// `ScalingReplicaSet`, `SuccessfulCreate`...
        reason: String,
        /// The text.
        message: String,
    },
}

impl Action {
    /// Order of execution in one pass: deletions before creations, so no pass goes above
    /// a bound it keeps (a rollout's `replicas + maxSurge`); spec changes before status.
    pub fn rank(&self) -> u8 {
        match self {
            Action::Delete { .. } | Action::DeleteUnless { .. } => 0,
            Action::RemoveFinalizer { .. } => 1,
            // A spec change and a status change of one object in one pass share its
            // resourceVersion: the spec goes first, the status is recomputed next pass.
            Action::Update(_) => 2,
            Action::Status(_) => 3,
            Action::Bind { .. } => 4,
            Action::Create(_) => 5,
            Action::Event { .. } => 6,
        }
    }
}

/// One cached object and the revision that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The revision.
    pub revision: u64,
    /// The object.
    pub object: Arc<Object>,
}

/// What the controllers know of the cluster: every object of the [`WATCHED`] kinds.
#[derive(Debug, Default, Clone)]
pub struct Cache {
    kinds: HashMap<Kind, BTreeMap<(String, String), Entry>>,
    /// Revisions of recent deletions, so a late event never brings an object back.
    tombstones: HashMap<ObjectKey, u64>,
}

impl Cache {
    /// Every cached object of `T`'s kind, as `T` (`cache.typed::<Pod>()`).
    pub fn typed<T: Typed>(&self) -> impl Iterator<Item = &T> + '_ {
        self.objects(T::KIND).filter_map(|o| T::of(o))
    }

    /// Every cached object of a kind, shared.
    pub fn objects(&self, kind: Kind) -> impl Iterator<Item = &Arc<Object>> + '_ {
        self.kinds
            .get(&kind)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|e| &e.object)
    }

    /// Puts an object in (unless the cache already holds a newer state of it).
    pub fn put(&mut self, revision: u64, object: Object) {
        let key = object.key();
        if self.tombstones.get(&key).is_some_and(|r| *r >= revision) {
            return;
        }
        let m = self.kinds.entry(key.kind).or_default();
        let k = (key.namespace, key.name);
        if m.get(&k).is_some_and(|e| e.revision >= revision) {
            return;
        }
        m.insert(
            k,
            Entry {
                revision,
                object: Arc::new(object),
            },
        );
    }

    /// Whether the cache already holds `key` as of `revision` or later.
    pub fn holds(&self, key: &ObjectKey, revision: u64) -> bool {
        self.get(key).is_some_and(|e| e.revision >= revision)
    }

    /// Takes an object out (deleted at `revision`).
    pub fn remove(&mut self, key: &ObjectKey, revision: u64) {
        if let Some(m) = self.kinds.get_mut(&key.kind) {
            let k = (key.namespace.clone(), key.name.clone());
            if m.get(&k).is_some_and(|e| e.revision <= revision) {
                m.remove(&k);
            }
        }
        if self.tombstones.len() > 100_000 {
            self.tombstones.clear();
        }
        self.tombstones.insert(key.clone(), revision);
    }

    /// Replaces everything of one kind (after a relist).
    pub fn replace_kind(&mut self, kind: Kind, items: Vec<(u64, Object)>) {
        self.tombstones.retain(|k, _| k.kind != kind);
        let m = self.kinds.entry(kind).or_default();
        m.clear();
        for (revision, o) in items {
            let key = o.key();
            m.insert(
                (key.namespace, key.name),
                Entry {
                    revision,
                    object: Arc::new(o),
                },
            );
        }
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Entry> {
        self.kinds
            .get(&key.kind)?
            .get(&(key.namespace.clone(), key.name.clone()))
    }

    /// How many objects of a kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.kinds.get(&kind).map_or(0, |m| m.len())
    }

    /// Every cached object of every kind.
    pub fn all(&self) -> impl Iterator<Item = &Object> + '_ {
        self.kinds
            .values()
            .flat_map(|m| m.values())
            .map(|e| &*e.object)
    }
}

/// Objects grouped by the uid of their controller, built once per pass.
pub struct ByController<'a, T> {
    map: HashMap<&'a str, Vec<&'a T>>,
}

/// Pods grouped by their controller.
pub type PodsByOwner<'a> = ByController<'a, Pod>;

impl<'a, T> ByController<'a, T> {
    /// Groups objects (with their metadata) by their controller's uid.
    pub fn index(items: impl Iterator<Item = (&'a ObjectMeta, &'a T)>) -> Self {
        let mut map: HashMap<&str, Vec<&T>> = HashMap::default();
        for (m, x) in items {
            if let Some(o) = m.controller() {
                map.entry(o.uid.as_str()).or_default().push(x);
            }
        }
        ByController { map }
    }

    /// What an owner controls.
    pub fn of(&self, uid: Option<&str>) -> &[&'a T] {
        uid.and_then(|u| self.map.get(u))
            .map_or(&[], |v| v.as_slice())
    }
}

impl<'a> ByController<'a, Pod> {
    /// Indexes the cache's pods.
    pub fn new(cache: &'a Cache) -> PodsByOwner<'a> {
        Self::index(cache.typed::<Pod>().map(|p| (&p.metadata, p)))
    }
}

/// The key of a typed object.
pub fn key_of(kind: Kind, m: &ObjectMeta) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: m.namespace().to_string(),
        name: m.name().to_string(),
    }
}

/// The owner reference a controller puts on what it creates.
pub fn controller_ref(kind: Kind, m: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: kind.info().api_version.into(),
        kind: kind.name().into(),
        name: m.name().to_string(),
        uid: m.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A short, stable hash of a pod template (Kubernetes' `pod-template-hash` shape: safe
/// characters only).
pub fn template_hash(t: &PodTemplateSpec) -> String {
    let json = serde_json::to_string(t).expect("templates serialize");
    let mut h: u64 = 0xcbf29ce484222325;
    for b in json.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    for _ in 0..10 {
        out.push(SAFE[(h % SAFE.len() as u64) as usize] as char);
        h /= SAFE.len() as u64;
    }
    out
}

/// A pod made from a template for an owner.
pub fn pod_from_template(
    t: &PodTemplateSpec,
    owner_kind: Kind,
    owner: &ObjectMeta,
    name: Option<String>,
    generate_name: Option<String>,
    extra_labels: &[(&str, &str)],
) -> Pod {
    let mut meta = ObjectMeta {
        name,
        generate_name,
        namespace: owner.namespace.clone(),
        labels: t.metadata.labels.clone(),
        annotations: t.metadata.annotations.clone(),
        owner_references: vec![controller_ref(owner_kind, owner)],
        finalizers: t.metadata.finalizers.clone(),
        ..Default::default()
    };
    for (k, v) in extra_labels {
        meta.labels.insert(k.to_string(), v.to_string());
    }
    Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: meta,
        spec: t.spec.clone(),
        status: None,
    }
}

/// Orders pods the way Kubernetes picks which to remove first when scaling down:
/// unscheduled, then pending, then not ready, then ready for less time, then more
/// restarts, then newer.
pub fn deletion_rank(
    p: &Pod,
) -> (
    u8,
    u8,
    u8,
    std::cmp::Reverse<u64>,
    std::cmp::Reverse<i32>,
    std::cmp::Reverse<u64>,
) {
    let scheduled = u8::from(p.spec.node_name.is_some());
    let ph = match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let ready = u8::from(is_ready(p));
    let ready_since = skiff_api::conditions::ready_condition(p)
        .and_then(|c| c.last_transition_time.as_deref())
        .and_then(parse_rfc3339)
        .unwrap_or(0);
    let restarts = p.status.as_ref().map_or(0, |s| {
        s.container_statuses
            .iter()
            .filter_map(|c| c.restart_count)
            .sum()
    });
    let created = p
        .metadata
        .creation_timestamp
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(0);
    (
        scheduled,
        ph,
        ready,
        std::cmp::Reverse(ready_since),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

/// The delete action of a pod (graceful).
pub fn delete_pod(p: &Pod) -> Action {
    delete(Kind::Pod, &p.metadata)
}

/// The delete action of an object (background propagation; a pod ends gracefully).
pub fn delete(kind: Kind, m: &ObjectMeta) -> Action {
    Action::Delete {
        key: key_of(kind, m),
        uid: m.uid.clone().unwrap_or_default(),
        propagation: Propagation::Background,
        force: false,
    }
}

/// The event action about an object.
pub fn event(kind: Kind, m: &ObjectMeta, warning: bool, reason: &str, message: String) -> Action {
    Action::Event {
        about: key_of(kind, m),
        uid: m.uid.clone().unwrap_or_default(),
        warning,
        reason: reason.into(),
        message,
    }
}

/// Is an object being deleted?
pub fn deleting(m: &ObjectMeta) -> bool {
    m.deletion_timestamp.is_some()
}

/// Adoption: objects without a controller whose labels match an owner's selector get the
/// owner's controller reference (as Kubernetes' controllers adopt orphans). An empty or
/// invalid selector adopts nothing.
pub fn adopt<'a>(
    owner_kind: Kind,
    owner: &ObjectMeta,
    selector: Option<&skiff_api::selector::LabelSelector>,
    orphans: impl Iterator<Item = &'a Object>,
) -> Vec<Action> {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    let Ok(sel) = sel.to_selector() else {
        return Vec::new();
    };
    if deleting(owner) {
        return Vec::new();
    }
    orphans
        .filter(|o| o.meta().namespace() == owner.namespace() && sel.matches(&o.meta().labels))
        .map(|o| {
            let mut next = o.clone();
            next.meta_mut()
                .owner_references
                .push(controller_ref(owner_kind, owner));
            Action::Update(next)
        })
        .collect()
}

/// Orphans (after an orphaning delete) adopted by a matching owner: ReplicaSets by
/// Deployments, pods by ReplicaSets.
pub fn adopt_orphans(cache: &Cache) -> Vec<Action> {
    let mut out = Vec::new();
    let orphans = |kind: Kind| -> Vec<std::sync::Arc<Object>> {
        cache
            .objects(kind)
            .filter(|o| {
                let m = o.meta();
                m.deletion_timestamp.is_none()
                    && m.controller().is_none()
                    && !matches!(&***o, Object::Pod(p) if is_finished(p))
            })
            .cloned()
            .collect()
    };
    let orphan_rs = orphans(Kind::ReplicaSet);
    if !orphan_rs.is_empty() {
        for d in cache.typed::<skiff_api::workloads::Deployment>() {
            out.extend(adopt(
                Kind::Deployment,
                &d.metadata,
                d.spec.selector.as_ref(),
                orphan_rs.iter().map(|o| &**o),
            ));
        }
    }
    let orphan_pods = orphans(Kind::Pod);
    if !orphan_pods.is_empty() {
        for rs in cache.typed::<skiff_api::workloads::ReplicaSet>() {
            out.extend(adopt(
                Kind::ReplicaSet,
                &rs.metadata,
                rs.spec.selector.as_ref(),
                orphan_pods.iter().map(|o| &**o),
            ));
        }
    }
    out
}
