//! The ReplicaSet controller: keeps `replicas` active pods from the template.

use super::{
    delete_pod, deleting, deletion_rank, event, is_active, is_available, is_ready,
    pod_from_template, Action, PodsByOwner,
};
use skiff_api::workloads::{ReplicaSet, ReplicaSetStatus};
use skiff_api::{Kind, Object};

/// The most pods one ReplicaSet creates in one pass (Kubernetes' burst).
pub const BURST: usize = 500;

/// What one ReplicaSet needs.
pub fn reconcile(rs: &ReplicaSet, pods: &PodsByOwner<'_>, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let owned = pods.of(rs.metadata.uid.as_deref());
    let mut active: Vec<_> = owned.iter().copied().filter(|p| is_active(p)).collect();
    let want = rs.spec.replicas.unwrap_or(1).max(0) as usize;
    if !deleting(&rs.metadata) {
        if active.len() < want {
            let n = (want - active.len()).min(BURST);
            for _ in 0..n {
                let pod = pod_from_template(
                    &rs.spec.template,
                    Kind::ReplicaSet,
                    &rs.metadata,
                    None,
                    Some(format!("{}-", rs.metadata.name())),
                    &[],
                );
                out.push(Action::Create(Object::Pod(pod)));
            }
            out.push(event(
                Kind::ReplicaSet,
                &rs.metadata,
                false,
                "SuccessfulCreate",
                format!("Created {n} pod(s)"),
            ));
        } else if active.len() > want {
            active.sort_by_key(|p| deletion_rank(p));
            let n = active.len() - want;
            for p in &active[..n] {
                out.push(delete_pod(p));
            }
            out.push(event(
                Kind::ReplicaSet,
                &rs.metadata,
                false,
                "SuccessfulDelete",
                format!("Deleted {n} pod(s)"),
            ));
        }
    }
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0) as i64;
    let labels = &rs.spec.template.metadata.labels;
    let status = ReplicaSetStatus {
        replicas: Some(active.len() as i32),
        fully_labeled_replicas: Some(
            active
                .iter()
                .filter(|p| {
                    labels
                        .iter()
                        .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
                })
                .count() as i32,
        ),
        ready_replicas: Some(active.iter().filter(|p| is_ready(p)).count() as i32),
        available_replicas: Some(
            active
                .iter()
                .filter(|p| is_available(p, min_ready, now))
                .count() as i32,
        ),
        observed_generation: rs.metadata.generation,
        conditions: rs
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
    };
    if rs.status.as_ref() != Some(&status) {
        let mut next = rs.clone();
        next.status = Some(status);
        out.push(Action::Status(Object::ReplicaSet(next)));
    }
    out
}
