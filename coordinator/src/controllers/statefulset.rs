//! The StatefulSet controller: pods `<name>-0..N-1` with stable names and hostnames,
//! created in order and each only once the ones before are Running and Ready
//! (OrderedReady) or all at once (Parallel), removed from the highest ordinal down, and
//! rolled from the highest ordinal down to the partition.

use super::{
    delete_pod, deleting, is_active, is_available, is_ready, phase, pod_from_template,
    template_hash, Action, PodsByOwner, REVISION_HASH,
};
use skiff_api::pod::Pod;
use skiff_api::workloads::{StatefulSet, StatefulSetStatus};
use skiff_api::{Kind, Object};
use std::collections::BTreeMap;

/// The ordinal of a pod of this set (`web-3` → 3).
pub fn ordinal(set: &str, pod: &str) -> Option<usize> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.len() > 1 && rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

fn new_pod(s: &StatefulSet, i: usize, rev: &str) -> Pod {
    let name = format!("{}-{i}", s.metadata.name());
    let idx = i.to_string();
    let mut pod = pod_from_template(
        &s.spec.template,
        Kind::StatefulSet,
        &s.metadata,
        Some(name.clone()),
        None,
        &[
            (REVISION_HASH, rev),
            ("statefulset.kubernetes.io/pod-name", &name),
            ("apps.kubernetes.io/pod-index", &idx),
        ],
    );
    pod.spec.hostname = Some(name);
    if let Some(svc) = &s.spec.service_name {
        pod.spec.subdomain = Some(svc.clone());
    }
    pod
}

/// What one StatefulSet needs.
pub fn reconcile(s: &StatefulSet, pods: &PodsByOwner<'_>, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let name = s.metadata.name();
    let replicas = s.spec.replicas.unwrap_or(1).max(0) as usize;
    let parallel = s.spec.pod_management_policy.as_deref() == Some("Parallel");
    let min_ready = s.spec.min_ready_seconds.unwrap_or(0) as i64;
    let rev = template_hash(&s.spec.template);
    let mut by_ord: BTreeMap<usize, &Pod> = BTreeMap::new();
    for p in pods.of(s.metadata.uid.as_deref()) {
        if let Some(i) = ordinal(name, p.metadata.name()) {
            by_ord.insert(i, p);
        }
    }
    let terminating = by_ord
        .values()
        .any(|p| p.metadata.deletion_timestamp.is_some());
    if !deleting(&s.metadata) {
        // Replace finished pods (same name: the identity is stable).
        for p in by_ord.values() {
            if p.metadata.deletion_timestamp.is_none() && matches!(phase(p), "Failed" | "Succeeded")
            {
                out.push(delete_pod(p));
            }
        }
        // Create the missing ones, in order.
        for i in 0..replicas {
            match by_ord.get(&i) {
                None => {
                    out.push(Action::Create(Object::Pod(new_pod(s, i, &rev))));
                    if !parallel {
                        break;
                    }
                }
                Some(p) => {
                    if !(parallel || is_ready(p) && is_active(p)) {
                        break;
                    }
                }
            }
        }
        // Scale down from the highest ordinal.
        let extra: Vec<&&Pod> = by_ord.range(replicas..).map(|(_, p)| p).rev().collect();
        if !extra.is_empty() {
            if parallel {
                for p in &extra {
                    if p.metadata.deletion_timestamp.is_none() {
                        out.push(delete_pod(p));
                    }
                }
            } else {
                let below_ready = by_ord
                    .range(..replicas)
                    .all(|(_, p)| is_ready(p) && is_active(p));
                if !terminating && below_ready {
                    out.push(delete_pod(extra[0]));
                }
            }
        }
        // Rolling update: the highest ordinal not at the new revision, down to the partition.
        let ru = s.spec.update_strategy.as_ref();
        let rolling = ru.and_then(|u| u.type_.as_deref()) != Some("OnDelete");
        let partition = ru
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0)
            .max(0) as usize;
        let all_there =
            (0..replicas).all(|i| by_ord.get(&i).is_some_and(|p| is_ready(p) && is_active(p)));
        if rolling && !terminating && (all_there || parallel) && extra.is_empty() {
            if let Some((_, p)) = by_ord
                .range(partition..replicas)
                .rev()
                .find(|(_, p)| p.metadata.labels.get(REVISION_HASH) != Some(&rev))
            {
                out.push(delete_pod(p));
            }
        }
    }
    let active: Vec<&&Pod> = by_ord.values().filter(|p| is_active(p)).collect();
    let updated = active
        .iter()
        .filter(|p| p.metadata.labels.get(REVISION_HASH) == Some(&rev))
        .count() as i32;
    let current_revision = if updated as usize == replicas && active.len() == replicas {
        rev.clone()
    } else {
        s.status
            .as_ref()
            .and_then(|st| st.current_revision.clone())
            .unwrap_or_else(|| rev.clone())
    };
    let current = active
        .iter()
        .filter(|p| p.metadata.labels.get(REVISION_HASH) == Some(&current_revision))
        .count() as i32;
    let status = StatefulSetStatus {
        observed_generation: s.metadata.generation,
        replicas: Some(active.len() as i32),
        ready_replicas: Some(active.iter().filter(|p| is_ready(p)).count() as i32),
        current_replicas: Some(current),
        updated_replicas: Some(updated),
        available_replicas: Some(
            active
                .iter()
                .filter(|p| is_available(p, min_ready, now))
                .count() as i32,
        ),
        current_revision: Some(current_revision),
        update_revision: Some(rev),
    };
    if s.status.as_ref() != Some(&status) {
        let mut next = s.clone();
        next.status = Some(status);
        out.push(Action::Status(Object::StatefulSet(next)));
    }
    out
}
