//! The Deployment controller: a ReplicaSet per pod template, rolled from the old ones to
//! the new one (RollingUpdate within maxSurge/maxUnavailable, or Recreate), a revision
//! per template, old ReplicaSets kept up to `revisionHistoryLimit`, the Progressing and
//! Available conditions, `paused`.

use super::{
    controller_ref, deleting, event, is_active, is_available, is_ready, set_condition,
    template_hash, Action, PodsByOwner, POD_TEMPLATE_HASH, REVISION,
};
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::workloads::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use skiff_api::{Kind, Object};
use std::collections::BTreeMap;

/// `maxSurge` and `maxUnavailable` as pod counts (Kubernetes' `ResolveFenceposts`:
/// surge rounds up, unavailable down, and both 0 means one may be unavailable).
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let replicas = d.spec.replicas.unwrap_or(1).max(0);
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let surge = ru
        .and_then(|r| r.max_surge.as_ref())
        .map_or(Ok(0), |v| v.scaled_value(replicas, true))
        .unwrap_or(0)
        .max(0);
    let unavailable = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .map_or(Ok(0), |v| v.scaled_value(replicas, false))
        .unwrap_or(0)
        .max(0);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable.min(replicas))
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// What one Deployment needs; `rss` are the ReplicaSets it controls.
pub fn reconcile(
    d: &Deployment,
    rss: &[&ReplicaSet],
    pods: &PodsByOwner<'_>,
    now: u64,
) -> Vec<Action> {
    let mut out = Vec::new();
    if deleting(&d.metadata) {
        return out;
    }
    let replicas = d.spec.replicas.unwrap_or(1).max(0);
    let min_ready = d.spec.min_ready_seconds.unwrap_or(0) as i64;
    let paused = d.spec.paused == Some(true);
    let (surge, max_unavailable) = if is_recreate(d) {
        (0, replicas)
    } else {
        fenceposts(d)
    };
    // Pods of a ReplicaSet that pass a test.
    let count = |rs: &ReplicaSet, f: &dyn Fn(&skiff_api::pod::Pod) -> bool| -> i32 {
        pods.of(rs.metadata.uid.as_deref())
            .iter()
            .filter(|p| f(p))
            .count() as i32
    };
    let available_of = |rs: &ReplicaSet| count(rs, &|p| is_available(p, min_ready, now));
    let active_of = |rs: &ReplicaSet| count(rs, &is_active);
    let spec_of = |rs: &ReplicaSet| rs.spec.replicas.unwrap_or(0);
    let max_rev = rss.iter().map(|r| r.revision()).max().unwrap_or(0);

    // The changes to ReplicaSets this pass, by name; one Update each at the end.
    let mut next: BTreeMap<String, ReplicaSet> = BTreeMap::new();
    let mut scaled = false;

    let new_rs = rss
        .iter()
        .copied()
        .find(|rs| rs.template_without_hash() == d.spec.template);
    let mut olds: Vec<&ReplicaSet> = rss
        .iter()
        .copied()
        .filter(|rs| new_rs.is_none_or(|n| n.metadata.uid != rs.metadata.uid))
        .collect();
    olds.sort_by_key(|rs| (rs.revision(), rs.metadata.creation_timestamp.clone()));

    let mut created_name = None;
    if let Some(n) = new_rs {
        if n.revision() < max_rev || n.revision() == 0 {
            // An old template came back (rollback): it becomes the newest revision.
            let mut m = n.clone();
            m.metadata
                .annotations
                .insert(REVISION.into(), (max_rev + 1).to_string());
            next.insert(n.metadata.name().to_string(), m);
        }
    }
    let spec_now = |rs: &ReplicaSet, next: &BTreeMap<String, ReplicaSet>| -> i32 {
        next.get(rs.metadata.name()).map_or(spec_of(rs), spec_of)
    };
    let set_spec = |rs: &ReplicaSet,
                    n: i32,
                    next: &mut BTreeMap<String, ReplicaSet>,
                    out: &mut Vec<Action>| {
        let cur = spec_now(rs, next);
        if cur == n {
            return;
        }
        let e = next
            .entry(rs.metadata.name().to_string())
            .or_insert_with(|| rs.clone());
        e.spec.replicas = Some(n);
        e.metadata.annotations.insert(
            "deployment.kubernetes.io/desired-replicas".into(),
            replicas.to_string(),
        );
        e.metadata.annotations.insert(
            "deployment.kubernetes.io/max-replicas".into(),
            (replicas + surge).to_string(),
        );
        let verb = if n > cur { "up" } else { "down" };
        out.push(event(
            Kind::Deployment,
            &d.metadata,
            false,
            "ScalingReplicaSet",
            format!(
                "Scaled {verb} replica set {} from {cur} to {n}",
                rs.metadata.name()
            ),
        ));
    };

    let old_spec: i32 = olds.iter().map(|r| spec_of(r)).sum();
    let old_active: i32 = olds.iter().map(|r| active_of(r)).sum();
    if paused {
        // Paused: no new template rolls out; only the replica count follows.
        if let Some(n) = new_rs {
            let total: i32 = rss.iter().map(|r| spec_of(r)).sum();
            if total != replicas {
                let want = (spec_of(n) + replicas - total).max(0);
                set_spec(n, want, &mut next, &mut out);
            }
        }
    } else if new_rs.is_none() {
        let initial = if is_recreate(d) {
            if old_spec > 0 || old_active > 0 {
                0
            } else {
                replicas
            }
        } else {
            (replicas + surge - old_spec).clamp(0, replicas)
        };
        let hash = template_hash(&d.spec.template);
        let mut template = d.spec.template.clone();
        template
            .metadata
            .labels
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = d.spec.selector.clone().unwrap_or_default();
        selector
            .match_labels
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", d.metadata.name());
        let labels = template.metadata.labels.clone();
        let mut annotations = BTreeMap::new();
        annotations.insert(REVISION.to_string(), (max_rev + 1).to_string());
        annotations.insert(
            "deployment.kubernetes.io/desired-replicas".into(),
            replicas.to_string(),
        );
        annotations.insert(
            "deployment.kubernetes.io/max-replicas".into(),
            (replicas + surge).to_string(),
        );
        if let Some(c) = d.metadata.annotations.get("kubernetes.io/change-cause") {
            annotations.insert("kubernetes.io/change-cause".into(), c.clone());
        }
        let rs = ReplicaSet {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            metadata: skiff_api::meta::ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels,
                annotations,
                owner_references: vec![controller_ref(Kind::Deployment, &d.metadata)],
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(initial),
                min_ready_seconds: d.spec.min_ready_seconds,
                selector: Some(selector),
                template,
            },
            status: None,
        };
        out.push(Action::Create(Object::ReplicaSet(rs)));
        out.push(event(
            Kind::Deployment,
            &d.metadata,
            false,
            "ScalingReplicaSet",
            format!("Scaled up replica set {name} to {initial}"),
        ));
        created_name = Some(name);
        scaled = true;
    } else if let Some(n) = new_rs {
        if is_recreate(d) {
            if old_spec > 0 {
                for o in &olds {
                    set_spec(o, 0, &mut next, &mut out);
                }
                scaled = true;
            } else if old_active == 0 && spec_of(n) != replicas {
                set_spec(n, replicas, &mut next, &mut out);
                scaled = true;
            }
        } else {
            let new_spec = spec_of(n);
            let total: i32 = rss.iter().map(|r| spec_of(r)).sum();
            if new_spec > replicas {
                set_spec(n, replicas, &mut next, &mut out);
                scaled = true;
            } else if new_spec < replicas && total < replicas + surge {
                let up = (replicas + surge - total).min(replicas - new_spec);
                set_spec(n, new_spec + up, &mut next, &mut out);
                scaled = true;
            }
            if !scaled && old_spec > 0 {
                // Scale old ReplicaSets down only as far as availability allows.
                let min_available = replicas - max_unavailable;
                let new_unavailable = spec_of(n) - available_of(n);
                let mut budget = total - min_available - new_unavailable;
                if budget > 0 {
                    // First their pods that are not available anyway, oldest first.
                    for o in &olds {
                        if budget <= 0 {
                            break;
                        }
                        let cur = spec_now(o, &next);
                        let unhealthy = (cur - available_of(o)).max(0);
                        let down = unhealthy.min(budget).min(cur);
                        if down > 0 {
                            set_spec(o, cur - down, &mut next, &mut out);
                            budget -= down;
                            scaled = true;
                        }
                    }
                    // Then available ones, keeping minAvailable.
                    let total_available: i32 = rss.iter().map(|r| available_of(r)).sum();
                    let mut can = total_available - min_available;
                    for o in &olds {
                        if can <= 0 {
                            break;
                        }
                        let cur = spec_now(o, &next);
                        let down = cur.min(can);
                        if down > 0 {
                            set_spec(o, cur - down, &mut next, &mut out);
                            can -= down;
                            scaled = true;
                        }
                    }
                }
            }
        }
    }

    // History: old ReplicaSets with nothing left beyond revisionHistoryLimit go, oldest first.
    let limit = d.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let empty: Vec<&&ReplicaSet> = olds
        .iter()
        .filter(|rs| spec_now(rs, &next) == 0 && active_of(rs) == 0 && !deleting(&rs.metadata))
        .collect();
    if empty.len() > limit {
        for rs in &empty[..empty.len() - limit] {
            out.push(super::delete(Kind::ReplicaSet, &rs.metadata));
        }
    }

    // Status.
    let current = |rs: &ReplicaSet| new_rs.is_some_and(|n| n.metadata.uid == rs.metadata.uid);
    let all_active: i32 = rss.iter().map(|r| active_of(r)).sum();
    let updated: i32 = rss
        .iter()
        .filter(|r| current(r))
        .map(|r| active_of(r))
        .sum();
    let ready: i32 = rss
        .iter()
        .map(|r| count(r, &|p| is_active(p) && is_ready(p)))
        .sum();
    let available: i32 = rss.iter().map(|r| available_of(r)).sum();
    let prev = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all_active),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas - available).max(0)),
        conditions: prev.conditions.clone(),
    };
    if available >= replicas - max_unavailable {
        set_condition(
            &mut status.conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        );
    } else {
        set_condition(
            &mut status.conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        );
    }
    let rs_name = created_name
        .clone()
        .or_else(|| new_rs.map(|n| n.metadata.name().to_string()))
        .unwrap_or_default();
    let old_spec_after: i32 = olds.iter().map(|r| spec_now(r, &next)).sum();
    let complete = new_rs.is_some()
        && updated == replicas
        && all_active == replicas
        && available == replicas
        && old_spec_after == 0;
    let progressed = scaled
        || prev.updated_replicas != status.updated_replicas
        || prev.available_replicas != status.available_replicas
        || prev.ready_replicas != status.ready_replicas
        || prev.replicas != status.replicas;
    if paused {
        set_condition(
            &mut status.conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            now,
        );
    } else if complete {
        set_condition(
            &mut status.conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet {rs_name:?} has successfully progressed."),
            now,
        );
    } else if progressed || !status.conditions.iter().any(|c| c.type_ == "Progressing") {
        set_condition(
            &mut status.conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet {rs_name:?} is progressing."),
            now,
        );
        if let Some(c) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == "Progressing")
        {
            c.last_update_time = Some(rfc3339(now));
        }
    } else if let Some(deadline) = d.spec.progress_deadline_seconds {
        let last = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ReplicaSetUpdated"))
            .and_then(|c| c.last_update_time.as_deref())
            .and_then(parse_rfc3339);
        if last.is_some_and(|t| t + deadline.max(0) as u64 <= now) {
            set_condition(
                &mut status.conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet {rs_name:?} has timed out progressing."),
                now,
            );
            out.push(event(
                Kind::Deployment,
                &d.metadata,
                true,
                "ProgressDeadlineExceeded",
                format!(
                    "Deployment {:?} has timed out progressing.",
                    d.metadata.name()
                ),
            ));
        }
    }
    for (_, rs) in next {
        out.push(Action::Update(Object::ReplicaSet(rs)));
    }
    // The Deployment carries the revision of its current ReplicaSet.
    let rev = match new_rs {
        Some(n) if n.revision() >= max_rev && n.revision() > 0 => n.revision(),
        _ => max_rev + 1,
    };
    if d.metadata.annotations.get(REVISION) != Some(&rev.to_string()) {
        let mut nd = d.clone();
        nd.metadata
            .annotations
            .insert(REVISION.into(), rev.to_string());
        nd.status = Some(status);
        out.push(Action::Update(Object::Deployment(nd)));
    } else if d.status.as_ref() != Some(&status) {
        let mut nd = d.clone();
        nd.status = Some(status);
        out.push(Action::Status(Object::Deployment(nd)));
    }
    out
}
