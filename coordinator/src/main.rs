//! `skiff-coordinator`: the API server and its store.

use anyhow::Context;
use clap::Parser;
use skiff_coordinator::pki::Pki;
use skiff_coordinator::requests::Api;
use skiff_coordinator::server;
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use skiff_transport::config::ClientConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

// The coordinator allocates on many threads and frees on others (request tasks, the store
// writer); mimalloc handles that far better than the system allocator (measured with
// skiff-bench store).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// skiff's control plane: API (QUIC, mutual TLS) and embedded store.
#[derive(Parser, Debug)]
#[command(name = "skiff-coordinator", version = skiff_api::VERSION)]
struct Args {
    /// Where the store, PKI, admin.config and node-token live.
    #[arg(
        long,
        default_value = "/var/lib/skiff/coordinator",
        env = "SKIFF_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// UDP address to serve QUIC on.
    #[arg(long, default_value = "0.0.0.0:6443")]
    listen: SocketAddr,
    /// Address clients use to reach this coordinator (written into admin.config);
    /// defaults to the listen address, or 127.0.0.1 when listening on all addresses.
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Extra names or addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Revisions of history a watch may resume from.
    #[arg(long, default_value_t = 10_000)]
    history: u64,
    /// The store checkpoints (a durable commit of its database, which empties its
    /// write-ahead log) once the log holds this many MiB...
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    checkpoint_wal_mib: u64,
    /// ...or has held any write for this long (10s, 1m).
    #[arg(long, default_value = "30s", value_parser = skiff_api::util::parse_duration)]
    checkpoint_interval: std::time::Duration,
    /// Pod addresses of the cluster; each node gets a /24 of it (its podCIDR).
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// Service ClusterIPs are taken from this range.
    #[arg(long, default_value = "10.43.0.0/16", value_parser = skiff_coordinator::services::parse_service_cidr)]
    service_cidr: (std::net::Ipv4Addr, u8),
    /// Node ports of NodePort Services are taken from this range (`30000-32767`).
    #[arg(long, default_value = "30000-32767", value_parser = skiff_coordinator::services::parse_port_range)]
    service_node_port_range: std::ops::RangeInclusive<u16>,
    /// A node whose lease is not renewed for this long becomes Ready=Unknown and tainted
    /// `node.kubernetes.io/unreachable` (500ms, 2s, 40s, 1m).
    #[arg(long, default_value = "40s", value_parser = skiff_api::util::parse_duration)]
    node_monitor_grace_period: std::time::Duration,
    /// How long pods stay on an unreachable or not-ready node before they are evicted
    /// (unless they tolerate the taint for a time of their own).
    #[arg(long, default_value = "300s", value_parser = skiff_api::util::parse_duration)]
    pod_eviction_timeout: std::time::Duration,
    /// How the scheduler prefers nodes by resources: LeastAllocated (spread) or
    /// MostAllocated (bin packing).
    #[arg(long, default_value = "LeastAllocated")]
    scheduler_scoring: skiff_coordinator::sched::Strategy,
    /// Cores of CPU time the coordinator may use while its controllers write in bulk
    /// (a large scale-up or rollout): their writes wait beyond it, so the board keeps
    /// its other cores for workloads. 0: no limit.
    #[arg(long, default_value_t = skiff_coordinator::controllers::runner::DEFAULT_CPU_BUDGET, value_parser = parse_cores)]
    controller_cpu: f64,
    /// How often each HorizontalPodAutoscaler reads its figures and rescales
    /// (Kubernetes' --horizontal-pod-autoscaler-sync-period).
    #[arg(long, default_value = "15s", value_parser = skiff_api::util::parse_duration)]
    hpa_sync_period: std::time::Duration,
    /// Lifetime of the node-token written at first start (`24h`, `7d`); `0` never expires,
    /// and anyone who ever reads that file can then add nodes for good.
    #[arg(long, default_value = "24h", value_parser = skiff_api::util::parse_duration)]
    node_token_ttl: std::time::Duration,
    /// Lifetime of the certificates nodes get (`365d`, `30d`, `10s`); each node renews
    /// its own over its session at 70–90 % of it.
    #[arg(long, default_value = "365d", value_parser = parse_cert_ttl)]
    node_cert_ttl: std::time::Duration,
    /// Events are deleted this long after they last happened (`1h`, as Kubernetes).
    #[arg(long, default_value = "1h", value_parser = parse_event_ttl)]
    event_ttl: std::time::Duration,
    /// Lifetime of the coordinator's serving certificate; it is reissued at 80 % of it
    /// (and at every start), with no restart.
    #[arg(long, default_value = "365d", value_parser = parse_cert_ttl)]
    serving_cert_ttl: std::time::Duration,
    /// Connections without a client certificate (joining, or strangers), handshaking or
    /// open, at once; past half of it, new ones must first prove their address.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(2..=65536))]
    max_unauthenticated_connections: u64,
    /// Of those, how many one source address may hold (a site behind one NAT counts as
    /// one address).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_unauthenticated_per_source: u64,
    /// New connections a second one source address may start (bursts of three times
    /// as many).
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    handshakes_per_second: f64,
    /// Serve only skiff's QUIC API: no Kubernetes API over HTTPS on the same port (TCP),
    /// so no kubectl or Kubernetes client can reach this coordinator.
    #[arg(long)]
    disable_https: bool,
}

fn parse_event_ttl(s: &str) -> Result<std::time::Duration, String> {
    match skiff_api::util::parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: Events must live a while (1h, 10m)")),
        d => Ok(d),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.1 => Ok(r),
        _ => Err(format!("{s:?} is not a rate of at least 0.1 a second")),
    }
}

fn parse_cert_ttl(s: &str) -> Result<std::time::Duration, String> {
    match skiff_api::util::parse_duration(s)? {
        d if d < std::time::Duration::from_secs(2) => Err(format!(
            "{s:?}: a certificate must live at least 2s (nodes renew at 70-90 % of it)"
        )),
        d => Ok(d),
    }
}

fn parse_cores(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(c) if c.is_finite() && c >= 0.0 => Ok(c),
        _ => Err(format!(
            "{s:?} is not a number of cores (0.5, 1, 2; 0 for no limit)"
        )),
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Transparent huge pages would let the allocator's freed memory stay resident in
    // 2 MiB pages; a coordinator on a small board wants its RSS to mean what it uses.
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "could not disable transparent huge pages");
    }
    let advertise = args.advertise_address.unwrap_or_else(|| {
        if args.listen.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            args.listen.ip()
        }
    });
    let sans = serving_names(&args, advertise);

    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let mut pki =
        Pki::load_or_create(&args.data_dir.join("pki"), &sans).context("loading the PKI")?;
    pki.node_cert_ttl = args.node_cert_ttl;
    if args.serving_cert_ttl != skiff_coordinator::pki::DEFAULT_SERVING_CERT_TTL {
        pki.reissue_serving(args.serving_cert_ttl)?;
    }
    let store = RedbStore::open(
        &args.data_dir.join("store"),
        RedbOptions {
            history: args.history,
            wal_limit: args.checkpoint_wal_mib << 20,
            checkpoint_every: args.checkpoint_interval,
            ..Default::default()
        },
    )
    .context("opening the store")?;
    let api = Arc::new(Api {
        store,
        pki,
        nodes: skiff_coordinator::nodes::Nodes::new(
            skiff_coordinator::nodes::parse_cluster_cidr(&args.cluster_cidr)
                .map_err(anyhow::Error::msg)?,
        ),
        pod_hub: Default::default(),
        services: skiff_coordinator::services::Services::new(
            args.service_cidr,
            args.service_node_port_range.clone(),
        ),
    });
    api.bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
    api.adopt_legacy_nodes()
        .await
        .map_err(|e| anyhow::anyhow!("recording the credentials of existing nodes: {e}"))?;

    let server_addr = SocketAddr::new(advertise, args.listen.port()).to_string();
    let (admin_path, token_path) = first_start_files(&api, &args, &server_addr).await?;

    let endpoint = server::endpoint(&api, args.listen)?;
    tracing::info!(listen = %endpoint.local_addr()?, admin_config = %admin_path.display(), node_token = %token_path.display(), "skiff-coordinator serving");
    let door = Arc::new(skiff_coordinator::front_door::FrontDoor::new(
        skiff_coordinator::front_door::Limits {
            max_unauthenticated: args.max_unauthenticated_connections as usize,
            max_unauthenticated_per_source: args.max_unauthenticated_per_source as usize,
            handshakes_per_second: args.handshakes_per_second,
            handshake_burst: 3.0 * args.handshakes_per_second,
        },
    ));
    let (https, serving_https) = start_https(&api, &args, &endpoint, &door).await?;
    let serving = tokio::spawn(server::serve(api.clone(), endpoint.clone(), door));
    let expiry = tokio::spawn(skiff_coordinator::expiry::run(api.clone(), args.event_ttl));
    let rotation = tokio::spawn(rotate_serving_certificate(
        api.clone(),
        endpoint.clone(),
        https,
        args.serving_cert_ttl,
    ));
    let controllers = tokio::spawn(
        skiff_coordinator::controllers::runner::Manager::new(
            api.clone(),
            skiff_coordinator::controllers::runner::Config {
                lifecycle: skiff_coordinator::controllers::node_lifecycle::Lifecycle {
                    grace: args.node_monitor_grace_period,
                    eviction_timeout: args.pod_eviction_timeout.as_secs() as i64,
                },
                strategy: args.scheduler_scoring,
                cpu_budget: args.controller_cpu,
                hpa_sync: args.hpa_sync_period.as_secs().max(1),
            },
        )
        .run(),
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    endpoint.close(0u32.into(), b"coordinator shutting down");
    serving.abort();
    if let Some(h) = &serving_https {
        h.abort();
    }
    controllers.abort();
    expiry.abort();
    rotation.abort();
    let _ = serving.await;
    let _ = controllers.await;
    endpoint.wait_idle().await;
    // Dropping the last handle on the store joins its writer: every acknowledged write is durable.
    drop(api);
    Ok(())
}

/// The Kubernetes API over HTTPS on the QUIC port's number, over TCP, unless
/// `--disable-https`: its TLS (renewed with the QUIC one) and its task.
async fn start_https(
    api: &Arc<Api<skiff_coordinator::store::redb_store::RedbStore>>,
    args: &Args,
    endpoint: &quinn::Endpoint,
    door: &Arc<skiff_coordinator::front_door::FrontDoor>,
) -> anyhow::Result<(
    Option<Arc<skiff_coordinator::http::Https>>,
    Option<tokio::task::JoinHandle<()>>,
)> {
    if args.disable_https {
        return Ok((None, None));
    }
    let https = Arc::new(skiff_coordinator::http::Https::new(api)?);
    let addr = endpoint.local_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}/tcp for the Kubernetes API"))?;
    tracing::info!(listen = %addr, kubeconfig = %args.data_dir.join("admin.kubeconfig").display(), "Kubernetes API over HTTPS");
    let task = tokio::spawn(skiff_coordinator::http::serve(
        api.clone(),
        listener,
        https.clone(),
        door.clone(),
    ));
    Ok((Some(https), Some(task)))
}

/// The names the serving certificate is for.
fn serving_names(args: &Args, advertise: IpAddr) -> Vec<String> {
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "skiff-coordinator".to_string(),
        advertise.to_string(),
    ];
    if !args.listen.ip().is_unspecified() {
        sans.push(args.listen.ip().to_string());
    }
    sans.extend(hostname());
    sans.extend(args.tls_san.iter().cloned());
    sans.sort();
    sans.dedup();
    sans
}

/// Writes what the first start leaves for the operator, unless there: `admin.config`,
/// `admin.kubeconfig` (the same credentials for kubectl) and the default `node-token`
/// (valid `--node-token-ttl`).
async fn first_start_files(
    api: &Api<skiff_coordinator::store::redb_store::RedbStore>,
    args: &Args,
    server_addr: &str,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let admin_path = args.data_dir.join("admin.config");
    if !admin_path.exists() {
        let (cert, key) = api.pki.issue_client(
            "admin",
            "system:masters",
            3650 * skiff_coordinator::pki::DAY,
        )?;
        ClientConfig::new(server_addr.to_string(), api.pki.ca_pem.clone(), cert, key)
            .save(&admin_path)
            .with_context(|| format!("writing {}", admin_path.display()))?;
    }
    // kubectl's and the official clients' config, beside it (also for a data dir from
    // before the HTTPS front end).
    let kubeconfig_path = args.data_dir.join("admin.kubeconfig");
    if !kubeconfig_path.exists() {
        let admin = ClientConfig::load(&admin_path)?;
        skiff_transport::files::write_private(&kubeconfig_path, admin.kubeconfig().as_bytes())
            .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
    }
    let token_path = args.data_dir.join("node-token");
    if !token_path.exists() {
        let resp = api
            .handle(
                &skiff_coordinator::pki::Identity::Admin("bootstrap".into()),
                skiff_api::wire::Request::TokenCreate {
                    ttl_seconds: (!args.node_token_ttl.is_zero())
                        .then(|| args.node_token_ttl.as_secs().max(1)),
                    uses: None,
                    description: "default node token".into(),
                },
            )
            .await;
        let skiff_api::wire::Response::Token { token, .. } = resp else {
            anyhow::bail!("creating the default node token: {resp:?}");
        };
        skiff_transport::files::write_private(&token_path, format!("{token}\n").as_bytes())?;
    }
    Ok((admin_path, token_path))
}

/// Reissues the serving certificate at 80 % of its lifetime and serves it from then on
/// (connections made with the old one carry on).
async fn rotate_serving_certificate(
    api: Arc<Api<skiff_coordinator::store::redb_store::RedbStore>>,
    endpoint: quinn::Endpoint,
    https: Option<Arc<skiff_coordinator::http::Https>>,
    ttl: std::time::Duration,
) {
    loop {
        let wait = api
            .pki
            .serving_renew_at()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
        let r = api
            .pki
            .reissue_serving(ttl)
            .map_err(anyhow::Error::from)
            .and_then(|until| {
                endpoint.set_server_config(Some(server::server_config(&api)?));
                if let Some(h) = &https {
                    h.reload(&api)?;
                }
                Ok(until)
            });
        match r {
            Ok(until) => tracing::info!(
                until = %skiff_api::util::rfc3339(
                    until.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
                ),
                "serving certificate renewed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the serving certificate; trying again in a minute");
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn controller_cpu_takes_a_number_of_cores() {
        assert_eq!(super::parse_cores("0.8"), Ok(0.8));
        assert_eq!(super::parse_cores("2"), Ok(2.0));
        assert_eq!(super::parse_cores("0"), Ok(0.0));
        for bad in ["-1", "one", "", "inf", "NaN"] {
            let e = super::parse_cores(bad).unwrap_err();
            assert!(e.contains("not a number of cores"), "{bad}: {e}");
        }
    }
}
