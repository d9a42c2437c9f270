//! `skiff-bench front-door`: the coordinator under a flood of strangers. A release
//! coordinator; an admin client that writes and reads a ConfigMap, first quietly, then
//! while 200 strangers (no certificate) connect as fast as they are let in, open every
//! stream they may, announce join frames of the largest size and stall, and a node's
//! credential holds its 128 streams each with a stalled 16 MiB frame.
//!
//! Prints the coordinator's peak RSS above its quiet RSS (goal ≤ 32 MB) and the admin's
//! p50/p99 during the flood against the same run's quiet p50/p99 (goal p99 ≤ 3×).
//! `SKIFF_BENCH_REQUESTS` (default 1000) and `SKIFF_BENCH_STRANGERS` (default 200) size it.

use crate::flood;
use anyhow::Context;
use skiff_transport::config::ClientConfig;
use skiff_transport::Client;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const GOAL_EXTRA_RSS_MB: f64 = 32.0;
const GOAL_P99_RATIO: f64 = 3.0;

/// `n` admin requests, one after another: sorted latencies in ms.
async fn measure(c: &Client, n: u64) -> anyhow::Result<Vec<f64>> {
    let mut v = Vec::with_capacity(n as usize);
    for i in 0..n {
        let d = flood::admin_request(c, i)
            .await
            .context("an admin request failed")?;
        v.push(d.as_secs_f64() * 1000.0);
    }
    v.sort_by(f64::total_cmp);
    Ok(v)
}

pub fn run() -> anyhow::Result<()> {
    super::build_release(&["skiff-coordinator", "skiff"])?;
    let n: u64 = super::env_number("SKIFF_BENCH_REQUESTS", 1000);
    let strangers: usize = super::env_number("SKIFF_BENCH_STRANGERS", 200);
    let dir = crate::TempDir::new("bench-front-door");
    let c = crate::Coordinator::start(dir.path());
    let server = format!("127.0.0.1:{}", c.port);
    let token = c.node_token();
    let admin = ClientConfig::load(&c.config())?;
    let pid = c.pid();

    // The flood runs on runtime threads of its own, as another machine's would.
    let flood_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let node = rt.block_on(skiff_transport::client::join(&server, &token, "bench-node"))?;
    let client = rt.block_on(Client::connect(&admin))?;
    rt.block_on(measure(&client, 50))?; // warm up
    let quiet = rt.block_on(measure(&client, n))?;
    std::thread::sleep(Duration::from_millis(500));
    let quiet_rss = crate::rss_bytes(pid).context("coordinator RSS")?;

    let f = flood_rt.block_on(flood::start(&server, &token, strangers, Some(node)));
    let peak = Arc::new(AtomicU64::new(quiet_rss));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = crate::rss_bytes(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Let the flood fill every slot it can before measuring.
    std::thread::sleep(Duration::from_secs(3));
    let loud = rt.block_on(measure(&client, n))?;
    let (strangers_got, greedy_got) = (f.strangers.get(), f.greedy.get());
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    f.stop();
    drop(flood_rt);

    let extra_mb = peak.load(Ordering::Relaxed).saturating_sub(quiet_rss) as f64 / 1048576.0;
    let p = |v: &[f64], q| super::percentile(v, q);
    let (qp50, qp99, lp50, lp99) = (
        p(&quiet, 50.0),
        p(&quiet, 99.0),
        p(&loud, 50.0),
        p(&loud, 99.0),
    );
    println!("skiff-bench front-door: {n} admin requests (apply/get a ConfigMap) quiet, then during the flood");
    println!(
        "  flood: {strangers} strangers: {} connections let in, {} refused, {} streams, {} withheld; node credential: {} streams, {} withheld",
        strangers_got.0, strangers_got.1, strangers_got.2, strangers_got.3, greedy_got.2, greedy_got.3
    );
    println!(
        "  coordinator RSS: quiet {:.1} MB, peak {:.1} MB: +{extra_mb:.1} MB (goal <= {GOAL_EXTRA_RSS_MB} MB) {}",
        quiet_rss as f64 / 1048576.0,
        peak.load(Ordering::Relaxed) as f64 / 1048576.0,
        if extra_mb <= GOAL_EXTRA_RSS_MB { "met" } else { "NOT met" }
    );
    println!(
        "  admin p50: quiet {qp50:.2} ms, flood {lp50:.2} ms: {:.2}x",
        lp50 / qp50
    );
    println!(
        "  admin p99: quiet {qp99:.2} ms, flood {lp99:.2} ms: {:.2}x (goal <= {GOAL_P99_RATIO}x) {}",
        lp99 / qp99,
        if lp99 / qp99 <= GOAL_P99_RATIO { "met" } else { "NOT met" }
    );
    Ok(())
}
