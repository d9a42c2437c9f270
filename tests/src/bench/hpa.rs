//! `skiff-bench hpa`: a real agent and coordinator, a one-replica Deployment under a
//! HorizontalPodAutoscaler (CPU, 50 % of a 100m request, max 3), and load started in its
//! pod (a loop capped at 200m by its CPU limit): seconds from the load's start until the
//! two added replicas are Ready, the median of `SKIFF_BENCH_RUNS` (3).
//!
//! The reference measured in the same run is the metric interval: the agent reports usage
//! every `SKIFF_BENCH_INTERVAL` seconds (5; the agent's default is 15), a figure is a rate
//! over one interval, so a change of load is seen between one and two intervals after it
//! starts. The autoscaler syncs every second here (`--hpa-sync-period 1s`; Kubernetes'
//! default is 15 s, which would add up to 15 s). Goal: ≤ interval + 5 s.

use crate::node::{eventually, AgentProc, Node, IMAGE};
use crate::{out, Coordinator, NetNs, TempDir};
use std::time::{Duration, Instant};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: load
spec:
  replicas: 1
  selector:
    matchLabels: {app: load}
  template:
    metadata:
      labels: {app: load}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: load
        image: IMAGE
        command: [sh, -c, 'while [ ! -f /tmp/go ]; do sleep 0.1; done; while :; do :; done']
        resources:
          requests: {cpu: 100m}
          limits: {cpu: 200m}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: load
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: load}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
";

fn ready_replicas(c: &Coordinator) -> i64 {
    c.get_json(&["get", "deployment", "load"])["status"]["readyReplicas"]
        .as_i64()
        .unwrap_or(0)
}

fn pods(c: &Coordinator) -> Vec<String> {
    out(&c.skiff(&["get", "pods", "-l", "app=load", "-o", "name"]))
        .lines()
        .map(|l| l.trim_start_matches("pod/").to_string())
        .collect()
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<()> {
    crate::node::require_root();
    super::build_release(&["skiff-agent", "skiff-coordinator", "skiff"])?;
    let runs: usize = super::env_number("SKIFF_BENCH_RUNS", 3);
    let interval: u64 = super::env_number("SKIFF_BENCH_INTERVAL", 5);
    let netns = NetNs::new("hpab");
    let dir = TempDir::new("hpab-coord");
    let c = Coordinator::start_with(
        dir.path(),
        crate::free_port(),
        Some(&netns.name),
        &["--hpa-sync-period", "1s"],
    );
    let node = Node::new("hpab");
    let every = format!("{interval}s");
    let _agent = AgentProc::start(
        &node,
        &format!("127.0.0.1:{}", c.port),
        &c.node_token(),
        &["--usage-interval", &every],
        Some(&netns.name),
    );
    super::wait_node_ready(&c);
    let mut times = Vec::new();
    for run in 0..runs {
        c.apply(&DEPLOYMENT.replace("IMAGE", IMAGE));
        eventually(60, "one replica Ready", || match ready_replicas(&c) {
            1 => Ok(()),
            n => Err(format!("{n} ready")),
        });
        // Two reports of the idle pod: its figures are fresh and a window past Ready.
        std::thread::sleep(Duration::from_secs(2 * interval + 1));
        let pod = pods(&c).pop().ok_or_else(|| anyhow::anyhow!("no pod"))?;
        let started = Instant::now();
        let o = c.skiff(&["exec", &pod, "--", "touch", "/tmp/go"]);
        anyhow::ensure!(o.status.success(), "exec: {}", crate::err(&o));
        loop {
            if ready_replicas(&c) == 3 {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "no scale-out within 120 s: {}",
                out(&c.skiff(&["get", "hpa", "load"]))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let t = started.elapsed().as_secs_f64();
        println!(
            "  run {}: 3 replicas Ready {t:.2} s after the load started",
            run + 1
        );
        times.push(t);
        let o = c.skiff(&["delete", "hpa", "load"]);
        anyhow::ensure!(o.status.success(), "{}", crate::err(&o));
        let o = c.skiff(&["delete", "deployment", "load"]);
        anyhow::ensure!(o.status.success(), "{}", crate::err(&o));
        eventually(60, "load's pods gone", || match pods(&c).len() {
            0 => Ok(()),
            n => Err(format!("{n} left")),
        });
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let goal = interval as f64 + 5.0;
    println!(
        "hpa: median of {runs}: load start → 2 added replicas Ready in {median:.2} s; metric interval {interval} s (reference): {:.2}x the interval, {:.2}x the goal of interval + 5 s",
        median / interval as f64,
        median / goal
    );
    Ok(())
}
