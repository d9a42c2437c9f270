//! The volume controller, as Kubernetes' persistent volume binder, protection controllers
//! and an external provisioner do it between them:
//!
//! - a claim whose class binds `Immediate` gets the smallest Available volume that fits
//!   it (class, access modes, size, selector, `volumeName`); a `WaitForFirstConsumer`
//!   claim waits until the scheduler names a node (`volume.kubernetes.io/selected-node`),
//!   then the built-in `local-path` provisioner makes a volume there: a directory
//!   `<node path>/pvc-<uid>_<namespace>_<name>`, with node affinity to that node;
//! - the two halves of a binding (the volume's `claimRef`, the claim's `volumeName`) are
//!   completed from whichever was written first; phases follow (Available, Bound,
//!   Released; Pending, Bound, Lost);
//! - a released volume is deleted (`Delete`; its node removes the directory, then the
//!   cleanup finalizer) or kept (`Retain`);
//! - in-use protection: a claim being deleted goes once no pod that is not finished uses
//!   it; a volume being deleted, once no claim is bound to it.

use super::{deleting, event, is_finished, key_of, Action};
use crate::HashMap;
use skiff_api::core::Node;
use skiff_api::meta::ObjectReference;
use skiff_api::pod::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
};
use skiff_api::storage::{
    volume_fits_claim, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeSpec, PersistentVolumeStatus, StorageClass, VolumeNodeAffinity, BIND_COMPLETED,
    LOCAL_PATH_CLEANUP, LOCAL_PATH_PROVISIONER, NODE_LOCAL_PATH_DIR, PROVISIONED_BY,
    PROVISIONED_NODE, PVC_PROTECTION, PV_PROTECTION, SELECTED_NODE,
};
use skiff_api::util::rfc3339;
use skiff_api::{Kind, Object};

/// Where a node keeps `local-path` volumes when it does not say.
pub const DEFAULT_LOCAL_PATH_DIR: &str = "/var/lib/skiff/local-path";

/// What the controller reads.
pub struct View<'a> {
    /// Every volume.
    pub volumes: Vec<&'a PersistentVolume>,
    /// Every claim.
    pub claims: Vec<&'a PersistentVolumeClaim>,
    /// Every class.
    pub classes: Vec<&'a StorageClass>,
    /// Every pod.
    pub pods: Vec<&'a Pod>,
    /// Every node.
    pub nodes: Vec<&'a Node>,
}

/// The name of the volume provisioned for a claim (Kubernetes': `pvc-<claim uid>`).
pub fn provisioned_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or(""))
}

/// The node directory a class keeps its volumes under on `node`.
pub fn node_dir(class: &StorageClass, node: &Node) -> String {
    class
        .parameters
        .get("nodePath")
        .or_else(|| node.metadata.annotations.get(NODE_LOCAL_PATH_DIR))
        .cloned()
        .unwrap_or_else(|| DEFAULT_LOCAL_PATH_DIR.to_string())
}

/// The volume the `local-path` provisioner makes for `claim` on `node`.
pub fn provision(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &Node,
) -> PersistentVolume {
    let m = &claim.metadata;
    let dir = format!(
        "{}/pvc-{}_{}_{}",
        node_dir(class, node).trim_end_matches('/'),
        m.uid.as_deref().unwrap_or(""),
        m.namespace(),
        m.name()
    );
    let hostname = node
        .metadata
        .labels
        .get("kubernetes.io/hostname")
        .cloned()
        .unwrap_or_else(|| node.metadata.name().to_string());
    let mut pv = PersistentVolume {
        api_version: "v1".into(),
        kind: "PersistentVolume".into(),
        spec: PersistentVolumeSpec {
            capacity: claim.spec.resources.requests.clone(),
            access_modes: claim.spec.access_modes.clone(),
            claim_ref: Some(claim_ref(claim)),
            persistent_volume_reclaim_policy: class.reclaim_policy.clone(),
            storage_class_name: Some(class.metadata.name().to_string()),
            volume_mode: claim.spec.volume_mode.clone(),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: vec![NodeSelectorRequirement {
                            key: "kubernetes.io/hostname".into(),
                            operator: "In".into(),
                            values: vec![hostname],
                        }],
                        match_fields: Vec::new(),
                    }],
                }),
            }),
            host_path: Some(HostPathVolumeSource {
                path: dir,
                type_: Some("DirectoryOrCreate".into()),
            }),
            local: None,
        },
        ..Default::default()
    };
    pv.spec.capacity.retain(|k, _| k == "storage");
    let pm = &mut pv.metadata;
    pm.name = Some(provisioned_name(claim));
    pm.annotations
        .insert(PROVISIONED_BY.into(), LOCAL_PATH_PROVISIONER.into());
    pm.annotations
        .insert(PROVISIONED_NODE.into(), node.metadata.name().to_string());
    pm.finalizers = vec![PV_PROTECTION.into(), LOCAL_PATH_CLEANUP.into()];
    pv
}

/// A volume's reference to the claim it is bound to.
pub fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: Some(claim.metadata.namespace().to_string()),
        name: Some(claim.metadata.name().to_string()),
        uid: claim.metadata.uid.clone(),
        ..Default::default()
    }
}

/// Whether volume `pv` is bound (or being bound) to `claim`.
pub fn bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    pv.spec.claim_ref.as_ref().is_some_and(|r| {
        r.uid.is_some()
            && r.uid == claim.metadata.uid
            && r.name.as_deref() == Some(claim.metadata.name())
    })
}

/// Whether a volume is free for `claim`: no claim, or reserved for it by name.
pub fn free_for(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    if deleting(&pv.metadata) || pv.phase() == "Released" || pv.phase() == "Failed" {
        return false;
    }
    match &pv.spec.claim_ref {
        None => true,
        Some(r) => {
            r.uid.is_none()
                && r.name.as_deref() == Some(claim.metadata.name())
                && r.namespace.as_deref().unwrap_or("default") == claim.metadata.namespace()
        }
    }
}

/// The smallest free volume that fits `claim` (and that `node_ok` accepts).
pub fn best_volume<'a>(
    volumes: &[&'a PersistentVolume],
    claim: &PersistentVolumeClaim,
    node_ok: impl Fn(&PersistentVolume) -> bool,
) -> Option<&'a PersistentVolume> {
    volumes
        .iter()
        .copied()
        .filter(|pv| free_for(pv, claim) && volume_fits_claim(pv, claim) && node_ok(pv))
        .filter(|pv| {
            claim
                .spec
                .volume_name
                .as_deref()
                .is_none_or(|n| n == pv.metadata.name())
        })
        .min_by_key(|pv| (pv.capacity(), pv.metadata.name().to_string()))
}

/// Whether a pod that is not finished uses the claim.
fn in_use(pods: &[&Pod], claim: &PersistentVolumeClaim) -> bool {
    pods.iter().any(|p| {
        p.metadata.namespace() == claim.metadata.namespace()
            && !is_finished(p)
            && p.spec.volumes.iter().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == claim.metadata.name())
            })
    })
}

fn claim_status(
    claim: &PersistentVolumeClaim,
    pv: Option<&PersistentVolume>,
) -> PersistentVolumeClaimStatus {
    match pv {
        Some(pv) => PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            access_modes: pv.spec.access_modes.clone(),
            capacity: pv.spec.capacity.clone(),
        },
        // A claim that was bound and lost its volume is Lost (as in Kubernetes).
        None => PersistentVolumeClaimStatus {
            phase: Some(
                if matches!(claim.phase(), "Bound" | "Lost") {
                    "Lost"
                } else {
                    "Pending"
                }
                .into(),
            ),
            ..Default::default()
        },
    }
}

fn set_claim_status(
    out: &mut Vec<Action>,
    claim: &PersistentVolumeClaim,
    status: PersistentVolumeClaimStatus,
) -> bool {
    if claim.status.as_ref() == Some(&status) {
        return false;
    }
    let mut next = claim.clone();
    next.status = Some(status);
    out.push(Action::Status(Object::PersistentVolumeClaim(next)));
    true
}

fn set_volume_phase(
    out: &mut Vec<Action>,
    pv: &PersistentVolume,
    phase: &str,
    message: Option<String>,
    now: u64,
) {
    let st = pv.status.clone().unwrap_or_default();
    if st.phase.as_deref() == Some(phase) && st.message == message {
        return;
    }
    let mut next = pv.clone();
    next.status = Some(PersistentVolumeStatus {
        phase: Some(phase.into()),
        message,
        reason: None,
        last_phase_transition_time: if st.phase.as_deref() == Some(phase) {
            st.last_phase_transition_time
        } else {
            Some(rfc3339(now))
        },
    });
    out.push(Action::Status(Object::PersistentVolume(next)));
}

/// The claim is not bound (Pending, or Lost if it was): its status, and an event saying
/// why when the status changes.
fn unbound(
    out: &mut Vec<Action>,
    claim: &PersistentVolumeClaim,
    why: Option<(bool, &str, String)>,
) {
    if set_claim_status(out, claim, claim_status(claim, None)) {
        if let Some((warning, reason, message)) = why {
            out.push(event(
                Kind::PersistentVolumeClaim,
                &claim.metadata,
                warning,
                reason,
                message,
            ));
        }
    }
}

/// A claim that names its volume.
fn named(
    out: &mut Vec<Action>,
    claim: &PersistentVolumeClaim,
    name: &str,
    pv: Option<&PersistentVolume>,
) {
    match pv {
        Some(pv) if bound_to(pv, claim) => {
            set_claim_status(out, claim, claim_status(claim, Some(pv)));
        }
        Some(pv) if free_for(pv, claim) && !deleting(&claim.metadata) => {
            if volume_fits_claim(pv, claim) {
                let mut next = pv.clone();
                next.spec.claim_ref = Some(claim_ref(claim));
                out.push(Action::Update(Object::PersistentVolume(next)));
            } else {
                unbound(out, claim, Some((true, "FailedBinding",
                    format!("volume {name:?} does not fit this claim (class, access modes, size or selector)"))));
            }
        }
        Some(_) => unbound(
            out,
            claim,
            Some((
                true,
                "FailedBinding",
                format!("volume {name:?} already bound to a different claim."),
            )),
        ),
        None => unbound(out, claim, None),
    }
}

/// A claim of a `WaitForFirstConsumer` class: provisioned once the scheduler chose its node.
fn waiting(
    out: &mut Vec<Action>,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    nodes: &HashMap<&str, &Node>,
    exists: impl Fn(&str) -> bool,
) {
    let node = claim
        .metadata
        .annotations
        .get(SELECTED_NODE)
        .and_then(|n| nodes.get(n.as_str()));
    match node {
        Some(node) if class.provisioner == LOCAL_PATH_PROVISIONER => {
            let pv = provision(claim, class, node);
            if !exists(pv.metadata.name()) {
                out.push(event(Kind::PersistentVolumeClaim, &claim.metadata, false, "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {} on node {}", pv.metadata.name(), node.metadata.name())));
                out.push(Action::Create(Object::PersistentVolume(pv)));
            }
        }
        Some(_) => unbound(out, claim, Some((false, "ExternalProvisioning",
            format!("Waiting for a volume to be created by the external provisioner {:?} (skiff runs {LOCAL_PATH_PROVISIONER} only), or by hand", class.provisioner)))),
        None => unbound(out, claim, Some((false, "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding".into()))),
    }
}

/// The controller's pass over the cache (nothing to do without volumes or claims).
pub fn pass(cache: &super::Cache, now: u64) -> Vec<Action> {
    if cache.count(Kind::PersistentVolume) + cache.count(Kind::PersistentVolumeClaim) == 0 {
        return Vec::new();
    }
    let view = View {
        volumes: cache.typed::<PersistentVolume>().collect(),
        claims: cache.typed::<PersistentVolumeClaim>().collect(),
        classes: cache.typed::<StorageClass>().collect(),
        pods: cache.typed::<Pod>().collect(),
        nodes: cache.typed::<Node>().collect(),
    };
    reconcile(&view, now)
}

/// Everything the volume controller wants now.
pub fn reconcile(v: &View<'_>, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let by_name: HashMap<&str, &PersistentVolume> = v
        .volumes
        .iter()
        .map(|pv| (pv.metadata.name(), *pv))
        .collect();
    let classes: HashMap<&str, &StorageClass> =
        v.classes.iter().map(|c| (c.metadata.name(), *c)).collect();
    let nodes: HashMap<&str, &Node> = v.nodes.iter().map(|n| (n.metadata.name(), *n)).collect();
    // Volumes reserved in this pass (one claim each).
    let mut taken: Vec<&str> = Vec::new();
    for claim in &v.claims {
        let m = &claim.metadata;
        if deleting(m)
            && m.finalizers.iter().any(|f| f == PVC_PROTECTION)
            && !in_use(&v.pods, claim)
        {
            out.push(Action::RemoveFinalizer {
                key: key_of(Kind::PersistentVolumeClaim, m),
                uid: m.uid.clone().unwrap_or_default(),
                finalizer: PVC_PROTECTION.into(),
            });
        }
        if let Some(name) = &claim.spec.volume_name {
            named(&mut out, claim, name, by_name.get(name.as_str()).copied());
            continue;
        }
        if deleting(m) {
            continue;
        }
        if let Some(pv) = v.volumes.iter().find(|pv| bound_to(pv, claim)) {
            // The volume's half is written: complete the claim's.
            let mut next = (*claim).clone();
            next.spec.volume_name = Some(pv.metadata.name().to_string());
            next.metadata
                .annotations
                .insert(BIND_COMPLETED.into(), "yes".into());
            out.push(Action::Update(Object::PersistentVolumeClaim(next)));
            continue;
        }
        let class = match classes.get(claim.class()) {
            _ if claim.class().is_empty() => None,
            Some(c) => Some(*c),
            None => {
                unbound(
                    &mut out,
                    claim,
                    Some((
                        true,
                        "ProvisioningFailed",
                        format!("storageclass.storage.k8s.io {:?} not found", claim.class()),
                    )),
                );
                continue;
            }
        };
        if let Some(class) = class.filter(|c| c.waits_for_consumer()) {
            waiting(&mut out, claim, class, &nodes, |n| by_name.contains_key(n));
            continue;
        }
        // Immediate: a volume made by hand.
        let free: Vec<&PersistentVolume> = v
            .volumes
            .iter()
            .copied()
            .filter(|pv| !taken.contains(&pv.metadata.name()))
            .collect();
        match best_volume(&free, claim, |_| true) {
            Some(pv) => {
                taken.push(pv.metadata.name());
                let mut next = pv.clone();
                next.spec.claim_ref = Some(claim_ref(claim));
                out.push(Action::Update(Object::PersistentVolume(next)));
            }
            None => {
                let why = match class {
                    None => "no persistent volumes available for this claim and no storage class is set".to_string(),
                    Some(c) => format!("no persistent volumes available for this claim, and its class's provisioner {:?} is not one skiff runs", c.provisioner),
                };
                unbound(&mut out, claim, Some((true, "FailedBinding", why)));
            }
        }
    }
    volumes(v, &mut out, now);
    out
}

/// Phases, reclaim and protection of the volumes.
fn volumes(v: &View<'_>, out: &mut Vec<Action>, now: u64) {
    for pv in &v.volumes {
        let m = &pv.metadata;
        let claim = pv.spec.claim_ref.as_ref().and_then(|r| {
            v.claims.iter().find(|c| {
                Some(c.metadata.namespace()) == r.namespace.as_deref()
                    && Some(c.metadata.name()) == r.name.as_deref()
            })
        });
        let bound = claim.is_some_and(|c| bound_to(pv, c));
        let released = match &pv.spec.claim_ref {
            Some(r) if r.uid.is_some() => !bound,
            _ => false,
        };
        if deleting(m) && !bound && m.finalizers.iter().any(|f| f == PV_PROTECTION) {
            out.push(Action::RemoveFinalizer {
                key: key_of(Kind::PersistentVolume, m),
                uid: m.uid.clone().unwrap_or_default(),
                finalizer: PV_PROTECTION.into(),
            });
        }
        if released {
            if !matches!(pv.phase(), "Released" | "Failed") {
                set_volume_phase(out, pv, "Released", None, now);
            } else if pv.deletes_when_released() && !deleting(m) {
                if m.annotations.get(PROVISIONED_BY).map(String::as_str)
                    == Some(LOCAL_PATH_PROVISIONER)
                {
                    out.push(super::delete(Kind::PersistentVolume, m));
                } else {
                    set_volume_phase(out, pv, "Failed", Some(
                        "skiff deletes the directories of the volumes it provisioned only: this volume's data is kept (set its reclaim policy to Retain, or delete it)".into()), now);
                }
            }
            continue;
        }
        let phase = if bound { "Bound" } else { "Available" };
        set_volume_phase(out, pv, phase, None, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::manifest::parse_manifests;

    fn pv(name: &str, size: &str, class: &str, extra: &str) -> PersistentVolume {
        let text = format!("apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {name}, uid: u-{name}, labels: {{disk: ssd}}}}\nspec:\n  storageClassName: \"{class}\"\n  capacity: {{storage: {size}}}\n  accessModes: [ReadWriteOnce]\n  hostPath: {{path: /mnt/{name}}}\n{extra}");
        let mut o = parse_manifests(&text).unwrap().remove(0).object;
        o.default_fields();
        match o {
            Object::PersistentVolume(p) => p,
            _ => unreachable!(),
        }
    }

    fn pvc(name: &str, size: &str, class: &str) -> PersistentVolumeClaim {
        let text = format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: default, uid: c-{name}}}\nspec:\n  storageClassName: \"{class}\"\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n");
        match parse_manifests(&text).unwrap().remove(0).object {
            Object::PersistentVolumeClaim(c) => c,
            _ => unreachable!(),
        }
    }

    fn node(name: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata
            .labels
            .insert("kubernetes.io/hostname".into(), name.into());
        n.metadata
            .annotations
            .insert(NODE_LOCAL_PATH_DIR.into(), format!("/data/{name}"));
        n
    }

    fn run(
        pvs: &[&PersistentVolume],
        pvcs: &[&PersistentVolumeClaim],
        pods: &[&Pod],
    ) -> Vec<Action> {
        let sc = StorageClass::local_path();
        let n = node("n1");
        reconcile(
            &View {
                volumes: pvs.to_vec(),
                claims: pvcs.to_vec(),
                classes: vec![&sc],
                pods: pods.to_vec(),
                nodes: vec![&n],
            },
            100,
        )
    }

    fn updated_volume(a: &[Action]) -> Vec<&PersistentVolume> {
        a.iter()
            .filter_map(|a| match a {
                Action::Update(Object::PersistentVolume(p)) => Some(p),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_immediate_claim_binds_the_smallest_volume_that_fits() {
        let (small, big, fast) = (
            pv("small", "1Gi", "", ""),
            pv("big", "5Gi", "", ""),
            pv("fast", "3Gi", "ssd", ""),
        );
        let claim = pvc("data", "2Gi", "");
        let a = run(&[&small, &big, &fast], &[&claim], &[]);
        let v = updated_volume(&a);
        assert_eq!(v.len(), 1, "{a:?}");
        assert_eq!(v[0].metadata.name(), "big");
        assert_eq!(
            v[0].spec.claim_ref.as_ref().unwrap().uid.as_deref(),
            Some("c-data")
        );
        // The claim's half follows from the volume's.
        let bound = v[0].clone();
        let a = run(&[&small, &bound, &fast], &[&claim], &[]);
        let next = a.iter().find_map(|a| match a {
            Action::Update(Object::PersistentVolumeClaim(c)) => Some(c),
            _ => None,
        });
        assert_eq!(next.unwrap().spec.volume_name.as_deref(), Some("big"));
        // Nothing fits: Pending, and why.
        let huge = pvc("huge", "50Gi", "");
        let a = run(&[&small], &[&huge], &[]);
        assert!(a.iter().any(|a| matches!(a, Action::Event { reason, message, .. } if reason == "FailedBinding" && message.contains("no storage class is set"))), "{a:?}");
    }

    #[test]
    fn a_waiting_claim_is_provisioned_on_the_selected_node() {
        let mut claim = pvc("www", "1Gi", "local-path");
        let a = run(&[], &[&claim], &[]);
        assert!(
            a.iter().any(
                |a| matches!(a, Action::Event { reason, .. } if reason == "WaitForFirstConsumer")
            ),
            "{a:?}"
        );
        assert!(!a.iter().any(|a| matches!(a, Action::Create(_))));
        claim
            .metadata
            .annotations
            .insert(SELECTED_NODE.into(), "n1".into());
        let a = run(&[], &[&claim], &[]);
        let pv = a
            .iter()
            .find_map(|a| match a {
                Action::Create(Object::PersistentVolume(p)) => Some(p),
                _ => None,
            })
            .expect("provisioned");
        assert_eq!(pv.metadata.name(), "pvc-c-www");
        assert_eq!(pv.path(), Some("/data/n1/pvc-c-www_default_www"));
        assert_eq!(
            pv.spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let t = &pv.node_terms().unwrap()[0].match_expressions[0];
        assert_eq!(
            (t.key.as_str(), t.values.as_slice()),
            ("kubernetes.io/hostname", &["n1".to_string()][..])
        );
        assert!(bound_to(pv, &claim));
    }

    #[test]
    fn released_volumes_are_deleted_or_kept_as_their_policy_says() {
        let claim = pvc("gone", "1Gi", "");
        let mut made = provision(&claim, &StorageClass::local_path(), &node("n1"));
        made.metadata.uid = Some("u-made".into());
        made.status = Some(PersistentVolumeStatus {
            phase: Some("Bound".into()),
            ..Default::default()
        });
        // The claim is gone: Released first, then deleted (Delete, provisioned).
        let a = run(&[&made], &[], &[]);
        assert!(a.iter().any(|a| matches!(a, Action::Status(Object::PersistentVolume(p)) if p.phase() == "Released")), "{a:?}");
        made.status.as_mut().unwrap().phase = Some("Released".into());
        let a = run(&[&made], &[], &[]);
        assert!(
            a.iter().any(
                |a| matches!(a, Action::Delete { key, .. } if key.name == made.metadata.name())
            ),
            "{a:?}"
        );
        // Made by hand with Delete: skiff keeps the data and says so.
        let mut hand = pv(
            "hand",
            "1Gi",
            "",
            "  persistentVolumeReclaimPolicy: Delete\n",
        );
        hand.spec.claim_ref = Some(claim_ref(&claim));
        hand.status = made.status.clone();
        let a = run(&[&hand], &[], &[]);
        assert!(a.iter().any(|a| matches!(a, Action::Status(Object::PersistentVolume(p)) if p.phase() == "Failed")), "{a:?}");
        // Retain: Released, and nothing more.
        hand.spec.persistent_volume_reclaim_policy = Some("Retain".into());
        let a = run(&[&hand], &[], &[]);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn a_claim_in_use_is_not_removed_under_its_pods() {
        let mut claim = pvc("data", "1Gi", "");
        claim.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
        claim.metadata.finalizers = vec![PVC_PROTECTION.into()];
        let pod: Pod = serde_json::from_str(r#"{"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[],"volumes":[{"name":"v","persistentVolumeClaim":{"claimName":"data"}}]}}"#).unwrap();
        let removes = |a: &[Action]| {
            a.iter().any(|a| matches!(a, Action::RemoveFinalizer { finalizer, .. } if finalizer == PVC_PROTECTION))
        };
        assert!(!removes(&run(&[], &[&claim], &[&pod])));
        let mut done = pod.clone();
        done.status = Some(skiff_api::pod::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(removes(&run(&[], &[&claim], &[&done])));
        assert!(removes(&run(&[], &[&claim], &[])));
    }
}
