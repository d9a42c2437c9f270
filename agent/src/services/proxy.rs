//! The kube-proxy's work, in the agent: every Service's virtual IP answers on every node.
//!
//! Design: kernel translation for pods' traffic to ClusterIPs, an in-agent proxy for the
//! rest.
//! - Pods → ClusterIP ports (without ClientIP affinity): a DNAT rule in the node's
//!   nftables table (prerouting, written over nfnetlink by `nft.rs`) sends each new
//!   connection to a random ready endpoint, and conntrack keeps it there. No user-space
//!   hop: `skiff-bench network` measures it within a few percent of the pod IP directly.
//!   A connection to a pod on the same node is masqueraded on its way out (the hairpin
//!   rule in `nft.rs`), so the answer comes back through the translation.
//! - Everything else goes through the proxy: each ClusterIP has a `local` route on the
//!   node's loopback, so a packet to one that no rule translated is delivered to the node
//!   itself, where the agent listens on each `ClusterIP:port` (TCP and UDP) and on each
//!   node port, picks a Ready endpoint (round robin, or the client's previous one under
//!   `sessionAffinity: ClientIP`), connects to it and relays (splice). That serves node
//!   ports, affinity, the node's own processes (their packets do not cross prerouting),
//!   and every pod when the kernel has no nf_tables: the proxy is the fallback, not a
//!   second path to keep apart.
//!
//! It also keeps the node's routes to other nodes' pods up to date (host-gw or the VXLAN
//! overlay, see `overlay.rs`), from the same cluster view.

use crate::services::cluster::ClusterView;
use crate::state::Agent;
use skiff_api::core::{Endpoints, Service, ServicePort};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Where clients connect: a ClusterIP port or a node port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frontend {
    pub addr: SocketAddr,
    pub proto: Proto,
}

/// Where a frontend's traffic goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backends {
    /// Ready endpoints.
    pub addrs: Vec<SocketAddr>,
    /// ClientIP affinity and its timeout.
    pub affinity: Option<Duration>,
}

/// The ready endpoints of one Service port: the subset ports named like it (an unnamed
/// Service port matches the only port of a subset).
pub fn endpoints_for(port: &ServicePort, ep: Option<&Endpoints>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let Some(ep) = ep else { return out };
    let proto = port.protocol.as_deref().unwrap_or("TCP");
    for sub in &ep.subsets {
        let p = sub.ports.iter().find(|p| {
            p.name == port.name
                && p.protocol.as_deref().unwrap_or("TCP") == proto
                && p.port.is_some()
        });
        let Some(n) = p.and_then(|p| p.port).and_then(|n| u16::try_from(n).ok()) else {
            continue;
        };
        for a in &sub.addresses {
            if let Ok(ip) = a.ip.parse::<IpAddr>() {
                out.push(SocketAddr::new(ip, n));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn proto_of(p: &ServicePort) -> Option<Proto> {
    match p.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Some(Proto::Tcp),
        "UDP" => Some(Proto::Udp),
        _ => None,
    }
}

/// Every frontend the cluster's Services ask for, with its backends. Pure.
pub fn frontends(view: &ClusterView) -> BTreeMap<Frontend, Backends> {
    let mut out = BTreeMap::new();
    for ((ns, name), svc) in &view.services {
        let Some(vip) = cluster_ip(svc) else { continue };
        let ep = view.endpoints.get(&(ns.clone(), name.clone()));
        let affinity = (svc.spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let secs = svc
                .spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(10800);
            Duration::from_secs(secs.max(1) as u64)
        });
        for p in &svc.spec.ports {
            let (Some(proto), Some(port)) = (proto_of(p), p.port) else {
                continue;
            };
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            let b = Backends {
                addrs: endpoints_for(p, ep),
                affinity,
            };
            out.insert(
                Frontend {
                    addr: SocketAddr::new(IpAddr::V4(vip), port),
                    proto,
                },
                b.clone(),
            );
            if let Some(np) = p.node_port.and_then(|n| u16::try_from(n).ok()) {
                out.insert(
                    Frontend {
                        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), np),
                        proto,
                    },
                    b,
                );
            }
        }
    }
    out
}

/// The ClusterIP ports the kernel translates (nft.rs): those with ready IPv4 endpoints
/// and no ClientIP affinity. Pure.
pub fn dnats(want: &BTreeMap<Frontend, Backends>) -> Vec<crate::network::nft::Dnat> {
    want.iter()
        .filter_map(|(f, b)| {
            let IpAddr::V4(vip) = f.addr.ip() else {
                return None;
            };
            if vip.is_unspecified() || b.affinity.is_some() {
                return None;
            }
            let endpoints: Vec<(Ipv4Addr, u16)> = b
                .addrs
                .iter()
                .filter_map(|a| match a.ip() {
                    IpAddr::V4(ip) => Some((ip, a.port())),
                    IpAddr::V6(_) => None,
                })
                .collect();
            (!endpoints.is_empty()).then_some(crate::network::nft::Dnat {
                vip,
                port: f.addr.port(),
                proto: match f.proto {
                    Proto::Tcp => 6,
                    Proto::Udp => 17,
                },
                endpoints,
            })
        })
        .collect()
}

/// A Service's virtual IP, if it has one (not headless, not ExternalName).
pub fn cluster_ip(svc: &Service) -> Option<Ipv4Addr> {
    if svc.spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    svc.spec.cluster_ip.as_deref()?.parse().ok()
}

/// One frontend's live state, shared with its connections.
struct Table {
    backends: Mutex<Arc<Backends>>,
    next: AtomicUsize,
    /// Client address → (endpoint, last used).
    affinity: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
}

impl Table {
    /// Endpoints to try for `client`, the chosen one first: its previous one under
    /// ClientIP affinity (while it is still an endpoint and the timeout has not run out),
    /// else the next in turn.
    fn pick(&self, client: IpAddr) -> Vec<SocketAddr> {
        let b = self.backends.lock().unwrap().clone();
        if b.addrs.is_empty() {
            return Vec::new();
        }
        let next = || self.next.fetch_add(1, Ordering::Relaxed) % b.addrs.len();
        let Some(timeout) = b.affinity else {
            return rotated(&b.addrs, next());
        };
        let now = Instant::now();
        let mut aff = self.affinity.lock().unwrap();
        let kept = aff
            .get(&client)
            .filter(|(_, last)| now.duration_since(*last) < timeout)
            .and_then(|(addr, _)| b.addrs.iter().position(|a| a == addr));
        let i = kept.unwrap_or_else(|| {
            if aff.len() > 65536 {
                aff.clear();
            }
            next()
        });
        aff.insert(client, (b.addrs[i], now));
        rotated(&b.addrs, i)
    }
}

/// `v` starting at `first`, wrapping around.
pub fn rotated(v: &[SocketAddr], first: usize) -> Vec<SocketAddr> {
    v[first..]
        .iter()
        .chain(v[..first].iter())
        .copied()
        .collect()
}

struct Running {
    table: Arc<Table>,
    task: tokio::task::JoinHandle<()>,
}

/// Follows the cluster view: routes, virtual IPs, listeners.
pub async fn run(agent: Arc<Agent>) {
    if let Err(e) = crate::util::blocking(crate::network::pod_net::reuse_time_wait).await {
        tracing::warn!("{e}");
    }
    let mut rx = agent.cluster.subscribe();
    let mut running: HashMap<Frontend, Running> = HashMap::new();
    let mut last_peers = None;
    let mut last_vips = None;
    let mut last_dnats = None;
    let mut last_hostports = None;
    let mut again = tokio::time::interval(REASSERT);
    again.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    again.tick().await;
    loop {
        let view = rx.borrow_and_update().clone();
        if let Some(net) = agent.net() {
            // Routes (or the overlay) to the other nodes' pods, and masquerading of what
            // leaves the pod network (nft.rs), from the node's CIDR, address and peers.
            let node_ip: Option<Ipv4Addr> = agent.host_ip.lock().unwrap().parse().ok();
            let peers = (net.network(), node_ip, view.peers(&agent.cfg.name));
            let changed = last_peers.as_ref() != Some(&peers);
            if let Some(node_ip) = node_ip.filter(|_| changed) {
                let (name, p) = (agent.cfg.name.clone(), peers.clone());
                let backend = agent.cfg.pod_network;
                let r = crate::util::blocking(move || {
                    crate::network::pod_net::enable_forwarding()?;
                    net.sync_peers(backend, &p.2, node_ip)?;
                    let cidrs: Vec<(Ipv4Addr, u8)> = p.2.iter().map(|x| x.cidr).collect();
                    crate::network::nft::apply(&name, p.0, &cidrs)
                })
                .await;
                match r {
                    Ok(()) => last_peers = Some(peers),
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
        let want = frontends(&view);
        let vips: BTreeSet<Ipv4Addr> = want
            .keys()
            .filter_map(|f| match f.addr.ip() {
                IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
                _ => None,
            })
            .collect();
        let d = dnats(&want);
        if last_dnats.as_ref() != Some(&d) {
            let (name, d2) = (agent.cfg.name.clone(), d.clone());
            match crate::util::blocking(move || crate::network::nft::apply_services(&name, &d2))
                .await
            {
                Ok(()) => last_dnats = Some(d),
                // The proxy still listens on every ClusterIP port: slower, not broken.
                Err(e) => tracing::warn!("{e}; pods' Service traffic goes through the proxy"),
            }
        }
        let pods = super::hostports::node_pods(&agent);
        let hp = super::hostports::rules(pods.iter().map(|(p, ip)| (&p.spec, *ip)));
        if last_hostports.as_ref() != Some(&hp) {
            let (name, h2) = (agent.cfg.name.clone(), hp.clone());
            match crate::util::blocking(move || crate::network::nft::apply_hostports(&name, &h2))
                .await
            {
                Ok(()) => last_hostports = Some(hp),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        if last_vips.as_ref() != Some(&vips) {
            let v = vips.clone();
            match crate::util::blocking(move || crate::network::pod_net::sync_service_ips(&v)).await
            {
                Ok(()) => last_vips = Some(vips),
                Err(e) => tracing::warn!("service addresses: {e}"),
            }
        }
        running.retain(|f, r| {
            let keep = want.contains_key(f);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (f, b) in want {
            if let Some(r) = running.get(&f) {
                if !r.task.is_finished() {
                    let mut cur = r.table.backends.lock().unwrap();
                    if **cur != b {
                        *cur = Arc::new(b);
                    }
                    continue;
                }
            }
            let table = Arc::new(Table {
                backends: Mutex::new(Arc::new(b)),
                next: AtomicUsize::new(0),
                affinity: Mutex::new(HashMap::new()),
            });
            match serve(f, table.clone()) {
                Ok(task) => {
                    running.insert(f, Running { table, task });
                }
                Err(e) => tracing::warn!(frontend = %f.addr, "cannot serve a Service port: {e}"),
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = agent.pod_addresses.notified() => {}
            _ = again.tick() => {
                // Level-triggered: the rules, routes, overlay device and Service
                // addresses are written again whether or not someone removed them (each
                // write is one idempotent netlink batch).
                last_peers = None;
                last_dnats = None;
                last_hostports = None;
                last_vips = None;
            }
        }
    }
}

/// How often the node's rules, routes, overlay device and Service addresses are written
/// again, so a node whose nftables table, VXLAN device or routes were removed under it
/// (an operator's `nft flush ruleset`, a network manager) has them back within this time.
const REASSERT: std::time::Duration = std::time::Duration::from_secs(10);

/// A socket bound to a frontend's address (listening is the caller's): also cluster DNS's.
pub fn socket(f: Frontend) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (ty, proto) = match f.proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(Domain::for_address(f.addr), ty, Some(proto))?;
    s.set_nonblocking(true)?;
    s.set_reuse_address(true)?;
    // Agents sharing a network namespace (tests) serve the same addresses side by side.
    s.set_reuse_port(true)?;
    // The address's local route may come a moment later.
    s.set_freebind_v4(true)?;
    s.bind(&f.addr.into())?;
    Ok(s)
}

/// A listening TCP socket on a frontend's address: Service ports and the ingress ports.
pub fn tcp_listener(f: Frontend) -> std::io::Result<TcpListener> {
    let s = socket(f)?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

fn serve(f: Frontend, table: Arc<Table>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(match f.proto {
        Proto::Tcp => {
            let l = tcp_listener(f)?;
            tokio::spawn(accept_each(l, "service", move |conn, peer| {
                let table = table.clone();
                async move { relay(conn, peer, &table).await }
            }))
        }
        Proto::Udp => {
            let u = UdpSocket::from_std(socket(f)?.into())?;
            tokio::spawn(udp_loop(Arc::new(u), table))
        }
    })
}

/// Accepts connections for ever, each handled in a task of its own (TCP_NODELAY set); a
/// handler's error is logged as `what`'s.
pub async fn accept_each<F, Fut, E>(l: TcpListener, what: &'static str, handle: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    loop {
        match l.accept().await {
            Ok((conn, peer)) => {
                let _ = conn.set_nodelay(true);
                let task = handle(conn, peer);
                tokio::spawn(async move {
                    if let Err(e) = task.await {
                        tracing::debug!(client = %peer, "{what} connection: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("{what}: accepting: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the first of `addrs` that answers, trying at most three: a dead endpoint
/// costs one failed connect. TCP_NODELAY set.
pub async fn connect_any(
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no ready endpoints");
    for addr in addrs.into_iter().take(3) {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = std::io::Error::new(e.kind(), format!("{addr}: {e}")),
            Err(_) => {
                last = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{addr}: connect timed out"),
                )
            }
        }
    }
    Err(last)
}

async fn relay(mut client: TcpStream, peer: SocketAddr, table: &Table) -> std::io::Result<()> {
    // The chosen endpoint, then the others.
    let mut up = connect_any(table.pick(peer.ip())).await?;
    match (Pipe::new(), Pipe::new()) {
        (Ok(p1), Ok(p2)) => {
            let (c, u) = (&client, &up);
            tokio::try_join!(splice_one_way(c, u, &p1), splice_one_way(u, c, &p2))?;
        }
        _ => {
            tokio::io::copy_bidirectional_with_sizes(&mut client, &mut up, 64 << 10, 64 << 10)
                .await?;
        }
    }
    Ok(())
}

/// A kernel pipe between two sockets: `splice(2)` moves the bytes through it without
/// copying them into the agent (a plain relay copies every byte in and out again).
struct Pipe {
    r: std::os::fd::OwnedFd,
    w: std::os::fd::OwnedFd,
}

/// How much one splice moves at most (the pipe is grown to this).
const PIPE_SIZE: usize = 1 << 20;

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        use nix::fcntl::OFlag;
        use std::os::fd::AsRawFd;
        let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        // A bigger pipe means fewer wake-ups; the default (64 KiB) still works.
        let _ = nix::fcntl::fcntl(
            w.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32),
        );
        Ok(Pipe { r, w })
    }
}

/// Moves everything `from` sends to `to` through `pipe`, then ends `to`'s sending side.
async fn splice_one_way(from: &TcpStream, to: &TcpStream, pipe: &Pipe) -> std::io::Result<()> {
    use nix::fcntl::{splice, SpliceFFlags};
    use tokio::io::Interest;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        // The pipe is empty here: fill it from the socket.
        let n = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                splice(from, None, &pipe.w, None, PIPE_SIZE, flags).map_err(std::io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            let _ = socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
            return Ok(());
        }
        // Then drain it into the other.
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(&pipe.r, None, to, None, left, flags).map_err(std::io::Error::from)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

const UDP_IDLE: Duration = Duration::from_secs(60);

/// A UDP socket on an ephemeral port, connected to `addr`: upstream flows and DNS relays.
pub async fn udp_to(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any).await?;
    s.connect(addr).await?;
    Ok(s)
}

/// UDP client address → (its upstream socket, last packet).
type Flows = HashMap<SocketAddr, (Arc<UdpSocket>, Instant)>;

/// UDP: one upstream socket per client address, connected to its endpoint; replies go
/// back from the frontend's address. Idle flows end after a minute.
async fn udp_loop(front: Arc<UdpSocket>, table: Arc<Table>) {
    let flows: Arc<Mutex<Flows>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, client) = match front.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("udp frontend: {e}");
                continue;
            }
        };
        let existing = flows.lock().unwrap().get_mut(&client).map(|(s, t)| {
            *t = Instant::now();
            s.clone()
        });
        let up = match existing {
            Some(s) => s,
            None => {
                let Some(addr) = table.pick(client.ip()).into_iter().next() else {
                    continue;
                };
                let Ok(s) = udp_to(addr).await else {
                    continue;
                };
                let s = Arc::new(s);
                flows
                    .lock()
                    .unwrap()
                    .insert(client, (s.clone(), Instant::now()));
                let (front, flows, s2) = (front.clone(), flows.clone(), s.clone());
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65536];
                    loop {
                        match tokio::time::timeout(UDP_IDLE, s2.recv(&mut b)).await {
                            Ok(Ok(n)) => {
                                if let Some(e) = flows.lock().unwrap().get_mut(&client) {
                                    e.1 = Instant::now();
                                }
                                let _ = front.send_to(&b[..n], client).await;
                            }
                            Ok(Err(_)) => break,
                            Err(_) => {
                                let idle = flows
                                    .lock()
                                    .unwrap()
                                    .get(&client)
                                    .is_none_or(|(_, t)| t.elapsed() >= UDP_IDLE);
                                if idle {
                                    break;
                                }
                            }
                        }
                    }
                    flows.lock().unwrap().remove(&client);
                });
                s
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::{EndpointAddress, EndpointPort, EndpointSubset, ServiceSpec};

    fn view() -> ClusterView {
        let mut v = ClusterView::default();
        let mut svc = Service::default();
        svc.metadata.name = Some("web".into());
        svc.metadata.namespace = Some("default".into());
        svc.spec = ServiceSpec {
            type_: Some("NodePort".into()),
            cluster_ip: Some("10.43.0.10".into()),
            session_affinity: Some("ClientIP".into()),
            ports: vec![
                ServicePort {
                    name: Some("http".into()),
                    port: Some(80),
                    node_port: Some(30080),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                },
                ServicePort {
                    name: Some("dns".into()),
                    port: Some(53),
                    protocol: Some("UDP".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let addr = |ip: &str| EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        };
        let ep = Endpoints {
            subsets: vec![EndpointSubset {
                addresses: vec![addr("10.42.1.3"), addr("10.42.0.2")],
                not_ready_addresses: vec![addr("10.42.0.9")],
                ports: vec![
                    EndpointPort {
                        name: Some("http".into()),
                        port: Some(8080),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    },
                    EndpointPort {
                        name: Some("dns".into()),
                        port: Some(5353),
                        protocol: Some("UDP".into()),
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        };
        let k = ("default".to_string(), "web".to_string());
        v.services.insert(k.clone(), svc);
        v.endpoints.insert(k, ep);
        v
    }

    #[test]
    fn frontends_map_service_ports_to_ready_endpoints() {
        let f = frontends(&view());
        let tcp = Frontend {
            addr: "10.43.0.10:80".parse().unwrap(),
            proto: Proto::Tcp,
        };
        let np = Frontend {
            addr: "0.0.0.0:30080".parse().unwrap(),
            proto: Proto::Tcp,
        };
        let udp = Frontend {
            addr: "10.43.0.10:53".parse().unwrap(),
            proto: Proto::Udp,
        };
        assert_eq!(f.len(), 3);
        let want: Vec<SocketAddr> = vec![
            "10.42.0.2:8080".parse().unwrap(),
            "10.42.1.3:8080".parse().unwrap(),
        ];
        assert_eq!(f[&tcp].addrs, want, "not-ready addresses get no traffic");
        assert_eq!(f[&np].addrs, want);
        assert_eq!(f[&udp].addrs.len(), 2);
        assert_eq!(f[&udp].addrs[0].port(), 5353);
        assert_eq!(f[&tcp].affinity, Some(Duration::from_secs(10800)));
    }

    #[test]
    fn the_kernel_translates_cluster_ips_without_affinity() {
        let mut v = view();
        // With ClientIP affinity every port stays with the proxy.
        assert_eq!(dnats(&frontends(&v)), []);
        let k = ("default".to_string(), "web".to_string());
        v.services.get_mut(&k).unwrap().spec.session_affinity = None;
        let d = dnats(&frontends(&v));
        let ep = |last: u8, port: u16| (Ipv4Addr::new(10, 42, last / 10, last % 10), port);
        assert_eq!(
            d,
            [
                crate::network::nft::Dnat {
                    vip: Ipv4Addr::new(10, 43, 0, 10),
                    port: 53,
                    proto: 17,
                    endpoints: vec![ep(2, 5353), ep(13, 5353)],
                },
                crate::network::nft::Dnat {
                    vip: Ipv4Addr::new(10, 43, 0, 10),
                    port: 80,
                    proto: 6,
                    endpoints: vec![ep(2, 8080), ep(13, 8080)],
                },
            ],
            "both ClusterIP ports, not the node port"
        );
        // Without ready endpoints: no rule, the proxy answers (and refuses).
        v.endpoints.clear();
        assert_eq!(dnats(&frontends(&v)), []);
    }

    #[test]
    fn round_robin_and_client_affinity() {
        let addrs: Vec<SocketAddr> = vec![
            "10.42.0.2:80".parse().unwrap(),
            "10.42.0.3:80".parse().unwrap(),
            "10.42.0.4:80".parse().unwrap(),
        ];
        let table = |affinity| Table {
            backends: Mutex::new(Arc::new(Backends {
                addrs: addrs.clone(),
                affinity,
            })),
            next: AtomicUsize::new(0),
            affinity: Mutex::default(),
        };
        let rr = table(None);
        let c: IpAddr = "10.42.5.5".parse().unwrap();
        let firsts: Vec<SocketAddr> = (0..6).map(|_| rr.pick(c)[0]).collect();
        assert_eq!(&firsts[..3], &addrs[..]);
        assert_eq!(&firsts[3..], &addrs[..]);
        assert_eq!(rr.pick(c).len(), 3, "the others follow as fallbacks");
        let sticky = table(Some(Duration::from_secs(60)));
        let first = sticky.pick(c)[0];
        assert!((0..5).all(|_| sticky.pick(c)[0] == first));
        let other: IpAddr = "10.42.6.6".parse().unwrap();
        assert_ne!(sticky.pick(other)[0], first, "another client is balanced");
        // An endpoint that is gone is not stuck to.
        *sticky.backends.lock().unwrap() = Arc::new(Backends {
            addrs: addrs.iter().copied().filter(|a| *a != first).collect(),
            affinity: Some(Duration::from_secs(60)),
        });
        assert_ne!(sticky.pick(c)[0], first);
    }
}
