//! `skiff-bench store`: acknowledged durable writes per second at 1, 16 and 256
//! concurrent clients against skiff's coordinator (write-ahead log and redb, group
//! commit) and Debian's etcd, apply→watch-event latency, and the coordinator's RSS
//! holding 100,000 small objects.

use super::etcd::{Etcd, EtcdProcess};
use super::percentile;
use crate::{cpu_seconds, machine_busy_seconds, rss_bytes, Coordinator, TempDir};
use skiff_api::wire::{Request, WatchEvent};
use skiff_api::Kind;
use skiff_transport::config::ClientConfig;
use skiff_transport::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn object(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default","labels":{{"app":"bench"}}}},"data":{{"k":"{}"}}}}"#,
        "v".repeat(64)
    )
}

fn secs() -> Duration {
    Duration::from_secs(super::env_number("SKIFF_BENCH_SECS", 5))
}

/// Where the CPU of one timed point went: the server's process, this process (the load
/// generator's clients) and the machine as a whole.
struct Meter {
    server_pid: u32,
    server: f64,
    client: f64,
    machine: f64,
    start: Instant,
}

/// One timed point: writes/s and its CPU per acknowledged write.
struct Point {
    rate: f64,
    /// Server CPU per write, µs.
    server_us: f64,
    /// Load-generator (client) CPU per write, µs.
    client_us: f64,
    /// Cores the machine kept busy on average.
    busy_cores: f64,
}

impl Meter {
    fn start(server_pid: u32) -> Meter {
        Meter {
            server_pid,
            server: cpu_seconds(server_pid),
            client: cpu_seconds(std::process::id()),
            machine: machine_busy_seconds(),
            start: Instant::now(),
        }
    }

    fn stop(self, writes: u64) -> Point {
        let secs = self.start.elapsed().as_secs_f64();
        let per_write = |cpu: f64| cpu / writes.max(1) as f64 * 1e6;
        Point {
            rate: writes as f64 / secs,
            server_us: per_write(cpu_seconds(self.server_pid) - self.server),
            client_us: per_write(cpu_seconds(std::process::id()) - self.client),
            busy_cores: (machine_busy_seconds() - self.machine) / secs,
        }
    }
}

async fn skiff_rate(
    cfg: &ClientConfig,
    server_pid: u32,
    clients: usize,
    tag: &str,
) -> anyhow::Result<Point> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Client::connect(cfg).await?);
    }
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + secs();
    let meter = Meter::start(server_pid);
    let mut tasks = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let done = done.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                c.call(&Request::Create {
                    object: object(&format!("{tag}-{i}-{n}")),
                })
                .await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(meter.stop(done.load(Ordering::Relaxed)))
}

async fn etcd_rate(
    addr: std::net::SocketAddr,
    server_pid: u32,
    clients: usize,
    tag: &str,
) -> anyhow::Result<Point> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Etcd::connect(addr).await?);
    }
    let value = object("x");
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + secs();
    let meter = Meter::start(server_pid);
    let mut tasks = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let done = done.clone();
        let tag = tag.to_string();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                c.put(
                    format!("/registry/configmaps/default/{tag}-{i}-{n}").as_bytes(),
                    value.as_bytes(),
                )
                .await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(meter.stop(done.load(Ordering::Relaxed)))
}

async fn skiff_latency(cfg: &ClientConfig, samples: usize) -> anyhow::Result<Vec<f64>> {
    let c = Client::connect(cfg).await?;
    let mut w = c
        .watch(&Request::Watch {
            kind: Kind::ConfigMap,
            namespace: Some("default".into()),
            selector: Some("app=latency".into()),
            since: None,
        })
        .await?;
    let mut out = Vec::new();
    for i in 0..samples {
        let obj = object(&format!("lat-{i}")).replace("\"app\":\"bench\"", "\"app\":\"latency\"");
        let t0 = Instant::now();
        c.call(&Request::Apply { object: obj }).await?;
        match w.next().await? {
            Some(WatchEvent::Added { .. }) => out.push(t0.elapsed().as_secs_f64() * 1e3),
            other => anyhow::bail!("unexpected watch event {other:?}"),
        }
    }
    out.sort_by(|a, b| a.total_cmp(b));
    Ok(out)
}

async fn etcd_latency(addr: std::net::SocketAddr, samples: usize) -> anyhow::Result<Vec<f64>> {
    let c = Etcd::connect(addr).await?;
    let mut w = c.watch_prefix(b"/latency/").await?;
    let value = object("x");
    let mut out = Vec::new();
    for i in 0..samples {
        let t0 = Instant::now();
        c.put(format!("/latency/{i}").as_bytes(), value.as_bytes())
            .await?;
        let mut got = 0;
        while got == 0 {
            got = w.next_events().await?;
        }
        out.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    out.sort_by(|a, b| a.total_cmp(b));
    Ok(out)
}

async fn fill_skiff(cfg: &ClientConfig, total: u64) -> anyhow::Result<()> {
    let c = Client::connect(cfg).await?;
    let (_, items) = c.list_all(Kind::ConfigMap, None, None).await?;
    let have = items.len() as u64;
    drop(items);
    if have >= total {
        return Ok(());
    }
    let need = total - have;
    let clients = 64u64;
    let mut tasks = Vec::new();
    for k in 0..clients {
        let c = Client::connect(cfg).await?;
        tasks.push(tokio::spawn(async move {
            let mut i = k;
            while i < need {
                c.call(&Request::Create {
                    object: object(&format!("fill-{i}")),
                })
                .await?;
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn fill_etcd(addr: std::net::SocketAddr, total: u64) -> anyhow::Result<()> {
    let have = Etcd::connect(addr)
        .await?
        .count_prefix(b"/registry/")
        .await?;
    if have >= total {
        return Ok(());
    }
    let need = total - have;
    let value = object("x");
    let clients = 64u64;
    let mut tasks = Vec::new();
    for k in 0..clients {
        let c = Etcd::connect(addr).await?;
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = k;
            while i < need {
                c.put(
                    format!("/registry/configmaps/default/fill-{i}").as_bytes(),
                    value.as_bytes(),
                )
                .await?;
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn ensure_etcd() -> anyhow::Result<()> {
    if std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok()
    {
        return Ok(());
    }
    eprintln!("etcd not found: installing Debian's etcd-server");
    let ok = std::process::Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "etcd-server",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?
        .success();
    anyhow::ensure!(
        ok,
        "apt-get install etcd-server failed (run as root, or install it)"
    );
    Ok(())
}

fn mb(b: Option<u64>) -> String {
    b.map(|b| format!("{:.1} MB", b as f64 / 1e6))
        .unwrap_or_else(|| "?".into())
}

/// The client counts to measure: `SKIFF_BENCH_CLIENTS=1,16,256` (the default).
fn client_counts() -> anyhow::Result<Vec<usize>> {
    let spec = std::env::var("SKIFF_BENCH_CLIENTS").unwrap_or_else(|_| "1,16,256".into());
    let points = spec
        .split(',')
        .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            anyhow::anyhow!("SKIFF_BENCH_CLIENTS={spec:?}: want counts like 1,16,256")
        })?;
    Ok(points)
}

/// Runs the store benchmark and prints its report.
pub fn run() -> anyhow::Result<()> {
    ensure_etcd()?;
    super::build_release(&["skiff-coordinator", "skiff"])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = TempDir::new("bench-store");
    let skiff_dir = dir.path().join("skiff");
    let etcd_dir = dir.path().join("etcd");
    std::fs::create_dir_all(&skiff_dir)?;
    let coordinator = Coordinator::start(&skiff_dir);
    let etcd = EtcdProcess::start(&etcd_dir)?;
    let etcd_version = String::from_utf8_lossy(
        &std::process::Command::new("etcd")
            .arg("--version")
            .output()?
            .stdout,
    )
    .lines()
    .next()
    .unwrap_or("")
    .to_string();
    rt.block_on(async {
        etcd.ready().await?;
        let cfg = ClientConfig::load(&coordinator.config())?;
        println!("store benchmark: acknowledged durable writes, same machine, same run ({}s per point)", secs().as_secs());
        println!("  skiff: skiff-coordinator (write-ahead log + redb, group commit) over QUIC+mTLS; reference: {etcd_version}, native gRPC");
        println!("{:>8}  {:>16}  {:>16}  {:>6}", "clients", "skiff writes/s", "etcd writes/s", "ratio");
        let mut last_ratio = 0.0;
        let points = client_counts()?;
        let mut cpu = Vec::new();
        for &clients in &points {
            // Interleave the two systems so drift on a shared machine hits both alike.
            let tag = format!("w{clients}");
            let s = skiff_rate(&cfg, coordinator.pid(), clients, &tag).await?;
            let e = etcd_rate(etcd.addr, etcd.pid(), clients, &tag).await?;
            last_ratio = s.rate / e.rate;
            println!("{clients:>8}  {:>16.0}  {:>16.0}  {last_ratio:>6.2}", s.rate, e.rate);
            cpu.push((clients, s, e));
        }
        // Both servers and this process share the machine's cores: where a point is
        // CPU-bound, writes/s follow the CPU each write costs, on both sides of the wire.
        println!("CPU per acknowledged write (µs), same points: server | this process's clients | machine's busy cores");
        println!("{:>8}  {:>28}  {:>28}", "clients", "skiff-coordinator", "etcd");
        for (clients, s, e) in &cpu {
            println!(
                "{clients:>8}  {:>7.0} | {:>5.0} | {:>4.2} cores  {:>7.0} | {:>5.0} | {:>4.2} cores",
                s.server_us, s.client_us, s.busy_cores, e.server_us, e.client_us, e.busy_cores
            );
        }
        let samples = 300;
        let sl = skiff_latency(&cfg, samples).await?;
        let el = etcd_latency(etcd.addr, samples).await?;
        println!(
            "apply→watch event latency ({samples} samples): skiff p50 {:.2} ms p99 {:.2} ms | etcd put→watch p50 {:.2} ms p99 {:.2} ms",
            percentile(&sl, 50.0), percentile(&sl, 99.0), percentile(&el, 50.0), percentile(&el, 99.0)
        );
        let total: u64 = super::env_number("SKIFF_BENCH_FILL", 100_000);
        if total > 0 {
            fill_skiff(&cfg, total).await?;
            fill_etcd(etcd.addr, total).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let srss = rss_bytes(coordinator.pid());
            let erss = rss_bytes(etcd.pid());
            println!("RSS holding {total} small objects: skiff-coordinator {} (target <= 150 MB), etcd {}", mb(srss), mb(erss));
        }
        let most = points.last().copied().unwrap_or(0);
        println!("store: skiff/etcd durable writes/s at {most} clients = {last_ratio:.2} (target >= 2.0)");
        anyhow::Ok(())
    })
}
