//! End-to-end: the scheduler and controllers with two real agents on this machine (in a
//! network namespace of their own): a Deployment spreads, rolls, rolls back, and survives
//! the loss of a node. Needs root; CI runs as root.

use serde_json::Value;
use skiff_tests::node::{eventually, AgentProc, Node, IMAGE};
use skiff_tests::{err, ok, out, Coordinator, NetNs, TempDir};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The second tag of the test image (same content, another name): a new template.
const IMAGE2: &str = "skiff-test/busybox:2";

pub struct TwoNodes {
    // Drop order: processes first, then the namespace.
    pub agents: Vec<AgentProc>,
    pub c: Coordinator,
    pub nodes: Vec<Node>,
    _dir: TempDir,
    _netns: NetNs,
}

fn import_second_tag(node: &Node) {
    let dir = TempDir::new("image2");
    let path = dir.path().join("busybox2.tar");
    skiff_tests::image::docker_save(&path, IMAGE2);
    let o = node.agent(&["image", "import", path.to_str().unwrap()]);
    assert!(o.status.success(), "import: {}", err(&o));
}

fn two_nodes(tag: &str) -> TwoNodes {
    let netns = NetNs::new(tag);
    let dir = TempDir::new(&format!("{tag}-coord"));
    let c = Coordinator::start_with(
        dir.path(),
        skiff_tests::free_port(),
        Some(&netns.name),
        &[
            "--node-monitor-grace-period",
            "2s",
            "--pod-eviction-timeout",
            "0s",
        ],
    );
    let server = format!("127.0.0.1:{}", c.port);
    let nodes: Vec<Node> = (0..2).map(|i| Node::new(&format!("{tag}{i}"))).collect();
    for n in &nodes {
        import_second_tag(n);
    }
    let agents = nodes
        .iter()
        .map(|n| {
            AgentProc::start(
                n,
                &server,
                &c.node_token(),
                &["--heartbeat-interval", "500ms", "--restart-backoff", "1s"],
                Some(&netns.name),
            )
        })
        .collect();
    let t = TwoNodes {
        agents,
        c,
        nodes,
        _dir: dir,
        _netns: netns,
    };
    eventually(30, "both nodes Ready", || {
        let o = t.c.skiff(&["get", "nodes"]);
        let s = out(&o);
        if t.nodes.iter().all(|n| s.contains(&n.name)) && s.matches(" Ready").count() >= 2 {
            Ok(())
        } else {
            Err(format!("{s}{}", err(&o)))
        }
    });
    t
}

impl TwoNodes {
    pub fn apply(&self, yaml: &str) {
        let path = self
            .c
            .data_dir
            .join(format!("m-{}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        ok(self.c.skiff(&["apply", "-f", path.to_str().unwrap()]));
    }

    /// The pods of app=web.
    pub fn pods(&self) -> Vec<Value> {
        pods_of(&self.c)
    }
}

fn pods_of(c: &Coordinator) -> Vec<Value> {
    let o = c.skiff(&["get", "pods", "-l", "app=web", "-o", "json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap_or(Value::Null);
    v["items"].as_array().cloned().unwrap_or_default()
}

fn ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn image(p: &Value) -> String {
    p["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"].as_str().unwrap_or("").to_string()
}

pub fn web(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: {image}
        imagePullPolicy: Never
        command: ["sleep", "3600"]
"#
    )
}

fn summary(pods: &[Value]) -> String {
    pods.iter()
        .map(|p| {
            format!(
                "{} node={} image={} phase={} ready={} deleting={}",
                p["metadata"]["name"].as_str().unwrap_or(""),
                node_of(p),
                image(p),
                p["status"]["phase"],
                ready(p),
                !p["metadata"]["deletionTimestamp"].is_null()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Watches the ready count from another thread while `f` runs; returns the lowest seen.
fn lowest_ready_during(c: &Coordinator, f: impl FnOnce()) -> usize {
    let stop = Arc::new(AtomicBool::new(false));
    let low = Arc::new(AtomicUsize::new(usize::MAX));
    let (cfg, netns) = (c.config(), c.netns.clone());
    let (s2, l2) = (stop.clone(), low.clone());
    let watcher = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            let o = skiff_tests::command_in(netns.as_deref(), skiff_tests::binary("skiff"))
                .arg("--config")
                .arg(&cfg)
                .args(["get", "pods", "-l", "app=web", "-o", "json"])
                .output()
                .unwrap();
            if let Ok(v) = serde_json::from_slice::<Value>(&o.stdout) {
                let n = v["items"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|p| ready(p)).count());
                l2.fetch_min(n, Ordering::Relaxed);
            }
        }
    });
    f();
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    low.load(Ordering::Relaxed)
}

#[test]
fn deployment_spreads_rolls_back_and_survives_a_lost_node() {
    let mut t = two_nodes("ctl");
    t.apply(&web(IMAGE));
    eventually(60, "4 replicas Ready, 2 on each node", || {
        let pods = t.pods();
        let ready_n = pods.iter().filter(|p| ready(p)).count();
        let on_first = pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == t.nodes[0].name)
            .count();
        if ready_n == 4 && on_first == 2 {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });

    // set image: a rolling update that keeps at least 3 of 4 Ready.
    let low = lowest_ready_during(&t.c, || {
        let o =
            t.c.skiff(&["set", "image", "deployment/web", &format!("c={IMAGE2}")]);
        assert!(
            out(&o).contains("deployment.apps/web image updated"),
            "{}{}",
            out(&o),
            err(&o)
        );
        let o =
            t.c.skiff(&["rollout", "status", "deployment/web", "--timeout", "120s"]);
        assert!(
            out(&o).contains("successfully rolled out"),
            "{}{}\n{}",
            out(&o),
            err(&o),
            summary(&t.pods())
        );
    });
    assert!(
        low >= 3,
        "only {low} replicas were Ready at one point of the rollout"
    );
    let pods = t.pods();
    assert_eq!(
        pods.iter()
            .filter(|p| ready(p) && image(p) == IMAGE2)
            .count(),
        4,
        "{}",
        summary(&pods)
    );

    // rollout undo: the old image comes back.
    let o = t.c.skiff(&["rollout", "undo", "deployment/web"]);
    assert!(out(&o).contains("rolled back"), "{}{}", out(&o), err(&o));
    ok(t.c.skiff(&["rollout", "status", "deployment/web", "--timeout", "120s"]));
    eventually(30, "all replicas back on the old image", || {
        let pods = t.pods();
        if pods
            .iter()
            .filter(|p| ready(p) && image(p) == IMAGE)
            .count()
            == 4
            && pods
                .iter()
                .all(|p| image(p) == IMAGE || !p["metadata"]["deletionTimestamp"].is_null())
        {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
    let h = out(&t.c.skiff(&["rollout", "history", "deployment/web"]));
    assert!(
        h.contains("REVISION") && h.contains("2") && h.contains("3"),
        "{h}"
    );

    // Lose the second node for good: its replicas come back on the first.
    let lost = t.nodes[1].name.clone();
    let kept = t.nodes[0].name.clone();
    t.agents[1].kill();
    eventually(60, "4 replicas Running on the remaining node", || {
        let pods = t.pods();
        let n = pods
            .iter()
            .filter(|p| ready(p) && node_of(p) == kept)
            .count();
        if n == 4 {
            Ok(())
        } else {
            Err(summary(&pods))
        }
    });
    let o = t.c.skiff(&["get", "node", &lost]);
    assert!(
        out(&o).contains("Unknown") || out(&o).contains("NotReady"),
        "{}",
        out(&o)
    );
}
