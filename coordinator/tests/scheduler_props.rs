//! The scheduler's pure core over thousands of random clusters: no node is ever
//! over-committed, every required constraint of every binding holds, and the
//! unschedulable message counts each node under the reason a reference filter finds.

use proptest::prelude::*;
use skiff_api::conditions::tolerates;
use skiff_api::core::{Node, NodeStatus, Taint};
use skiff_api::meta::{Condition, ObjectMeta, OwnerReference};
use skiff_api::pod::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    Pod, PodAffinity, PodAffinityTerm, ResourceRequirements, Toleration,
};
use skiff_api::quantity::Quantity;
use skiff_api::selector::LabelSelector;
use skiff_coordinator::sched::{
    node_admits, untolerated, Decision, NodeInfo, PodInfo, Reason, Resources, Scheduler,
    Strategy as Scoring,
};
use std::collections::BTreeMap;

/// A small deterministic generator: each proptest case is one seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const ZONES: [&str; 3] = ["a", "b", "c"];
const ARCHES: [&str; 2] = ["amd64", "arm64"];
const APPS: [&str; 3] = ["web", "db", "cache"];

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn random_node(r: &mut Rng, i: usize) -> Node {
    let name = format!("n{i}");
    let mut labels = map(&[
        ("kubernetes.io/hostname", &name),
        ("kubernetes.io/arch", r.pick(&ARCHES)),
    ]);
    if r.chance(85) {
        labels.insert("topology.kubernetes.io/zone".into(), r.pick(&ZONES).into());
    }
    if r.chance(30) {
        labels.insert("disk".into(), "ssd".into());
    }
    let mut taints = Vec::new();
    if r.chance(15) {
        taints.push(Taint {
            key: "dedicated".into(),
            value: Some(r.pick(&["gpu", "infra"]).into()),
            effect: r
                .pick(&["NoSchedule", "NoExecute", "PreferNoSchedule"])
                .into(),
            time_added: None,
        });
    }
    let mut alloc = BTreeMap::new();
    alloc.insert(
        "cpu".into(),
        Quantity::from_millis(500 + r.below(8) as i64 * 250),
    );
    alloc.insert(
        "memory".into(),
        Quantity::from_value((256 + r.below(16) as i64 * 128) << 20),
    );
    alloc.insert("pods".into(), Quantity::from_value(1 + r.below(8) as i64));
    if r.chance(90) {
        alloc.insert(
            "ephemeral-storage".into(),
            Quantity::from_value((1 + r.below(8) as i64) << 30),
        );
    }
    // Extended resources, advertised in allocatable or (until the agent copies them)
    // in capacity only.
    let mut capacity = BTreeMap::new();
    if r.chance(40) {
        let gpus = Quantity::from_value(r.below(4) as i64);
        if r.chance(50) {
            alloc.insert("example.com/gpu".into(), gpus.clone());
        }
        capacity.insert("example.com/gpu".into(), gpus);
    }
    let ready = if r.chance(90) {
        "True"
    } else {
        r.pick(&["False", "Unknown"])
    };
    Node {
        metadata: ObjectMeta {
            name: Some(name),
            labels,
            ..Default::default()
        },
        spec: skiff_api::core::NodeSpec {
            unschedulable: r.chance(10).then_some(true),
            taints,
            ..Default::default()
        },
        status: Some(NodeStatus {
            allocatable: alloc,
            capacity,
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: ready.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn term(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: map(&[("app", app)]),
            ..Default::default()
        }),
        topology_key: key.into(),
        ..Default::default()
    }
}

fn random_pod(r: &mut Rng, i: usize) -> Pod {
    let app = r.pick(&APPS);
    let mut requests = BTreeMap::new();
    if r.chance(80) {
        requests.insert(
            "cpu".into(),
            Quantity::from_millis(50 + r.below(10) as i64 * 100),
        );
    }
    if r.chance(80) {
        requests.insert(
            "memory".into(),
            Quantity::from_value((32 + r.below(12) as i64 * 64) << 20),
        );
    }
    if r.chance(30) {
        requests.insert(
            "ephemeral-storage".into(),
            Quantity::from_value((1 + r.below(4) as i64) << 29),
        );
    }
    // Host ports, from a small set so that they collide.
    let mut ports = Vec::new();
    if r.chance(25) {
        ports.push(skiff_api::pod::ContainerPort {
            container_port: Some(80),
            host_port: Some(8080 + r.below(2) as i32),
            host_ip: r
                .chance(30)
                .then(|| r.pick(&["10.0.0.1", "10.0.0.2"]).to_string()),
            protocol: r.chance(30).then(|| "UDP".to_string()),
            ..Default::default()
        });
    }
    // An extended resource: a limit, and a request only ever equal to it.
    let mut limits = BTreeMap::new();
    if r.chance(20) {
        let gpus = Quantity::from_value(1 + r.below(2) as i64);
        if r.chance(50) {
            requests.insert("example.com/gpu".into(), gpus.clone());
        }
        limits.insert("example.com/gpu".into(), gpus);
    }
    let mut node_selector = BTreeMap::new();
    if r.chance(20) {
        node_selector.insert("kubernetes.io/arch".into(), r.pick(&ARCHES).into());
    }
    let mut affinity = Affinity::default();
    if r.chance(20) {
        affinity.node_affinity = Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: vec![NodeSelectorRequirement {
                        key: "topology.kubernetes.io/zone".into(),
                        operator: r.pick(&["In", "NotIn"]).into(),
                        values: vec![r.pick(&ZONES).into()],
                    }],
                    ..Default::default()
                }],
            }),
            ..Default::default()
        });
    }
    let key = r.pick(&["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    if r.chance(30) {
        affinity.pod_anti_affinity = Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: vec![term(app, key)],
            ..Default::default()
        });
    }
    if r.chance(15) {
        affinity.pod_affinity = Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: vec![term(r.pick(&APPS), key)],
            ..Default::default()
        });
    }
    let mut tolerations = Vec::new();
    if r.chance(25) {
        tolerations.push(Toleration {
            key: Some("dedicated".into()),
            operator: Some(r.pick(&["Exists", "Equal"]).into()),
            value: Some("gpu".into()),
            effect: None,
            toleration_seconds: None,
        });
    }
    if r.chance(5) {
        tolerations.push(Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        });
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("p{i}")),
            namespace: Some("default".into()),
            labels: map(&[("app", app)]),
            owner_references: vec![OwnerReference {
                uid: format!("owner-{app}"),
                controller: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        },
        spec: skiff_api::pod::PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements { requests, limits }),
                ports,
                ..Default::default()
            }],
            node_selector,
            affinity: Some(affinity),
            tolerations,
            ..Default::default()
        },
        status: None,
        ..Default::default()
    }
}

/// The reference filter, written from Kubernetes' plugin descriptions, independent of
/// the scheduler's indices: the reasons a node fails for, given what is placed.
fn reference_reasons(
    pod: &PodInfo,
    node: &NodeInfo,
    placed: &[(PodInfo, NodeInfo)],
    used: &Resources,
) -> Vec<Reason> {
    let cordon = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if node.unschedulable && !pod.tolerations.iter().any(|t| tolerates(t, &cordon)) {
        return vec![Reason::Unschedulable];
    }
    if let Some(t) = untolerated(&pod.tolerations, &node.taints) {
        return vec![Reason::Taint(
            t.key.clone(),
            t.value.clone().unwrap_or_default(),
        )];
    }
    if !node_admits(pod, node) {
        return vec![Reason::NodeAffinity];
    }
    // NodePorts: a wildcard address takes the port on every address.
    for want in &pod.requests.host_ports {
        if used.host_ports.iter().any(|u| {
            u.protocol == want.protocol
                && u.port == want.port
                && (u.ip == want.ip || [&u.ip, &want.ip].contains(&&"0.0.0.0".to_string()))
        }) {
            return vec![Reason::NodePorts];
        }
    }
    let mut fit = Vec::new();
    if used.pods + 1 > node.allocatable.pods {
        fit.push(Reason::TooManyPods);
    }
    if pod.requests.cpu > 0 && used.cpu + pod.requests.cpu > node.allocatable.cpu {
        fit.push(Reason::InsufficientCpu);
    }
    if pod.requests.memory > 0 && used.memory + pod.requests.memory > node.allocatable.memory {
        fit.push(Reason::InsufficientMemory);
    }
    let want = &pod.requests;
    if want.ephemeral_storage > 0
        && used.ephemeral_storage + want.ephemeral_storage > node.allocatable.ephemeral_storage
    {
        fit.push(Reason::InsufficientEphemeralStorage);
    }
    for (name, v) in &want.extended {
        let have = node.allocatable.extended.iter().find(|(n, _)| n == name);
        let had = used.extended.iter().find(|(n, _)| n == name);
        if had.map_or(0, |x| x.1) + v > have.map_or(0, |x| x.1) {
            fit.push(Reason::InsufficientExtended(name.clone()));
        }
    }
    if !fit.is_empty() {
        return fit;
    }
    let same_domain = |a: &NodeInfo, b: &NodeInfo, key: &str| matches!((a.labels.get(key), b.labels.get(key)), (Some(x), Some(y)) if x == y);
    for (q, qn) in placed {
        for t in &q.anti_affinity {
            if t.selector.matches(&pod.labels) && same_domain(node, qn, &t.topology_key) {
                return vec![Reason::ExistingAntiAffinity];
            }
        }
    }
    for t in &pod.affinity {
        let any = placed.iter().any(|(q, _)| t.selector.matches(&q.labels));
        let here = placed
            .iter()
            .any(|(q, qn)| t.selector.matches(&q.labels) && same_domain(node, qn, &t.topology_key));
        let ok = if !any && t.selector.matches(&pod.labels) {
            node.labels.contains_key(&t.topology_key)
        } else {
            here
        };
        if !ok {
            return vec![Reason::PodAffinity];
        }
    }
    for t in &pod.anti_affinity {
        if placed
            .iter()
            .any(|(q, qn)| t.selector.matches(&q.labels) && same_domain(node, qn, &t.topology_key))
        {
            return vec![Reason::PodAntiAffinity];
        }
    }
    Vec::new()
}

fn check_cluster(seed: u64, scoring: Scoring) -> Result<(), TestCaseError> {
    let mut r = Rng(seed | 1);
    let n_nodes = 1 + r.below(12) as usize;
    let n_pods = 1 + r.below(40) as usize;
    let nodes: Vec<NodeInfo> = (0..n_nodes)
        .map(|i| NodeInfo::from_node(&random_node(&mut r, i)))
        .collect();
    let pods: Vec<PodInfo> = (0..n_pods)
        .map(|i| PodInfo::from_pod(&random_pod(&mut r, i)))
        .collect();
    let mut s = Scheduler::new(nodes.clone(), Vec::new(), scoring);
    let mut placed: Vec<(PodInfo, NodeInfo)> = Vec::new();
    let mut used: BTreeMap<String, Resources> = BTreeMap::new();
    for p in &pods {
        let expected: Vec<(String, Vec<Reason>)> = nodes
            .iter()
            .map(|n| {
                let u = used.get(&n.name).cloned().unwrap_or_default();
                (n.name.clone(), reference_reasons(p, n, &placed, &u))
            })
            .collect();
        match s.schedule(p) {
            Decision::Bind(node) => {
                let (_, why) = expected.iter().find(|(n, _)| *n == node).unwrap();
                prop_assert!(
                    why.is_empty(),
                    "bound {} to {node} which fails {why:?}",
                    p.name
                );
                let n = nodes.iter().find(|n| n.name == node).unwrap().clone();
                let u = used.entry(node.clone()).or_default();
                u.cpu += p.requests.cpu;
                u.memory += p.requests.memory;
                u.pods += 1;
                u.ephemeral_storage += p.requests.ephemeral_storage;
                u.host_ports.extend(p.requests.host_ports.iter().cloned());
                let mut ext: BTreeMap<String, i64> = u.extended.iter().cloned().collect();
                for (name, v) in &p.requests.extended {
                    *ext.entry(name.clone()).or_default() += v;
                }
                u.extended = ext.into_iter().collect();
                // Never over-committed.
                prop_assert!(u.pods <= n.allocatable.pods);
                prop_assert!(u.cpu <= n.allocatable.cpu || p.requests.cpu == 0);
                prop_assert!(u.memory <= n.allocatable.memory || p.requests.memory == 0);
                prop_assert!(
                    u.ephemeral_storage <= n.allocatable.ephemeral_storage
                        || p.requests.ephemeral_storage == 0
                );
                for (name, v) in &u.extended {
                    prop_assert!(*v <= n.allocatable.extended(name), "{name} overcommitted");
                }
                prop_assert_eq!(s.requested(&node).unwrap(), u.clone());
                placed.push((p.clone(), n));
            }
            Decision::Unschedulable { message, reasons } => {
                prop_assert!(
                    expected.iter().all(|(_, w)| !w.is_empty()),
                    "{} refused but some node fits: {expected:?}",
                    p.name
                );
                let mut want: BTreeMap<Reason, usize> = BTreeMap::new();
                for (_, w) in &expected {
                    for x in w {
                        *want.entry(x.clone()).or_default() += 1;
                    }
                }
                prop_assert_eq!(&reasons, &want);
                prop_assert!(
                    message.starts_with(&format!("0/{n_nodes} nodes are available: ")),
                    "{}",
                    message
                );
                for (reason, count) in &want {
                    let part = format!("{count} {reason}");
                    prop_assert!(message.contains(&part), "{message} lacks {part}");
                }
            }
        }
    }
    // Every required constraint holds among all placements at the end.
    for (i, (p, n)) in placed.iter().enumerate() {
        prop_assert!(node_admits(p, n));
        prop_assert!(untolerated(&p.tolerations, &n.taints).is_none());
        for t in &p.anti_affinity {
            for (j, (q, qn)) in placed.iter().enumerate() {
                if i != j && t.selector.matches(&q.labels) {
                    let same = matches!((n.labels.get(&t.topology_key), qn.labels.get(&t.topology_key)), (Some(a), Some(b)) if a == b);
                    prop_assert!(
                        !same,
                        "{} and {} share a {} domain",
                        p.name,
                        q.name,
                        t.topology_key
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_clusters(seed in any::<u64>(), most in any::<bool>()) {
        check_cluster(seed, if most { Scoring::MostAllocated } else { Scoring::LeastAllocated })?;
    }
}

#[test]
fn message_has_kubernetes_shape() {
    let mut reasons = BTreeMap::new();
    reasons.insert(Reason::InsufficientMemory, 2);
    reasons.insert(Reason::NodeAffinity, 1);
    assert_eq!(
        skiff_coordinator::sched::unschedulable_message(3, &reasons),
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."
    );
}

#[test]
fn arch_selector_keeps_pods_off_other_platforms() {
    let mut r = Rng(7);
    let mut arm = random_node(&mut r, 0);
    arm.metadata
        .labels
        .insert("kubernetes.io/arch".into(), "arm64".into());
    arm.spec.taints.clear();
    arm.spec.unschedulable = None;
    arm.status.as_mut().unwrap().conditions[0].status = "True".into();
    let mut x86 = arm.clone();
    x86.metadata.name = Some("x86".into());
    x86.metadata
        .labels
        .insert("kubernetes.io/arch".into(), "amd64".into());
    let mut pod = random_pod(&mut r, 0);
    pod.spec.affinity = None;
    pod.spec.node_selector = map(&[("kubernetes.io/arch", "amd64")]);
    pod.spec.containers[0].resources = None;
    let mut s = Scheduler::new(
        vec![NodeInfo::from_node(&arm), NodeInfo::from_node(&x86)],
        Vec::new(),
        Scoring::LeastAllocated,
    );
    for _ in 0..3 {
        if let Decision::Bind(n) = s.schedule(&PodInfo::from_pod(&pod)) {
            assert_eq!(n, "x86");
        }
    }
}

#[test]
fn spreads_one_owners_replicas_and_packs_when_asked() {
    let mk = |name: &str| {
        let mut r = Rng(3);
        let mut n = random_node(&mut r, 0);
        n.metadata.name = Some(name.into());
        n.spec.taints.clear();
        n.spec.unschedulable = None;
        let st = n.status.as_mut().unwrap();
        st.conditions[0].status = "True".into();
        st.allocatable
            .insert("pods".into(), Quantity::from_value(110));
        st.allocatable
            .insert("cpu".into(), Quantity::from_millis(4000));
        st.allocatable
            .insert("memory".into(), Quantity::from_value(8 << 30));
        NodeInfo::from_node(&n)
    };
    let mut r = Rng(11);
    let mut pod = random_pod(&mut r, 0);
    pod.spec.affinity = None;
    pod.spec.tolerations.clear();
    pod.spec.node_selector.clear();
    pod.spec.containers[0].resources = Some(ResourceRequirements {
        requests: [("cpu".to_string(), Quantity::from_millis(100))].into(),
        ..Default::default()
    });
    let info = PodInfo::from_pod(&pod);
    let mut s = Scheduler::new(vec![mk("a"), mk("b")], Vec::new(), Scoring::LeastAllocated);
    let mut count: BTreeMap<String, i32> = BTreeMap::new();
    for _ in 0..4 {
        let Decision::Bind(n) = s.schedule(&info) else {
            panic!()
        };
        *count.entry(n).or_default() += 1;
    }
    assert_eq!(count.values().copied().collect::<Vec<_>>(), [2, 2]);
    let mut s = Scheduler::new(vec![mk("a"), mk("b")], Vec::new(), Scoring::MostAllocated);
    let mut other = info.clone();
    other.owner = None;
    let Decision::Bind(first) = s.schedule(&other) else {
        panic!()
    };
    for _ in 0..3 {
        let Decision::Bind(n) = s.schedule(&other) else {
            panic!()
        };
        assert_eq!(n, first, "bin packing keeps to the fuller node");
    }
}

#[test]
fn extended_resources_and_ephemeral_storage_count_as_kubernetes_counts_them() {
    let gpu = |n: i64| ("example.com/gpu".to_string(), Quantity::from_value(n));
    let res = |requests: Vec<(String, Quantity)>, limits: Vec<(String, Quantity)>| {
        Some(ResourceRequirements {
            requests: requests.into_iter().collect(),
            limits: limits.into_iter().collect(),
        })
    };
    let eph = |gib: i64| {
        (
            "ephemeral-storage".to_string(),
            Quantity::from_value(gib << 30),
        )
    };
    let mut pod = random_pod(&mut Rng(5), 0);
    pod.spec.affinity = None;
    pod.spec.tolerations.clear();
    pod.spec.node_selector.clear();
    // Requests default to limits; containers add up, an init container counts alone.
    pod.spec.containers = vec![
        Container {
            name: "a".into(),
            resources: res(vec![eph(1)], vec![gpu(1)]),
            ..Default::default()
        },
        Container {
            name: "b".into(),
            resources: res(vec![gpu(1)], vec![gpu(1)]),
            ..Default::default()
        },
    ];
    pod.spec.init_containers = vec![Container {
        name: "init".into(),
        resources: res(vec![eph(3)], vec![gpu(1)]),
        ..Default::default()
    }];
    let info = PodInfo::from_pod(&pod);
    assert_eq!(info.requests.extended, vec![("example.com/gpu".into(), 2)]);
    assert_eq!(info.requests.ephemeral_storage, 3 << 30);

    let node = |name: &str, capacity: Vec<(String, Quantity)>, alloc: Vec<(String, Quantity)>| {
        let mut n = random_node(&mut Rng(3), 0);
        n.metadata.name = Some(name.into());
        n.spec.taints.clear();
        n.spec.unschedulable = None;
        let st = n.status.as_mut().unwrap();
        st.conditions[0].status = "True".into();
        st.allocatable
            .insert("pods".into(), Quantity::from_value(110));
        st.allocatable.remove("cpu");
        st.allocatable.remove("memory");
        st.allocatable.extend(alloc);
        st.capacity = capacity.into_iter().collect();
        st.allocatable.remove("example.com/gpu");
        NodeInfo::from_node(&n)
    };
    // Advertised in capacity only (an admin's status patch the agent has not copied
    // yet): it counts. Allocatable, when present, wins over capacity.
    let fresh = node("fresh", vec![gpu(4)], vec![eph(16)]);
    assert_eq!(fresh.allocatable.extended("example.com/gpu"), 4);
    let mut n = random_node(&mut Rng(3), 0);
    let st = n.status.as_mut().unwrap();
    st.capacity.extend([gpu(4)]);
    st.allocatable.extend([gpu(1)]);
    assert_eq!(
        NodeInfo::from_node(&n)
            .allocatable
            .extended("example.com/gpu"),
        1
    );

    let none = node("none", vec![], vec![eph(8)]);
    let small = node("small", vec![gpu(4)], vec![eph(2)]);
    let mut s = Scheduler::new(
        vec![none, small, fresh],
        Vec::new(),
        Scoring::LeastAllocated,
    );
    // Two such pods fit "fresh" (4 GPUs, 16 GiB); the third finds no GPU left.
    for _ in 0..2 {
        assert_eq!(s.schedule(&info), Decision::Bind("fresh".into()));
    }
    let Decision::Unschedulable { message, .. } = s.schedule(&info) else {
        panic!("a third pod must not fit")
    };
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient ephemeral-storage, 2 Insufficient example.com/gpu."
    );
}
