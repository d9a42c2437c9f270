//! `skiff-bench failover`: two real agents, a 4-replica Deployment, and the node holding
//! most replicas killed (SIGKILL, kept down): seconds from the kill until 4 replicas are
//! Running and Ready again, with `--node-monitor-grace-period 2s --pod-eviction-timeout 0s`.
//!
//! The reference measured in the same run is the detection floor: the time from the kill
//! until the coordinator marks the node Unknown (the grace period plus the check's
//! granularity). What comes after it is skiff's own work: evict, replace, schedule, start.

use crate::cluster::{node_of, ready, summary, two_nodes, web, TwoNodes, FAST_FAILOVER};
use crate::node::{eventually, IMAGE};
use crate::out;
use std::time::{Duration, Instant};

const TARGET: f64 = 5.0;

fn node_unknown(t: &TwoNodes, name: &str) -> bool {
    let o = t.c.skiff(&["get", "node", name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap_or_default();
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "Unknown")
    })
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<()> {
    crate::node::require_root();
    super::build_release(&["skiff-agent", "skiff-coordinator", "skiff"])?;
    let quiet = std::env::var_os("SKIFF_BENCH_QUIET").is_some();
    let runs: usize = super::env_number("SKIFF_BENCH_RUNS", 3);
    let mut totals = Vec::new();
    let mut detections = Vec::new();
    for run in 0..runs {
        let mut t = two_nodes(&format!("fo{run}"), &FAST_FAILOVER);
        t.apply(&web(IMAGE));
        eventually(60, "4 replicas Ready", || {
            let pods = t.pods();
            if pods.iter().filter(|p| ready(p)).count() == 4 {
                Ok(())
            } else {
                Err(summary(&pods))
            }
        });
        let pods = t.pods();
        let on = |n: &str| pods.iter().filter(|p| ready(p) && node_of(p) == n).count();
        let victim = if on(&t.nodes[0].name) >= on(&t.nodes[1].name) {
            0
        } else {
            1
        };
        let survivor = t.nodes[1 - victim].name.clone();
        let lost = t.nodes[victim].name.clone();
        let started = Instant::now();
        t.agents[victim].kill();
        let mut detected = None;
        loop {
            if detected.is_none() && node_unknown(&t, &lost) {
                detected = Some(started.elapsed());
            }
            let pods = t.pods();
            if pods
                .iter()
                .filter(|p| ready(p) && node_of(p) == survivor)
                .count()
                == 4
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "replicas did not come back within 60 s:\n{}",
                summary(&pods)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let total = started.elapsed().as_secs_f64();
        let det = detected.map_or(total, |d| d.as_secs_f64());
        if !quiet {
            println!("  run {}: 4 replicas Running again after {total:.2} s (node Unknown after {det:.2} s)", run + 1);
        }
        totals.push(total);
        detections.push(det);
    }
    totals.sort_by(f64::total_cmp);
    detections.sort_by(f64::total_cmp);
    let total = totals[totals.len() / 2];
    let det = detections[detections.len() / 2];
    if !quiet {
        println!("failover: median of {runs}: {total:.2} s from SIGKILL to 4 replicas Running ({:.2}x the {TARGET:.0} s target)", total / TARGET);
        println!("  reference (detection floor: the 2 s grace period and its check): {det:.2} s; skiff's own work after it: {:.2} s ({:.2}x the floor)", total - det, total / det);
    }
    println!("failover: {total:.2} s to recover 4 replicas (target {TARGET:.0} s)");
    Ok(())
}
