//! `skiff-bench scale`: a real coordinator (release build) with 1,000 simulated nodes
//! connected over real QUIC from this process — each joined with a token, registered, on
//! its own connection, heartbeating every 10 s and watching its pods as an agent does —
//! and 10,000 pods from ten 1,000-replica Deployments. It reports the coordinator's RSS
//! and CPU while it schedules and once it is idle, and the time until every pod was
//! bound and seen by its node.
//!
//! The reference measured in the same run is the same coordinator before any node
//! joined (its idle RSS); the targets are 250 MB and one core.

use crate::cpu_seconds;
use anyhow::Context;
use skiff_api::wire::{Request, Response, WatchEvent};
use skiff_api::Kind;
use skiff_transport::Client;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: usize = 1_000;
const DEPLOYMENTS: usize = 10;
const REPLICAS: usize = 1_000;

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn node_json(name: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/arch": "arm64", "kubernetes.io/os": "linux",
            "topology.kubernetes.io/zone": format!("zone-{}", name.len() % 3)}},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
        }
    })
    .to_string()
}

fn deployment_json(i: usize) -> String {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i}"), "namespace": "default"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": format!("app-{i}")}},
            "template": {
                "metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"containers": [{"name": "c", "image": "registry.local/app:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
            }
        }
    })
    .to_string()
}

/// One simulated node: joins, registers, then heartbeats and watches its pods.
async fn node(
    server: String,
    token: String,
    name: String,
    heartbeat: Duration,
    seen: Arc<AtomicUsize>,
    ready: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let cfg = skiff_transport::join(&server, &token, &name).await?;
    let c = Client::connect(&cfg).await?;
    c.call(&Request::Create {
        object: node_json(&name),
    })
    .await?;
    let mut w = c
        .watch(&Request::Watch {
            kind: Kind::Pod,
            namespace: None,
            selector: None,
            since: None,
        })
        .await?;
    ready.fetch_add(1, Ordering::Relaxed);
    // Spread the heartbeats over the interval, as independent boards would.
    let offset = Duration::from_millis(
        (name.bytes().map(u64::from).sum::<u64>() * 7919) % heartbeat.as_millis().max(1) as u64,
    );
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, heartbeat);
    let mut mine = HashSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                c.call(&Request::Heartbeat).await?;
            }
            ev = w.next() => {
                match ev? {
                    Some(WatchEvent::Added { object, .. }) | Some(WatchEvent::Modified { object, .. }) => {
                        let v: serde_json::Value = serde_json::from_str(&object)?;
                        if let Some(uid) = v.pointer("/metadata/uid").and_then(|u| u.as_str()) {
                            if mine.insert(uid.to_string()) {
                                seen.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Some(_) => {}
                    None => anyhow::bail!("{name}: the watch ended"),
                }
            }
        }
    }
}

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<()> {
    super::build_release(&["skiff-coordinator", "skiff"])?;
    raise_fd_limit();
    let quiet = std::env::var_os("SKIFF_BENCH_QUIET").is_some();
    let heartbeat = Duration::from_secs(super::env_number("SKIFF_BENCH_HEARTBEAT_SECS", 10));
    let idle_secs: u64 = super::env_number("SKIFF_BENCH_IDLE_SECS", 30);
    let dir = crate::TempDir::new("bench-scale");
    let mut coord = crate::Coordinator::start_with(
        dir.path(),
        crate::free_port(),
        None,
        // 1,000 nodes need 1,000 /24s of pod addresses (private range, never routed here).
        &["--cluster-cidr", "10.0.0.0/14"],
    );
    let pid = coord.pid();
    let server = format!("127.0.0.1:{}", coord.port);
    let token = coord.node_token();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = status_kb(pid, "VmRSS:");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cfg_path = coord.config();
    let result = rt.block_on(async move {
        let seen = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicUsize::new(0));
        let joined = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..NODES {
            let (server, token, seen, ready, sem) = (
                server.clone(),
                token.clone(),
                seen.clone(),
                ready.clone(),
                sem.clone(),
            );
            tasks.spawn(async move {
                // Join and register a few at a time; then run for ever.
                let permit = sem.acquire_owned().await;
                let name = format!("sim-{i:04}");
                let r = node(server, token, name.clone(), heartbeat, seen, ready);
                drop(permit);
                r.await.with_context(|| name)
            });
        }
        while ready.load(Ordering::Relaxed) < NODES {
            if let Some(Some(Ok(Err(e)))) = tasks.try_join_next().map(Some) {
                return Err(e);
            }
            anyhow::ensure!(
                joined.elapsed() < Duration::from_secs(600),
                "nodes did not all join"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let join_secs = joined.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_nodes = status_kb(pid, "VmRSS:");
        let admin =
            Client::connect(&skiff_transport::config::ClientConfig::load(&cfg_path)?).await?;
        let cpu0 = cpu_seconds(pid);
        let t0 = Instant::now();
        for i in 0..DEPLOYMENTS {
            match admin
                .call(&Request::Apply {
                    object: deployment_json(i),
                })
                .await?
            {
                Response::Applied { .. } => {}
                other => anyhow::bail!("apply: {other:?}"),
            }
        }
        let total = DEPLOYMENTS * REPLICAS;
        while seen.load(Ordering::Relaxed) < total {
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(600),
                "only {} of {total} pods reached their nodes in 600 s",
                seen.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sched_secs = t0.elapsed().as_secs_f64();
        let busy_cpu = (cpu_seconds(pid) - cpu0) / sched_secs;
        let busy_rss = status_kb(pid, "VmRSS:");
        // Idle: 1,000 nodes heartbeating, 10,000 pods placed.
        let cpu1 = cpu_seconds(pid);
        let t1 = Instant::now();
        tokio::time::sleep(Duration::from_secs(idle_secs)).await;
        let idle_cpu = (cpu_seconds(pid) - cpu1) / t1.elapsed().as_secs_f64();
        let idle_rss_after = status_kb(pid, "VmRSS:");
        let peak = status_kb(pid, "VmHWM:");
        tasks.abort_all();
        Ok((
            join_secs,
            rss_nodes,
            sched_secs,
            busy_cpu,
            busy_rss,
            idle_cpu,
            idle_rss_after,
            peak,
        ))
    });
    coord.stop();
    let (join_secs, rss_nodes, sched_secs, busy_cpu, busy_rss, idle_cpu, idle_rss_after, peak) =
        result?;
    let mb = |kb: u64| kb as f64 / 1024.0;
    if !quiet {
        println!("scale: a coordinator, {NODES} simulated nodes over QUIC (heartbeat every {}s, each watching its pods), {} pods from {DEPLOYMENTS} Deployments", heartbeat.as_secs(), DEPLOYMENTS * REPLICAS);
        println!(
            "  reference: the coordinator before any node joined: RSS {:.1} MB",
            mb(idle_rss)
        );
        println!("  {NODES} nodes joined and registered in {join_secs:.1} s; RSS {:.1} MB ({:.1}x the reference)", mb(rss_nodes), mb(rss_nodes) / mb(idle_rss));
        println!("  scheduling: every pod bound and seen by its node after {sched_secs:.2} s ({:.0} pods/s); CPU {busy_cpu:.2} cores ({:.2}x the 1-core target); RSS {:.1} MB", (DEPLOYMENTS * REPLICAS) as f64 / sched_secs, busy_cpu, mb(busy_rss));
        println!("  idle for {idle_secs} s with everything placed: CPU {idle_cpu:.3} cores; RSS {:.1} MB, peak {:.1} MB ({:.2}x the 250 MB target)", mb(idle_rss_after), mb(peak), mb(peak) / 250.0);
    }
    println!("scale: peak RSS {:.0} MB, CPU {busy_cpu:.2} cores while scheduling, {} pods placed in {sched_secs:.1} s", mb(peak), DEPLOYMENTS * REPLICAS);
    Ok(())
}
