//! Several hosts on one machine: each agent in a network namespace of its own with its own
//! address, all joined by a bridge "LAN" in a namespace where the coordinator (and the test's
//! client) sit. No namespace has a route off the machine: cluster addresses stay here.
//!
//! The LAN is `172.31.0.0/24`: the coordinator `.1`, node i `.10+i`.

use crate::node::{eventually, AgentProc, Node};
use crate::{err, out, Coordinator, NetNs, TempDir};
use std::process::Command;

pub struct Lan {
    // Drop order: processes first, then the namespaces.
    pub agents: Vec<AgentProc>,
    pub c: Coordinator,
    pub nodes: Vec<Node>,
    pub hosts: Vec<NetNs>,
    _dir: TempDir,
    pub lan: NetNs,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The LAN address of node `i`.
pub fn node_ip(i: usize) -> String {
    format!("172.31.0.{}", 10 + i)
}

pub const COORDINATOR_IP: &str = "172.31.0.1";

/// A pod named `client` on the node labelled `role=client`, idle: where tests and the
/// network benchmark run `probe` from.
pub fn client_pod() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeSelector: {{role: client}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {}
    imagePullPolicy: Never
    command: ["sleep", "3600"]
"#,
        crate::node::IMAGE
    )
}

impl Lan {
    /// A coordinator (with `coord_flags`) and `n` agents, each labelled `role=<roles[i]>`.
    pub fn new(tag: &str, roles: &[&str], coord_flags: &[&str]) -> Lan {
        let lan = NetNs::new(&format!("{tag}-lan"));
        ip(&["-n", &lan.name, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &lan.name,
            "addr",
            "add",
            "172.31.0.1/24",
            "dev",
            "br0",
        ]);
        ip(&["-n", &lan.name, "link", "set", "br0", "up"]);
        let mut hosts = Vec::new();
        for i in 0..roles.len() {
            let h = NetNs::new(&format!("{tag}-h{i}"));
            let (a, b) = (format!("lan{i}"), format!("eth-{i}"));
            ip(&[
                "-n", &lan.name, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns",
                &h.name,
            ]);
            ip(&["-n", &lan.name, "link", "set", &a, "master", "br0", "up"]);
            ip(&["-n", &h.name, "link", "set", &b, "name", "eth0"]);
            ip(&[
                "-n",
                &h.name,
                "addr",
                "add",
                &format!("{}/24", node_ip(i)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &h.name, "link", "set", "eth0", "up"]);
            hosts.push(h);
        }
        let dir = TempDir::new(&format!("{tag}-coord"));
        let mut flags = vec!["--advertise-address", COORDINATOR_IP];
        flags.extend_from_slice(coord_flags);
        let port = crate::free_port();
        let c = Coordinator::start_listening(
            dir.path(),
            &format!("0.0.0.0:{port}"),
            Some(&lan.name),
            &flags,
        );
        let server = format!("{COORDINATOR_IP}:{port}");
        let nodes: Vec<Node> = (0..roles.len())
            .map(|i| Node::new(&format!("{tag}{i}")))
            .collect();
        let agents = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let labels = format!("role={}", roles[i]);
                AgentProc::start(
                    n,
                    &server,
                    &c.node_token(),
                    &[
                        "--heartbeat-interval",
                        "500ms",
                        "--restart-backoff",
                        "1s",
                        "--labels",
                        &labels,
                    ],
                    Some(&hosts[i].name),
                )
            })
            .collect();
        let l = Lan {
            agents,
            c,
            nodes,
            hosts,
            _dir: dir,
            lan,
        };
        eventually(40, "every node Ready", || {
            let o = l.c.skiff(&["get", "nodes"]);
            let s = out(&o);
            if s.matches(" Ready").count() >= roles.len() {
                Ok(())
            } else {
                Err(format!("{s}{}", err(&o)))
            }
        });
        l
    }

    /// Cuts (or restores) node `i`'s link to the LAN.
    pub fn set_link(&self, i: usize, up: bool) {
        ip(&[
            "-n",
            &self.lan.name,
            "link",
            "set",
            &format!("lan{i}"),
            if up { "up" } else { "down" },
        ]);
    }

    /// Runs busybox in the LAN namespace (a host on the LAN, not a node).
    pub fn on_lan(&self, args: &[&str]) -> std::process::Output {
        crate::command_in(Some(&self.lan.name), "busybox")
            .args(args)
            .output()
            .expect("busybox")
    }
}
