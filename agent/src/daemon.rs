//! `skiff-agent --server ... --token ...`: the node agent's long-running mode.

use crate::local::Local;
use crate::state::{Agent, Config, EventQueue, StatusQueue};
use crate::{link, ops, Args};
use skiff_runtime::ContainerStatus;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;

pub use skiff_api::util::parse_duration;

/// `k=v,k2=v2`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for kv in s.split(',').filter(|x| !x.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::flag(format!("--labels {kv:?}: want key=value")))?;
        if let Some(why) = skiff_api::validate::qualified_name_problem(k) {
            return Err(Error::flag(format!("--labels {k:?}: {why}")));
        }
        if let Some(why) = skiff_api::validate::label_value_problem(v) {
            return Err(Error::flag(format!("--labels {kv:?}: {why}")));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

pub fn run(args: &Args, d: &crate::DaemonArgs) -> Result<i32, Error> {
    init_logging();
    // At start, only this process's own pages go: the file's stay in the page cache, where
    // the runtime helper (this executable) and the pods' first start find them; the idle
    // helper's release (below) evicts them once the node is quiet.
    if let Err(e) = skiff_runtime::shed_code_pages(skiff_runtime::PageCache::Keep) {
        tracing::debug!("keeping code pages as they are: {e}");
    }
    let cfg = config(args, d)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    std::fs::set_permissions(
        &cfg.data_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let images = Arc::new(ops::store(args)?);
    let runtime = Arc::new(ops::runtime(args)?);
    let registries = ops::registries(args)?;
    if runtime.booted() {
        // Nothing of the node's sandboxes survived: each pod's worker finds its sandbox
        // broken on its first pass and makes it anew (the same check catches a power cut
        // that did not change the boot id, as the tests simulate it).
        tracing::info!(
            "the node booted since the agent last ran: every pod's sandbox is made anew"
        );
    }
    let local = Local::open(&cfg.data_dir)?;
    local.secrets_in_memory()?;
    // What already runs, by pod: the workers adopt it.
    let mut adopt: HashMap<String, Vec<ContainerStatus>> = HashMap::new();
    for c in runtime.list()? {
        if let Some(uid) = c.labels.get(crate::pods::worker::LABEL_UID) {
            adopt.entry(uid.clone()).or_default().push(c);
        }
    }
    let sandboxes: HashSet<String> = runtime.sandboxes()?.into_iter().collect();
    let (kept, lost) = local.pods();
    // A pod whose file was unreadable is known too: what it runs waits for the coordinator.
    let known: HashSet<String> = kept
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .chain(lost.iter().cloned())
        .collect();
    remove_orphan_sandboxes(&runtime, &sandboxes, &known, &mut adopt)?;
    // The pod network as the node last knew it (a restart while cut off keeps it).
    let net = crate::network::pod_net::PodNetwork::stored_cidr(&cfg.data_dir)
        .map(|cidr| crate::network::pod_net::PodNetwork::new(&cfg.name, &cidr, &cfg.data_dir))
        .transpose()?
        .map(Arc::new);
    if let Some(net) = &net {
        for uid in net.leased() {
            if !known.contains(&uid) {
                net.detach(&uid)?;
            }
        }
    }
    let mut configs = HashMap::new();
    for (kind, ns, name, v) in local.configs() {
        configs.insert((kind, ns, name), v);
    }
    // The cluster as last heard of (routes, Services, DNS work before the coordinator answers).
    let cluster = Arc::new(crate::services::cluster::load(&cfg.data_dir));
    let (client_tx, _) = tokio::sync::watch::channel(None);
    let allocatable = crate::link::node::resources(&cfg).1;
    let agent = Arc::new(Agent {
        allocatable,
        host_ip: Mutex::new(
            cfg.node_ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "127.0.0.1".into()),
        ),
        cfg,
        rt: runtime,
        images,
        registries,
        local,
        client: client_tx,
        pods: Mutex::new(HashMap::new()),
        configs: Mutex::new(configs),
        status: StatusQueue::default(),
        events: EventQueue::default(),
        adopt: Mutex::new(adopt),
        adopt_sandboxes: Mutex::new(sandboxes),
        unclaimed: Mutex::new(lost.into_iter().collect()),
        net: Mutex::new(net),
        cluster: tokio::sync::watch::channel(cluster).0,
        pod_addresses: tokio::sync::Notify::new(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(16)
        .thread_keep_alive(Duration::from_secs(5))
        .build()?;
    rt.block_on(async move {
        // The pods kept on disk run before the coordinator answers (or if it never does).
        for pod in kept {
            tracing::info!(pod = %format!("{}/{}", pod.metadata.namespace(), pod.metadata.name()), "resuming from local state");
            crate::pods::manage::start_or_update(&agent, pod);
        }
        spawn_tasks(&agent);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        // Containers outlive the agent: a restarted agent adopts them.
        tracing::info!("stopping; containers keep running");
        Ok::<_, Error>(())
    })?;
    Ok(0)
}

/// The agent's long-running tasks: the link to the coordinator, the kept cluster view,
/// host ports, state-file retries, the Service proxy, DNS, Ingress, volume cleanup and the
/// runtime helper's idle release.
fn spawn_tasks(agent: &Arc<Agent>) {
    tokio::spawn(link::run(agent.clone()));
    tokio::spawn(crate::services::cluster::keep(
        agent.cluster.subscribe(),
        agent.cfg.data_dir.clone(),
    ));
    tokio::spawn(crate::pods::manage::watch_ports(agent.clone()));
    tokio::spawn(retry_state_writes(agent.clone()));
    tokio::spawn(crate::services::proxy::run(agent.clone()));
    tokio::spawn(crate::services::dns::run(agent.clone()));
    tokio::spawn(crate::services::ingress::run(agent.clone()));
    tokio::spawn(crate::volumes::run(agent.clone()));
    if !agent.cfg.helper_idle.is_zero() {
        tokio::spawn(release_idle_helper(agent.clone()));
    }
}

/// The node's settings from the command line.
fn config(args: &Args, d: &crate::DaemonArgs) -> Result<Config, Error> {
    Ok(Config {
        name: ops::node_name(args),
        data_dir: args.data_dir.clone(),
        server: d.server.clone(),
        token: d.token.clone(),
        labels: d
            .labels
            .as_deref()
            .map(parse_labels)
            .transpose()?
            .unwrap_or_default(),
        node_ip: d.node_ip,
        backoff_base: parse_duration(&d.restart_backoff).map_err(Error::Flag)?,
        heartbeat: parse_duration(&d.heartbeat_interval).map_err(Error::Flag)?,
        usage_interval: parse_duration(&d.usage_interval).map_err(Error::Flag)?,
        max_pods: d.max_pods,
        ingress_class: d.ingress_class.clone(),
        ingress_http_port: d.ingress_http_port,
        ingress_https_port: d.ingress_https_port,
        pod_network: d.pod_network,
        helper_idle: parse_duration(&d.helper_idle).map_err(Error::Flag)?,
        local_path_dir: d
            .local_path_dir
            .clone()
            .unwrap_or_else(|| args.data_dir.join("local-path")),
    })
}

/// Removes the sandboxes of pods this node no longer holds.
fn remove_orphan_sandboxes(
    runtime: &skiff_runtime::Runtime,
    sandboxes: &HashSet<String>,
    known: &HashSet<String>,
    adopt: &mut HashMap<String, Vec<ContainerStatus>>,
) -> Result<(), Error> {
    // Sandboxes of pods this node no longer holds (deleted while the agent was down and
    // its state already forgotten) are removed. Pod sandboxes are named by the pod's uid;
    // others (`skiff-agent run`'s `run-…`) are the operator's.
    let pod_sandbox = |s: &str| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    };
    for s in sandboxes.iter().filter(|s| !known.contains(*s)) {
        if adopt.contains_key(s) || pod_sandbox(s) {
            tracing::info!(sandbox = %s, "removing a sandbox no pod owns");
            runtime.remove_sandbox(s)?;
            adopt.remove(s);
        }
    }
    Ok(())
}

/// Makes again, every few seconds, the state writes that failed (a full disk), so the
/// node's copy of its pods catches up once space is freed, without a restart.
async fn retry_state_writes(agent: Arc<Agent>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !agent.local.has_unwritten() {
            continue;
        }
        let a = agent.clone();
        let _ = tokio::task::spawn_blocking(move || a.local.retry()).await;
    }
}

/// Logs to stderr, filtered by `SKIFF_LOG`.
fn init_logging() {
    // libcgroups reports at info/warn on every stats read (and about controllers this
    // kernel lacks): kept quiet unless SKIFF_LOG names it, so a quiet node writes no logs.
    let spec = std::env::var("SKIFF_LOG").unwrap_or_else(|_| "info".into());
    let spec = if spec.contains("libcgroups") {
        spec
    } else {
        format!("{spec},libcgroups=error")
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(spec))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Stops the runtime helper whenever it has been idle for `--helper-idle`.
async fn release_idle_helper(agent: Arc<Agent>) {
    let idle = agent.cfg.helper_idle;
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_secs(1)));
    loop {
        tick.tick().await;
        let rt = agent.rt.clone();
        if let Ok(true) = tokio::task::spawn_blocking(move || rt.release_idle_helper(idle)).await {
            tracing::debug!("runtime helper idle for {idle:?}: stopped");
            // The work that needed the helper (starting containers, mostly) ran code a
            // quiet node does not: let those pages go too.
            shed_code_pages();
        }
    }
}

/// Keeps resident only the agent's code it runs from now on (`skiff_runtime::shed_code_pages`).
fn shed_code_pages() {
    if let Err(e) = skiff_runtime::shed_code_pages(skiff_runtime::PageCache::Evict) {
        tracing::debug!("keeping code pages as they are: {e}");
    }
}
