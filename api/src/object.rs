//! The kinds skiff serves, and `Object`, any one of them.

use crate::access::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, ServiceAccount};
use crate::autoscaling::HorizontalPodAutoscaler;
use crate::core::{ConfigMap, Endpoints, Event, Namespace, Node, Secret, Service};
use crate::ingress_class::IngressClass;
use crate::meta::ObjectMeta;
use crate::networking::Ingress;
use crate::pod::Pod;
use crate::policy::PodDisruptionBudget;
use crate::print::{Page, Print};
use crate::quota::{LimitRange, ResourceQuota};
use crate::resource::{NameRule, Resource};
use crate::scheduling::PriorityClass;
use crate::storage::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use crate::validate::Problems;
use crate::workloads::{CronJob, DaemonSet, Deployment, Job, ReplicaSet, StatefulSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Static facts about a kind.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// `Deployment`.
    pub name: &'static str,
    /// `apps/v1`.
    pub api_version: &'static str,
    /// `deployments`.
    pub plural: &'static str,
    /// kubectl's short names (`deploy`).
    pub short: &'static [&'static str],
    /// Lives in a namespace.
    pub namespaced: bool,
    /// Has a `spec`: `metadata.generation` counts its changes.
    pub has_spec: bool,
    /// Has a `status`, written apart from the spec (`update --status`).
    pub has_status: bool,
    /// A create may set the status (Kubernetes keeps a Node's; other kinds' is cleared).
    pub status_on_create: bool,
    /// What a node's identity may read of the kind.
    pub node_reads: NodeReads,
}

/// What a node may read of a kind (admins read everything; nobody else reads anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeReads {
    /// Every object: every node routes to every other node's pods and serves every
    /// Service and Ingress (as the kubelet, kube-proxy and an ingress controller read them).
    All,
    /// The pods bound to it.
    BoundPods,
    /// The ConfigMaps and Secrets its pods use, and the TLS Secrets of Ingresses.
    UsedByItsPods,
    /// Nothing.
    Nothing,
}

/// Per-kind facts the row states: `spec` or `no_spec`.
macro_rules! has_spec {
    (spec) => {
        true
    };
    (no_spec) => {
        false
    };
}

/// Whether two objects of one kind have the same spec (`None` for kinds without one).
macro_rules! same_spec {
    (spec, $a:expr, $b:expr) => {
        Some($a.spec == $b.spec)
    };
    (no_spec, $a:expr, $b:expr) => {{
        let _ = ($a, $b);
        None
    }};
}

/// Per-kind facts the row states: `status`, `status_on_create` or `no_status`.
macro_rules! status {
    (has, no_status) => {
        false
    };
    (has, $s:ident) => {
        true
    };
    (on_create, status_on_create) => {
        true
    };
    (on_create, $s:ident) => {
        false
    };
    (copy, no_status, $from:expr, $to:expr) => {{
        let _ = ($from, $to);
    }};
    (copy, $s:ident, $from:expr, $to:expr) => {
        $to.status = $from.status.clone()
    };
    (clear, status, $o:expr) => {
        $o.status = None
    };
    (clear, $s:ident, $o:expr) => {{
        let _ = $o;
    }};
}

macro_rules! kinds {
    ($( $variant:ident : $ty:ty = ($api:expr, $plural:expr, [$($short:expr),*], $ns:expr, $spec:ident, $status:ident, $reads:ident) ),* $(,)?) => {
        /// A kind of object skiff serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Kind { $(
            #[doc = stringify!($variant)]
            $variant
        ),* }

        impl Kind {
            /// Every kind.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// Static facts about the kind.
            pub fn info(self) -> KindInfo {
                match self { $(Kind::$variant => KindInfo {
                    name: stringify!($variant),
                    api_version: $api,
                    plural: $plural,
                    short: &[$($short),*],
                    namespaced: $ns,
                    has_spec: has_spec!($spec),
                    has_status: status!(has, $status),
                    status_on_create: status!(on_create, $status),
                    node_reads: NodeReads::$reads,
                }),* }
            }

            /// The rule the kind's names follow.
            pub fn name_rule(self) -> NameRule {
                match self { $(Kind::$variant => <$ty as Resource>::NAME),* }
            }

            /// `get`'s column headers for the kind.
            pub fn columns(self, wide: bool) -> Vec<&'static str> {
                match self { $(Kind::$variant => <$ty as Print>::columns(wide)),* }
            }

            /// The kind's JSON schema, generated from its type (its definitions, and the
            /// types it holds, go into `generator`): a reference to the definition.
            #[cfg(feature = "schema")]
            pub fn schema(self, generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
                match self { $(Kind::$variant => generator.subschema_for::<$ty>()),* }
            }
        }

        /// Any object skiff serves.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Object { $(
            #[doc = stringify!($variant)]
            $variant($ty)
        ),* }

        $(
            impl Typed for $ty {
                const KIND: Kind = Kind::$variant;
                fn of(o: &Object) -> Option<&Self> {
                    match o {
                        Object::$variant(x) => Some(x),
                        _ => None,
                    }
                }
                fn into_object(self) -> Object {
                    Object::$variant(self)
                }
            }
        )*

        impl Object {
            /// Its kind.
            pub fn kind(&self) -> Kind {
                match self { $(Object::$variant(_) => Kind::$variant),* }
            }
            /// Its metadata.
            pub fn meta(&self) -> &ObjectMeta {
                match self { $(Object::$variant(o) => &o.metadata),* }
            }
            /// Its metadata, to change.
            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Object::$variant(o) => &mut o.metadata),* }
            }
            /// Whether `other` has the same spec: `None` for kinds without a spec, and
            /// `Some(false)` for an object of another kind.
            pub fn same_spec(&self, other: &Object) -> Option<bool> {
                match (self, other) {
                    $((Object::$variant(a), Object::$variant(b)) => same_spec!($spec, a, b),)*
                    _ if !self.kind().info().has_spec => None,
                    _ => Some(false),
                }
            }
            /// Takes the status of `from` (an object of the same kind; others are ignored).
            pub fn copy_status_from(&mut self, from: &Object) {
                match (from, self) {
                    $((Object::$variant(a), Object::$variant(b)) => status!(copy, $status, a, b),)*
                    _ => {}
                }
            }
            /// Drops a status a create may not set (see [`KindInfo::status_on_create`]).
            pub fn clear_status_on_create(&mut self) {
                match self { $(Object::$variant(o) => status!(clear, $status, o)),* }
            }
            /// Fills in what the kind defaults. Idempotent.
            pub fn default_fields(&mut self) {
                match self { $(Object::$variant(o) => Resource::default_fields(o)),* }
            }
            /// The kind's own checks of its fields (metadata is checked for every kind).
            pub(crate) fn validate_fields(&self, v: &mut Problems) {
                match self { $(Object::$variant(o) => Resource::validate(o, v)),* }
            }
            /// The kind's checks of a change from `old` (what may not change).
            pub(crate) fn validate_change(&self, old: &Object, v: &mut Problems) {
                match (old, self) {
                    $((Object::$variant(a), Object::$variant(b)) => Resource::validate_update(b, a, v),)*
                    _ => v.forbidden("kind", "may not change"),
                }
            }
            /// `get`'s row for the object, as [`Kind::columns`] heads it.
            pub fn row(&self, wide: bool, now: u64) -> Vec<String> {
                match self { $(Object::$variant(o) => Print::row(o, wide, now)),* }
            }
            /// `describe`'s sections for the kind (after the metadata every kind shows).
            pub fn describe_sections(&self, page: &mut Page) {
                match self { $(Object::$variant(o) => Print::describe(o, page)),* }
            }
            /// Decodes a JSON object of the given kind. `ignored` hears the path of every
            /// field the model does not hold.
            pub fn decode(
                kind: Kind,
                v: &Value,
                ignored: &mut dyn FnMut(String),
            ) -> Result<Object, DecodeError> {
                match kind { $(Kind::$variant => decode_typed::<$ty, _>(v, ignored).map(Object::$variant)),* }
            }
            /// Decodes JSON text of the given kind without building a `Value` first.
            pub fn decode_json(
                kind: Kind,
                text: &str,
                ignored: &mut dyn FnMut(String),
            ) -> Result<Object, DecodeError> {
                // Most text decodes: first without keeping the path (which records every
                // key as it goes); only text that fails is decoded again to say where.
                let mut found = Vec::new();
                let mut de = serde_json::Deserializer::from_str(text);
                let fast = match kind { $(Kind::$variant => decode_untracked::<$ty, _>(&mut de, &mut |p| found.push(p)).map(Object::$variant)),* };
                if let (Ok(o), Ok(())) = (fast, de.end()) {
                    found.into_iter().for_each(ignored);
                    return Ok(o);
                }
                let mut de = serde_json::Deserializer::from_str(text);
                let o = match kind { $(Kind::$variant => decode_typed::<$ty, _>(&mut de, ignored).map(Object::$variant)),* }?;
                de.end().map_err(|e| DecodeError { path: "<root>".into(), message: e.to_string() })?;
                Ok(o)
            }
            /// Decodes JSON text of the given kind with serde_json alone: no path kept, no
            /// ignored field reported. The fast way for text skiff wrote itself.
            fn decode_plain(kind: Kind, text: &str) -> serde_json::Result<Object> {
                match kind { $(Kind::$variant => serde_json::from_str::<$ty>(text).map(Object::$variant)),* }
            }
            /// Sets `apiVersion` and `kind` to the kind's.
            pub fn set_type_meta(&mut self) {
                let info = self.kind().info();
                match self { $(Object::$variant(o) => {
                    o.api_version = info.api_version.to_string();
                    o.kind = info.name.to_string();
                }),* }
            }
        }
    };
}

// One row per kind: everything that lists kinds is generated from or driven by these
// rows, and each kind's type implements `Resource` (defaults, validation) and `Print`
// (columns, row, describe) where it is declared. A kind missing any of it does not compile.
//
// Variant: type = (apiVersion, plural, short names, namespaced, spec, status, node reads)
kinds! {
    Namespace: Namespace = ("v1", "namespaces", ["ns"], false, spec, status, Nothing),
    Node: Node = ("v1", "nodes", ["no"], false, spec, status_on_create, All),
    Pod: Pod = ("v1", "pods", ["po"], true, spec, status, BoundPods),
    ReplicaSet: ReplicaSet = ("apps/v1", "replicasets", ["rs"], true, spec, status, Nothing),
    Deployment: Deployment = ("apps/v1", "deployments", ["deploy"], true, spec, status, Nothing),
    DaemonSet: DaemonSet = ("apps/v1", "daemonsets", ["ds"], true, spec, status, Nothing),
    StatefulSet: StatefulSet = ("apps/v1", "statefulsets", ["sts"], true, spec, status, Nothing),
    Job: Job = ("batch/v1", "jobs", [], true, spec, status, Nothing),
    Service: Service = ("v1", "services", ["svc"], true, spec, status, All),
    Endpoints: Endpoints = ("v1", "endpoints", ["ep"], true, no_spec, no_status, All),
    ConfigMap: ConfigMap = ("v1", "configmaps", ["cm"], true, no_spec, no_status, UsedByItsPods),
    Secret: Secret = ("v1", "secrets", [], true, no_spec, no_status, UsedByItsPods),
    Event: Event = ("v1", "events", ["ev"], true, no_spec, no_status, Nothing),
    Ingress: Ingress = ("networking.k8s.io/v1", "ingresses", ["ing"], true, spec, status, All),
    PodDisruptionBudget: PodDisruptionBudget = ("policy/v1", "poddisruptionbudgets", ["pdb"], true, spec, status, Nothing),
    HorizontalPodAutoscaler: HorizontalPodAutoscaler = ("autoscaling/v2", "horizontalpodautoscalers", ["hpa"], true, spec, status, Nothing),
    CronJob: CronJob = ("batch/v1", "cronjobs", ["cj"], true, spec, status, Nothing),
    PriorityClass: PriorityClass = ("scheduling.k8s.io/v1", "priorityclasses", ["pc"], false, no_spec, no_status, Nothing),
    PersistentVolume: PersistentVolume = ("v1", "persistentvolumes", ["pv"], false, spec, status, All),
    PersistentVolumeClaim: PersistentVolumeClaim = ("v1", "persistentvolumeclaims", ["pvc"], true, spec, status, Nothing),
    StorageClass: StorageClass = ("storage.k8s.io/v1", "storageclasses", ["sc"], false, no_spec, no_status, Nothing),
    IngressClass: IngressClass = ("networking.k8s.io/v1", "ingressclasses", [], false, spec, no_status, Nothing),
    ServiceAccount: ServiceAccount = ("v1", "serviceaccounts", ["sa"], true, no_spec, no_status, Nothing),
    Role: Role = ("rbac.authorization.k8s.io/v1", "roles", [], true, no_spec, no_status, Nothing),
    ClusterRole: ClusterRole = ("rbac.authorization.k8s.io/v1", "clusterroles", [], false, no_spec, no_status, Nothing),
    RoleBinding: RoleBinding = ("rbac.authorization.k8s.io/v1", "rolebindings", [], true, no_spec, no_status, Nothing),
    ClusterRoleBinding: ClusterRoleBinding = ("rbac.authorization.k8s.io/v1", "clusterrolebindings", [], false, no_spec, no_status, Nothing),
    LimitRange: LimitRange = ("v1", "limitranges", ["limits"], true, spec, no_status, Nothing),
    ResourceQuota: ResourceQuota = ("v1", "resourcequotas", ["quota"], true, spec, status, Nothing),
}

/// A Rust type that is one kind's object.
pub trait Typed: Sized + 'static {
    /// Its kind.
    const KIND: Kind;
    /// The object as this type, if it is of this kind.
    fn of(o: &Object) -> Option<&Self>;
    /// Wraps it as an `Object`.
    fn into_object(self) -> Object;
}

/// A decoding failure at a field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    /// Where (`spec.replicas`).
    pub path: String,
    /// What (`invalid type: string "x", expected i32`).
    pub message: String,
}

/// Decodes reporting ignored fields, without tracking where an error is.
fn decode_untracked<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
    ignored: &mut dyn FnMut(String),
) -> Result<T, D::Error> {
    let mut cb = |p: serde_ignored::Path<'_>| ignored(ignored_path(&p));
    T::deserialize(serde_ignored::Deserializer::new(de, &mut cb))
}

fn decode_typed<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
    ignored: &mut dyn FnMut(String),
) -> Result<T, DecodeError> {
    let mut cb = |p: serde_ignored::Path<'_>| ignored(ignored_path(&p));
    let de = serde_ignored::Deserializer::new(de, &mut cb);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path = String::new();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(variant);
                }
                serde_path_to_error::Segment::Unknown => path.push_str(".?"),
            }
        }
        DecodeError {
            path: if path.is_empty() {
                "<root>".into()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let head = ignored_path(parent);
            if head.is_empty() {
                key.clone()
            } else {
                format!("{head}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

impl Kind {
    /// Finds a kind by any name kubectl accepts: `Deployment`, `deployment`, `deployments`,
    /// `deploy`, `deployment.apps`, `deployments.apps`.
    pub fn from_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lower, None),
        };
        Kind::ALL.iter().copied().find(|k| {
            let i = k.info();
            let names_match = base == i.name.to_ascii_lowercase()
                || base == i.plural
                || i.short.contains(&base.as_str());
            let group_match = match &group {
                None => true,
                Some(g) => g == k.group() || (k.group().is_empty() && g.is_empty()),
            };
            names_match && group_match
        })
    }

    /// The API group (`apps`), empty for the core group.
    pub fn group(self) -> &'static str {
        self.info()
            .api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// `deployment.apps` or `pod`, as kubectl names kinds in its output.
    pub fn qualified(self) -> String {
        let lower = self.info().name.to_ascii_lowercase();
        match self.group() {
            "" => lower,
            g => format!("{lower}.{g}"),
        }
    }

    /// The kind's name (`Deployment`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Is this object in a namespace?
    pub fn namespaced(self) -> bool {
        self.info().namespaced
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info().name)
    }
}

/// Where an object lives: kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace, "" for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind.qualified(), self.name)
        } else {
            write!(
                f,
                "{}/{} in namespace {}",
                self.kind.qualified(),
                self.name,
                self.namespace
            )
        }
    }
}

impl Object {
    /// The key it is stored under.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: self.kind(),
            namespace: self.meta().namespace().to_string(),
            name: self.meta().name().to_string(),
        }
    }

    /// As JSON, with `apiVersion` and `kind` set.
    pub fn to_value(&self) -> Value {
        let mut o = self.clone();
        o.set_type_meta();
        serde_json::to_value(&o).expect("objects serialize")
    }

    /// Parses a stored or transmitted object (trusted JSON written by skiff).
    ///
    /// The store and the caches parse every object they hold this way, so it skips the
    /// path tracking that manifests need: only text that fails to decode is read again,
    /// by the tracking decoder, to say where it is wrong.
    pub fn from_json(kind: Kind, text: &str) -> Result<Object, DecodeError> {
        Object::decode_plain(kind, text).or_else(|_| Object::decode_json(kind, text, &mut |_| {}))
    }

    /// Reads `kind` from a JSON object and decodes it.
    pub fn from_value(v: &Value) -> Result<Object, DecodeError> {
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|k| Kind::ALL.iter().copied().find(|x| x.name() == k))
            .ok_or_else(|| DecodeError {
                path: "kind".into(),
                message: "missing or unsupported kind".into(),
            })?;
        Object::decode(kind, v, &mut |_| {})
    }

    /// The name kubectl prints: `deployment.apps/web`.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.kind().qualified(), self.meta().name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names() {
        for (n, k) in [
            ("deploy", Kind::Deployment),
            ("Deployments", Kind::Deployment),
            ("deployment.apps", Kind::Deployment),
            ("po", Kind::Pod),
            ("svc", Kind::Service),
            ("cm", Kind::ConfigMap),
            ("ns", Kind::Namespace),
            ("no", Kind::Node),
            ("ev", Kind::Event),
            ("job", Kind::Job),
            ("jobs.batch", Kind::Job),
            ("sts", Kind::StatefulSet),
            ("ds", Kind::DaemonSet),
            ("rs", Kind::ReplicaSet),
            ("secret", Kind::Secret),
            ("ing", Kind::Ingress),
            ("ingress.networking.k8s.io", Kind::Ingress),
        ] {
            assert_eq!(Kind::from_name(n), Some(k), "{n}");
        }
        assert_eq!(Kind::from_name("deployment.batch"), None);
        assert_eq!(Kind::from_name("widgets"), None);
        assert_eq!(Kind::Deployment.qualified(), "deployment.apps");
        assert_eq!(Kind::Pod.qualified(), "pod");
    }

    #[test]
    fn trusted_json_decodes_as_the_tracking_decoder_does() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"250m"}}}],"nodeName":"n1"}}"#;
        let fast = Object::from_json(Kind::Pod, text).unwrap();
        let tracked = Object::decode_json(Kind::Pod, text, &mut |_| {}).unwrap();
        assert_eq!(
            serde_json::to_string(&fast).unwrap(),
            serde_json::to_string(&tracked).unwrap()
        );
        // Bad text still gets the path of what is wrong.
        let bad = text.replace(r#""image":"busybox""#, r#""image":7"#);
        let e = Object::from_json(Kind::Pod, &bad).unwrap_err();
        assert_eq!(e.path, "spec.containers[0].image", "{e:?}");
        // So does trailing garbage.
        assert!(Object::from_json(Kind::Pod, &format!("{text} x")).is_err());
    }
}
