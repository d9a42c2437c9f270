//! Node lifecycle: a node whose lease went unrenewed for the grace period becomes
//! Ready=Unknown and gets the `unreachable` NoSchedule and NoExecute taints; when its lease
//! is renewed again it is Ready and the taints go. Pods on a node with a NoExecute taint
//! they do not tolerate are evicted at once; those tolerating it for `tolerationSeconds`
//! after that long (a pod without its own toleration of `not-ready`/`unreachable` gets the
//! coordinator's `--pod-eviction-timeout`, as Kubernetes' DefaultTolerationSeconds adds).

use super::{delete_pod, set_condition, Action, TAINT_NOT_READY, TAINT_UNREACHABLE};
use crate::HashMap;
use skiff_api::conditions::{node_ready_status as ready_status, tolerates};
use skiff_api::core::{Node, Taint};
use skiff_api::pod::Pod;
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::Object;
use std::time::Duration;

/// How the lifecycle is configured.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// A lease older than this makes the node Unknown.
    pub grace: Duration,
    /// How long pods tolerate not-ready/unreachable by default (seconds).
    pub eviction_timeout: i64,
}

/// Node conditions and taints from lease ages (`None`: never renewed).
pub fn reconcile_node(
    n: &Node,
    lease_age: Option<Duration>,
    cfg: &Lifecycle,
    now: u64,
) -> Vec<Action> {
    let stale = lease_age.is_none_or(|a| a > cfg.grace);
    let ready = ready_status(n);
    let mut out = Vec::new();
    let has_taint = |effect: &str| {
        n.spec
            .taints
            .iter()
            .any(|t| t.key == TAINT_UNREACHABLE && t.effect == effect)
    };
    let set_ready = |status: &str, reason: &str, message: &str| {
        let mut next = n.clone();
        let st = next.status.get_or_insert_with(Default::default);
        set_condition(&mut st.conditions, "Ready", status, reason, message, now);
        Action::Status(Object::Node(next))
    };
    if stale {
        if ready != Some("Unknown") {
            out.push(set_ready(
                "Unknown",
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            ));
        }
        if !has_taint("NoSchedule") || !has_taint("NoExecute") {
            let mut next = n.clone();
            for effect in ["NoSchedule", "NoExecute"] {
                if !has_taint(effect) {
                    next.spec.taints.push(Taint {
                        key: TAINT_UNREACHABLE.into(),
                        value: None,
                        effect: effect.into(),
                        time_added: Some(rfc3339(now)),
                    });
                }
            }
            out.push(Action::Update(Object::Node(next)));
        }
    } else {
        if ready == Some("Unknown") {
            out.push(set_ready(
                "True",
                "KubeletReady",
                "skiff-agent renewed its lease",
            ));
        }
        if has_taint("NoSchedule") || has_taint("NoExecute") {
            let mut next = n.clone();
            next.spec.taints.retain(|t| t.key != TAINT_UNREACHABLE);
            out.push(Action::Update(Object::Node(next)));
        }
    }
    out
}

/// When (seconds) a pod must leave a node with these NoExecute taints: `Some(now-ish)` for
/// at once, `Some(t)` later, `None` never.
pub fn eviction_time(p: &Pod, taints: &[Taint], cfg: &Lifecycle) -> Option<u64> {
    let mut when: Option<u64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = taint
            .time_added
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(0);
        let matching: Vec<_> = p
            .spec
            .tolerations
            .iter()
            .filter(|t| tolerates(t, taint))
            .collect();
        let secs = if matching.is_empty() {
            if taint.key == TAINT_UNREACHABLE || taint.key == TAINT_NOT_READY {
                Some(cfg.eviction_timeout.max(0))
            } else {
                Some(0)
            }
        } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            None
        } else {
            matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .map(|s| s.max(0))
        };
        if let Some(s) = secs {
            let t = added + s as u64;
            when = Some(when.map_or(t, |w| w.min(t)));
        }
    }
    when
}

/// Evictions of pods from nodes with NoExecute taints.
pub fn evictions<'a>(
    nodes: impl Iterator<Item = &'a Node>,
    pods: impl Iterator<Item = &'a Pod>,
    cfg: &Lifecycle,
    now: u64,
) -> Vec<Action> {
    let tainted: HashMap<&str, &[Taint]> = nodes
        .filter(|n| n.spec.taints.iter().any(|t| t.effect == "NoExecute"))
        .map(|n| (n.metadata.name(), n.spec.taints.as_slice()))
        .collect();
    if tainted.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(taints) = p.spec.node_name.as_deref().and_then(|n| tainted.get(n)) else {
            continue;
        };
        if eviction_time(p, taints, cfg).is_some_and(|t| t <= now) {
            out.push(delete_pod(p));
            out.push(super::event(
                skiff_api::Kind::Pod,
                &p.metadata,
                false,
                "TaintManagerEviction",
                format!(
                    "Marking for deletion Pod {}/{}",
                    p.metadata.namespace(),
                    p.metadata.name()
                ),
            ));
        }
    }
    out
}

/// Pods still reported Ready on a node whose Ready condition is Unknown are Ready=False:
/// nobody can vouch for them (Kubernetes' MarkPodsNotReady). Their owners stop counting
/// them as available; they are not deleted before their toleration runs out.
pub fn mark_lost_pods_not_ready<'a>(
    nodes: impl Iterator<Item = &'a Node>,
    pods: impl Iterator<Item = &'a Pod>,
    now: u64,
) -> Vec<Action> {
    let lost: std::collections::HashSet<&str> = nodes
        .filter(|n| ready_status(n) == Some("Unknown"))
        .map(|n| n.metadata.name())
        .collect();
    if lost.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in pods {
        if !p
            .spec
            .node_name
            .as_deref()
            .is_some_and(|n| lost.contains(n))
        {
            continue;
        }
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if ready {
            let mut next = p.clone();
            let st = next.status.get_or_insert_with(Default::default);
            set_condition(
                &mut st.conditions,
                "Ready",
                "False",
                "NodeLost",
                "the node stopped renewing its lease",
                now,
            );
            for c in &mut st.container_statuses {
                c.ready = Some(false);
            }
            out.push(Action::Status(Object::Pod(next)));
        }
    }
    out
}
