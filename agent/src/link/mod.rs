//! The agent's one QUIC connection to the coordinator: join on first start, register the
//! Node, heartbeat (a lease the coordinator keeps in memory), watch the pods bound to the
//! node and the ConfigMaps/Secrets they use, send status updates and events, report usage,
//! and serve the log and exec streams the coordinator opens. Reconnects with jittered
//! backoff; the pods keep running meanwhile.

mod credentials;
pub mod follow;
mod forward;
pub mod node;
pub mod serve;
pub mod usage;

use crate::pods::manage;
use credentials::{credentials, renew_certificate, warn_if_expired};

use crate::state::Agent;
use serde_json::Value;
use skiff_api::core::Node;
use skiff_api::pod::Pod;
use skiff_api::wire::{ErrorCode, Request, Response, WatchEvent};
use skiff_api::{Kind, ObjectKey};
use skiff_transport::config::ClientConfig;
use skiff_transport::{Client, ClientError};
use std::collections::HashSet;
use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

type Result<T> = std::result::Result<T, ClientError>;

/// The local address that reaches `server` (the node's IP unless `--node-ip` says).
fn local_ip_towards(server: &str) -> Option<IpAddr> {
    use std::net::ToSocketAddrs;
    let addr = server.to_socket_addrs().ok()?.next()?;
    let s = UdpSocket::bind(skiff_transport::udp::any_local_for(addr)).ok()?;
    s.connect(addr).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// Random fraction in [0, 1) for jitter.
fn jitter() -> f64 {
    let b = crate::util::random_bytes::<4>();
    u32::from_le_bytes(b) as f64 / (u32::MAX as f64 + 1.0)
}

/// Runs forever: connect, serve the session, reconnect.
pub async fn run(agent: Arc<Agent>) {
    let mut delay = Duration::from_millis(200);
    let mut since: Option<u64> = None;
    let mut connections = 0u64;
    let mut refused = false;
    let mut warned = None;
    loop {
        let cfg = match credentials(&agent, refused).await {
            Ok(c) => c,
            Err(crate::error::Error::Join { server, source })
                if source.code() == Some(ErrorCode::AlreadyExists) =>
            {
                // Another node holds the name: nothing to retry, and nothing of the
                // other node's to take.
                tracing::error!(%server, node = %agent.cfg.name, "cannot join: {source}");
                eprintln!(
                    "skiff-agent: cannot join {server} as {:?}: {source}",
                    agent.cfg.name
                );
                std::process::exit(3);
            }
            Err(e) => {
                tracing::warn!("{e}");
                sleep_jittered(&mut delay).await;
                continue;
            }
        };
        refused = warn_if_expired(&cfg, &agent.cfg.name, &mut warned);
        let client = match Client::connect(&cfg).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(server = %cfg.server, "cannot reach the coordinator: {e}");
                sleep_jittered(&mut delay).await;
                continue;
            }
        };
        connections += 1;
        delay = Duration::from_millis(200);
        let ip = agent
            .cfg
            .node_ip
            .or_else(|| local_ip_towards(&cfg.server))
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        *agent.host_ip.lock().unwrap() = ip;
        tracing::info!(server = %cfg.server, connection = connections, "connected to the coordinator");
        agent.client.send_replace(Some(client.clone()));
        let r = session(&agent, &client, &cfg, &mut since).await;
        agent.client.send_replace(None);
        if let Some(why) = client.refusal() {
            refused = true;
            tracing::error!(
                "the coordinator refuses this node's credential (its pods keep running): {why}"
            );
        } else {
            client.connection().close(0u32.into(), b"reconnecting");
            match r {
                Ok(()) => tracing::warn!("the coordinator closed the connection"),
                Err(e) => tracing::warn!("lost the coordinator: {e}"),
            }
        }
        sleep_jittered(&mut delay).await;
    }
}

async fn sleep_jittered(delay: &mut Duration) {
    let d = delay.mul_f64(0.5 + jitter());
    tokio::time::sleep(d).await;
    *delay = (*delay * 2).min(Duration::from_secs(10));
}

async fn session(
    agent: &Arc<Agent>,
    client: &Client,
    cfg: &ClientConfig,
    since: &mut Option<u64>,
) -> Result<()> {
    register(agent, client).await?;
    // Pods: resume the watch where it stopped, or list and reconcile.
    let rev = match *since {
        Some(r) => r,
        None => relist(agent, client).await?,
    };
    *since = Some(rev);
    let cfg_rev = sync_configs(agent, client).await?;
    // The status and events gathered while cut off go first.
    agent.status.resume();
    agent.status.notify.notify_one();
    agent.events.notify.notify_one();
    let pods = async {
        loop {
            match watch_pods(agent, client, since).await {
                Ok(true) => continue,
                Ok(false) => {
                    let r = relist(agent, client).await?;
                    *since = Some(r);
                }
                Err(e) => return Err(e),
            }
        }
    };
    tokio::select! {
        r = pods => r,
        r = watch_configs(agent, client, cfg_rev) => r,
        r = follow::follow(agent, client) => r,
        r = heartbeat(agent, client) => r,
        r = send_status(agent, client) => r,
        r = send_events(agent, client) => r,
        r = report_usage(agent, client) => r,
        r = serve_streams(agent, client) => r,
        r = renew_certificate(agent, client, cfg) => r,
        _ = rebind_on_signal(client) => Ok(()),
        e = client.connection().closed() => Err(ClientError::Stream(e.to_string())),
    }
}

async fn register(agent: &Agent, client: &Client) -> Result<()> {
    let key = ObjectKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: agent.cfg.name.clone(),
    };
    let current: Option<Node> = match client.get_json(key).await {
        Ok(v) => serde_json::from_value(v).ok(),
        Err(e) if e.code() == Some(ErrorCode::NotFound) => None,
        Err(e) => return Err(e),
    };
    let mut want = crate::link::node::desired(agent, current.as_ref());
    let mut pod_cidr = current.as_ref().and_then(|n| n.spec.pod_cidr.clone());
    match &current {
        None => {
            let json = serde_json::to_string(&want).expect("serializable");
            if let Response::Object { object } =
                client.call(&Request::Create { object: json }).await?
            {
                pod_cidr = serde_json::from_str::<Node>(&object)
                    .ok()
                    .and_then(|n| n.spec.pod_cidr);
            }
            tracing::info!(node = %agent.cfg.name, "registered the node");
        }
        Some(cur) => {
            let mut cur = cur.clone();
            cur.metadata.resource_version = None;
            want.metadata.resource_version = None;
            if cur != want {
                let json = serde_json::to_string(&want).expect("serializable");
                client
                    .call(&Request::Update {
                        object: json,
                        status: false,
                    })
                    .await?;
            }
        }
    }
    if let Some(cidr) = pod_cidr {
        set_pod_network(agent, &cidr).await;
    }
    Ok(())
}

/// Sets up (or keeps) the pod network for the node's pod CIDR; pods get the MTU of the
/// node's link to the cluster (less the overlay's headers, if it may carry them).
async fn set_pod_network(agent: &Agent, cidr: &str) {
    let host_ip = agent.host_ip.lock().unwrap().parse().ok();
    let kept = agent.net().filter(|n| n.cidr() == cidr);
    let (name, dir, cidr) = (
        agent.cfg.name.clone(),
        agent.cfg.data_dir.clone(),
        cidr.to_string(),
    );
    let backend = agent.cfg.pod_network;
    let r = crate::util::blocking(move || {
        let mtu = backend.pod_mtu(host_ip.map_or(1500, crate::network::pod_net::mtu_of));
        let net = match kept {
            Some(n) => n,
            None => {
                let n = crate::network::pod_net::PodNetwork::new(&name, &cidr, &dir)?;
                n.ensure_bridge()?;
                Arc::new(n)
            }
        };
        net.mtu.store(mtu, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, crate::network::NetError>(net)
    })
    .await;
    match r {
        Ok(net) if agent.net().is_some_and(|n| Arc::ptr_eq(&n, &net)) => {}
        Ok(net) => {
            tracing::info!(cidr = %net.cidr(), "pod network ready");
            *agent.net.lock().unwrap() = Some(net);
        }
        Err(e) => tracing::warn!("pod network: {e}"),
    }
}

fn pod_of(json: &str) -> Option<Pod> {
    serde_json::from_str(json).ok()
}

/// Lists the node's pods and makes the workers match: new ones start, changed ones get
/// their new spec, those gone are stopped. Returns the list's revision.
async fn relist(agent: &Arc<Agent>, client: &Client) -> Result<u64> {
    let (rev, items) = client.list_all(Kind::Pod, None, None).await?;
    let mut seen = HashSet::new();
    for json in items {
        if let Some(p) = pod_of(&json) {
            seen.insert(p.metadata.uid.clone().unwrap_or_default());
            apply_pod(agent, client, p, false).await;
        }
    }
    let gone: Vec<String> = agent
        .pods
        .lock()
        .unwrap()
        .keys()
        .filter(|u| !seen.contains(*u))
        .cloned()
        .collect();
    for uid in gone {
        manage::stop(agent, &uid);
    }
    forget_unclaimed(agent, &seen).await;
    Ok(rev)
}

/// Pods whose state files were unreadable at start and that the coordinator no longer
/// binds here: their sandboxes (with any containers) and addresses are removed. Those it
/// does bind were handed to workers, which adopted what they run.
async fn forget_unclaimed(agent: &Arc<Agent>, seen: &HashSet<String>) {
    let gone: Vec<String> = std::mem::take(&mut *agent.unclaimed.lock().unwrap())
        .into_iter()
        .filter(|u| !seen.contains(u))
        .collect();
    for uid in gone {
        agent.adopt.lock().unwrap().remove(&uid);
        let had_sandbox = agent.adopt_sandboxes.lock().unwrap().remove(&uid);
        let (rt, net) = (agent.rt.clone(), agent.net());
        let u = uid.clone();
        let r = crate::util::blocking(move || {
            if had_sandbox {
                rt.remove_sandbox(&u).map_err(|e| e.to_string())?;
            }
            if let Some(net) = net {
                net.detach(&u).map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        })
        .await;
        match r {
            Ok(()) => tracing::info!(pod_uid = %uid, "removed what a pod no longer bound here ran"),
            Err(e) => tracing::warn!(pod_uid = %uid, error = %e, "removing what a gone pod ran"),
        }
    }
}

/// Watches the node's pods from `since`. `Ok(true)`: the watch ended and may resume;
/// `Ok(false)`: the history is gone, list again.
async fn watch_pods(agent: &Arc<Agent>, client: &Client, since: &mut Option<u64>) -> Result<bool> {
    let mut w = client
        .watch(&Request::Watch {
            kind: Kind::Pod,
            namespace: None,
            selector: None,
            since: *since,
        })
        .await?;
    loop {
        let ev = match w.next().await? {
            Some(e) => e,
            None => return Ok(true),
        };
        let rev = ev.revision();
        match ev {
            WatchEvent::Added { object, .. } | WatchEvent::Modified { object, .. } => {
                if let Some(p) = pod_of(&object) {
                    apply_pod(agent, client, p, false).await;
                }
            }
            WatchEvent::Deleted { object, .. } => {
                if let Some(p) = pod_of(&object) {
                    apply_pod(agent, client, p, true).await;
                }
            }
            WatchEvent::Expired { .. } => return Ok(false),
            WatchEvent::Error(e) => return Err(ClientError::Api(e)),
        }
        if let Some(r) = rev {
            *since = Some(r);
        }
    }
}

/// Brings one pod's worker up to date with the coordinator's object.
pub async fn apply_pod(agent: &Arc<Agent>, client: &Client, pod: Pod, deleted: bool) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        return;
    }
    if deleted {
        manage::stop(agent, &uid);
        return;
    }
    if !manage::take(agent, &pod) {
        return;
    }
    fetch_sources(agent, client, &pod).await;
    manage::start_or_update(agent, pod);
}

/// Fetches the ConfigMaps and Secrets a pod reads that the agent does not hold yet.
async fn fetch_sources(agent: &Agent, client: &Client, pod: &Pod) {
    let ns = pod.metadata.namespace().to_string();
    let wanted = pod
        .spec
        .config_map_names()
        .into_iter()
        .map(|n| (Kind::ConfigMap, n))
        .chain(
            pod.spec
                .secret_names()
                .into_iter()
                .map(|n| (Kind::Secret, n)),
        );
    for (kind, name) in wanted {
        let k = (kind, ns.clone(), name.clone());
        if agent.configs.lock().unwrap().contains_key(&k) {
            continue;
        }
        let key = ObjectKey {
            kind,
            namespace: ns.clone(),
            name: name.clone(),
        };
        match client.get_json(key).await {
            Ok(v) => keep_config(agent, kind, &ns, &name, v),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {}
            Err(e) => tracing::warn!(%name, error = %e, "fetching a pod's {}", kind.info().name),
        }
    }
}

/// An object's namespace and name from its JSON.
fn ns_name(v: &Value) -> (String, String) {
    let get = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (get("/metadata/namespace"), get("/metadata/name"))
}

fn keep_config(agent: &Agent, kind: Kind, ns: &str, name: &str, v: Value) {
    if let Err(e) = agent.local.save_config(kind, ns, name, &v) {
        tracing::warn!(%name, error = %e, "keeping a {} on disk", kind.info().name);
    }
    agent
        .configs
        .lock()
        .unwrap()
        .insert((kind, ns.to_string(), name.to_string()), v);
}

/// Refreshes the pods' ConfigMaps/Secrets; returns the revision to watch them from.
async fn sync_configs(agent: &Arc<Agent>, client: &Client) -> Result<u64> {
    let mut rev = 0;
    for kind in [Kind::ConfigMap, Kind::Secret] {
        let (r, items) = client.list_all(kind, None, None).await?;
        rev = rev.max(r);
        let mut seen = HashSet::new();
        for json in items {
            let Ok(v) = serde_json::from_str::<Value>(&json) else {
                continue;
            };
            let (ns, name) = ns_name(&v);
            seen.insert((kind, ns.clone(), name.clone()));
            keep_config(agent, kind, &ns, &name, v);
        }
        let gone: Vec<_> = agent
            .configs
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.0 == kind && !seen.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            agent.configs.lock().unwrap().remove(&k);
            let _ = agent.local.remove_config(k.0, &k.1, &k.2);
        }
    }
    refresh_all(agent);
    Ok(rev)
}

/// Hands every worker its pod's current ConfigMaps/Secrets (workers act only on change).
fn refresh_all(agent: &Arc<Agent>) {
    let pods: Vec<Pod> = agent
        .pods
        .lock()
        .unwrap()
        .values()
        .map(|e| (*e.desired.borrow().pod).clone())
        .collect();
    for p in pods {
        manage::start_or_update(agent, p);
    }
}

async fn watch_configs(agent: &Arc<Agent>, client: &Client, since: u64) -> Result<()> {
    let mut since = since;
    loop {
        let mut watches = Vec::new();
        for kind in [Kind::ConfigMap, Kind::Secret] {
            watches.push(
                client
                    .watch(&Request::Watch {
                        kind,
                        namespace: None,
                        selector: None,
                        since: Some(since),
                    })
                    .await?,
            );
        }
        let mut cm = watches.remove(0);
        let mut sec = watches.remove(0);
        loop {
            let (kind, ev) = tokio::select! {
                e = cm.next() => (Kind::ConfigMap, e?),
                e = sec.next() => (Kind::Secret, e?),
            };
            let Some(ev) = ev else { break };
            if let Some(r) = ev.revision() {
                since = since.max(r);
            }
            match ev {
                WatchEvent::Added { object, .. } | WatchEvent::Modified { object, .. } => {
                    if let Ok(v) = serde_json::from_str::<Value>(&object) {
                        let (ns, name) = ns_name(&v);
                        keep_config(agent, kind, &ns, &name, v);
                        refresh_all(agent);
                    }
                }
                WatchEvent::Deleted { object, .. } => {
                    if let Ok(v) = serde_json::from_str::<Value>(&object) {
                        let (ns, name) = ns_name(&v);
                        agent
                            .configs
                            .lock()
                            .unwrap()
                            .remove(&(kind, ns.clone(), name.clone()));
                        let _ = agent.local.remove_config(kind, &ns, &name);
                        refresh_all(agent);
                    }
                }
                WatchEvent::Expired { .. } => {
                    since = sync_configs(agent, client).await?;
                    break;
                }
                WatchEvent::Error(e) => return Err(ClientError::Api(e)),
            }
        }
    }
}

async fn heartbeat(agent: &Agent, client: &Client) -> Result<()> {
    let mut t = tokio::time::interval(agent.cfg.heartbeat);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        client.call(&Request::Heartbeat).await?;
    }
}

async fn send_status(agent: &Agent, client: &Client) -> Result<()> {
    loop {
        if agent.status.is_empty() {
            agent.status.notify.notified().await;
        }
        let mut batch = agent.status.take().into_iter();
        while let Some((pod, status)) = batch.next() {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let mut p = (*pod).clone();
            p.metadata.resource_version = None;
            p.status = Some(status.clone());
            let json = serde_json::to_string(&p).expect("serializable");
            match client
                .call(&Request::Update {
                    object: json,
                    status: true,
                })
                .await
            {
                Ok(Response::Object { object }) => {
                    let stored = pod_of(&object).and_then(|p| p.status);
                    agent.status.stored(&uid, stored);
                }
                Ok(_) => agent.status.stored(&uid, Some(status)),
                Err(e) if matches!(e.code(), Some(ErrorCode::NotFound | ErrorCode::Forbidden)) => {
                    agent.status.forget(&uid)
                }
                Err(e) => {
                    // This one and the rest of the batch go again on the next session.
                    agent.status.retry(pod, status);
                    for (pod, status) in batch {
                        agent.status.retry(pod, status);
                    }
                    return Err(e);
                }
            }
        }
    }
}

async fn send_events(agent: &Agent, client: &Client) -> Result<()> {
    loop {
        let Some(e) = agent.events.pop() else {
            agent.events.notify.notified().await;
            continue;
        };
        let (ev, new) = agent.events.object_for(&e, &agent.cfg.name);
        let json = serde_json::to_string(&ev).expect("serializable");
        let r = if new {
            client.call(&Request::Create { object: json }).await
        } else {
            client
                .call(&Request::Update {
                    object: json,
                    status: false,
                })
                .await
        };
        match r {
            Ok(_) => {}
            // The namespace went away with its pod, or the pod is gone (a node reports
            // Events only about pods bound to it): nothing to report to.
            Err(err)
                if matches!(
                    err.code(),
                    Some(ErrorCode::NotFound | ErrorCode::Invalid | ErrorCode::Forbidden)
                ) =>
            {
                tracing::debug!(error = %err, "event dropped");
            }
            Err(err) => {
                agent.events.push_front(e);
                return Err(err);
            }
        }
    }
}

async fn report_usage(agent: &Agent, client: &Client) -> Result<()> {
    let mut sampler = crate::link::usage::Sampler::default();
    let mut t = tokio::time::interval(agent.cfg.usage_interval);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        let node = sampler.node();
        // Each pod's containers with the runtime id of their latest attempt.
        type Ids = Vec<(String, String)>;
        let pods: Vec<(String, String, Ids)> = agent
            .pods
            .lock()
            .unwrap()
            .values()
            .map(|e| {
                let v = e.view.lock().unwrap();
                let ids = v
                    .attempts
                    .iter()
                    .filter_map(|(c, a)| Some((c.clone(), a.last()?.clone())))
                    .collect();
                (e.namespace.clone(), e.name.clone(), ids)
            })
            .collect();
        let rt = agent.rt.clone();
        let figures = tokio::task::spawn_blocking(move || {
            pods.into_iter()
                .map(|(ns, name, ids)| {
                    let containers: Vec<(String, u64, u64)> = ids
                        .into_iter()
                        .filter_map(|(c, id)| {
                            let s = rt.stats(&id).ok()?;
                            Some((c, s.cpu_usage_ns, s.memory_working_set))
                        })
                        .collect();
                    (ns, name, containers)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let live: Vec<String> = figures
            .iter()
            .flat_map(|(ns, n, cs)| cs.iter().map(move |(c, ..)| format!("{ns}/{n}/{c}")))
            .collect();
        sampler.retain(&live);
        let pods = figures
            .into_iter()
            .map(|(ns, n, cs)| sampler.pod(&ns, &n, &cs))
            .collect();
        client.call(&Request::ReportUsage { node, pods }).await?;
    }
}

/// Serves one stream the coordinator opened: logs, exec, attach (`serve.rs`) or
/// port-forward (`forward.rs`).
async fn stream(agent: Arc<Agent>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    use skiff_api::wire::{StreamFrame, MAX_FRAME_LEN};
    use skiff_transport::frames::{read_frame, write_frame};
    let req: Request = match read_frame(&mut recv, MAX_FRAME_LEN).await {
        Ok(Some(r)) => r,
        _ => return,
    };
    let r = match req {
        Request::Logs(l) => serve::logs(&agent, l, &mut send).await,
        Request::Exec(e) => serve::exec(&agent, e, &mut send, recv).await,
        Request::Attach(a) => serve::attach(&agent, a, &mut send, recv).await,
        Request::PortForward(p) => forward::port_forward(&agent, p, &mut send, recv).await,
        _ => Err(serve::error(
            ErrorCode::BadRequest,
            "the node serves only logs, exec, attach and port-forward",
        )),
    };
    if let Err(f) = r {
        let _ = write_frame::<StreamFrame, _>(&mut send, &f).await;
    }
    let _ = send.finish();
}

async fn serve_streams(agent: &Arc<Agent>, client: &Client) -> Result<()> {
    loop {
        let (send, recv) = client
            .connection()
            .accept_bi()
            .await
            .map_err(|e| ClientError::Stream(e.to_string()))?;
        let agent = agent.clone();
        tokio::spawn(async move { stream(agent, send, recv).await });
    }
}

/// SIGUSR1 moves the connection to a new local socket (QUIC connection migration: the
/// session survives a change of the node's address).
async fn rebind_on_signal(client: &Client) {
    let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
    else {
        return std::future::pending().await;
    };
    while sig.recv().await.is_some() {
        let ep = client.endpoint();
        let old = ep.local_addr().ok();
        let bind = skiff_transport::udp::any_local_for(old.unwrap_or(([0, 0, 0, 0], 0).into()));
        // The new socket gets the same raised buffers as the first.
        let socket = skiff_transport::udp::bind(bind, skiff_transport::udp::CLIENT_BUFFER);
        match socket.and_then(|(s, _)| ep.rebind(s).map(|_| ())) {
            Ok(()) => tracing::info!(
                from = ?old,
                to = ?ep.local_addr().ok(),
                "moved the connection to a new local socket"
            ),
            Err(e) => tracing::warn!("rebinding the QUIC socket: {e}"),
        }
    }
}
