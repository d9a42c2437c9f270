//! `skiff-bench http`: the Kubernetes API over HTTPS against skiff's own QUIC API, in the
//! same run. With `SKIFF_BENCH_PODS` (1,000) pods stored: `kubectl get pods -A` and
//! `skiff get pods -A`, the median of `SKIFF_BENCH_RUNS` (20) each (goal: kubectl ≤ 1.5×
//! the skiff CLI); a ConfigMap's watch event delivered over HTTPS and over QUIC (p50 and
//! p99, and their ratio); and the idle RSS of a coordinator serving HTTPS against one
//! started with `--disable-https` (goal: ≤ 4 MB more). kubectl is the one `scripts/deps`
//! installs (or `SKIFF_KUBE_VENV`).

use anyhow::Context;
use skiff_api::wire::{Request, Response, WatchEvent};
use skiff_api::Kind;
use skiff_transport::config::ClientConfig;
use skiff_transport::Client;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GOAL_LIST_RATIO: f64 = 1.5;
const GOAL_EXTRA_RSS_MB: f64 = 4.0;

fn kubectl() -> anyhow::Result<PathBuf> {
    let venv = std::env::var_os("SKIFF_KUBE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/skiff/kube-venv"));
    let k = venv.join("bin/kubectl");
    anyhow::ensure!(
        k.exists(),
        "no kubectl at {}: run scripts/deps",
        k.display()
    );
    Ok(k)
}

/// The median wall time of `runs` runs of a command, after one unmeasured run.
fn median_ms(runs: usize, mut cmd: impl FnMut() -> Command) -> anyhow::Result<f64> {
    let mut v = Vec::with_capacity(runs);
    for i in 0..=runs {
        let t0 = Instant::now();
        let o = cmd().output()?;
        anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        if i > 0 {
            v.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    v.sort_by(f64::total_cmp);
    Ok(super::percentile(&v, 50.0))
}

async fn store_pods(c: &Client, n: usize) -> anyhow::Result<()> {
    for i in 0..n {
        // Bound to a node that does not exist: stored as it is, nothing runs it.
        let pod = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p-{i}","namespace":"default","labels":{{"app":"bench"}}}},"spec":{{"nodeName":"bench-node","containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        );
        match c.call(&Request::Create { object: pod }).await? {
            Response::Object { .. } => {}
            other => anyhow::bail!("creating a pod: {other:?}"),
        }
    }
    Ok(())
}

fn config_map(i: usize) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"lat-{i}","namespace":"default","labels":{{"app":"latency"}}}},"data":{{"k":"v"}}}}"#
    )
}

async fn quic_latency(c: &Client, samples: usize) -> anyhow::Result<Vec<f64>> {
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
        let t0 = Instant::now();
        c.call(&Request::Apply {
            object: config_map(i),
        })
        .await?;
        match w.next().await? {
            Some(WatchEvent::Added { .. }) => out.push(t0.elapsed().as_secs_f64() * 1e3),
            other => anyhow::bail!("unexpected watch event {other:?}"),
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// A TLS connection to the coordinator's HTTPS port with `cfg`'s credentials.
async fn https_connect(
    cfg: &ClientConfig,
) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in skiff_transport::tls::certs_from_pem("ca", &cfg.certificate_authority)? {
        roots.add(cert)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(skiff_transport::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            skiff_transport::tls::certs_from_pem("cert", &cfg.client_certificate)?,
            skiff_transport::tls::key_from_pem("key", &cfg.client_key)?,
        )?;
    let tcp = tokio::net::TcpStream::connect(&cfg.server).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await?)
}

/// The same measure over HTTPS: a watch (`?watch=1`) read as raw bytes, each event a line
/// of its chunked body; writes go over QUIC as above.
async fn https_latency(cfg: &ClientConfig, c: &Client, samples: usize) -> anyhow::Result<Vec<f64>> {
    let mut s = https_connect(cfg).await?;
    s.write_all(b"GET /api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dlatency-https HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n").await?;
    let needle = br#""type":"ADDED""#;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut seen = 0;
    let mut out = Vec::new();
    for i in 0..samples {
        let obj = config_map(i)
            .replace("lat-", "lat-https-")
            .replace("\"latency\"", "\"latency-https\"");
        let t0 = Instant::now();
        c.call(&Request::Apply { object: obj }).await?;
        loop {
            let count = buf.windows(needle.len()).filter(|w| w == needle).count();
            if count > seen {
                seen = count;
                break;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
                .await
                .context("no watch event over HTTPS within 10 s")??;
            anyhow::ensure!(
                n > 0,
                "the HTTPS watch ended: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
        out.push(t0.elapsed().as_secs_f64() * 1e3);
        // Keep only the tail a needle could straddle.
        let keep = buf.len().saturating_sub(needle.len());
        seen -= buf[..keep]
            .windows(needle.len())
            .filter(|w| w == needle)
            .count();
        buf.drain(..keep);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// The idle RSS of a fresh coordinator started with `flags`, after one request.
fn idle_rss(
    dir: &Path,
    flags: &[&str],
    touch: impl Fn(&crate::Coordinator),
) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let c = crate::Coordinator::start_with(dir, crate::free_port(), None, flags);
    touch(&c);
    std::thread::sleep(Duration::from_secs(2));
    crate::rss_bytes(c.pid()).context("coordinator RSS")
}

pub fn run() -> anyhow::Result<()> {
    super::build_release(&["skiff-coordinator", "skiff"])?;
    let kubectl = kubectl()?;
    let pods: usize = super::env_number("SKIFF_BENCH_PODS", 1000);
    let runs: usize = super::env_number("SKIFF_BENCH_RUNS", 20);
    let samples: usize = super::env_number("SKIFF_BENCH_SAMPLES", 200);
    let dir = crate::TempDir::new("bench-http");
    let c = crate::Coordinator::start(dir.path());
    let cfg = ClientConfig::load(&c.config())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = rt.block_on(Client::connect(&cfg))?;
    rt.block_on(store_pods(&client, pods))?;

    let kubeconfig = c.data_dir.join("admin.kubeconfig");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home)?;
    let kube = median_ms(runs, || {
        let mut k = Command::new(&kubectl);
        k.args(["get", "pods", "-A"])
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", &home);
        k
    })?;
    let skiff_bin = crate::binary("skiff");
    let skiff = median_ms(runs, || {
        let mut k = Command::new(&skiff_bin);
        k.args(["--config"])
            .arg(c.config())
            .args(["get", "pods", "-A"]);
        k
    })?;
    let quic = rt.block_on(quic_latency(&client, samples))?;
    let https = rt.block_on(https_latency(&cfg, &client, samples))?;
    drop(client);
    drop(c);

    let with = idle_rss(&dir.path().join("with"), &[], |c| {
        let _ = Command::new(&kubectl)
            .args(["get", "namespaces"])
            .env("KUBECONFIG", c.data_dir.join("admin.kubeconfig"))
            .env("HOME", &home)
            .output();
    })?;
    let without = idle_rss(&dir.path().join("without"), &["--disable-https"], |c| {
        let _ = c.skiff(&["get", "namespaces"]);
    })?;
    let extra_mb = (with as f64 - without as f64) / 1048576.0;
    let p = |v: &[f64], q| super::percentile(v, q);
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("skiff-bench http: the Kubernetes API over HTTPS vs skiff's QUIC API, same run");
    println!(
        "  get pods -A with {pods} pods (median of {runs}): kubectl {kube:.1} ms, skiff {skiff:.1} ms: {:.2}x (goal <= {GOAL_LIST_RATIO}x) {}",
        kube / skiff,
        met(kube / skiff <= GOAL_LIST_RATIO)
    );
    println!(
        "  watch event latency ({samples} samples): HTTPS p50 {:.2} ms p99 {:.2} ms | QUIC p50 {:.2} ms p99 {:.2} ms: p50 {:.2}x, p99 {:.2}x",
        p(&https, 50.0),
        p(&https, 99.0),
        p(&quic, 50.0),
        p(&quic, 99.0),
        p(&https, 50.0) / p(&quic, 50.0),
        p(&https, 99.0) / p(&quic, 99.0)
    );
    println!(
        "  idle coordinator RSS: with HTTPS {:.1} MB, --disable-https {:.1} MB: {extra_mb:+.1} MB (goal <= {GOAL_EXTRA_RSS_MB} MB) {}",
        with as f64 / 1048576.0,
        without as f64 / 1048576.0,
        met(extra_mb <= GOAL_EXTRA_RSS_MB)
    );
    Ok(())
}
