//! Names with a meaning across the cluster: the taints the node lifecycle puts on nodes,
//! the finalizers of deletion propagation, the labels and annotations controllers put on
//! what they own. Kubernetes' names, so its tools read them.

/// A node whose lease expired.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// A node reporting not ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// A cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Deployments and ReplicaSets: the revision.
pub const REVISION: &str = crate::workloads::REVISION_ANNOTATION;
/// The hash of a Deployment's pod template, on its ReplicaSets and their pods.
pub const POD_TEMPLATE_HASH: &str = crate::workloads::POD_TEMPLATE_HASH_LABEL;
/// The revision of a DaemonSet's or StatefulSet's template, on their pods.
pub const REVISION_HASH: &str = "controller-revision-hash";
/// Finalizer of an owner deleted with foreground propagation.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer of an owner deleted with orphan propagation.
pub const ORPHAN: &str = "orphan";
