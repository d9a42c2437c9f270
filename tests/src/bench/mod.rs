//! Benchmarks behind `skiff-bench`: each prints ratios against a reference measured in
//! the same run (machines are noisy; ratios hold).

pub mod agent;
pub mod etcd;
pub mod failover;
pub mod front_door;
pub mod hpa;
pub mod http;
pub mod network;
pub mod reboot;
pub mod runtime;
pub mod scale;
pub mod scheduler;
pub mod storage;
pub mod store;

/// Applies (through `apply`, a CLI call) and returns how long until a watch over `client`
/// sees pod `name` in `default` Running: one connection watches, so a look costs no
/// handshake (a CLI per look would be throttled by the coordinator's front door).
pub async fn apply_until_running(
    client: &skiff_transport::Client,
    name: &str,
    apply: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<std::time::Duration> {
    use anyhow::Context;
    use skiff_api::wire::{Request, WatchEvent};
    let (rev, _) = client
        .list_all(skiff_api::Kind::Pod, Some("default".into()), None)
        .await?;
    let mut w = client
        .watch(&Request::Watch {
            kind: skiff_api::Kind::Pod,
            namespace: Some("default".into()),
            selector: None,
            since: Some(rev),
        })
        .await?;
    let t = std::time::Instant::now();
    apply()?;
    loop {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(60), w.next())
            .await
            .with_context(|| format!("pod {name} never ran"))??
            .context("watch ended")?;
        if let WatchEvent::Modified { object, .. } | WatchEvent::Added { object, .. } = ev {
            let v: serde_json::Value = serde_json::from_str(&object)?;
            if v["metadata"]["name"] == name && v["status"]["phase"] == "Running" {
                return Ok(t.elapsed());
            }
        }
    }
}

/// Waits until `skiff get nodes` shows a Ready node.
pub fn wait_node_ready(c: &crate::Coordinator) {
    crate::node::eventually(30, "node Ready", || {
        let s = crate::out(&c.skiff(&["get", "nodes"]));
        if s.contains(" Ready") {
            Ok(())
        } else {
            Err(s)
        }
    });
}

/// A number from the environment (`SKIFF_BENCH_RUNS=100`), or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The p-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Builds the release binaries the benchmarks start, with the cargo that runs us.
pub fn build_release(packages: &[&str]) -> anyhow::Result<()> {
    build_profile("release", packages)
}

/// Builds binaries with a cargo profile (`release`, `edge`).
pub fn build_profile(profile: &str, packages: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--profile", profile, "--quiet"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    let status = cmd.status()?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
}
