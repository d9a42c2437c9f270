//! What every part reads off an object's status the same way: a pod's phase, readiness
//! and availability, a node's Ready condition, whether a toleration tolerates a taint, and
//! how a condition is set (Kubernetes' `podutil` and `v1helper`).

use crate::core::{Node, Taint};
use crate::meta::Condition;
use crate::pod::{Pod, Toleration};
use crate::util::{parse_rfc3339, rfc3339};

/// Is the pod still doing (or about to do) work: not deleted, not finished?
pub fn is_active(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && !is_finished(p)
}

/// Did the pod end (Succeeded or Failed)?
pub fn is_finished(p: &Pod) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

/// Is the pod waiting for the scheduler: active and bound to no node?
pub fn is_pending_schedule(p: &Pod) -> bool {
    p.spec.node_name.is_none() && is_active(p)
}

/// The pod's phase ("Pending" when none was reported).
pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The pod's Ready condition, if it reported one.
pub fn ready_condition(p: &Pod) -> Option<&Condition> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Is the pod Running and Ready?
pub fn is_ready(p: &Pod) -> bool {
    phase(p) == "Running" && ready_condition(p).is_some_and(|c| c.status == "True")
}

/// Ready for at least `min_ready` seconds.
pub fn is_available(p: &Pod, min_ready: i64, now: u64) -> bool {
    if !is_ready(p) || p.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if min_ready <= 0 {
        return true;
    }
    ready_condition(p)
        .and_then(|c| c.last_transition_time.as_deref())
        .and_then(parse_rfc3339)
        .is_some_and(|t| t + min_ready as u64 <= now)
}

/// The status of a node's Ready condition (`True`, `False`, `Unknown`), if it has one.
pub fn node_ready_status(n: &Node) -> Option<&str> {
    n.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// Does a toleration tolerate a taint? (Kubernetes' `ToleratesTaint`.)
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => {
            // An empty key with Equal tolerates nothing (validation refuses it anyway).
            !key.is_empty()
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

/// Sets a condition, keeping its transition time when its status did not change.
/// Returns whether anything changed.
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: u64,
) -> bool {
    let t = rfc3339(now);
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status && c.reason.as_deref() == Some(reason) => {
            if c.message.as_deref() != Some(message) {
                c.message = Some(message.into());
                c.last_update_time = Some(t);
                return true;
            }
            false
        }
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(t.clone());
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_update_time = Some(t);
            true
        }
        None => {
            conds.push(Condition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_update_time: Some(t.clone()),
                last_transition_time: Some(t),
                ..Default::default()
            });
            true
        }
    }
}
