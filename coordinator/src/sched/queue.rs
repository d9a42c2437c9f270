//! The scheduling queue: which pending pods a pass tries, in what order (priority, then
//! age), when a pod that fit nowhere is tried again, and what its status says then.
//! Pure: the caller passes the time.

use crate::HashMap;
use skiff_api::conditions::set_condition;
use skiff_api::pod::Pod;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long a pod that fit nowhere waits before it is tried again, unless the cluster
/// changes first (a node joins, a pod goes).
pub const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(60);

/// Pods that fit nowhere, and when they were last tried.
#[derive(Debug, Default)]
pub struct Queue {
    unschedulable: HashMap<String, Instant>,
}

impl Queue {
    /// The pods to try now, highest priority first, then oldest: every pending pod when
    /// the cluster changed (`retry_all`), else those not tried and found unschedulable in
    /// the last [`RETRY_UNSCHEDULABLE`]. Pods no longer pending are forgotten.
    pub fn take<'a>(
        &mut self,
        pending: Vec<&'a Pod>,
        retry_all: bool,
        now: Instant,
    ) -> Vec<&'a Pod> {
        let uids: HashSet<&str> = pending
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        self.unschedulable
            .retain(|uid, _| uids.contains(uid.as_str()));
        let mut out: Vec<&Pod> = pending
            .into_iter()
            .filter(|p| {
                retry_all
                    || p.metadata.uid.as_deref().is_none_or(|u| {
                        self.unschedulable
                            .get(u)
                            .is_none_or(|t| now.saturating_duration_since(*t) > RETRY_UNSCHEDULABLE)
                    })
            })
            .collect();
        out.sort_by_key(|p| {
            (
                std::cmp::Reverse(p.spec.priority.unwrap_or(0)),
                p.metadata.creation_timestamp.clone(),
                p.metadata.name.clone(),
            )
        });
        out
    }

    /// The pod was bound.
    pub fn bound(&mut self, uid: &str) {
        self.unschedulable.remove(uid);
    }

    /// The pod fit nowhere at `now`.
    pub fn unschedulable(&mut self, uid: String, now: Instant) {
        self.unschedulable.insert(uid, now);
    }
}

/// The pod with `PodScheduled=False` (reason `Unschedulable`, the scheduler's message),
/// or `None` when its status already says so.
pub fn unschedulable_status(p: &Pod, message: &str, now: u64) -> Option<Pod> {
    let cond = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "PodScheduled"));
    if cond.is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(message)) {
        return None;
    }
    Some(not_scheduled(p, "Unschedulable", message, now))
}

/// The pod, Pending with PodScheduled False for `reason`.
fn not_scheduled(p: &Pod, reason: &str, message: &str, now: u64) -> Pod {
    let mut next = p.clone();
    let st = next.status.get_or_insert_with(Default::default);
    st.phase.get_or_insert_with(|| "Pending".into());
    set_condition(
        &mut st.conditions,
        "PodScheduled",
        "False",
        reason,
        message,
        now,
    );
    next
}

/// Kubernetes' message for a pod held by its scheduling gates.
pub const GATED_MESSAGE: &str = "Scheduling is blocked due to non-empty scheduling gates";

/// A gated pod's status: PodScheduled False, reason SchedulingGated (none if it says so
/// already).
pub fn gated_status(p: &Pod, now: u64) -> Option<Pod> {
    let cond = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "PodScheduled"));
    if cond.is_some_and(|c| c.reason.as_deref() == Some("SchedulingGated")) {
        return None;
    }
    Some(not_scheduled(p, "SchedulingGated", GATED_MESSAGE, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str, priority: Option<i32>, created: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(uid.into());
        p.metadata.creation_timestamp = Some(created.into());
        p.spec.priority = priority;
        p
    }

    #[test]
    fn priority_then_age_and_unschedulable_pods_wait_unless_the_cluster_changed() {
        let a = pod("a", "1", None, "2026-01-01T00:00:02Z");
        let b = pod("b", "2", Some(10), "2026-01-01T00:00:03Z");
        let c = pod("c", "3", None, "2026-01-01T00:00:01Z");
        let mut q = Queue::default();
        let t0 = Instant::now();
        let names = |v: Vec<&Pod>| {
            v.iter()
                .map(|p| p.metadata.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(names(q.take(vec![&a, &b, &c], false, t0)), "b,c,a");
        q.unschedulable("1".into(), t0);
        let soon = t0 + Duration::from_secs(5);
        assert_eq!(names(q.take(vec![&a, &b, &c], false, soon)), "b,c");
        assert_eq!(names(q.take(vec![&a, &b, &c], true, soon)), "b,c,a");
        let later = t0 + RETRY_UNSCHEDULABLE + Duration::from_secs(1);
        assert_eq!(names(q.take(vec![&a, &b, &c], false, later)), "b,c,a");
        // A pod no longer pending is forgotten; bound pods leave the list.
        q.unschedulable("1".into(), later);
        q.take(vec![&b], false, later);
        assert_eq!(names(q.take(vec![&a], false, later)), "a");
        q.unschedulable("2".into(), later);
        q.bound("2");
        assert_eq!(names(q.take(vec![&b], false, later)), "b");
    }

    #[test]
    fn the_status_is_written_once_per_message() {
        let p = pod("a", "1", None, "2026-01-01T00:00:02Z");
        let next = unschedulable_status(&p, "0/1 nodes are available", 5).unwrap();
        let st = next.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Pending"));
        let c = &st.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            ("PodScheduled", "False")
        );
        assert_eq!(c.reason.as_deref(), Some("Unschedulable"));
        assert!(unschedulable_status(&next, "0/1 nodes are available", 6).is_none());
        assert!(unschedulable_status(&next, "0/2 nodes are available", 6).is_some());
    }
}
