//! The controllers and the scheduler on a simulated cluster: the real API and redb store
//! in a temporary directory, the real controller manager doing its passes, and simulated
//! nodes that run what is bound to them (Running and Ready one step later, exiting when a
//! test says so) and confirm deletions, unless they are "down". No root, no containers;
//! time is simulated (one second per step).

use skiff_api::core::Node;
use skiff_api::manifest::parse_manifests;
use skiff_api::meta::Condition;
use skiff_api::pod::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus};
use skiff_api::util::rfc3339;
use skiff_api::wire::Propagation;
use skiff_api::workloads::{DaemonSet, Deployment, Job, ReplicaSet};
use skiff_api::{Kind, Object, ObjectKey};
use skiff_coordinator::controllers::node_lifecycle::Lifecycle;
use skiff_coordinator::controllers::runner::{now_secs, Config, Manager};
use skiff_coordinator::pki::Pki;
use skiff_coordinator::requests::{Api, DeleteOptions};
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use skiff_coordinator::store::Store;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

struct Sim {
    api: Arc<Api<RedbStore>>,
    mgr: Manager<RedbStore>,
    now: u64,
    down: HashSet<String>,
    /// Pods told to exit, by name prefix: exit code.
    exits: Vec<(String, i32)>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn node_yaml(name: &str, zone: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{kubernetes.io/hostname: {name}, kubernetes.io/arch: amd64, topology.kubernetes.io/zone: {zone}}}
status:
  allocatable: {{cpu: "4", memory: 8Gi, pods: "110"}}
  capacity: {{cpu: "4", memory: 8Gi, pods: "110"}}
  conditions: [{{type: Ready, status: "True", reason: KubeletReady}}]
"#
    )
}

fn key(kind: Kind, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: if kind.namespaced() {
            "default".into()
        } else {
            String::new()
        },
        name: name.into(),
    }
}

impl Sim {
    async fn new(nodes: &[&str], eviction_timeout: i64) -> Sim {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "skiff-sim-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = RedbStore::open(&dir.join("store"), RedbOptions::default()).unwrap();
        let pki = Pki::load_or_create(&dir.join("pki"), &["localhost".into()]).unwrap();
        let api = Arc::new(Api {
            store,
            pki,
            nodes: Default::default(),
            pod_hub: Default::default(),
            services: Default::default(),
        });
        api.bootstrap().await.unwrap();
        let mut mgr = Manager::new(
            api.clone(),
            Config {
                lifecycle: Lifecycle {
                    grace: Duration::from_secs(2),
                    eviction_timeout,
                },
                ..Default::default()
            },
        );
        mgr.lease_override = Some(HashMap::new());
        let mut sim = Sim {
            api,
            mgr,
            now: now_secs(),
            down: HashSet::new(),
            exits: Vec::new(),
            _dir: TempDir(dir),
        };
        for (i, n) in nodes.iter().enumerate() {
            sim.add_node(n, ["a", "b", "c"][i % 3]).await;
        }
        sim
    }

    async fn add_node(&mut self, name: &str, zone: &str) {
        self.apply(&node_yaml(name, zone)).await;
        // The API keeps status off created objects except a Node's own report.
        let mut o = parse_manifests(&node_yaml(name, zone))
            .unwrap()
            .remove(0)
            .object;
        o.meta_mut().resource_version = None;
        self.api.update(o, true).await.unwrap();
    }

    /// Deletes as a user would (`skiff delete --cascade=...`).
    async fn delete(&self, kind: Kind, name: &str, propagation: Propagation) {
        let opts = DeleteOptions {
            propagation,
            ..Default::default()
        };
        self.api
            .delete_object(&key(kind, name), opts)
            .await
            .unwrap();
    }

    async fn apply(&self, yaml: &str) {
        for m in parse_manifests(yaml).unwrap() {
            self.api.apply(m.object).await.unwrap();
        }
    }

    fn leases(&mut self) {
        let nodes: Vec<String> = self
            .list(Kind::Node)
            .iter()
            .map(|o| o.meta().name().to_string())
            .collect();
        let m = self.mgr.lease_override.as_mut().unwrap();
        m.clear();
        for n in nodes {
            let age = if self.down.contains(&n) {
                Duration::from_secs(100)
            } else {
                Duration::ZERO
            };
            m.insert(n, Some(age));
        }
    }

    /// One second: the controllers' pass, then every up node does its part.
    async fn step(&mut self) {
        self.now += 1;
        self.leases();
        self.mgr.resync().unwrap();
        self.mgr.pass(self.now).await;
        self.kubelets().await;
    }

    async fn kubelets(&mut self) {
        for p in self.pods() {
            let Some(node) = p.spec.node_name.clone() else {
                continue;
            };
            if self.down.contains(&node) {
                continue;
            }
            let k = key(Kind::Pod, p.metadata.name());
            if p.metadata.deletion_timestamp.is_some() {
                // The node stopped it and confirms.
                let _ = self
                    .api
                    .delete_object(
                        &k,
                        DeleteOptions {
                            uid: p.metadata.uid.as_deref(),
                            grace: Some(0),
                            by_node: true,
                            ..Default::default()
                        },
                    )
                    .await;
                continue;
            }
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let exit = self
                .exits
                .iter()
                .find(|(prefix, _)| p.metadata.name().starts_with(prefix.as_str()))
                .map(|(_, c)| *c);
            let next = match (phase.as_str(), exit) {
                ("Running", Some(code)) => Some(if code == 0 { "Succeeded" } else { "Failed" }),
                ("Running", None) | ("Succeeded", _) | ("Failed", _) => None,
                _ => Some("Running"),
            };
            let Some(next) = next else { continue };
            let mut q = p.clone();
            let t = rfc3339(self.now);
            let running = next == "Running";
            q.status = Some(PodStatus {
                phase: Some(next.into()),
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: if running { "True" } else { "False" }.into(),
                    last_transition_time: Some(t.clone()),
                    ..Default::default()
                }],
                container_statuses: vec![ContainerStatus {
                    name: "c".into(),
                    ready: Some(running),
                    restart_count: Some(0),
                    state: (!running).then(|| ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: exit,
                            finished_at: Some(t.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            });
            q.metadata.resource_version = None;
            let _ = self.api.update(Object::Pod(q), true).await;
        }
    }

    fn list(&self, kind: Kind) -> Vec<Object> {
        let (_, items) = self.api.store.list(kind, None).unwrap();
        items
            .iter()
            .map(|s| Object::from_json(kind, &s.json).unwrap())
            .collect()
    }

    fn pods(&self) -> Vec<Pod> {
        self.list(Kind::Pod)
            .into_iter()
            .map(|o| match o {
                Object::Pod(p) => p,
                _ => unreachable!(),
            })
            .collect()
    }

    fn get(&self, kind: Kind, name: &str) -> Option<Object> {
        let s = self.api.store.get(&key(kind, name)).unwrap()?;
        Some(Object::from_json(kind, &s.json).unwrap())
    }

    fn deployment(&self, name: &str) -> Deployment {
        match self.get(Kind::Deployment, name) {
            Some(Object::Deployment(d)) => d,
            o => panic!("deployment {name}: {o:?}"),
        }
    }

    fn replica_sets(&self) -> Vec<ReplicaSet> {
        self.list(Kind::ReplicaSet)
            .into_iter()
            .map(|o| match o {
                Object::ReplicaSet(r) => r,
                _ => unreachable!(),
            })
            .collect()
    }

    /// Steps until `f` holds (at most `n` steps).
    async fn until(&mut self, n: usize, what: &str, mut f: impl FnMut(&Sim) -> bool) {
        for _ in 0..n {
            if f(self) {
                return;
            }
            self.step().await;
        }
        assert!(
            f(self),
            "after {n} steps: {what}; pods: {:#?}",
            self.summary()
        );
    }

    fn summary(&self) -> Vec<String> {
        self.pods()
            .iter()
            .map(|p| {
                format!(
                    "{} node={:?} phase={:?} deleting={} image={:?}",
                    p.metadata.name(),
                    p.spec.node_name,
                    p.status.as_ref().and_then(|s| s.phase.clone()),
                    p.metadata.deletion_timestamp.is_some(),
                    p.spec.containers[0].image
                )
            })
            .collect()
    }
}

fn live(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && !matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        )
}

fn ready(p: &Pod) -> bool {
    live(p)
        && p.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

fn image(p: &Pod) -> &str {
    p.spec.containers[0].image.as_deref().unwrap_or("")
}

fn deployment_yaml(name: &str, replicas: i32, image: &str, strategy: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {strategy}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: "{image}"}}]
"#
    )
}

async fn rollout_within_bounds(replicas: i32, strategy: &str, surge: i32, unavailable: i32) {
    let mut sim = Sim::new(&["a", "b", "c"], 300).await;
    sim.apply(&deployment_yaml("web", replicas, "img:1", strategy))
        .await;
    sim.until(30, "all replicas ready", |s| {
        s.pods().iter().filter(|p| ready(p)).count() == replicas as usize
    })
    .await;
    let d = sim.deployment("web");
    assert_eq!(
        d.metadata
            .annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    sim.apply(&deployment_yaml("web", replicas, "img:2", strategy))
        .await;
    let mut done = false;
    for _ in 0..80 {
        sim.step().await;
        let pods = sim.pods();
        let live_n = pods.iter().filter(|p| live(p)).count() as i32;
        let ready_n = pods.iter().filter(|p| ready(p)).count() as i32;
        assert!(
            live_n <= replicas + surge,
            "{live_n} pods > {replicas}+{surge}: {:#?}",
            sim.summary()
        );
        assert!(
            ready_n >= replicas - unavailable,
            "{ready_n} ready < {replicas}-{unavailable}: {:#?}",
            sim.summary()
        );
        if pods
            .iter()
            .filter(|p| ready(p) && image(p) == "img:2")
            .count()
            == replicas as usize
            && pods.iter().all(|p| image(p) == "img:2")
        {
            done = true;
            break;
        }
    }
    assert!(done, "the rollout did not finish: {:#?}", sim.summary());
    sim.until(5, "status caught up", |s| {
        let st = s.deployment("web").status.unwrap_or_default();
        st.updated_replicas == Some(replicas)
            && st.available_replicas == Some(replicas)
            && st.conditions.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            })
    })
    .await;
    let d = sim.deployment("web");
    assert_eq!(
        d.metadata
            .annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("2")
    );
    let progressing = d
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );

    // Undo: the template of revision 1 comes back as revision 3.
    let rss = sim.replica_sets();
    assert_eq!(rss.len(), 2);
    let (rev, template) = skiff_api::workloads::rollback_template(&d_now(&sim), &rss, 0).unwrap();
    assert_eq!(rev, 1);
    let mut d = d_now(&sim);
    d.spec.template = template;
    sim.api.update(Object::Deployment(d), false).await.unwrap();
    sim.until(80, "undo rolled back to img:1", |s| {
        let pods = s.pods();
        pods.iter()
            .filter(|p| ready(p) && image(p) == "img:1")
            .count()
            == replicas as usize
            && pods.iter().all(|p| image(p) == "img:1")
    })
    .await;
    sim.until(5, "revision 3", |s| {
        s.deployment("web")
            .metadata
            .annotations
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str)
            == Some("3")
    })
    .await;
    assert_eq!(
        sim.replica_sets().len(),
        2,
        "the old ReplicaSet was reused, not copied"
    );
}

fn d_now(sim: &Sim) -> Deployment {
    let mut d = sim.deployment("web");
    d.metadata.resource_version = None;
    d
}

#[tokio::test]
async fn rolling_update_keeps_surge_and_availability_and_undo_restores() {
    rollout_within_bounds(
        6,
        "{type: RollingUpdate, rollingUpdate: {maxSurge: 2, maxUnavailable: 1}}",
        2,
        1,
    )
    .await;
}

#[tokio::test]
async fn rolling_update_with_percentages() {
    // 25% of 4: surge rounds up to 1, unavailable down to 1.
    rollout_within_bounds(4, "{}", 1, 1).await;
}

#[tokio::test]
async fn recreate_removes_old_pods_before_new_ones() {
    let mut sim = Sim::new(&["a", "b"], 300).await;
    sim.apply(&deployment_yaml("web", 3, "img:1", "{type: Recreate}"))
        .await;
    sim.until(30, "ready", |s| {
        s.pods().iter().filter(|p| ready(p)).count() == 3
    })
    .await;
    sim.apply(&deployment_yaml("web", 3, "img:2", "{type: Recreate}"))
        .await;
    for _ in 0..40 {
        sim.step().await;
        let pods = sim.pods();
        let old = pods.iter().any(|p| image(p) == "img:1");
        let new = pods.iter().any(|p| image(p) == "img:2");
        assert!(
            !(old && new),
            "old and new pods together: {:#?}",
            sim.summary()
        );
        if pods
            .iter()
            .filter(|p| ready(p) && image(p) == "img:2")
            .count()
            == 3
        {
            return;
        }
    }
    panic!("recreate did not finish: {:#?}", sim.summary());
}

#[tokio::test]
async fn paused_deployment_does_not_roll_and_history_is_limited() {
    let mut sim = Sim::new(&["a"], 300).await;
    let y = |img: &str, paused: bool| {
        deployment_yaml("web", 1, img, "{}").replace(
            "  replicas: 1\n",
            &format!("  replicas: 1\n  revisionHistoryLimit: 1\n  paused: {paused}\n"),
        )
    };
    sim.apply(&y("img:1", false)).await;
    sim.until(20, "ready", |s| s.pods().iter().any(ready)).await;
    sim.apply(&y("img:2", true)).await;
    for _ in 0..5 {
        sim.step().await;
    }
    assert!(
        sim.pods().iter().all(|p| image(p) == "img:1"),
        "a paused deployment rolled"
    );
    let cond = sim
        .deployment("web")
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("DeploymentPaused"));
    sim.apply(&y("img:2", false)).await;
    sim.until(30, "img:2", |s| {
        s.pods().iter().any(|p| ready(p) && image(p) == "img:2")
            && s.pods().iter().all(|p| image(p) == "img:2")
    })
    .await;
    sim.apply(&y("img:3", false)).await;
    sim.until(30, "img:3 and one old ReplicaSet kept", |s| {
        s.pods().iter().all(|p| image(p) == "img:3")
            && s.pods().iter().any(ready)
            && s.replica_sets().len() == 2
    })
    .await;
}

#[tokio::test]
async fn progress_deadline_is_reported() {
    let mut sim = Sim::new(&["a"], 300).await;
    // A pod that can never be scheduled: the rollout cannot progress.
    let y = deployment_yaml("web", 1, "img:1", "{}")
        .replace(
            "  replicas: 1\n",
            "  replicas: 1\n  progressDeadlineSeconds: 5\n",
        )
        .replace(
            "      containers:",
            "      nodeSelector: {nowhere: \"true\"}\n      containers:",
        );
    sim.apply(&y).await;
    sim.until(20, "ProgressDeadlineExceeded", |s| {
        s.deployment("web")
            .status
            .unwrap_or_default()
            .conditions
            .iter()
            .any(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
    })
    .await;
    let p = sim.pods().remove(0);
    let c = p
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(c.status, "False");
    assert_eq!(
        c.message.as_deref(),
        Some("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
    );
}

#[tokio::test]
async fn unschedulable_pods_retry_when_a_node_joins() {
    let mut sim = Sim::new(&["a", "b"], 300).await;
    sim.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers: [{name: c, image: x, resources: {requests: {memory: 16Gi}}}]
"#,
    )
    .await;
    sim.until(5, "refused", |s| {
        s.pods()[0].status.as_ref().is_some_and(|st| {
            st.conditions.iter().any(|c| {
                c.message.as_deref() == Some("0/2 nodes are available: 2 Insufficient memory.")
            })
        })
    })
    .await;
    let mut big = parse_manifests(&node_yaml("big", "a"))
        .unwrap()
        .remove(0)
        .object;
    if let Object::Node(n) = &mut big {
        n.status.as_mut().unwrap().allocatable.insert(
            "memory".into(),
            skiff_api::quantity::Quantity::parse("32Gi").unwrap(),
        );
    }
    sim.api.apply(big.clone()).await.unwrap();
    big.meta_mut().resource_version = None;
    sim.api.update(big, true).await.unwrap();
    sim.until(5, "bound to the new node", |s| {
        s.pods()[0].spec.node_name.as_deref() == Some("big")
    })
    .await;
}

#[tokio::test]
async fn daemonset_follows_nodes_and_rolls() {
    let mut sim = Sim::new(&["a", "b"], 300).await;
    let ds = |img: &str| {
        format!(
            r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      nodeSelector: {{kubernetes.io/arch: amd64}}
      containers: [{{name: c, image: "{img}"}}]
"#
        )
    };
    sim.apply(&ds("d:1")).await;
    let per_node = |s: &Sim| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for p in s.pods().iter().filter(|p| ready(p)) {
            *m.entry(p.spec.node_name.clone().unwrap()).or_default() += 1;
        }
        m
    };
    sim.until(10, "one pod on each of a, b", |s| {
        per_node(s) == BTreeMap::from([("a".into(), 1), ("b".into(), 1)])
    })
    .await;
    sim.add_node("c", "c").await;
    sim.until(10, "a pod on the new node", |s| {
        per_node(s).get("c") == Some(&1)
    })
    .await;
    // A node the template does not admit gets none.
    let mut arm = node_yaml("arm", "a").replace("arch: amd64", "arch: arm64");
    arm.push('\n');
    sim.apply(&arm).await;
    sim.step().await;
    sim.step().await;
    assert!(sim
        .pods()
        .iter()
        .all(|p| p.spec.node_name.as_deref() != Some("arm")));
    // A node that leaves takes its pod along.
    sim.delete(Kind::Node, "c", Propagation::Background).await;
    sim.until(10, "the pod of the removed node is gone", |s| {
        s.pods()
            .iter()
            .all(|p| p.spec.node_name.as_deref() != Some("c"))
    })
    .await;
    // Rolling update: never more than one node without an available pod.
    sim.apply(&ds("d:2")).await;
    for _ in 0..30 {
        sim.step().await;
        let ready_n = sim.pods().iter().filter(|p| ready(p)).count();
        assert!(
            ready_n >= 1,
            "more than one node unavailable at once: {:#?}",
            sim.summary()
        );
        if sim
            .pods()
            .iter()
            .filter(|p| ready(p) && image(p) == "d:2")
            .count()
            == 2
            && sim.pods().iter().all(|p| image(p) == "d:2")
        {
            let ds = match sim.get(Kind::DaemonSet, "agent") {
                Some(Object::DaemonSet(d)) => d,
                _ => panic!(),
            };
            sim.step().await;
            let st: DaemonSet = match sim.get(Kind::DaemonSet, "agent") {
                Some(Object::DaemonSet(d)) => d,
                _ => panic!(),
            };
            let _ = ds;
            assert_eq!(st.status.unwrap().desired_number_scheduled, Some(2));
            return;
        }
    }
    panic!("the DaemonSet did not roll: {:#?}", sim.summary());
}

fn sts_yaml(replicas: i32, policy: &str, img: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  replicas: {replicas}
  serviceName: db
  podManagementPolicy: {policy}
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers: [{{name: c, image: "{img}"}}]
"#
    )
}

#[tokio::test]
async fn statefulset_ordered_creation_scale_down_and_stable_identity() {
    let mut sim = Sim::new(&["a", "b"], 300).await;
    sim.apply(&sts_yaml(3, "OrderedReady", "s:1")).await;
    for _ in 0..30 {
        sim.step().await;
        let pods = sim.pods();
        let names: HashSet<String> = pods.iter().map(|p| p.metadata.name().to_string()).collect();
        for i in 1..3 {
            if names.contains(&format!("db-{i}")) {
                let prev = pods
                    .iter()
                    .find(|p| p.metadata.name() == format!("db-{}", i - 1));
                assert!(
                    prev.is_some_and(ready),
                    "db-{i} exists before db-{} is ready",
                    i - 1
                );
            }
        }
        if pods.iter().filter(|p| ready(p)).count() == 3 {
            break;
        }
    }
    let pods = sim.pods();
    assert_eq!(
        pods.iter().filter(|p| ready(p)).count(),
        3,
        "{:#?}",
        sim.summary()
    );
    let p1 = pods.iter().find(|p| p.metadata.name() == "db-1").unwrap();
    assert_eq!(p1.spec.hostname.as_deref(), Some("db-1"));
    assert_eq!(p1.spec.subdomain.as_deref(), Some("db"));
    // A replaced pod keeps its name.
    let old_uid = p1.metadata.uid.clone();
    sim.delete(Kind::Pod, "db-1", Propagation::Background).await;
    sim.until(10, "db-1 back with a new uid", |s| {
        s.pods()
            .iter()
            .any(|p| p.metadata.name() == "db-1" && p.metadata.uid != old_uid && ready(p))
    })
    .await;
    // Scale down: from the highest ordinal, one at a time.
    sim.apply(&sts_yaml(1, "OrderedReady", "s:1")).await;
    let mut seen_order = Vec::new();
    for _ in 0..20 {
        sim.step().await;
        let names: Vec<String> = sim
            .pods()
            .iter()
            .map(|p| p.metadata.name().to_string())
            .collect();
        if !names.contains(&"db-2".to_string()) && !seen_order.contains(&2) {
            assert!(names.contains(&"db-1".to_string()), "db-1 went before db-2");
            seen_order.push(2);
        }
        if !names.contains(&"db-1".to_string()) && !seen_order.contains(&1) {
            seen_order.push(1);
        }
        if names == ["db-0"] {
            break;
        }
    }
    assert_eq!(seen_order, [2, 1]);
}

#[tokio::test]
async fn statefulset_parallel_creates_all_at_once() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.apply(&sts_yaml(3, "Parallel", "s:1")).await;
    sim.step().await;
    assert_eq!(sim.pods().len(), 3);
}

fn job_yaml(name: &str, completions: i32, parallelism: i32, backoff: i32, extra: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  completions: {completions}
  parallelism: {parallelism}
  backoffLimit: {backoff}
{extra}  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: "j:1"}}]
"#
    )
}

fn job(sim: &Sim, name: &str) -> Option<Job> {
    match sim.get(Kind::Job, name) {
        Some(Object::Job(j)) => Some(j),
        _ => None,
    }
}

#[tokio::test]
async fn job_completes_with_parallelism_and_is_removed_after_ttl() {
    let mut sim = Sim::new(&["a", "b"], 300).await;
    sim.exits.push(("work-".into(), 0));
    sim.apply(&job_yaml("work", 3, 2, 6, "  ttlSecondsAfterFinished: 5\n"))
        .await;
    let mut complete = false;
    for _ in 0..30 {
        sim.step().await;
        assert!(
            sim.pods().iter().filter(|p| live(p)).count() <= 2,
            "parallelism exceeded"
        );
        let j = job(&sim, "work").unwrap();
        if j.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        }) {
            assert_eq!(j.status.as_ref().unwrap().succeeded, Some(3));
            complete = true;
            break;
        }
    }
    assert!(complete, "{:#?}", sim.summary());
    sim.until(10, "job and its pods removed after the TTL", |s| {
        job(s, "work").is_none() && s.pods().is_empty()
    })
    .await;
}

#[tokio::test]
async fn job_fails_after_backoff_limit_with_growing_delays() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.exits.push(("bad-".into(), 1));
    sim.apply(&job_yaml("bad", 1, 1, 2, "")).await;
    let mut created: Vec<u64> = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..120 {
        sim.step().await;
        for p in sim.pods() {
            if seen.insert(p.metadata.uid.clone()) {
                created.push(sim.now);
            }
        }
        if job(&sim, "bad").unwrap().status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Failed" && c.reason.as_deref() == Some("BackoffLimitExceeded"))
        }) {
            break;
        }
    }
    assert_eq!(created.len(), 3, "backoffLimit 2 allows three attempts");
    // 10 s after the first failure, 20 s after the second (one step of slack each way).
    let gaps: Vec<u64> = created.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] >= 10 && gaps[1] >= 20 && gaps[1] > gaps[0],
        "{gaps:?}"
    );
    let st = job(&sim, "bad").unwrap().status.unwrap();
    assert_eq!(st.failed, Some(3));
}

#[tokio::test]
async fn job_active_deadline() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.apply(&job_yaml("slow", 1, 1, 6, "  activeDeadlineSeconds: 3\n"))
        .await;
    sim.until(10, "DeadlineExceeded and no pod left running", |s| {
        job(s, "slow").unwrap().status.is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.reason.as_deref() == Some("DeadlineExceeded"))
        }) && s.pods().iter().all(|p| !live(p))
    })
    .await;
}

async fn cascade(propagation: Propagation) -> Sim {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.apply(&deployment_yaml("web", 2, "img:1", "{}")).await;
    sim.until(20, "ready", |s| {
        s.pods().iter().filter(|p| ready(p)).count() == 2
    })
    .await;
    sim.delete(Kind::Deployment, "web", propagation).await;
    sim
}

#[tokio::test]
async fn cascade_background() {
    let mut sim = cascade(Propagation::Background).await;
    assert!(
        sim.get(Kind::Deployment, "web").is_none(),
        "background: the owner goes at once"
    );
    sim.until(10, "ReplicaSet and pods collected", |s| {
        s.replica_sets().is_empty() && s.pods().is_empty()
    })
    .await;
}

#[tokio::test]
async fn cascade_foreground() {
    let mut sim = cascade(Propagation::Foreground).await;
    let d = sim.deployment("web");
    assert!(d.metadata.deletion_timestamp.is_some());
    assert!(d
        .metadata
        .finalizers
        .contains(&"foregroundDeletion".to_string()));
    let mut owner_seen_without_dependents = false;
    for _ in 0..15 {
        sim.step().await;
        let owner = sim.get(Kind::Deployment, "web").is_some();
        let deps = !sim.pods().is_empty() || !sim.replica_sets().is_empty();
        assert!(
            owner || !deps,
            "foreground: the owner went before its dependents"
        );
        if !owner {
            owner_seen_without_dependents = true;
            break;
        }
    }
    assert!(
        owner_seen_without_dependents,
        "the owner never went: {:#?}",
        sim.summary()
    );
}

#[tokio::test]
async fn cascade_orphan() {
    let mut sim = cascade(Propagation::Orphan).await;
    sim.until(10, "owner gone", |s| {
        s.get(Kind::Deployment, "web").is_none()
    })
    .await;
    for _ in 0..3 {
        sim.step().await;
    }
    let rss = sim.replica_sets();
    assert_eq!(rss.len(), 1, "orphan: the ReplicaSet stays");
    assert!(
        rss[0].metadata.owner_references.is_empty(),
        "its owner reference is removed"
    );
    assert_eq!(
        sim.pods().iter().filter(|p| ready(p)).count(),
        2,
        "its pods keep running"
    );
    // The Deployment applied again adopts its old ReplicaSet and pods: nothing restarts.
    let uids: HashSet<Option<String>> = sim.pods().iter().map(|p| p.metadata.uid.clone()).collect();
    sim.apply(&deployment_yaml("web", 2, "img:1", "{}")).await;
    sim.until(10, "the ReplicaSet adopted", |s| {
        let rss = s.replica_sets();
        rss.len() == 1
            && rss[0]
                .metadata
                .owner_references
                .iter()
                .any(|r| r.kind == "Deployment" && r.controller == Some(true))
    })
    .await;
    for _ in 0..3 {
        sim.step().await;
    }
    let now: HashSet<Option<String>> = sim.pods().iter().map(|p| p.metadata.uid.clone()).collect();
    assert_eq!(uids, now, "the same pods, none replaced");
}

#[tokio::test]
async fn silent_node_is_tainted_and_its_pods_replaced() {
    let mut sim = Sim::new(&["a", "b"], 0).await;
    sim.apply(&deployment_yaml("web", 4, "img:1", "{}")).await;
    sim.until(20, "4 ready, spread 2+2", |s| {
        let pods = s.pods();
        pods.iter().filter(|p| ready(p)).count() == 4
            && pods
                .iter()
                .filter(|p| p.spec.node_name.as_deref() == Some("a"))
                .count()
                == 2
    })
    .await;
    sim.down.insert("b".into());
    sim.until(10, "b Unknown and tainted", |s| {
        match s.get(Kind::Node, "b") {
            Some(Object::Node(n)) => {
                let n: Node = n;
                n.spec
                    .taints
                    .iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
                    && n.status
                        .unwrap()
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "Unknown")
            }
            _ => false,
        }
    })
    .await;
    sim.until(10, "4 running on a", |s| {
        s.pods()
            .iter()
            .filter(|p| ready(p) && p.spec.node_name.as_deref() == Some("a"))
            .count()
            == 4
    })
    .await;
    // b's pods are marked for deletion, and b's own copy keeps them until it is back.
    assert!(sim
        .pods()
        .iter()
        .filter(|p| p.spec.node_name.as_deref() == Some("b"))
        .all(|p| p.metadata.deletion_timestamp.is_some()));
    sim.down.clear();
    sim.until(10, "b back: Ready, untainted, no leftovers", |s| {
        let n = match s.get(Kind::Node, "b") {
            Some(Object::Node(n)) => n,
            _ => return false,
        };
        n.spec.taints.is_empty()
            && n.status
                .unwrap()
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
            && s.pods().len() == 4
    })
    .await;
}

#[tokio::test]
async fn eviction_waits_for_the_toleration() {
    let mut sim = Sim::new(&["a", "b"], 5).await;
    sim.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  nodeSelector: {kubernetes.io/hostname: b}
  containers: [{name: c, image: x}]
"#,
    )
    .await;
    sim.until(5, "running on b", |s| s.pods().iter().any(ready))
        .await;
    sim.down.insert("b".into());
    sim.until(5, "b tainted", |s| match s.get(Kind::Node, "b") {
        Some(Object::Node(n)) => !n.spec.taints.is_empty(),
        _ => false,
    })
    .await;
    let tainted_at = sim.now;
    sim.until(10, "evicted", |s| {
        s.pods()
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    assert!(
        sim.now >= tainted_at + 4,
        "evicted before the 5 s default toleration"
    );
}

#[tokio::test]
async fn pods_of_a_missing_node_go_after_the_quarantine() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: lost}
spec:
  nodeName: ghost
  containers: [{name: c, image: x}]
"#,
    )
    .await;
    let start = sim.now;
    for _ in 0..30 {
        sim.step().await;
    }
    assert_eq!(sim.pods().len(), 1, "removed before the 40 s quarantine");
    sim.until(20, "removed after it", |s| s.pods().is_empty())
        .await;
    assert!(sim.now >= start + 39);
}

#[tokio::test]
async fn events_about_one_object_are_limited_as_kubernetes_limits_them() {
    let mut sim = Sim::new(&["n1", "n2", "n3"], 300).await;
    // Scaled up and down 40 times: each change is an Event about the Deployment (scaling
    // its ReplicaSet) and one about the ReplicaSet (creating or deleting a pod).
    for i in 0..40 {
        sim.apply(&deployment_yaml("web", 1 + i % 2, "web:1", ""))
            .await;
        sim.step().await;
        sim.step().await;
    }
    let events: Vec<skiff_api::core::Event> = sim
        .list(Kind::Event)
        .into_iter()
        .map(|o| match o {
            Object::Event(e) => e,
            _ => unreachable!(),
        })
        .collect();
    let about = |kind: &str| {
        events
            .iter()
            .filter(|e| e.involved_object.kind.as_deref() == Some(kind))
            .count()
    };
    // 25 about each object, then one per 5 minutes (none in this test's few real
    // seconds); each object has an allowance of its own.
    assert_eq!(about("Deployment"), 25);
    assert_eq!(about("ReplicaSet"), 25);
}

/// The scheduler binds from its cached view of a pod; a view the pod has moved past is
/// never written back: the bind reads the pod again and keeps what changed.
#[tokio::test]
async fn bind_from_a_stale_view_keeps_later_changes() {
    let sim = Sim::new(&["n1"], 300).await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let o = Object::from_json(Kind::Pod, pod).unwrap();
    let created = sim.api.create(o).await.unwrap();
    let seen = Object::from_json(Kind::Pod, &created.json).unwrap();
    let uid = seen.meta().uid.clone().unwrap();
    // Someone labels the pod after the scheduler saw it.
    let mut later = seen.clone();
    later.meta_mut().labels.insert("tier".into(), "web".into());
    sim.api.update(later, false).await.unwrap();
    let k = key(Kind::Pod, "p");
    let bound = sim
        .api
        .bind(&k, &uid, "n1", Some((created.revision, &seen)))
        .await
        .unwrap();
    let Object::Pod(p) = Object::from_json(Kind::Pod, &bound.json).unwrap() else {
        panic!("not a pod")
    };
    assert_eq!(p.spec.node_name.as_deref(), Some("n1"));
    assert_eq!(
        p.metadata.labels.get("tier").map(String::as_str),
        Some("web")
    );
    // A current view binds directly; a second bind, or another pod's uid, is refused.
    let again = sim
        .api
        .bind(
            &k,
            &uid,
            "n1",
            Some((bound.revision, &Object::Pod(p.clone()))),
        )
        .await
        .unwrap_err();
    assert_eq!(
        again.code,
        skiff_api::wire::ErrorCode::Conflict,
        "{again:?}"
    );
    let other = sim.api.bind(&k, "other-uid", "n1", None).await.unwrap_err();
    assert_eq!(
        other.code,
        skiff_api::wire::ErrorCode::NotFound,
        "{other:?}"
    );
}

/// ServiceAccount tokens through the API: a node gets them only for the accounts of pods
/// bound to it, a token is bound to its pod (refused once the pod is gone), lives at
/// least ten minutes, and a pod that names a missing account is refused.
#[tokio::test]
async fn service_account_tokens_are_bound_and_held_to_the_node_rule() {
    use skiff_api::wire::{ErrorCode, Request, Response};
    use skiff_coordinator::pki::Identity;
    let sim = Sim::new(&["n1", "n2"], 300).await;
    sim.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n")
        .await;
    sim.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  nodeName: n1\n  serviceAccountName: robot\n  containers: [{name: c, image: x}]\n").await;
    let bad = parse_manifests("apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  serviceAccountName: ghost\n  containers: [{name: c, image: x}]\n").unwrap().remove(0).object;
    let e = sim.api.create(bad).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden, "{e:?}");
    assert!(
        e.message.contains("serviceaccount \"ghost\" not found"),
        "{e:?}"
    );
    let pod = sim
        .pods()
        .into_iter()
        .find(|p| p.metadata.name() == "p")
        .unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    let ask = |expiration: i64, pod: Option<(&str, &str)>| Request::ServiceAccountToken {
        namespace: "default".into(),
        name: "robot".into(),
        audiences: Vec::new(),
        expiration_seconds: expiration,
        pod: pod.map(|(n, u)| (n.to_string(), u.to_string())),
    };
    let code = |r: Response| match r {
        Response::Error(e) => Some(e.code),
        _ => None,
    };
    let n1 = Identity::Node("n1".into());
    let n2 = Identity::Node("n2".into());
    // Another node, an unbound token for a node, a stale uid, a short life: refused.
    let r = sim.api.handle(&n2, ask(3600, Some(("p", &uid)))).await;
    assert_eq!(code(r), Some(ErrorCode::Forbidden));
    let r = sim.api.handle(&n1, ask(3600, None)).await;
    assert_eq!(code(r), Some(ErrorCode::Forbidden));
    let r = sim.api.handle(&n1, ask(3600, Some(("p", "old-uid")))).await;
    assert_eq!(code(r), Some(ErrorCode::Conflict));
    let r = sim.api.handle(&n1, ask(60, Some(("p", &uid)))).await;
    assert_eq!(code(r), Some(ErrorCode::Invalid));
    // Its own pod's: a token naming the account, the pod and the node.
    let Response::AccountToken { token, expires } =
        sim.api.handle(&n1, ask(3600, Some(("p", &uid)))).await
    else {
        panic!("no token")
    };
    assert!(expires >= now_secs() + 3500);
    let c = sim.api.authenticate_token(&token).unwrap();
    assert_eq!(c.sub, "system:serviceaccount:default:robot");
    assert_eq!(c.kube.node.unwrap().name, "n1");
    // The pod gone, the token speaks for no one.
    sim.api
        .delete_object(
            &key(Kind::Pod, "p"),
            DeleteOptions {
                grace: Some(0),
                force: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let e = sim.api.authenticate_token(&token).unwrap_err();
    assert!(e.contains("gone"), "{e}");
}

fn condition_of(j: &Job, t: &str) -> Option<(String, String)> {
    let c = j
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t && c.status == "True")?;
    Some((
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

/// An Indexed Job with a back-off limit per index: each pod has its index (annotation,
/// label, env, hostname), never two run one index, an index that keeps failing is given
/// up after its retry, and the Job fails with FailedIndexes once every index is done or
/// given up.
#[tokio::test]
async fn indexed_job_gives_up_an_index_after_its_own_retries() {
    let mut sim = Sim::new(&["a", "b"], 300).await;
    for (i, code) in [(0, 0), (1, 0), (2, 1), (3, 0)] {
        sim.exits.push((format!("idx-{i}-"), code));
    }
    let extra = "  completionMode: Indexed\n  backoffLimitPerIndex: 1\n  maxFailedIndexes: 1\n";
    sim.apply(&job_yaml("idx", 4, 2, 6, extra)).await;
    let mut seen_index_pods = 0;
    sim.until(80, "the Job failed with FailedIndexes", |s| {
        job(s, "idx").is_some_and(|j| condition_of(&j, "Failed").is_some())
    })
    .await;
    let j = job(&sim, "idx").unwrap();
    for p in sim.pods() {
        let ix = &p.metadata.annotations["batch.kubernetes.io/job-completion-index"];
        assert_eq!(
            &p.metadata.labels["batch.kubernetes.io/job-completion-index"],
            ix
        );
        assert_eq!(
            p.spec.hostname.as_deref(),
            Some(format!("idx-{ix}").as_str())
        );
        let env = &p.spec.containers[0].env;
        assert!(
            env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"),
            "{env:?}"
        );
        seen_index_pods += 1;
    }
    assert!(seen_index_pods >= 5, "index 2 ran twice");
    let st = j.status.clone().unwrap();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-1,3"), "{st:?}");
    assert_eq!(st.failed_indexes.as_deref(), Some("2"), "{st:?}");
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(condition_of(&j, "Failed").unwrap().0, "FailedIndexes");
}

/// The docs' pod failure policy: exit code 42 fails the Job at once (no retries), naming
/// the container, pod and rule.
#[tokio::test]
async fn a_fail_job_rule_ends_the_job_at_the_first_matching_failure() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.exits.push(("pfp-".into(), 42));
    let extra = "  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {operator: In, values: [42]}\n    - action: Ignore\n      onPodConditions: [{type: DisruptionTarget}]\n";
    sim.apply(&job_yaml("pfp", 3, 1, 6, extra)).await;
    sim.until(30, "the Job failed", |s| {
        job(s, "pfp").is_some_and(|j| condition_of(&j, "Failed").is_some())
    })
    .await;
    let j = job(&sim, "pfp").unwrap();
    let (reason, message) = condition_of(&j, "Failed").unwrap();
    assert_eq!(reason, "PodFailurePolicy");
    assert!(
        message.starts_with("Container c for pod default/pfp-")
            && message.ends_with("failed with exit code 42 matching FailJob rule at index 0"),
        "{message}"
    );
    assert_eq!(j.status.unwrap().failed, Some(1), "no retry");
}

/// A success policy: index 0 succeeding is enough; the other indexes' pods are removed.
#[tokio::test]
async fn a_success_policy_completes_the_job_early() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.exits.push(("lead-0-".into(), 0));
    let extra = "  completionMode: Indexed\n  successPolicy:\n    rules: [{succeededIndexes: \"0\", succeededCount: 1}]\n";
    sim.apply(&job_yaml("lead", 4, 4, 6, extra)).await;
    sim.until(30, "the Job complete", |s| {
        job(s, "lead").is_some_and(|j| condition_of(&j, "Complete").is_some())
    })
    .await;
    let j = job(&sim, "lead").unwrap();
    assert_eq!(
        condition_of(&j, "SuccessCriteriaMet").unwrap(),
        ("SuccessPolicy".into(), "Matched rules at index 0".into())
    );
    sim.until(10, "the other indexes' pods removed", |s| {
        !s.pods().iter().any(live)
    })
    .await;
}

/// LimitRange and ResourceQuota admission: a pod without resources gets the namespace's
/// defaults (and the annotation that says so); objects past a quota are refused with
/// Kubernetes' message, and the quota's status counts what is used.
#[tokio::test]
async fn limit_ranges_default_pods_and_quotas_cap_the_namespace() {
    let mut sim = Sim::new(&["a"], 300).await;
    sim.apply("apiVersion: v1\nkind: LimitRange\nmetadata: {name: mem-limit-range}\nspec:\n  limits:\n  - default: {memory: 512Mi}\n    defaultRequest: {memory: 256Mi}\n    max: {memory: 1Gi}\n    type: Container\n---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: compute}\nspec:\n  hard: {pods: \"2\", requests.memory: 1Gi, configmaps: \"1\"}\n").await;
    let create = |yaml: &str| {
        let o = parse_manifests(yaml).unwrap().remove(0).object;
        let api = sim.api.clone();
        async move { api.create(o).await }
    };
    let pod = |name: &str, extra: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: c\n    image: x\n{extra}")
    };
    create(&pod("p1", "")).await.unwrap();
    let p1 = sim
        .pods()
        .into_iter()
        .find(|p| p.metadata.name() == "p1")
        .unwrap();
    let r = p1.spec.containers[0].resources.clone().unwrap();
    assert_eq!(r.requests["memory"].to_string(), "256Mi");
    assert_eq!(r.limits["memory"].to_string(), "512Mi");
    assert_eq!(
        p1.metadata.annotations["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: memory request for container c; memory limit for container c"
    );
    let e = create(&pod("big", "    resources: {limits: {memory: 2Gi}}\n"))
        .await
        .unwrap_err();
    assert_eq!(e.code, skiff_api::wire::ErrorCode::Forbidden);
    assert!(
        e.message.contains("pods \"big\" is forbidden: [maximum memory usage per Container is 1Gi, but limit is 2Gi"),
        "{e:?}"
    );
    create(&pod("p2", "")).await.unwrap();
    let e = create(&pod("p3", "")).await.unwrap_err();
    assert_eq!(
        e.message,
        "pods \"p3\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
    );
    create("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1}\n")
        .await
        .unwrap();
    let e = create("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2}\n")
        .await
        .unwrap_err();
    assert!(e.message.contains("exceeded quota: compute, requested: configmaps=1, used: configmaps=1, limited: configmaps=1"), "{e:?}");
    sim.until(
        5,
        "the quota's status counts the pods, memory and maps",
        |s| {
            s.list(Kind::ResourceQuota).iter().any(|o| match o {
                Object::ResourceQuota(q) => q.status.as_ref().is_some_and(|st| {
                    st.used.get("pods").map(|q| q.to_string()) == Some("2".into())
                        && st.used.get("requests.memory").map(|q| q.to_string())
                            == Some("512Mi".into())
                        && st.used.get("configmaps").map(|q| q.to_string()) == Some("1".into())
                }),
                _ => false,
            })
        },
    )
    .await;
}

/// The docs' scheduling gates: a gated pod is not scheduled and says SchedulingGated;
/// gates may only be removed, and once they are all gone the pod is bound.
#[tokio::test]
async fn a_gated_pod_waits_until_its_gates_are_removed() {
    let mut sim = Sim::new(&["a"], 300).await;
    let gated = "apiVersion: v1\nkind: Pod\nmetadata: {name: test-pod}\nspec:\n  schedulingGates: [{name: example.com/foo}, {name: example.com/bar}]\n  containers: [{name: pause, image: registry.k8s.io/pause:3.6}]\n";
    sim.apply(gated).await;
    for _ in 0..3 {
        sim.step().await;
    }
    let get = |s: &Sim| {
        s.pods()
            .into_iter()
            .find(|p| p.metadata.name() == "test-pod")
            .unwrap()
    };
    let p = get(&sim);
    assert!(p.spec.node_name.is_none(), "a gated pod is not bound");
    let c = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap();
    assert_eq!(c.reason.as_deref(), Some("SchedulingGated"));
    assert_eq!(skiff_api::print::pod_status(&p), "SchedulingGated");
    // Adding a gate is refused; removing them is not.
    let mut more = p.clone();
    more.spec
        .scheduling_gates
        .push(skiff_api::pod::PodSchedulingGate {
            name: "example.com/baz".into(),
        });
    let e = sim.api.update(Object::Pod(more), false).await.unwrap_err();
    assert!(
        e.message
            .contains("only deletion is allowed, but found new scheduling gate 'example.com/baz'"),
        "{e:?}"
    );
    let mut open = get(&sim);
    open.spec.scheduling_gates.clear();
    sim.api.update(Object::Pod(open), false).await.unwrap();
    sim.until(5, "the pod bound once its gates are gone", |s| {
        get(s).spec.node_name.is_some()
    })
    .await;
}
