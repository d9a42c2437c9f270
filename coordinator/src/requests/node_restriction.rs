//! What a node may write of its own Node, as Kubernetes' NodeRestriction admission allows a
//! kubelet: its status, and the labels and annotations a kubelet may set; nothing of its
//! spec (podCIDR, taints, unschedulable are the cluster's), nothing of another Node.

use skiff_api::core::Node;
use std::collections::BTreeMap;

/// The rule every refusal names.
pub const RULE: &str =
    "NodeRestriction: a node writes only its own Node's status and the labels and annotations a kubelet may set";

/// Labels under `kubernetes.io` or `k8s.io` a kubelet may set on its Node.
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// The domain a label or annotation key is in (`""` for none).
fn domain(key: &str) -> &str {
    key.split_once('/').map_or("", |(d, _)| d)
}

fn in_domain(d: &str, suffix: &str) -> bool {
    d == suffix || d.ends_with(&format!(".{suffix}"))
}

/// Whether a kubelet may set label `key` on its own Node: the well-known ones, any under
/// `[*.]kubelet.kubernetes.io` or `[*.]node.kubernetes.io`, any outside `kubernetes.io` and
/// `k8s.io`; never one under `node-restriction.kubernetes.io` (which admins set to pin
/// workloads to trusted nodes).
pub fn node_may_set_label(key: &str) -> bool {
    let d = domain(key);
    if in_domain(d, "node-restriction.kubernetes.io") {
        return false;
    }
    if KUBELET_LABELS.contains(&key)
        || in_domain(d, "kubelet.kubernetes.io")
        || in_domain(d, "node.kubernetes.io")
    {
        return true;
    }
    !in_domain(d, "kubernetes.io") && !in_domain(d, "k8s.io")
}

/// Keys added, removed or changed between two maps.
fn changed<'a>(
    old: &'a BTreeMap<String, String>,
    new: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'a String> {
    new.iter()
        .filter(move |(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(move |k| !new.contains_key(*k)))
}

/// Why node `me` may not write `new` over `old` (none: it may). `status`: a write of the
/// status subresource.
pub fn node_write_problem(
    me: &str,
    old: Option<&Node>,
    new: &Node,
    status: bool,
) -> Option<String> {
    let name = new.metadata.name.as_deref().unwrap_or_default();
    if name != me {
        return Some(format!(
            "node {me:?} may not write Node {name:?} ({RULE}, nothing of another Node)"
        ));
    }
    if status {
        return None;
    }
    let empty = Node::default();
    let old = old.unwrap_or(&empty);
    let (os, ns) = (&old.spec, &new.spec);
    let field = if ns.pod_cidr != os.pod_cidr || ns.pod_cidrs != os.pod_cidrs {
        Some("spec.podCIDR")
    } else if ns.taints != os.taints {
        Some("spec.taints")
    } else if ns.unschedulable != os.unschedulable {
        Some("spec.unschedulable")
    } else if ns.provider_id != os.provider_id {
        Some("spec.providerID")
    } else {
        None
    };
    if let Some(f) = field {
        return Some(format!(
            "node {me:?} may not set {f} of its Node ({RULE}; the spec is the cluster's)"
        ));
    }
    let (ol, nl) = (&old.metadata.labels, &new.metadata.labels);
    if let Some(k) = changed(ol, nl).find(|k| !node_may_set_label(k)) {
        return Some(format!(
            "node {me:?} may not set label {k:?} on its Node ({RULE}: labels under kubernetes.io and k8s.io are limited to the well-known ones, kubelet.kubernetes.io/ and node.kubernetes.io/; node-restriction.kubernetes.io/ is the admins')"
        ));
    }
    let (oa, na) = (&old.metadata.annotations, &new.metadata.annotations);
    if let Some(k) =
        changed(oa, na).find(|k| in_domain(domain(k), "node-restriction.kubernetes.io"))
    {
        return Some(format!(
            "node {me:?} may not set annotation {k:?} on its Node ({RULE}; node-restriction.kubernetes.io/ is the admins')"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::Taint;

    fn node(name: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n
    }

    #[test]
    fn labels_a_kubelet_may_set() {
        for ok in [
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "kubelet.kubernetes.io/anything",
            "a.node.kubernetes.io/x",
            "example.com/rack",
            "rack",
        ] {
            assert!(node_may_set_label(ok), "{ok}");
        }
        for bad in [
            "node-role.kubernetes.io/control-plane",
            "node-restriction.kubernetes.io/trusted",
            "a.node-restriction.kubernetes.io/x",
            "x.k8s.io/y",
            "kubernetes.io/other",
        ] {
            assert!(!node_may_set_label(bad), "{bad}");
        }
    }

    #[test]
    fn a_node_writes_its_status_and_allowed_metadata_only() {
        let mut old = node("pi");
        old.spec.pod_cidr = Some("10.42.0.0/24".into());
        // Its status, and unchanged spec with allowed labels: fine.
        let mut new = old.clone();
        assert_eq!(node_write_problem("pi", Some(&old), &new, true), None);
        new.metadata
            .labels
            .insert("kubernetes.io/arch".into(), "arm64".into());
        new.metadata
            .annotations
            .insert("example.com/note".into(), "x".into());
        assert_eq!(node_write_problem("pi", Some(&old), &new, false), None);
        // Another node's, even its status: refused, naming the rule.
        let e = node_write_problem("other", Some(&old), &new, true).unwrap();
        assert!(
            e.contains("NodeRestriction") && e.contains("another Node"),
            "{e}"
        );
        // Spec fields.
        let mut cidr = old.clone();
        cidr.spec.pod_cidr = Some("10.42.9.0/24".into());
        let e = node_write_problem("pi", Some(&old), &cidr, false).unwrap();
        assert!(e.contains("spec.podCIDR"), "{e}");
        let mut tainted = old.clone();
        tainted.spec.taints.push(Taint {
            key: "k".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        assert!(node_write_problem("pi", Some(&old), &tainted, false)
            .unwrap()
            .contains("spec.taints"));
        let mut cordoned = old.clone();
        cordoned.spec.unschedulable = Some(true);
        assert!(node_write_problem("pi", Some(&old), &cordoned, false)
            .unwrap()
            .contains("spec.unschedulable"));
        // Labels it may not set, or remove.
        let mut role = old.clone();
        role.metadata
            .labels
            .insert("node-role.kubernetes.io/master".into(), "".into());
        assert!(node_write_problem("pi", Some(&old), &role, false)
            .unwrap()
            .contains("node-role.kubernetes.io/master"));
        let (mut pinned, unpinned) = (old.clone(), old.clone());
        pinned
            .metadata
            .labels
            .insert("node-restriction.kubernetes.io/secure".into(), "1".into());
        assert!(node_write_problem("pi", Some(&pinned), &unpinned, false).is_some());
        // On create, the spec must be empty: the cluster assigns the podCIDR.
        assert!(node_write_problem("pi", None, &cidr, false).is_some());
        assert_eq!(node_write_problem("pi", None, &node("pi"), false), None);
    }
}
