//! The DaemonSet controller: one pod on every node the template admits (nodeSelector,
//! node affinity, taints against tolerations), following nodes as they come and go, and
//! a rolling update of at most `maxUnavailable` nodes at a time (or OnDelete).
//!
//! As Kubernetes does since 1.12, each pod names its node through required node affinity
//! on `metadata.name`, so the scheduler binds it (and checks its resources).

use super::{
    delete_pod, deleting, is_active, is_available, is_ready, pod_from_template, template_hash,
    Action, PodsByOwner, REVISION_HASH, TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE,
};
use crate::sched::{node_admits, untolerated, NodeInfo, PodInfo};
use skiff_api::pod::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    Toleration,
};
use skiff_api::workloads::{DaemonSet, DaemonSetStatus};
use skiff_api::{Kind, Object};
use std::collections::BTreeMap;

/// The tolerations every daemon pod gets (Kubernetes adds the same).
pub fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    vec![
        t(TAINT_NOT_READY, "NoExecute"),
        t(TAINT_UNREACHABLE, "NoExecute"),
        t(TAINT_UNSCHEDULABLE, "NoSchedule"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ]
}

/// The node a daemon pod is for: its nodeName, or the node its affinity names.
pub fn target_node(p: &Pod) -> Option<String> {
    if let Some(n) = &p.spec.node_name {
        return Some(n.clone());
    }
    let terms = &p
        .spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields
            .iter()
            .find(|f| f.key == "metadata.name" && f.operator == "In")
            .and_then(|f| f.values.first().cloned())
    })
}

/// The pod for `node`: the template, pinned to the node, with the daemon tolerations.
fn daemon_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let mut pod = pod_from_template(
        &ds.spec.template,
        Kind::DaemonSet,
        &ds.metadata,
        None,
        Some(format!("{}-", ds.metadata.name())),
        &[(REVISION_HASH, hash)],
    );
    let pin = NodeSelectorTerm {
        match_fields: vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: vec![node.to_string()],
        }],
        ..Default::default()
    };
    let aff = pod.spec.affinity.get_or_insert_with(Affinity::default);
    let na = aff.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![pin],
    });
    for t in daemon_tolerations() {
        if !pod.spec.tolerations.contains(&t) {
            pod.spec.tolerations.push(t);
        }
    }
    pod
}

/// The template as the scheduler would see its pods (with the daemon tolerations).
fn template_info(ds: &DaemonSet) -> PodInfo {
    let probe = Pod {
        metadata: ds.spec.template.metadata.clone(),
        spec: ds.spec.template.spec.clone(),
        ..Default::default()
    };
    let mut info = PodInfo::from_pod(&probe);
    info.tolerations.extend(daemon_tolerations());
    info
}

/// Does the template run on this node (selector, affinity, NoSchedule/NoExecute taints)?
pub fn should_run(info: &PodInfo, node: &NodeInfo) -> bool {
    node_admits(info, node) && untolerated(&info.tolerations, &node.taints).is_none()
}

/// What one DaemonSet needs.
pub fn reconcile(
    ds: &DaemonSet,
    nodes: &[NodeInfo],
    pods: &PodsByOwner<'_>,
    now: u64,
) -> Vec<Action> {
    let mut out = Vec::new();
    let hash = template_hash(&ds.spec.template);
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0) as i64;
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods.of(ds.metadata.uid.as_deref()) {
        if !is_active(p) {
            continue;
        }
        by_node
            .entry(target_node(p).unwrap_or_default())
            .or_default()
            .push(p);
    }
    let info = template_info(ds);
    let eligible: BTreeMap<&str, &NodeInfo> = nodes
        .iter()
        .filter(|n| should_run(&info, n))
        .map(|n| (n.name.as_str(), n))
        .collect();
    let updated = |p: &Pod| p.metadata.labels.get(REVISION_HASH) == Some(&hash);
    let mut status = DaemonSetStatus {
        desired_number_scheduled: Some(eligible.len() as i32),
        observed_generation: ds.metadata.generation,
        ..Default::default()
    };
    let (mut scheduled, mut mis, mut ready, mut available, mut up) = (0, 0, 0, 0, 0);
    let mut unavailable_nodes = 0;
    let mut old_pods: Vec<&Pod> = Vec::new();
    for (node, ps) in &by_node {
        if !eligible.contains_key(node.as_str()) {
            mis += 1;
            if !deleting(&ds.metadata) {
                out.extend(ps.iter().map(|p| delete_pod(p)));
            }
            continue;
        }
        scheduled += 1;
        let mut ps = ps.clone();
        // Keep the oldest; extras go.
        ps.sort_by_key(|p| p.metadata.creation_timestamp.clone());
        for extra in &ps[1..] {
            out.push(delete_pod(extra));
        }
        let p = ps[0];
        if p.spec.node_name.is_some() && is_ready(p) {
            ready += 1;
        }
        if p.spec.node_name.is_some() && is_available(p, min_ready, now) {
            available += 1;
        } else {
            unavailable_nodes += 1;
        }
        if updated(p) {
            up += 1;
        } else {
            old_pods.push(p);
        }
    }
    if !deleting(&ds.metadata) {
        for node in eligible.keys() {
            if !by_node.contains_key(*node) {
                unavailable_nodes += 1;
                out.push(Action::Create(Object::Pod(daemon_pod(ds, node, &hash))));
            }
        }
        let strategy = ds.spec.update_strategy.as_ref();
        if strategy.and_then(|s| s.type_.as_deref()) != Some("OnDelete") {
            let max_unavailable = strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref())
                .map_or(Ok(1), |v| v.scaled_value(eligible.len() as i32, true))
                .unwrap_or(1)
                .max(1);
            // Old pods that are not available anyway go first, then as many as the budget allows.
            old_pods.sort_by_key(|p| is_available(p, min_ready, now));
            let mut budget = max_unavailable - unavailable_nodes;
            for p in old_pods {
                if !is_available(p, min_ready, now) {
                    out.push(delete_pod(p));
                } else if budget > 0 {
                    out.push(delete_pod(p));
                    budget -= 1;
                }
            }
        }
    }
    status.current_number_scheduled = Some(scheduled);
    status.number_misscheduled = Some(mis);
    status.number_ready = Some(ready);
    status.number_available = Some(available);
    status.updated_number_scheduled = Some(up);
    if ds.status.as_ref() != Some(&status) {
        let mut next = ds.clone();
        next.status = Some(status);
        out.push(Action::Status(Object::DaemonSet(next)));
    }
    out
}
