//! The scheduler's pure core: a snapshot of the cluster in, a decision per pod out.
//!
//! It follows kube-scheduler's framework in the order of its default plugins. Filters
//! (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//! NodeResourcesFit, InterPodAffinity) keep the nodes a pod may run on; scores (NodeResourcesFit
//! least- or most-allocated, NodeAffinity preferences, InterPodAffinity preferences,
//! spreading of one owner's replicas, PreferNoSchedule taints) pick the best of them.
//! A pod that fits nowhere gets Kubernetes' message, counting the reason each node
//! failed for (`0/3 nodes are available: 2 Insufficient memory, ...`).
//!
//! Each decision is *assumed* at once (the pod's requests count against its node and
//! its labels against affinity rules) so a batch schedules as if bound one by one.
//! No I/O: the shell in `controllers::runner` builds the snapshot and binds.

pub mod queue;
mod reasons;
mod resources;
pub mod volumes;

pub use reasons::{unschedulable_message, Reason};
pub use resources::{HostPort, Resources};

use crate::HashMap;
use skiff_api::conditions::tolerates;
use skiff_api::core::{Node, Taint};
use skiff_api::pod::{NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Toleration};
use skiff_api::selector::Selector;
use std::collections::BTreeMap;

/// How nodes are preferred by their resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Spread load: the emptier node wins (Kubernetes' default).
    #[default]
    LeastAllocated,
    /// Bin packing: the fuller node wins.
    MostAllocated,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "LeastAllocated" | "least-allocated" => Ok(Strategy::LeastAllocated),
            "MostAllocated" | "most-allocated" => Ok(Strategy::MostAllocated),
            o => Err(format!(
                "unknown scoring strategy {o:?}: use LeastAllocated or MostAllocated"
            )),
        }
    }
}

/// A node as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its taints, plus those its conditions imply (not-ready, unreachable).
    pub taints: Vec<Taint>,
    /// Cordoned.
    pub unschedulable: bool,
    /// What pods may use.
    pub allocatable: Resources,
}

impl NodeInfo {
    /// From a Node object. A node whose Ready condition is not True carries Kubernetes'
    /// `node.kubernetes.io/not-ready` or `unreachable` NoSchedule taint even before the
    /// node lifecycle controller writes it.
    pub fn from_node(n: &Node) -> NodeInfo {
        let status = n.status.as_ref();
        let get = |k: &str| status.and_then(|s| s.allocatable.get(k));
        // Extended resources: allocatable, or capacity until the agent has copied a new
        // one there (the kubelet does within its status interval; the agent at its next
        // registration), so a resource an admin advertised counts at once.
        let mut extended: Vec<(String, i64)> = Vec::new();
        if let Some(st) = status {
            for (k, q) in st.capacity.iter().chain(&st.allocatable) {
                if skiff_api::pod::is_extended_resource(k) {
                    let v = st.allocatable.get(k).unwrap_or(q).value();
                    if !extended.iter().any(|(n, _)| n == k) {
                        extended.push((k.clone(), v));
                    }
                }
            }
        }
        extended.sort_unstable();
        let allocatable = Resources {
            cpu: get("cpu").map_or(0, |q| q.millis()),
            memory: get("memory").map_or(0, |q| q.value()),
            pods: get("pods").map_or(0, |q| q.value()),
            ephemeral_storage: get("ephemeral-storage").map_or(0, |q| q.value()),
            extended,
            host_ports: Vec::new(),
        };
        let mut taints = n.spec.taints.clone();
        let implied = match skiff_api::conditions::node_ready_status(n) {
            Some("True") => None,
            Some("Unknown") => Some(skiff_api::well_known::TAINT_UNREACHABLE),
            _ => Some(skiff_api::well_known::TAINT_NOT_READY),
        };
        if let Some(key) = implied {
            if !taints
                .iter()
                .any(|t| t.key == key && t.effect == "NoSchedule")
            {
                taints.push(Taint {
                    key: key.into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                });
            }
        }
        NodeInfo {
            name: n.metadata.name().to_string(),
            labels: n.metadata.labels.clone(),
            taints,
            unschedulable: n.spec.unschedulable == Some(true),
            allocatable,
        }
    }
}

/// A pod as the scheduler sees it (bound or to place).
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Requests.
    pub requests: Resources,
    /// The uid of its controller, for spreading.
    pub owner: Option<String>,
    /// `spec.nodeName` (bound pods).
    pub node_name: Option<String>,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity terms (ORed).
    pub required_node_terms: Option<Vec<NodeSelectorTerm>>,
    /// Preferred node affinity: weight and term.
    pub preferred_node_terms: Vec<(i32, NodeSelectorTerm)>,
    /// Required pod affinity terms.
    pub affinity: Vec<Term>,
    /// Required pod anti-affinity terms.
    pub anti_affinity: Vec<Term>,
    /// Preferred pod affinity (positive weight) and anti-affinity (negative weight).
    pub preferred_pod_terms: Vec<(i32, Term)>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Its persistentVolumeClaim volumes: volume name and claim name.
    pub claims: Vec<(String, String)>,
}

/// A pod (anti-)affinity term, its selector compiled.
#[derive(Debug, Clone)]
pub struct Term {
    /// Pods it is about.
    pub selector: Selector,
    /// Namespaces it looks in; `None`: all.
    pub namespaces: Option<Vec<String>>,
    /// The node label that defines a domain.
    pub topology_key: String,
    /// A stable text of the term, to share one index between pods with the same term.
    pub signature: String,
}

impl Term {
    fn compile(t: &PodAffinityTerm, own_ns: &str) -> Term {
        let selector = t
            .label_selector
            .as_ref()
            .map(|s| s.to_selector().unwrap_or_else(|_| never()))
            .unwrap_or_else(never);
        let namespaces = match (&t.namespace_selector, t.namespaces.is_empty()) {
            // An empty namespaceSelector means every namespace.
            (Some(s), _) if s.is_empty() => None,
            (_, false) => Some(t.namespaces.clone()),
            _ => Some(vec![own_ns.to_string()]),
        };
        let signature = format!("{selector}|{namespaces:?}|{}", t.topology_key);
        Term {
            selector,
            namespaces,
            topology_key: t.topology_key.clone(),
            signature,
        }
    }

    fn matches(&self, pod: &PodInfo) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|ns| ns.contains(&pod.namespace))
            && self.selector.matches(&pod.labels)
    }
}

/// A selector that matches nothing (a missing labelSelector selects no pods).
fn never() -> Selector {
    Selector {
        requirements: vec![skiff_api::selector::Requirement {
            key: "skiff.io/never".into(),
            op: skiff_api::selector::Op::In,
            values: vec![],
        }],
    }
}

impl PodInfo {
    /// From a Pod object.
    pub fn from_pod(p: &Pod) -> PodInfo {
        let ns = p.metadata.namespace().to_string();
        let aff = p.spec.affinity.as_ref();
        let na = aff.and_then(|a| a.node_affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        let mut preferred_pod_terms = Vec::new();
        for w in pa.map_or(&[][..], |a| {
            &a.preferred_during_scheduling_ignored_during_execution
        }) {
            preferred_pod_terms.push((w.weight, Term::compile(&w.pod_affinity_term, &ns)));
        }
        for w in paa.map_or(&[][..], |a| {
            &a.preferred_during_scheduling_ignored_during_execution
        }) {
            preferred_pod_terms.push((-w.weight, Term::compile(&w.pod_affinity_term, &ns)));
        }
        PodInfo {
            labels: p.metadata.labels.clone(),
            requests: Resources::of_pod(&p.spec),
            owner: p.metadata.controller().map(|o| o.uid.clone()),
            node_name: p.spec.node_name.clone(),
            node_selector: p.spec.node_selector.clone(),
            required_node_terms: na
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|s| s.node_selector_terms.clone()),
            preferred_node_terms: na
                .map(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .iter()
                        .map(|t| (t.weight, t.preference.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            affinity: required(pa, &ns),
            anti_affinity: required(paa, &ns),
            preferred_pod_terms,
            tolerations: p.spec.tolerations.clone(),
            claims: p
                .spec
                .volumes
                .iter()
                .filter_map(|v| {
                    let c = v.persistent_volume_claim.as_ref()?;
                    Some((v.name.clone(), c.claim_name.clone()))
                })
                .collect(),
            name: p.metadata.name().to_string(),
            namespace: ns,
        }
    }
}

/// The required terms of a pod (anti-)affinity, compiled.
fn required(a: Option<&skiff_api::pod::PodAffinity>, ns: &str) -> Vec<Term> {
    a.map(|a| {
        a.required_during_scheduling_ignored_during_execution
            .iter()
            .map(|t| Term::compile(t, ns))
            .collect()
    })
    .unwrap_or_default()
}

/// Do these tolerations let a pod onto a cordoned node (Kubernetes' NodeUnschedulable:
/// a toleration of `node.kubernetes.io/unschedulable:NoSchedule`)?
pub fn tolerates_cordon(tolerations: &[Toleration]) -> bool {
    if tolerations.is_empty() {
        return false;
    }
    let cordon = Taint {
        key: skiff_api::well_known::TAINT_UNSCHEDULABLE.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    tolerations.iter().any(|t| tolerates(t, &cordon))
}

/// Does a node selector requirement hold for these labels (or fields: `metadata.name`)?
fn requirement_holds(r: &NodeSelectorRequirement, v: Option<&str>) -> bool {
    match r.operator.as_str() {
        "In" => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
        "NotIn" => v.is_none_or(|v| !r.values.iter().any(|x| x == v)),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                r.values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Does a node selector term hold for a node? (An empty term matches nothing.)
pub fn term_matches(t: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    if t.match_expressions.is_empty() && t.match_fields.is_empty() {
        return false;
    }
    t.match_expressions
        .iter()
        .all(|r| requirement_holds(r, node.labels.get(&r.key).map(String::as_str)))
        && t.match_fields
            .iter()
            .all(|r| requirement_holds(r, (r.key == "metadata.name").then_some(node.name.as_str())))
}

/// Does a pod's nodeSelector and required node affinity admit a node?
pub fn node_admits(pod: &PodInfo, node: &NodeInfo) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_node_terms
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)))
}

/// The first NoSchedule/NoExecute taint of a node the pod does not tolerate.
pub fn untolerated<'a>(tolerations: &[Toleration], taints: &'a [Taint]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// What became of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Bind it to this node.
    Bind(String),
    /// It fits nowhere: the message, and the count of nodes per reason.
    Unschedulable {
        /// Kubernetes' message.
        message: String,
        /// Nodes refused, by the reason each failed for first (resources may add several).
        reasons: BTreeMap<Reason, usize>,
    },
}

/// Counts of pods matching one term, per topology domain.
#[derive(Debug)]
struct TermIndex {
    term: Term,
    per_domain: HashMap<String, u32>,
    total: u32,
}

impl TermIndex {
    fn new(term: Term) -> TermIndex {
        TermIndex {
            term,
            per_domain: HashMap::default(),
            total: 0,
        }
    }

    /// Counts one pod on a node with these labels.
    fn add(&mut self, node_labels: &BTreeMap<String, String>) {
        self.total += 1;
        if let Some(d) = node_labels.get(&self.term.topology_key) {
            *self.per_domain.entry(d.clone()).or_default() += 1;
        }
    }
}

/// The scheduler's state for one batch: nodes with what is bound (and assumed) on them.
pub struct Scheduler {
    nodes: Vec<NodeInfo>,
    by_name: HashMap<String, usize>,
    requested: Vec<Resources>,
    /// Bound pods' affinity-relevant facts and their node, to build term indices.
    placed: Vec<(PodInfo, usize)>,
    /// Pods matching a term, per domain, by the term's signature (built when first asked).
    term_index: HashMap<String, TermIndex>,
    /// Required anti-affinity of placed pods, by term: the domains it holds.
    existing_anti: HashMap<String, TermIndex>,
    /// Pods per owner per node, for spreading.
    owners: HashMap<String, HashMap<usize, u32>>,
    strategy: Strategy,
    next_start: usize,
    /// Feasible nodes to find before scoring; `None`: Kubernetes' adaptive default.
    nodes_to_score: Option<usize>,
    /// Volumes and claims, when a pod to place has claims.
    pub volumes: Option<volumes::VolumeView>,
}

/// How many feasible nodes to look for before scoring (Kubernetes' adaptive
/// `percentageOfNodesToScore`: all of a small cluster, 42% of 1,000 nodes, at least 100).
pub fn feasible_nodes_to_find(all: usize) -> usize {
    if all < 100 {
        return all;
    }
    let pct = (50 - all as i64 / 125).max(5) as usize;
    (all * pct / 100).max(100)
}

/// Scores of one feasible node before normalisation.
struct Raw {
    node: usize,
    fit: i64,
    node_pref: i64,
    pod_pref: i64,
    spread: i64,
    taints: i64,
}

impl Scheduler {
    /// A scheduler over these nodes, with these pods already bound.
    pub fn new(nodes: Vec<NodeInfo>, bound: Vec<PodInfo>, strategy: Strategy) -> Scheduler {
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut s = Scheduler {
            requested: vec![Resources::default(); nodes.len()],
            nodes,
            by_name,
            placed: Vec::new(),
            term_index: HashMap::default(),
            existing_anti: HashMap::default(),
            owners: HashMap::default(),
            strategy,
            next_start: 0,
            nodes_to_score: None,
            volumes: None,
        };
        for p in bound {
            let Some(&i) = p.node_name.as_ref().and_then(|n| s.by_name.get(n)) else {
                continue;
            };
            s.assume(p, i);
        }
        s
    }

    /// Looks for this many feasible nodes before scoring (Kubernetes'
    /// `percentageOfNodesToScore` as a count; `usize::MAX`: every node).
    pub fn set_nodes_to_score(&mut self, n: usize) {
        self.nodes_to_score = Some(n.max(1));
    }

    /// What binding `pod` to `node` (just decided) needs for its claims.
    pub fn plan_volumes(
        &mut self,
        pod: &PodInfo,
        node: &str,
        node_obj: Option<&Node>,
    ) -> volumes::Plan {
        match (self.volumes.as_mut(), self.by_name.get(node)) {
            (Some(v), Some(&i)) if !pod.claims.is_empty() => v.plan(pod, &self.nodes[i], node_obj),
            _ => volumes::Plan::default(),
        }
    }

    /// What is requested on a node (bound and assumed pods).
    pub fn requested(&self, node: &str) -> Option<Resources> {
        self.by_name.get(node).map(|&i| self.requested[i].clone())
    }

    fn domain(&self, node: usize, key: &str) -> Option<&String> {
        self.nodes[node].labels.get(key)
    }

    /// Counts a pod as placed on node `i`.
    fn assume(&mut self, p: PodInfo, i: usize) {
        self.requested[i].add(&p.requests);
        if let Some(o) = &p.owner {
            *self
                .owners
                .entry(o.clone())
                .or_default()
                .entry(i)
                .or_default() += 1;
        }
        let labels = &self.nodes[i].labels;
        for idx in self.term_index.values_mut() {
            if idx.term.matches(&p) {
                idx.add(labels);
            }
        }
        for t in &p.anti_affinity {
            self.existing_anti
                .entry(t.signature.clone())
                .or_insert_with(|| TermIndex::new(t.clone()))
                .add(labels);
        }
        self.placed.push((p, i));
    }

    /// Builds the index of a term from the placed pods, once.
    fn index_term(&mut self, t: &Term) {
        if self.term_index.contains_key(&t.signature) {
            return;
        }
        let mut idx = TermIndex::new(t.clone());
        for (p, i) in &self.placed {
            if t.matches(p) {
                idx.add(&self.nodes[*i].labels);
            }
        }
        self.term_index.insert(t.signature.clone(), idx);
    }

    fn count_in_domain(&self, t: &Term, node: usize) -> u32 {
        let Some(d) = self.domain(node, &t.topology_key) else {
            return 0;
        };
        self.term_index
            .get(&t.signature)
            .and_then(|i| i.per_domain.get(d))
            .copied()
            .unwrap_or(0)
    }

    /// Runs the filters for one node: `Ok` or every reason it failed for (the first
    /// failing plugin's).
    fn filter(&self, pod: &PodInfo, i: usize, self_affine: &[bool]) -> Result<(), Vec<Reason>> {
        let n = &self.nodes[i];
        if n.unschedulable && !tolerates_cordon(&pod.tolerations) {
            return Err(vec![Reason::Unschedulable]);
        }
        if pod.node_name.as_ref().is_some_and(|w| *w != n.name) {
            return Err(vec![Reason::NodeName]);
        }
        if let Some(t) = untolerated(&pod.tolerations, &n.taints) {
            return Err(vec![Reason::Taint(
                t.key.clone(),
                t.value.clone().unwrap_or_default(),
            )]);
        }
        if !node_admits(pod, n) {
            return Err(vec![Reason::NodeAffinity]);
        }
        if let Some(r) = self.volumes.as_ref().and_then(|v| v.node_problem(pod, n)) {
            return Err(vec![r]);
        }
        let req = &self.requested[i];
        let taken = |p: &HostPort| req.host_ports.iter().any(|u| u.conflicts(p));
        if pod.requests.host_ports.iter().any(taken) {
            return Err(vec![Reason::NodePorts]);
        }
        let a = &n.allocatable;
        let mut fit = Vec::new();
        if req.pods + 1 > a.pods {
            fit.push(Reason::TooManyPods);
        }
        if pod.requests.cpu > 0 && req.cpu + pod.requests.cpu > a.cpu {
            fit.push(Reason::InsufficientCpu);
        }
        if pod.requests.memory > 0 && req.memory + pod.requests.memory > a.memory {
            fit.push(Reason::InsufficientMemory);
        }
        let want = &pod.requests;
        if want.ephemeral_storage > 0
            && req.ephemeral_storage + want.ephemeral_storage > a.ephemeral_storage
        {
            fit.push(Reason::InsufficientEphemeralStorage);
        }
        for (name, v) in &want.extended {
            if req.extended(name) + v > a.extended(name) {
                fit.push(Reason::InsufficientExtended(name.clone()));
            }
        }
        if !fit.is_empty() {
            return Err(fit);
        }
        // Existing pods' required anti-affinity that this pod would break.
        for idx in self.existing_anti.values() {
            if idx.term.matches(pod) {
                if let Some(d) = self.domain(i, &idx.term.topology_key) {
                    if idx.per_domain.get(d).is_some_and(|c| *c > 0) {
                        return Err(vec![Reason::ExistingAntiAffinity]);
                    }
                }
            }
        }
        for (k, t) in pod.affinity.iter().enumerate() {
            let total = self.term_index.get(&t.signature).map_or(0, |i| i.total);
            // The first pod of a group that matches its own affinity may go anywhere
            // with the topology key (Kubernetes' special case).
            let ok = if total == 0 && self_affine[k] {
                self.domain(i, &t.topology_key).is_some()
            } else {
                self.count_in_domain(t, i) > 0
            };
            if !ok {
                return Err(vec![Reason::PodAffinity]);
            }
        }
        for t in &pod.anti_affinity {
            if self.count_in_domain(t, i) > 0 {
                return Err(vec![Reason::PodAntiAffinity]);
            }
        }
        Ok(())
    }

    /// `siblings`: how many pods of the pod's owner each node holds (looked up once per
    /// pod, not once per node).
    fn raw_scores(&self, pod: &PodInfo, i: usize, siblings: Option<&HashMap<usize, u32>>) -> Raw {
        let n = &self.nodes[i];
        let req = &self.requested[i];
        let a = &n.allocatable;
        let part = |used: i64, cap: i64| -> i64 {
            if cap <= 0 {
                return 0;
            }
            let used = used.min(cap);
            match self.strategy {
                Strategy::LeastAllocated => (cap - used) * 100 / cap,
                Strategy::MostAllocated => used * 100 / cap,
            }
        };
        let fit = (part(req.cpu + pod.requests.cpu, a.cpu)
            + part(req.memory + pod.requests.memory, a.memory))
            / 2;
        let node_pref = pod
            .preferred_node_terms
            .iter()
            .filter(|(_, t)| term_matches(t, n))
            .map(|(w, _)| *w as i64)
            .sum();
        let pod_pref = pod
            .preferred_pod_terms
            .iter()
            .map(|(w, t)| *w as i64 * self.count_in_domain(t, i) as i64)
            .sum();
        let spread = siblings.and_then(|m| m.get(&i)).copied().unwrap_or(0) as i64;
        let taints = n
            .taints
            .iter()
            .filter(|t| {
                t.effect == "PreferNoSchedule" && !pod.tolerations.iter().any(|x| tolerates(x, t))
            })
            .count() as i64;
        Raw {
            node: i,
            fit,
            node_pref,
            pod_pref,
            spread,
            taints,
        }
    }

    /// Decides where one pod goes, and assumes it there.
    pub fn schedule(&mut self, pod: &PodInfo) -> Decision {
        if !pod.claims.is_empty() {
            let problem = match &self.volumes {
                Some(v) => v.pod_problem(pod),
                None => Some("the scheduler was given no view of the volumes".into()),
            };
            if let Some(p) = problem {
                return Decision::Unschedulable {
                    message: format!("0/{} nodes are available: {p}.", self.nodes.len()),
                    reasons: BTreeMap::new(),
                };
            }
        }
        for t in pod.affinity.iter().chain(&pod.anti_affinity) {
            self.index_term(t);
        }
        for (_, t) in &pod.preferred_pod_terms {
            self.index_term(t);
        }
        let self_affine: Vec<bool> = pod.affinity.iter().map(|t| t.matches(pod)).collect();
        let all = self.nodes.len();
        let want = self
            .nodes_to_score
            .unwrap_or_else(|| feasible_nodes_to_find(all));
        let mut feasible = Vec::with_capacity(want.min(all));
        let mut reasons: BTreeMap<Reason, usize> = BTreeMap::new();
        let mut looked = 0;
        let siblings = pod.owner.as_ref().and_then(|o| self.owners.get(o));
        while looked < all && feasible.len() < want {
            let i = (self.next_start + looked) % all;
            looked += 1;
            match self.filter(pod, i, &self_affine) {
                Ok(()) => feasible.push(self.raw_scores(pod, i, siblings)),
                Err(rs) => {
                    for r in rs {
                        *reasons.entry(r).or_default() += 1;
                    }
                }
            }
        }
        if all > 0 {
            self.next_start = (self.next_start + looked) % all;
        }
        if feasible.is_empty() {
            return Decision::Unschedulable {
                message: unschedulable_message(all, &reasons),
                reasons,
            };
        }
        let best = pick(&feasible);
        self.assume(pod.clone(), best);
        Decision::Bind(self.nodes[best].name.clone())
    }
}

/// Normalises each score to 0..=100 over the feasible nodes, weighs them as
/// kube-scheduler's default profile does, and returns the best node (the first on a tie).
fn pick(raw: &[Raw]) -> usize {
    let range = |f: fn(&Raw) -> i64| {
        let lo = raw.iter().map(f).min().unwrap_or(0);
        let hi = raw.iter().map(f).max().unwrap_or(0);
        (lo, hi)
    };
    let norm = |v: i64, (lo, hi): (i64, i64), reverse: bool| -> i64 {
        if hi == lo {
            return if reverse || hi > 0 { 100 } else { 0 };
        }
        let x = (v - lo) * 100 / (hi - lo);
        if reverse {
            100 - x
        } else {
            x
        }
    };
    let r_node = range(|r| r.node_pref);
    let r_pod = range(|r| r.pod_pref);
    let r_spread = range(|r| r.spread);
    let r_taint = range(|r| r.taints);
    let mut best = (i64::MIN, 0);
    for r in raw {
        let score = r.fit
            + 2 * norm(r.node_pref, r_node, false)
            + 2 * norm(r.pod_pref, r_pod, false)
            + 2 * norm(r.spread, r_spread, true)
            + 3 * norm(r.taints, r_taint, true);
        if score > best.0 {
            best = (score, r.node);
        }
    }
    best.1
}
