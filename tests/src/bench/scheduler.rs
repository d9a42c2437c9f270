//! `skiff-bench scheduler`: 10,000 pods onto 1,000 nodes with resource fit, spreading of
//! 100 owners' replicas and one required anti-affinity rule (500 pods of app=cache, one
//! per node), first through the scheduler's pure core, then end to end: pods in the
//! store, the controller manager's scheduler binding each with a durable write.
//!
//! The reference measured in the same run is the same core told to score every node
//! (Kubernetes' `percentageOfNodesToScore: 100`): the ratio shows what sampling buys.

use anyhow::Context;
use skiff_api::core::{Node, NodeSpec, NodeStatus};
use skiff_api::meta::{Condition, ObjectMeta, OwnerReference};
use skiff_api::pod::{
    Affinity, Container, Pod, PodAffinity, PodAffinityTerm, PodSpec, ResourceRequirements,
};
use skiff_api::quantity::Quantity;
use skiff_api::selector::LabelSelector;
use skiff_api::workloads::{PodTemplateSpec, ReplicaSet, ReplicaSetSpec};
use skiff_api::{Kind, Object};
use skiff_coordinator::controllers::runner::{now_secs, Config, Manager};
use skiff_coordinator::pki::Pki;
use skiff_coordinator::requests::Api;
use skiff_coordinator::sched::{Decision, NodeInfo, PodInfo, Scheduler, Strategy};
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const NODES: usize = 1_000;
const PODS: usize = 10_000;
const OWNERS: usize = 100;
const ANTI: usize = 500;

fn node(i: usize) -> Node {
    let name = format!("node-{i:04}");
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), name.clone());
    labels.insert("kubernetes.io/arch".to_string(), "arm64".to_string());
    labels.insert(
        "topology.kubernetes.io/zone".to_string(),
        format!("zone-{}", i % 3),
    );
    let mut alloc = BTreeMap::new();
    alloc.insert("cpu".to_string(), Quantity::from_millis(4000));
    alloc.insert("memory".to_string(), Quantity::from_value(8 << 30));
    alloc.insert("pods".to_string(), Quantity::from_value(110));
    Node {
        api_version: "v1".into(),
        kind: "Node".into(),
        metadata: ObjectMeta {
            name: Some(name),
            labels,
            ..Default::default()
        },
        spec: NodeSpec::default(),
        status: Some(NodeStatus {
            capacity: alloc.clone(),
            allocatable: alloc,
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn template(owner: usize) -> PodTemplateSpec {
    let app = if owner == 0 {
        "cache".to_string()
    } else {
        format!("app-{owner}")
    };
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), app);
    let mut requests = BTreeMap::new();
    requests.insert("cpu".to_string(), Quantity::from_millis(100));
    requests.insert("memory".to_string(), Quantity::from_value(128 << 20));
    let affinity = (owner == 0).then(|| Affinity {
        pod_anti_affinity: Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                label_selector: Some(LabelSelector {
                    match_labels: labels.clone(),
                    ..Default::default()
                }),
                topology_key: "kubernetes.io/hostname".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    });
    PodTemplateSpec {
        metadata: ObjectMeta {
            labels,
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("registry.local/app:1".into()),
                resources: Some(ResourceRequirements {
                    requests,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            affinity,
            ..Default::default()
        },
    }
}

/// Pods per owner: owner 0 (the anti-affine cache) has 500, the others share the rest.
fn owner_sizes() -> Vec<usize> {
    let rest = (PODS - ANTI) / (OWNERS - 1);
    let mut v = vec![ANTI];
    v.extend(std::iter::repeat_n(rest, OWNERS - 1));
    let extra = PODS - v.iter().sum::<usize>();
    v[1] += extra;
    v
}

fn pod(owner: usize, i: usize, owner_uid: &str) -> Pod {
    let t = template(owner);
    Pod {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            name: Some(format!("o{owner}-{i}")),
            namespace: Some("default".into()),
            labels: t.metadata.labels.clone(),
            owner_references: vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: format!("rs-{owner}"),
                uid: owner_uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }],
            ..Default::default()
        },
        spec: t.spec,
        status: None,
    }
}

/// One run of the pure core; `all_nodes` scores every feasible node.
fn pure_core(nodes: &[NodeInfo], pods: &[PodInfo], all_nodes: bool) -> anyhow::Result<f64> {
    let t = Instant::now();
    let mut s = Scheduler::new(nodes.to_vec(), Vec::new(), Strategy::LeastAllocated);
    if all_nodes {
        s.set_nodes_to_score(usize::MAX);
    }
    for p in pods {
        if let Decision::Unschedulable { message, .. } = s.schedule(p) {
            anyhow::bail!("{}: {message}", p.name);
        }
    }
    Ok(pods.len() as f64 / t.elapsed().as_secs_f64())
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<()> {
    let quiet = std::env::var_os("SKIFF_BENCH_QUIET").is_some();
    let runs: usize = super::env_number("SKIFF_BENCH_RUNS", 3);
    let nodes: Vec<NodeInfo> = (0..NODES).map(|i| NodeInfo::from_node(&node(i))).collect();
    let mut pods = Vec::with_capacity(PODS);
    for (o, n) in owner_sizes().into_iter().enumerate() {
        for i in 0..n {
            pods.push(PodInfo::from_pod(&pod(o, i, &format!("uid-{o}"))));
        }
    }
    // Interleave owners, as pods of many workloads arrive together.
    pods.sort_by_key(|p| {
        let n: usize = p
            .name
            .rsplit('-')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        (n, p.name.clone())
    });
    let mut core = Vec::new();
    let mut full = Vec::new();
    for _ in 0..runs {
        core.push(pure_core(&nodes, &pods, false)?);
        full.push(pure_core(&nodes, &pods, true)?);
    }
    core.sort_by(f64::total_cmp);
    full.sort_by(f64::total_cmp);
    let core_rate = core[core.len() / 2];
    let full_rate = full[full.len() / 2];
    if !quiet {
        println!("scheduler: {PODS} pods onto {NODES} nodes (resource fit, spreading of {OWNERS} owners, one anti-affinity rule over {ANTI} pods), median of {runs}");
        println!("  pure core, Kubernetes' sampling (42% of 1,000 nodes): {core_rate:>10.0} bindings/s ({:.2}x the 20,000/s target)", core_rate / 20_000.0);
        println!("  reference: the same core scoring every node:          {full_rate:>10.0} bindings/s (sampling is {:.2}x faster)", core_rate / full_rate);
    }
    let e2e = end_to_end()?;
    if !quiet {
        println!("  end to end (pods in the store, bound by the controller manager, each binding fsynced): {e2e:.0} bindings/s ({:.3}x the pure core)", e2e / core_rate);
    }
    println!("scheduler: {core_rate:.0} bindings/s (pure core)");
    Ok(())
}

fn end_to_end() -> anyhow::Result<f64> {
    let dir = crate::TempDir::new("bench-sched");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store =
            RedbStore::open(&dir.path().join("store"), RedbOptions::default()).context("store")?;
        let pki = Pki::load_or_create(&dir.path().join("pki"), &["localhost".into()])?;
        // 1,000 nodes need 1,000 /24s of pod addresses.
        let cidr = skiff_coordinator::nodes::parse_cluster_cidr("10.0.0.0/14")
            .map_err(anyhow::Error::msg)?;
        let api = Arc::new(Api {
            store,
            pki,
            nodes: skiff_coordinator::nodes::Nodes::new(cidr),
            pod_hub: Default::default(),
            services: Default::default(),
        });
        api.bootstrap().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..NODES {
            let api = api.clone();
            set.spawn(async move {
                let mut n = Object::Node(node(i));
                let created = api.create(n.clone()).await?;
                n.meta_mut().resource_version = Some(created.revision.to_string());
                api.update(n, true).await
            });
        }
        while let Some(r) = set.join_next().await {
            r?.map_err(|e| anyhow::anyhow!("node: {e}"))?;
        }
        for (o, n) in owner_sizes().into_iter().enumerate() {
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(format!("rs-{o}")),
                    namespace: Some("default".into()),
                    ..Default::default()
                },
                spec: ReplicaSetSpec {
                    replicas: Some(n as i32),
                    selector: Some(LabelSelector {
                        match_labels: template(o).metadata.labels,
                        ..Default::default()
                    }),
                    template: template(o),
                    ..Default::default()
                },
                ..Default::default()
            };
            let s = api
                .create(Object::ReplicaSet(rs))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let uid = Object::from_json(Kind::ReplicaSet, &s.json)?
                .meta()
                .uid
                .clone()
                .unwrap_or_default();
            for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
                let mut set = tokio::task::JoinSet::new();
                for &i in chunk {
                    let api = api.clone();
                    let p = pod(o, i, &uid);
                    set.spawn(async move { api.create(Object::Pod(p)).await });
                }
                while let Some(r) = set.join_next().await {
                    r?.map_err(|e| anyhow::anyhow!("pod: {e}"))?;
                }
            }
        }
        let mut mgr = Manager::new(api.clone(), Config::default());
        mgr.lease_override = Some(
            (0..NODES)
                .map(|i| (format!("node-{i:04}"), Some(std::time::Duration::ZERO)))
                .collect(),
        );
        let t = Instant::now();
        mgr.resync()?;
        for _ in 0..20 {
            mgr.pass(now_secs()).await;
            let pending = mgr
                .cache
                .typed::<skiff_api::pod::Pod>()
                .filter(|p| p.spec.node_name.is_none())
                .count();
            if pending == 0 {
                return Ok(PODS as f64 / t.elapsed().as_secs_f64());
            }
        }
        anyhow::bail!("pods left unbound after 20 passes")
    })
}
