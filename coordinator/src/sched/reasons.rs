//! Why a node refuses a pod, in the texts of Kubernetes' filter plugins, and the message
//! that counts them.

use std::collections::BTreeMap;

/// Why a node was refused: the texts of Kubernetes' filter plugins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// NodeUnschedulable.
    Unschedulable,
    /// NodeName.
    NodeName,
    /// TaintToleration (the taint's key and value).
    Taint(String, String),
    /// NodeAffinity.
    NodeAffinity,
    /// NodePorts.
    NodePorts,
    /// NodeResourcesFit.
    InsufficientCpu,
    /// NodeResourcesFit.
    InsufficientMemory,
    /// NodeResourcesFit.
    InsufficientEphemeralStorage,
    /// NodeResourcesFit: an extended resource, by name.
    InsufficientExtended(String),
    /// NodeResourcesFit.
    TooManyPods,
    /// InterPodAffinity: a required affinity term has no match in the node's domain.
    PodAffinity,
    /// InterPodAffinity: a required anti-affinity term matches in the node's domain.
    PodAntiAffinity,
    /// InterPodAffinity: an existing pod's anti-affinity refuses this pod there.
    ExistingAntiAffinity,
    /// VolumeBinding: a bound volume's node affinity.
    VolumeNodeAffinity,
    /// VolumeBinding: no volume to bind there, and no provisioner.
    NoVolumeToBind,
    /// VolumeRestrictions: a ReadWriteOnce claim is used by a pod on another node.
    VolumeInUseElsewhere,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reason::NodeName => f.write_str("node(s) didn't match the requested node name"),
            Reason::Taint(k, v) => write!(f, "node(s) had untolerated taint {{{k}: {v}}}"),
            Reason::NodeAffinity => {
                f.write_str("node(s) didn't match Pod's node affinity/selector")
            }
            Reason::NodePorts => {
                f.write_str("node(s) didn't have free ports for the requested pod ports")
            }
            Reason::InsufficientCpu => f.write_str("Insufficient cpu"),
            Reason::InsufficientMemory => f.write_str("Insufficient memory"),
            Reason::InsufficientEphemeralStorage => f.write_str("Insufficient ephemeral-storage"),
            Reason::InsufficientExtended(name) => write!(f, "Insufficient {name}"),
            Reason::TooManyPods => f.write_str("Too many pods"),
            Reason::PodAffinity => f.write_str("node(s) didn't match pod affinity rules"),
            Reason::PodAntiAffinity => f.write_str("node(s) didn't match pod anti-affinity rules"),
            Reason::ExistingAntiAffinity => {
                f.write_str("node(s) didn't satisfy existing pods anti-affinity rules")
            }
            Reason::VolumeNodeAffinity => f.write_str("node(s) had volume node affinity conflict"),
            Reason::NoVolumeToBind => {
                f.write_str("node(s) didn't find available persistent volumes to bind")
            }
            Reason::VolumeInUseElsewhere => f.write_str(
                "node(s) unavailable: a ReadWriteOnce PersistentVolumeClaim of the pod is in use on another node",
            ),
        }
    }
}

/// Kubernetes' unschedulable message: `0/3 nodes are available: 2 Insufficient memory,
/// 1 node(s) didn't match Pod's node affinity/selector.` (reasons sorted by their text).
pub fn unschedulable_message(nodes: usize, reasons: &BTreeMap<Reason, usize>) -> String {
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    if parts.is_empty() {
        return format!("0/{nodes} nodes are available.");
    }
    format!("0/{nodes} nodes are available: {}.", parts.join(", "))
}
