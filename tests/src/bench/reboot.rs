//! `skiff-bench reboot` (as root): a node with 10 pods whose image is on the node, a power
//! cut as the end-to-end tests simulate it (`node::power_cut`: every process of the node
//! killed, its mounts, links, nftables rules and cgroups gone, its disk kept), then the
//! agent started with no coordinator: seconds until all 10 pods are Running and Ready
//! again, median of 5 rounds, against the same node's cold start of 10 new pods (`skiff
//! apply` through the coordinator) measured in each round, as a ratio.
//!
//! With no coordinator to ask, "Running and Ready" is what each pod's readiness probe
//! checks: its container answers a TCP connection on its port, from the node's network
//! namespace. The cold start is measured the same way, from the moment of the `apply`;
//! the reboot from the moment the agent is started (the power cut itself is not counted).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::node::{eventually, AgentProc, Node, IMAGE};
use crate::{Coordinator, NetNs, TempDir};

const PODS: usize = 10;
const PORT: u16 = 8080;
/// A pod on the node's bridge answers a connection in well under a millisecond. A pod
/// whose veth is not there yet leaves the connection waiting for ARP, so this bounds what
/// one check of a pod not back yet costs the measurement (200 ms here once added up to
/// 0.2 s of the "after a power cut" figure, whose leases exist from the start, and not of
/// the cold start, whose leases appear as the veths do).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(50);

fn rounds() -> usize {
    super::env_number("SKIFF_BENCH_ROUNDS", 5).max(1)
}

fn pods_yaml(round: usize, node: &str) -> String {
    (0..PODS)
        .map(|i| {
            format!(
                r#"apiVersion: v1
kind: Pod
metadata: {{name: r{round}-{i}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: Never
    command: ["probe", "serve", "{PORT}"]
    readinessProbe:
      tcpSocket: {{port: {PORT}}}
      periodSeconds: 1
"#
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The pods' addresses, from the agent's leases on disk.
fn leases(node: &Node) -> Vec<Ipv4Addr> {
    let text = std::fs::read_to_string(node.data().join("state/ipam.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["pods"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|ip| ip.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `PODS` pods hold addresses and every one answers on its port (connections
/// from a thread in the node's namespace); returns the seconds since `t0`.
fn until_all_answer(
    node: &Node,
    netns: &NetNs,
    t0: Instant,
    limit: Duration,
) -> anyhow::Result<f64> {
    std::thread::scope(|s| {
        s.spawn(|| {
            netns.enter_this_thread();
            loop {
                let ips = leases(node);
                let all = ips.len() == PODS
                    && ips.iter().all(|ip| {
                        TcpStream::connect_timeout(&SocketAddr::from((*ip, PORT)), CONNECT_TIMEOUT)
                            .is_ok()
                    });
                if all {
                    return Ok(t0.elapsed().as_secs_f64());
                }
                anyhow::ensure!(
                    t0.elapsed() < limit,
                    "{PODS} pods not answering within {limit:?} (leases: {ips:?})"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the probing thread panicked"))?
    })
}

pub fn run() -> anyhow::Result<()> {
    anyhow::ensure!(crate::node::is_root(), "the reboot benchmark needs root");
    super::build_release(&["skiff-agent", "skiff-coordinator", "skiff"])?;
    let node = Node::new("bench-reboot");
    let netns = NetNs::new("bench-reboot");
    let dir = TempDir::new("bench-reboot-coord");
    let port = crate::free_port();
    let mut c = Coordinator::start_in(dir.path(), port, Some(&netns.name));
    let server = format!("127.0.0.1:{port}");
    let mut agent = AgentProc::start(&node, &server, &c.node_token(), &[], Some(&netns.name));
    let limit = Duration::from_secs(120);
    let (mut cold, mut reboot) = (Vec::new(), Vec::new());
    for round in 0..rounds() {
        // Cold start: 10 new pods through the coordinator.
        eventually(30, "agent connected", || {
            let l = agent.log();
            if l.contains("connected to the coordinator") {
                Ok(())
            } else {
                Err(l)
            }
        });
        let manifest = node.data().join(format!("pods-{round}.yaml"));
        std::fs::write(&manifest, pods_yaml(round, &node.name))?;
        let t0 = Instant::now();
        let o = c.skiff(&["apply", "-f", manifest.to_str().unwrap()]);
        anyhow::ensure!(o.status.success(), "apply: {}", crate::err(&o));
        let cold_s = until_all_answer(&node, &netns, t0, limit)?;
        // Let the node keep what it learnt (its pods, the cluster view) before the cut.
        std::thread::sleep(Duration::from_secs(3));
        // Power cut; the agent starts again with no coordinator.
        c.kill();
        agent.kill();
        crate::node::power_cut(&node, &netns);
        let t0 = Instant::now();
        agent.restart();
        let reboot_s = until_all_answer(&node, &netns, t0, limit)?;
        eprintln!("round {round}: cold start {cold_s:.2} s, after a power cut {reboot_s:.2} s");
        cold.push(cold_s);
        reboot.push(reboot_s);
        // The coordinator returns; the round's pods go.
        c = Coordinator::start_in(dir.path(), port, Some(&netns.name));
        let o = c.skiff(&["delete", "pods", "--all", "--grace-period", "0", "--force"]);
        anyhow::ensure!(o.status.success(), "delete: {}", crate::err(&o));
        eventually(60, "pods gone from the node", || {
            let n = leases(&node).len();
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} leases left"))
            }
        });
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        super::percentile(v, 50.0)
    };
    let (cold_m, reboot_m) = (median(&mut cold), median(&mut reboot));
    println!(
        "reboot benchmark: {PODS} pods (image on the node), {} rounds",
        cold.len()
    );
    println!("cold start of {PODS} new pods   median {cold_m:6.2} s   (all {cold:.2?})");
    println!("back after a power cut, offline median {reboot_m:6.2} s   (all {reboot:.2?})");
    println!("ratio={:.2}", reboot_m / cold_m);
    agent.kill();
    drop(c);
    Ok(())
}
