//! The scheduler's volume filters (Kubernetes' VolumeBinding, VolumeRestrictions and
//! VolumeZone plugins, for directory volumes) and what binding a pod to a node does to
//! its claims: a `WaitForFirstConsumer` claim gets the node (a volume made by hand there,
//! reserved; or the `local-path` provisioner's volume, whose name and directory follow
//! from the claim, so the pod is bound in the same pass).

use super::{term_matches, NodeInfo, PodInfo};
use crate::controllers::storage::{best_volume, bound_to, claim_ref, provision};
use crate::controllers::Action;
use crate::HashMap;
use skiff_api::core::Node;
use skiff_api::pod::NodeSelectorTerm;
use skiff_api::storage::{
    PersistentVolume, PersistentVolumeClaim, StorageClass, LOCAL_PATH_PROVISIONER, SELECTED_NODE,
};
use skiff_api::Object;
use std::collections::BTreeMap;
use std::sync::Arc;

/// (namespace, claim name).
type ClaimKey = (String, String);

/// Where a claim stands for the scheduler.
#[derive(Debug, Clone)]
enum State {
    Missing,
    Deleting,
    /// Bound (or being bound): the volume's node terms and directory.
    Bound {
        terms: Option<Vec<NodeSelectorTerm>>,
        path: Option<String>,
    },
    /// Not bound, binding waits for a pod's node.
    Waiting,
    /// Not bound, binding does not wait: the binder's.
    Immediate,
}

/// The volumes, claims and classes, and which pods use which claim.
#[derive(Default)]
pub struct VolumeView {
    claims: HashMap<ClaimKey, (Option<Arc<PersistentVolumeClaim>>, State)>,
    volumes: Vec<Arc<PersistentVolume>>,
    classes: HashMap<String, StorageClass>,
    /// Pods (bound or assumed) using each claim: pod name and node.
    users: HashMap<ClaimKey, Vec<(String, String)>>,
    /// Volumes reserved in this pass.
    reserved: Vec<String>,
}

/// What binding one pod needs besides its node.
#[derive(Debug, Default)]
pub struct Plan {
    /// Writes to make first (claims' selected node, provisioned volumes, reservations).
    pub actions: Vec<Action>,
    /// Volume name → node directory, for the pod's annotations.
    pub paths: BTreeMap<String, String>,
    /// A volume was reserved: bind the pod once the binding is complete (next pass).
    pub wait: bool,
}

impl VolumeView {
    /// From the cluster's objects; `pods` are those bound to a node and not finished.
    pub fn new<'a>(
        volumes: impl Iterator<Item = &'a PersistentVolume>,
        claims: impl Iterator<Item = &'a PersistentVolumeClaim>,
        classes: impl Iterator<Item = &'a StorageClass>,
        pods: &[&PodInfo],
    ) -> VolumeView {
        let mut v = VolumeView {
            volumes: volumes.map(|pv| Arc::new(pv.clone())).collect(),
            classes: classes
                .map(|c| (c.metadata.name().to_string(), c.clone()))
                .collect(),
            ..Default::default()
        };
        for c in claims {
            let state = v.state_of(c);
            let key = (
                c.metadata.namespace().to_string(),
                c.metadata.name().to_string(),
            );
            v.claims.insert(key, (Some(Arc::new(c.clone())), state));
        }
        for p in pods {
            if let Some(node) = &p.node_name {
                for (_, claim) in &p.claims {
                    v.users
                        .entry((p.namespace.clone(), claim.clone()))
                        .or_default()
                        .push((p.name.clone(), node.clone()));
                }
            }
        }
        v
    }

    fn state_of(&self, c: &PersistentVolumeClaim) -> State {
        if c.metadata.deletion_timestamp.is_some() {
            return State::Deleting;
        }
        let pv = self.volumes.iter().find(|pv| bound_to(pv, c));
        if let Some(pv) = pv {
            return State::Bound {
                terms: pv.node_terms().map(<[_]>::to_vec),
                path: pv.path().map(str::to_string),
            };
        }
        if c.spec.volume_name.is_some() {
            // Named a volume that does not exist (yet): the binder's to wait for.
            return State::Immediate;
        }
        match self.classes.get(c.class()) {
            Some(class) if class.waits_for_consumer() => State::Waiting,
            _ => State::Immediate,
        }
    }

    fn claim(&self, ns: &str, name: &str) -> (Option<&Arc<PersistentVolumeClaim>>, &State) {
        match self.claims.get(&(ns.to_string(), name.to_string())) {
            Some((c, s)) => (c.as_ref(), s),
            None => (None, &State::Missing),
        }
    }

    /// A reason no node can take the pod (Kubernetes' PreFilter messages).
    pub fn pod_problem(&self, pod: &PodInfo) -> Option<String> {
        for (_, name) in &pod.claims {
            let (claim, state) = self.claim(&pod.namespace, name);
            match state {
                State::Missing => return Some(format!("persistentvolumeclaim {name:?} not found")),
                State::Deleting => {
                    return Some(format!("persistentvolumeclaim {name:?} is being deleted"))
                }
                State::Immediate => {
                    return Some("pod has unbound immediate PersistentVolumeClaims".into())
                }
                _ => {}
            }
            let mut others = self.users_except(&pod.namespace, name, &pod.name);
            if claim.is_some_and(|c| c.one_pod()) && others.next().is_some() {
                return Some("node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode".into());
            }
        }
        None
    }

    fn users_except<'a>(
        &'a self,
        ns: &str,
        claim: &str,
        pod: &'a str,
    ) -> Box<dyn Iterator<Item = &'a (String, String)> + 'a> {
        match self.users.get(&(ns.to_string(), claim.to_string())) {
            Some(u) => Box::new(u.iter().filter(move |(p, _)| p != pod)),
            None => Box::new(std::iter::empty()),
        }
    }

    /// Why `node` cannot take the pod's volumes, if it cannot.
    pub fn node_problem(&self, pod: &PodInfo, node: &NodeInfo) -> Option<super::Reason> {
        for (_, name) in &pod.claims {
            let (claim, state) = self.claim(&pod.namespace, name);
            // Where the volume can be first; then who uses it.
            match state {
                State::Bound { terms: Some(t), .. } if !t.iter().any(|t| term_matches(t, node)) => {
                    return Some(super::Reason::VolumeNodeAffinity)
                }
                State::Waiting => {
                    let claim = claim.expect("a waiting claim exists");
                    if !self.can_bind_on(claim, node) {
                        return Some(super::Reason::NoVolumeToBind);
                    }
                }
                _ => {}
            }
            if claim.is_some_and(|c| c.one_node())
                && self
                    .users_except(&pod.namespace, name, &pod.name)
                    .any(|(_, n)| *n != node.name)
            {
                return Some(super::Reason::VolumeInUseElsewhere);
            }
        }
        None
    }

    fn can_bind_on(&self, claim: &PersistentVolumeClaim, node: &NodeInfo) -> bool {
        let provisions = self
            .classes
            .get(claim.class())
            .is_some_and(|c| c.provisioner == LOCAL_PATH_PROVISIONER);
        provisions || self.static_volume(claim, node).is_some()
    }

    fn static_volume(
        &self,
        claim: &PersistentVolumeClaim,
        node: &NodeInfo,
    ) -> Option<&PersistentVolume> {
        let free: Vec<&PersistentVolume> = self
            .volumes
            .iter()
            .filter(|pv| !self.reserved.iter().any(|r| r == pv.metadata.name()))
            .map(|pv| &**pv)
            .collect();
        best_volume(&free, claim, |pv| {
            pv.node_terms()
                .is_none_or(|t| t.iter().any(|t| term_matches(t, node)))
        })
    }

    /// What binding the pod to `node` needs; records the pod as a user of its claims and
    /// what it binds, for the pods after it in the pass.
    pub fn plan(&mut self, pod: &PodInfo, node: &NodeInfo, node_obj: Option<&Node>) -> Plan {
        let mut plan = Plan::default();
        for (volume, name) in &pod.claims {
            let key = (pod.namespace.clone(), name.clone());
            self.users
                .entry(key.clone())
                .or_default()
                .push((pod.name.clone(), node.name.clone()));
            let (claim, state) = match self.claims.get(&key) {
                Some((Some(c), s)) => (c.clone(), s.clone()),
                _ => continue,
            };
            match state {
                State::Bound { path: Some(p), .. } => {
                    plan.paths.insert(volume.clone(), p);
                }
                State::Waiting => {
                    let mut next = (*claim).clone();
                    next.metadata
                        .annotations
                        .insert(SELECTED_NODE.into(), node.name.clone());
                    if let Some(pv) = self.static_volume(&claim, node).cloned() {
                        // A volume made by hand: reserve it; the pod waits for the bind.
                        self.reserved.push(pv.metadata.name().to_string());
                        let mut pv = pv;
                        pv.spec.claim_ref = Some(claim_ref(&claim));
                        plan.wait = true;
                        plan.actions
                            .push(Action::Update(Object::PersistentVolume(pv.clone())));
                        self.claims.insert(
                            key,
                            (
                                Some(claim),
                                State::Bound {
                                    terms: pv.node_terms().map(<[_]>::to_vec),
                                    path: pv.path().map(str::to_string),
                                },
                            ),
                        );
                        continue;
                    }
                    let (Some(class), Some(n)) = (self.classes.get(claim.class()), node_obj) else {
                        plan.wait = true;
                        continue;
                    };
                    let pv = provision(&claim, class, n);
                    let path = pv.path().map(str::to_string);
                    if let Some(p) = &path {
                        plan.paths.insert(volume.clone(), p.clone());
                    }
                    plan.actions.push(crate::controllers::event(
                        skiff_api::Kind::PersistentVolumeClaim,
                        &claim.metadata,
                        false,
                        "ProvisioningSucceeded",
                        format!(
                            "Successfully provisioned volume {} on node {}",
                            pv.metadata.name(),
                            node.name
                        ),
                    ));
                    plan.actions
                        .push(Action::Update(Object::PersistentVolumeClaim(next)));
                    plan.actions
                        .push(Action::Create(Object::PersistentVolume(pv.clone())));
                    self.claims.insert(
                        key,
                        (
                            Some(claim),
                            State::Bound {
                                terms: pv.node_terms().map(<[_]>::to_vec),
                                path,
                            },
                        ),
                    );
                }
                _ => plan.wait = true,
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decision, NodeInfo, PodInfo, Reason, Scheduler, Strategy};
    use super::*;
    use skiff_api::pod::Pod;

    fn claim(name: &str, class: &str, mode: &str) -> PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("c-{name}")},
            "spec": {"storageClassName": class, "accessModes": [mode], "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap()
    }

    fn pod(name: &str, claim: &str, node: Option<&str>) -> PodInfo {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": node, "containers": [], "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}
        }))
        .unwrap();
        PodInfo::from_pod(&p)
    }

    fn node(name: &str) -> (NodeInfo, Node) {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        (NodeInfo::from_node(&n), n)
    }

    fn hand_made(name: &str) -> PersistentVolume {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "uid": format!("u-{name}")},
            "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "", "hostPath": {"path": format!("/mnt/{name}")}}
        }))
        .unwrap()
    }

    fn scheduler(
        pvs: &[PersistentVolume],
        pvcs: &[PersistentVolumeClaim],
        bound: Vec<PodInfo>,
    ) -> (Scheduler, Vec<Node>) {
        let (a, na) = node("a");
        let (b, nb) = node("b");
        let users: Vec<&PodInfo> = bound.iter().collect();
        let view = VolumeView::new(
            pvs.iter(),
            pvcs.iter(),
            [StorageClass::local_path()].iter(),
            &users,
        );
        let mut s = Scheduler::new(vec![a, b], bound, Strategy::LeastAllocated);
        s.volumes = Some(view);
        (s, vec![na, nb])
    }

    #[test]
    fn claims_that_cannot_be_used_say_why() {
        let (mut s, _) = scheduler(&[], &[claim("imm", "", "ReadWriteOnce")], vec![]);
        let msg = |d: Decision| match d {
            Decision::Unschedulable { message, .. } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg(s.schedule(&pod("p", "missing", None))),
            "0/2 nodes are available: persistentvolumeclaim \"missing\" not found."
        );
        assert_eq!(
            msg(s.schedule(&pod("p", "imm", None))),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        );
        // ReadWriteOncePod: one pod only, wherever it is.
        let (mut s, _) = scheduler(
            &[],
            &[claim("one", "local-path", "ReadWriteOncePod")],
            vec![pod("first", "one", Some("a"))],
        );
        assert!(
            msg(s.schedule(&pod("second", "one", None))).contains("ReadWriteOncePod access mode")
        );
    }

    #[test]
    fn a_read_write_once_claim_keeps_its_pods_on_one_node() {
        let mut pv = hand_made("disk");
        let c = claim("data", "", "ReadWriteOnce");
        pv.spec.claim_ref = Some(claim_ref(&c));
        let (mut s, _) = scheduler(&[pv], &[c], vec![pod("first", "data", Some("a"))]);
        let mut p = pod("second", "data", None);
        p.node_selector
            .insert("kubernetes.io/hostname".into(), "b".into());
        match s.schedule(&p) {
            Decision::Unschedulable { reasons, .. } => {
                assert_eq!(
                    reasons.get(&Reason::VolumeInUseElsewhere),
                    Some(&1),
                    "{reasons:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.schedule(&pod("third", "data", None)),
            Decision::Bind("a".into())
        );
    }

    #[test]
    fn a_waiting_claim_is_provisioned_where_its_first_pod_goes_and_holds_the_next() {
        let c = claim("www", "local-path", "ReadWriteOnce");
        let (mut s, nodes) = scheduler(&[], &[c], vec![]);
        let first = pod("first", "www", None);
        let Decision::Bind(n) = s.schedule(&first) else {
            panic!()
        };
        let obj = nodes.iter().find(|x| x.metadata.name() == n);
        let plan = s.plan_volumes(&first, &n, obj);
        assert!(!plan.wait);
        assert_eq!(
            plan.paths["v"],
            format!("/var/lib/skiff/local-path/pvc-c-www_default_www")
        );
        assert!(plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Create(Object::PersistentVolume(_)))));
        assert!(plan.actions.iter().any(|a| matches!(a, Action::Update(Object::PersistentVolumeClaim(c)) if c.metadata.annotations.get(SELECTED_NODE) == Some(&n))));
        // The same pass: the next pod of the claim goes to the same node, away from it
        // it cannot.
        let other = if n == "a" { "b" } else { "a" };
        let mut away = pod("away", "www", None);
        away.node_selector
            .insert("kubernetes.io/hostname".into(), other.into());
        assert!(matches!(s.schedule(&away), Decision::Unschedulable { .. }));
        // A volume made by hand for a waiting claim is reserved first; the pod waits.
        let mut pv = hand_made("disk");
        pv.spec.storage_class_name = Some("local-path".into());
        let (mut s, nodes) =
            scheduler(&[pv], &[claim("w2", "local-path", "ReadWriteOnce")], vec![]);
        let p = pod("p", "w2", None);
        let Decision::Bind(n) = s.schedule(&p) else {
            panic!()
        };
        let plan = s.plan_volumes(&p, &n, nodes.iter().find(|x| x.metadata.name() == n));
        assert!(plan.wait);
        assert!(
            matches!(&plan.actions[..], [Action::Update(Object::PersistentVolume(v))] if v.spec.claim_ref.is_some())
        );
    }
}
