//! The StatefulSet controller: pods `<name>-0..N-1` with stable names and hostnames,
//! created in order and each only once the ones before are Running and Ready
//! (OrderedReady) or all at once (Parallel), removed from the highest ordinal down, and
//! rolled from the highest ordinal down to the partition. Each pod has a claim per
//! `volumeClaimTemplates` entry (`<template>-<set>-<ordinal>`), made before the pod and
//! kept across its deletion, rescheduling and scale-down unless the
//! `persistentVolumeClaimRetentionPolicy` says `Delete` (the claim then belongs to the set,
//! or to its condemned pod, and the garbage collector removes it with them).

use super::{
    delete_pod, deleting, is_active, is_available, is_ready, phase, pod_from_template,
    template_hash, Action, PodsByOwner, REVISION_HASH,
};
use skiff_api::meta::OwnerReference;
use skiff_api::pod::Pod;
use skiff_api::storage::{claim_name, PersistentVolumeClaim};
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
    skiff_api::storage::add_claim_volumes(&mut pod.spec, &s.spec.volume_claim_templates, &name);
    pod.spec.hostname = Some(name);
    if let Some(svc) = &s.spec.service_name {
        pod.spec.subdomain = Some(svc.clone());
    }
    pod
}

/// The claims of a namespace by name.
pub type Claims<'a> = crate::HashMap<(&'a str, &'a str), &'a PersistentVolumeClaim>;

fn policy_deletes(s: &StatefulSet, scaled: bool) -> bool {
    let p = s.spec.persistent_volume_claim_retention_policy.as_ref();
    let v = p.and_then(|p| {
        if scaled {
            p.when_scaled.as_deref()
        } else {
            p.when_deleted.as_deref()
        }
    });
    v == Some("Delete")
}

fn owner_ref(kind: Kind, m: &skiff_api::meta::ObjectMeta) -> OwnerReference {
    OwnerReference {
        controller: None,
        ..super::controller_ref(kind, m)
    }
}

/// The claims ordinal `i` needs: created when missing, their owners as the retention
/// policy says (`pod`: the condemned pod of a scale-down).
fn claims_of(
    s: &StatefulSet,
    i: usize,
    claims: &Claims<'_>,
    condemned: Option<&Pod>,
    out: &mut Vec<Action>,
) {
    let pod = format!("{}-{i}", s.metadata.name());
    let ns = s.metadata.namespace();
    let owners: Vec<OwnerReference> = match condemned {
        Some(p) if policy_deletes(s, true) => vec![owner_ref(Kind::Pod, &p.metadata)],
        _ if policy_deletes(s, false) => vec![owner_ref(Kind::StatefulSet, &s.metadata)],
        _ => Vec::new(),
    };
    for t in &s.spec.volume_claim_templates {
        let name = claim_name(t.metadata.name(), &pod);
        match claims.get(&(ns, name.as_str())) {
            None if condemned.is_none() => {
                let mut c = t.clone();
                c.api_version = "v1".into();
                c.kind = "PersistentVolumeClaim".into();
                c.status = None;
                c.metadata = skiff_api::meta::ObjectMeta {
                    name: Some(name),
                    namespace: s.metadata.namespace.clone(),
                    labels: t.metadata.labels.clone(),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: owners.clone(),
                    ..Default::default()
                };
                if let Some(sel) = &s.spec.selector {
                    for (k, v) in &sel.match_labels {
                        c.metadata.labels.insert(k.clone(), v.clone());
                    }
                }
                out.push(Action::Create(Object::PersistentVolumeClaim(c)));
            }
            Some(c) if !deleting(&c.metadata) => {
                // Owners this set manages: its own reference and its pods'.
                let mine = |r: &OwnerReference| {
                    r.uid == s.metadata.uid.as_deref().unwrap_or("")
                        || r.kind == "Pod" && r.name == pod
                };
                let mut want: Vec<OwnerReference> = c
                    .metadata
                    .owner_references
                    .iter()
                    .filter(|r| !mine(r))
                    .cloned()
                    .collect();
                want.extend(owners.iter().cloned());
                if want != c.metadata.owner_references {
                    let mut next = (*c).clone();
                    next.metadata.owner_references = want;
                    out.push(Action::Update(Object::PersistentVolumeClaim(next)));
                }
            }
            _ => {}
        }
    }
}

/// The set's status from its pods by ordinal.
fn status_of(
    s: &StatefulSet,
    by_ord: &BTreeMap<usize, &Pod>,
    replicas: usize,
    rev: String,
    min_ready: i64,
    now: u64,
) -> StatefulSetStatus {
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
    StatefulSetStatus {
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
    }
}

/// What one StatefulSet needs.
pub fn reconcile(
    s: &StatefulSet,
    pods: &PodsByOwner<'_>,
    claims: &Claims<'_>,
    now: u64,
) -> Vec<Action> {
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
        // Create the missing ones, in order (their claims first).
        for i in 0..replicas {
            claims_of(s, i, claims, None, &mut out);
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
        if !s.spec.volume_claim_templates.is_empty() {
            for (i, p) in by_ord.range(replicas..) {
                claims_of(s, *i, claims, Some(p), &mut out);
            }
        }
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
    let status = status_of(s, &by_ord, replicas, rev, min_ready, now);
    if s.status.as_ref() != Some(&status) {
        let mut next = s.clone();
        next.status = Some(status);
        out.push(Action::Status(Object::StatefulSet(next)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(policy: &str) -> StatefulSet {
        let mut s: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "s-web"},
            "spec": {
                "replicas": 1, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            }
        }))
        .unwrap();
        if !policy.is_empty() {
            s.spec.persistent_volume_claim_retention_policy = serde_json::from_str(policy).unwrap();
        }
        s
    }

    fn created_claims(a: &[Action]) -> Vec<&PersistentVolumeClaim> {
        a.iter()
            .filter_map(|a| match a {
                Action::Create(Object::PersistentVolumeClaim(c)) => Some(c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_pod_has_its_claim_made_first_and_kept_as_the_policy_says() {
        let s = set("");
        let pods = PodsByOwner::index(std::iter::empty());
        let a = reconcile(&s, &pods, &Claims::default(), 0);
        let c = created_claims(&a);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].metadata.name(), "www-web-0");
        assert_eq!(c[0].metadata.labels["app"], "nginx");
        assert!(
            c[0].metadata.owner_references.is_empty(),
            "Retain: nobody owns it"
        );
        let pod = a
            .iter()
            .find_map(|a| match a {
                Action::Create(Object::Pod(p)) => Some(p),
                _ => None,
            })
            .unwrap();
        let v = &pod.spec.volumes[0];
        assert_eq!(
            v.persistent_volume_claim.as_ref().unwrap().claim_name,
            "www-web-0"
        );
        // whenDeleted: Delete: the claim belongs to the set.
        let s = set(r#"{"whenDeleted": "Delete"}"#);
        let a = reconcile(&s, &pods, &Claims::default(), 0);
        assert_eq!(
            created_claims(&a)[0].metadata.owner_references[0].uid,
            "s-web"
        );
        // An existing claim is given the owner the policy now says.
        let claim =
            (*created_claims(&reconcile(&set(""), &pods, &Claims::default(), 0))[0]).clone();
        let claims: Claims<'_> = [(("default", "www-web-0"), &claim)].into_iter().collect();
        let a = reconcile(&s, &pods, &claims, 0);
        assert!(a.iter().any(|a| matches!(a, Action::Update(Object::PersistentVolumeClaim(c)) if c.metadata.owner_references.len() == 1)), "{a:?}");
        // whenScaled: Delete: a condemned pod owns its claim, so the claim goes with it.
        let mut s = set(r#"{"whenScaled": "Delete"}"#);
        s.spec.replicas = Some(0);
        let mut p = new_pod(&s, 0, "r");
        p.metadata.uid = Some("p-0".into());
        let pods = PodsByOwner::index(std::iter::once((&p.metadata, &p)));
        let a = reconcile(&s, &pods, &claims, 0);
        assert!(a.iter().any(|a| matches!(a, Action::Update(Object::PersistentVolumeClaim(c)) if c.metadata.owner_references.iter().any(|r| r.uid == "p-0"))), "{a:?}");
    }
}
