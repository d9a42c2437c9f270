//! The disruption controller (Kubernetes' `disruption` controller): each
//! PodDisruptionBudget's status from the pods its selector matches — how many are
//! expected (the pods' controllers' replicas for a percentage or `maxUnavailable`, the
//! pods themselves for a number `minAvailable`), how many are healthy (Ready), how many
//! must stay so, and how many evictions are allowed now, less the ones already granted
//! (`disruptedPods`, kept until the pod is gone or two minutes passed). Evictions
//! (`requests/eviction.rs`) read and spend that figure. Pure.

use super::Action;
use crate::HashMap;
use skiff_api::conditions::{is_ready, phase, set_condition};
use skiff_api::meta::ObjectMeta;
use skiff_api::pod::Pod;
use skiff_api::policy::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::workloads::{ReplicaSet, StatefulSet};
use skiff_api::Object;

/// How long a granted eviction counts against the budget while its pod is not yet gone
/// (Kubernetes' `DeletionTimeout`).
pub const DISRUPTED_TIMEOUT: u64 = 120;

/// The replicas of each controller a pod may have, by the controller's uid: ReplicaSets
/// (a Deployment's pods are its ReplicaSet's) and StatefulSets.
pub fn scales<'a>(
    rss: impl Iterator<Item = &'a ReplicaSet>,
    sts: impl Iterator<Item = &'a StatefulSet>,
) -> HashMap<String, i32> {
    let mut m = HashMap::default();
    for r in rss {
        if let Some(u) = &r.metadata.uid {
            m.insert(u.clone(), r.spec.replicas.unwrap_or(1));
        }
    }
    for s in sts {
        if let Some(u) = &s.metadata.uid {
            m.insert(u.clone(), s.spec.replicas.unwrap_or(1));
        }
    }
    m
}

/// Is the pod counted by a budget: selected, in its namespace, not finished.
pub fn covers(pdb: &PodDisruptionBudget, p: &Pod) -> bool {
    p.metadata.namespace() == pdb.metadata.namespace()
        && !matches!(phase(p), "Succeeded" | "Failed")
        && pdb
            .spec
            .selector
            .as_ref()
            .is_some_and(|s| !s.is_empty() && s.matches(&p.metadata.labels))
}

fn healthy(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && is_ready(p)
}

/// The budget's status now, from its pods and their controllers' scales.
pub fn status(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scales: &HashMap<String, i32>,
    now: u64,
) -> PodDisruptionBudgetStatus {
    let s = &pdb.spec;
    let mut st = pdb.status.clone().unwrap_or_default();
    st.observed_generation = pdb.metadata.generation;
    // Granted evictions count until their pod is gone (or being deleted) or they expire.
    let alive: Vec<&str> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.metadata.name())
        .collect();
    st.disrupted_pods.retain(|name, at| {
        alive.contains(&name.as_str())
            && parse_rfc3339(at).is_some_and(|t| t + DISRUPTED_TIMEOUT > now)
    });
    let by_count = s.max_unavailable.is_none()
        && s.min_available
            .as_ref()
            .is_none_or(|m| m.percent().is_none());
    let expected = if by_count {
        pods.len() as i32
    } else {
        expected_from_controllers(pods, scales)
    };
    let current = pods.iter().filter(|p| healthy(p)).count() as i32;
    let desired = match (&s.min_available, &s.max_unavailable) {
        (Some(m), _) => m.scaled_value(expected, true).unwrap_or(expected),
        (None, Some(m)) => expected - m.scaled_value(expected, true).unwrap_or(0),
        (None, None) => expected,
    }
    .max(0);
    let allowed = (current - desired - st.disrupted_pods.len() as i32).max(0);
    st.expected_pods = Some(expected);
    st.current_healthy = Some(current);
    st.desired_healthy = Some(desired);
    st.disruptions_allowed = Some(allowed);
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    set_condition(
        &mut st.conditions,
        "DisruptionAllowed",
        status,
        reason,
        "",
        now,
    );
    st
}

/// The replicas the pods' controllers ask for, each controller once; a pod without a
/// controller Kubernetes can scale counts as one.
fn expected_from_controllers(pods: &[&Pod], scales: &HashMap<String, i32>) -> i32 {
    let mut seen: Vec<&str> = Vec::new();
    let mut total = 0;
    for p in pods {
        match controller_uid(&p.metadata).and_then(|u| scales.get(u).map(|n| (u, n))) {
            Some((u, n)) => {
                if !seen.contains(&u) {
                    seen.push(u);
                    total += n;
                }
            }
            None => total += 1,
        }
    }
    total
}

fn controller_uid(m: &ObjectMeta) -> Option<&str> {
    m.controller().map(|r| r.uid.as_str())
}

/// Every budget's status write, where it changed.
pub fn reconcile(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scales: &HashMap<String, i32>,
    now: u64,
) -> Option<Action> {
    let st = status(pdb, pods, scales, now);
    // A condition's update time alone is no change.
    let same = pdb.status.as_ref().is_some_and(|old| {
        let strip = |s: &PodDisruptionBudgetStatus| {
            let mut s = s.clone();
            for c in &mut s.conditions {
                c.last_update_time = None;
            }
            s
        };
        strip(old) == strip(&st)
    });
    if same {
        return None;
    }
    let mut next = pdb.clone();
    next.status = Some(st);
    Some(Action::Status(Object::PodDisruptionBudget(next)))
}

/// Why an eviction of `pod` under `pdb` is refused now (Kubernetes' texts), or None
/// (allowed: the caller records it in `disruptedPods` with the budget's revision as
/// precondition, then deletes the pod). `st` is the budget's status computed now.
pub fn eviction_refusal(
    pdb: &PodDisruptionBudget,
    st: &PodDisruptionBudgetStatus,
    pod: &Pod,
) -> Option<String> {
    let name = pdb.metadata.name();
    let desired = st.desired_healthy.unwrap_or(0);
    let current = st.current_healthy.unwrap_or(0);
    // An unhealthy pod does not lower the healthy count: evicting it is allowed while the
    // budget holds (IfHealthyBudget, the default) or always (AlwaysAllow).
    if !healthy(pod) {
        let always = pdb.spec.unhealthy_pod_eviction_policy.as_deref() == Some("AlwaysAllow");
        if always || current >= desired {
            return None;
        }
    }
    if st.disruptions_allowed.unwrap_or(0) > 0 {
        return None;
    }
    Some(format!(
        "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {name} needs {desired} healthy pods and has {current} currently"
    ))
}

/// The budget with an eviction of `pod` granted at `now`.
pub fn grant(
    pdb: &PodDisruptionBudget,
    mut st: PodDisruptionBudgetStatus,
    pod: &str,
    now: u64,
) -> PodDisruptionBudget {
    st.disrupted_pods.insert(pod.to_string(), rfc3339(now));
    st.disruptions_allowed = Some((st.disruptions_allowed.unwrap_or(0) - 1).max(0));
    let mut next = pdb.clone();
    next.status = Some(st);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::manifest::parse_manifests;

    const NOW: u64 = 1_800_000_000;

    fn pdb(spec: &str) -> PodDisruptionBudget {
        let text = format!("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: b, namespace: default}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  {spec}\n");
        match parse_manifests(&text).unwrap().remove(0).object {
            Object::PodDisruptionBudget(p) => p,
            o => panic!("{o:?}"),
        }
    }

    fn pod(name: &str, ready: bool) -> Pod {
        let text = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{app: web}}\n  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: rs1, controller: true}}]\nspec:\n  containers: [{{name: c, image: x}}]\nstatus:\n  phase: Running\n  conditions: [{{type: Ready, status: '{}'}}]\n", if ready { "True" } else { "False" });
        match parse_manifests(&text).unwrap().remove(0).object {
            Object::Pod(p) => p,
            o => panic!("{o:?}"),
        }
    }

    fn scales(n: i32) -> HashMap<String, i32> {
        let mut m = HashMap::default();
        m.insert("rs1".to_string(), n);
        m
    }

    #[test]
    fn counts_percentages_and_max_unavailable_against_the_controllers() {
        let pods = [
            pod("a", true),
            pod("b", true),
            pod("c", true),
            pod("d", false),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        // minAvailable 2 (a number): expected = the pods; 3 healthy → 1 allowed.
        let st = status(&pdb("minAvailable: 2"), &refs, &scales(5), NOW);
        assert_eq!(
            (
                st.expected_pods,
                st.current_healthy,
                st.desired_healthy,
                st.disruptions_allowed
            ),
            (Some(4), Some(3), Some(2), Some(1))
        );
        // maxUnavailable 40 % of the ReplicaSet's 5 (rounded up: 2) → 3 desired → 0 allowed.
        let st = status(&pdb("maxUnavailable: 40%"), &refs, &scales(5), NOW);
        assert_eq!(
            (st.expected_pods, st.desired_healthy, st.disruptions_allowed),
            (Some(5), Some(3), Some(0))
        );
        assert_eq!(st.conditions[0].reason.as_deref(), Some("InsufficientPods"));
        // minAvailable 50 % of 5 (rounded up: 3).
        let st = status(&pdb("minAvailable: 50%"), &refs, &scales(5), NOW);
        assert_eq!(st.desired_healthy, Some(3));
    }

    #[test]
    fn a_granted_eviction_counts_until_its_pod_goes() {
        let b = pdb("maxUnavailable: 1");
        let pods = [pod("a", true), pod("b", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let st = status(&b, &refs, &scales(2), NOW);
        assert_eq!(st.disruptions_allowed, Some(1));
        assert_eq!(eviction_refusal(&b, &st, &pods[0]), None);
        let granted = grant(&b, st, "a", NOW);
        // Before the pod is gone, the grant holds the budget at 0: b is refused.
        let st = status(&granted, &refs, &scales(2), NOW + 1);
        assert_eq!(st.disruptions_allowed, Some(0));
        let why = eviction_refusal(&granted, &st, &pods[1]).unwrap();
        assert!(
            why.contains("The disruption budget b needs 1 healthy pods and has 2 currently"),
            "{why}"
        );
        // An unready pod may go while the budget holds.
        assert_eq!(eviction_refusal(&granted, &st, &pod("x", false)), None);
        // Once a is gone the grant is dropped; after two minutes too.
        let only_b: Vec<&Pod> = vec![&pods[1]];
        let st = status(&granted, &only_b, &scales(2), NOW + 2);
        assert!(st.disrupted_pods.is_empty());
        let st = status(&granted, &refs, &scales(2), NOW + DISRUPTED_TIMEOUT + 1);
        assert!(st.disrupted_pods.is_empty());
        assert_eq!(st.disruptions_allowed, Some(1));
    }

    #[test]
    fn status_is_written_only_when_it_changes() {
        let b = pdb("minAvailable: 1");
        let pods = [pod("a", true), pod("b", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let Some(Action::Status(Object::PodDisruptionBudget(next))) =
            reconcile(&b, &refs, &scales(2), NOW)
        else {
            panic!()
        };
        assert_eq!(reconcile(&next, &refs, &scales(2), NOW + 10), None);
        assert!(covers(&b, &pods[0]));
        let mut elsewhere = pod("c", true);
        elsewhere.metadata.namespace = Some("other".into());
        assert!(!covers(&b, &elsewhere));
        let mut done = pod("d", false);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!covers(&b, &done));
    }
}
