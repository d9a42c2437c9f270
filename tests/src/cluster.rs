//! Two real agents and a coordinator in a network namespace of their own: what the
//! controller tests and the failover benchmark run on.

use crate::node::{eventually, AgentProc, Node};
use crate::{err, out, Coordinator, NetNs, TempDir};
use serde_json::Value;

/// The second tag of the test image (same content, another name): a new template.
pub const IMAGE2: &str = "skiff-test/busybox:2";

pub struct TwoNodes {
    // Drop order: processes first, then the namespace.
    pub agents: Vec<AgentProc>,
    pub c: Coordinator,
    pub nodes: Vec<Node>,
    _dir: TempDir,
    _netns: NetNs,
}

pub fn import_second_tag(node: &Node) {
    let dir = TempDir::new("image2");
    let path = dir.path().join("busybox2.tar");
    crate::image::docker_save(&path, IMAGE2);
    let o = node.agent(&["image", "import", path.to_str().unwrap()]);
    assert!(o.status.success(), "import: {}", err(&o));
    let path = dir.path().join("nginx.tar");
    crate::image::nginx_standin(&path);
    let o = node.agent(&["image", "import", path.to_str().unwrap()]);
    assert!(o.status.success(), "import: {}", err(&o));
}

/// The coordinator flags of the failover tests and benchmark: a node silent for 2 s is
/// Unknown, and its pods are evicted at once.
pub const FAST_FAILOVER: [&str; 4] = [
    "--node-monitor-grace-period",
    "2s",
    "--pod-eviction-timeout",
    "0s",
];

/// Two agents (heartbeat every 500 ms) and a coordinator started with `coord_flags`.
pub fn two_nodes(tag: &str, coord_flags: &[&str]) -> TwoNodes {
    let netns = NetNs::new(tag);
    let dir = TempDir::new(&format!("{tag}-coord"));
    let c = Coordinator::start_with(
        dir.path(),
        crate::free_port(),
        Some(&netns.name),
        coord_flags,
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
        self.c.apply(yaml)
    }

    /// The pods of app=web.
    pub fn pods(&self) -> Vec<Value> {
        pods_of(&self.c)
    }
}

pub fn pods_of(c: &Coordinator) -> Vec<Value> {
    let o = c.skiff(&["get", "pods", "-l", "app=web", "-o", "json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap_or(Value::Null);
    v["items"].as_array().cloned().unwrap_or_default()
}

pub fn ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub fn image(p: &Value) -> String {
    p["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn node_of(p: &Value) -> String {
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

pub fn summary(pods: &[Value]) -> String {
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
