//! The node's pod network: a bridge holding the first address of the node's pod CIDR
//! (which the coordinator assigns), one veth pair per pod (`eth0` inside the pod), and pod
//! addresses leased from the CIDR and kept in `<data-dir>/state/ipam.json` (written when a
//! lease changes, released when the pod goes).
//!
//! Inside a pod: `eth0` with the pod's address, the node's MTU, and a default route
//! through the bridge. Between nodes (host-gw): one route per other node, its pod CIDR via
//! its InternalIP, kept by [`PodNetwork::sync_routes`] and marked with skiff's route
//! protocol number so stale ones are found and removed. The node forwards IPv4.
//!
//! Services' virtual IPs are made local by `local` routes on the loopback: packets to them
//! are delivered to the node itself, where the agent's proxy listens (see `proxy.rs`).
//!
//! Netlink directly (netlink-packet-route over a netlink socket), no `ip` commands.
//! Everything here blocks: callers run it on the blocking pool.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A netlink route socket in the calling thread's network namespace.
struct Nl {
    sock: Socket,
    seq: u32,
}

impl Nl {
    fn new() -> io::Result<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nl { sock, seq: 0 })
    }

    /// Sends a request and collects the answers until the kernel's ACK (or error).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += len;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(i) => out.push(i),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(e.to_io()),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    _ => {}
                }
            }
        }
    }

    fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(msgs) => Ok(msgs.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn new_link(&mut self, m: LinkMessage) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(|_| ())
    }

    fn set_link(&mut self, index: u32, attrs: Vec<LinkAttribute>, up: bool) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        }
        m.attributes = attrs;
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(|_| ())
    }

    fn del_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(|_| ())
    }

    fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    fn link_mtu(&mut self, index: u32) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        let msgs = self.request(RouteNetlinkMessage::GetLink(m), 0)?;
        Ok(msgs.iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            }),
            _ => None,
        }))
    }

    /// IPv4 addresses: (link index, address, prefix).
    fn addresses(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let msgs = self.request(
            RouteNetlinkMessage::GetAddress(m),
            netlink_packet_core::NLM_F_DUMP,
        )?;
        Ok(msgs
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) => a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Local(IpAddr::V4(ip)) => {
                        Some((a.header.index, *ip, a.header.prefix_len))
                    }
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    fn route_msg(dst: Ipv4Addr, prefix: u8, via: Option<Ipv4Addr>, proto: u8) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = prefix;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::from(proto);
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        if prefix > 0 {
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        }
        if let Some(gw) = via {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        m
    }

    /// `local ip/32` in the local table: packets to `ip` are delivered to this host.
    fn local_route_msg(ip: Ipv4Addr) -> RouteMessage {
        let mut m = Self::route_msg(ip, 32, None, ROUTE_PROTO);
        m.header.table = LOCAL_TABLE;
        m.header.kind = RouteType::Local;
        m.header.scope = RouteScope::Host;
        m
    }

    /// Adds or replaces a route.
    fn replace_route(&mut self, m: RouteMessage) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE,
        )
        .map(|_| ())
    }

    /// Removes a route; one already gone is fine.
    fn del_route(&mut self, m: RouteMessage) -> io::Result<()> {
        match self.request(RouteNetlinkMessage::DelRoute(m), 0) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Routes of `table` with protocol `proto`: (destination, prefix, gateway).
    fn routes(
        &mut self,
        table: u8,
        proto: u8,
    ) -> io::Result<Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)>> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        let msgs = self.request(
            RouteNetlinkMessage::GetRoute(m),
            netlink_packet_core::NLM_F_DUMP,
        )?;
        Ok(msgs
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(r)
                    if r.header.table == table && u8::from(r.header.protocol) == proto =>
                {
                    let dst = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                        _ => None,
                    });
                    let gw = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
                        _ => None,
                    });
                    Some((
                        dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        r.header.destination_prefix_length,
                        gw,
                    ))
                }
                _ => None,
            })
            .collect())
    }
}

/// The protocol of a route set by hand (`proto static`): a pod's default route.
const RTPROT_STATIC: u8 = 4;

/// skiff's routes carry this protocol number (`ip route` shows `proto 157`).
pub const ROUTE_PROTO: u8 = 157;

/// The MTU of the link holding `ip` (1500 if none does, or if `ip` is a loopback address:
/// the node reaches its coordinator on this host, and loopback's 65536 is more than a
/// veth takes).
pub fn mtu_of(ip: Ipv4Addr) -> u32 {
    if ip.is_loopback() {
        return 1500;
    }
    let find = || -> io::Result<Option<u32>> {
        let mut nl = Nl::new()?;
        let Some((index, _, _)) = nl.addresses()?.into_iter().find(|(_, a, _)| *a == ip) else {
            return Ok(None);
        };
        nl.link_mtu(index)
    };
    find().ok().flatten().unwrap_or(1500)
}

/// Lets the node forward IPv4 between pods and the network.
pub fn enable_forwarding() -> Result<(), String> {
    sysctl_on("/proc/sys/net/ipv4/ip_forward", "enabling IPv4 forwarding")
}

/// Lets the node's outgoing TCP connections reuse ports held in TIME_WAIT (safe with TCP
/// timestamps, Linux's default). The Service proxy opens a connection to an endpoint per
/// client connection and often closes first, so without it short connections at a few
/// hundred per second use up the ephemeral ports within a minute.
pub fn reuse_time_wait() -> Result<(), String> {
    sysctl_on(
        "/proc/sys/net/ipv4/tcp_tw_reuse",
        "letting connections reuse TIME_WAIT ports",
    )
}

/// Sets a sysctl (of the agent's network namespace) to 1 unless it already is.
fn sysctl_on(path: &str, what: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|e| format!("{what}: {e}"))
}

/// Makes exactly `vips` local to the node: one `local VIP/32 dev lo` route each in the
/// local table (marked with [`ROUTE_PROTO`]), so packets to a Service's virtual IP are
/// delivered to the node, where the proxy listens. (Routes, not addresses on a dummy
/// interface: boards' kernels often lack the dummy driver.)
pub fn sync_service_ips(vips: &std::collections::BTreeSet<Ipv4Addr>) -> Result<(), String> {
    let e = |what: &'static str| move |err: io::Error| format!("service routes: {what}: {err}");
    let mut nl = Nl::new().map_err(e("netlink"))?;
    let lo = nl
        .link_index("lo")
        .map_err(e("finding lo"))?
        .ok_or("service routes: no loopback interface")?;
    let have: Vec<Ipv4Addr> = nl
        .routes(LOCAL_TABLE, ROUTE_PROTO)
        .map_err(e("listing"))?
        .into_iter()
        .filter(|(_, p, _)| *p == 32)
        .map(|(ip, _, _)| ip)
        .collect();
    for ip in have.iter().filter(|ip| !vips.contains(ip)) {
        nl.del_route(Nl::local_route_msg(*ip))
            .map_err(|err| format!("service routes: removing {ip}: {err}"))?;
    }
    for ip in vips.iter().filter(|ip| !have.contains(ip)) {
        let mut m = Nl::local_route_msg(*ip);
        m.attributes.push(RouteAttribute::Oif(lo));
        nl.replace_route(m)
            .map_err(|err| format!("service routes: adding {ip}: {err}"))?;
    }
    Ok(())
}

const LOCAL_TABLE: u8 = 255;

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// A /24 (or any IPv4 prefix) as `10.42.3.0/24`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    skiff_api::util::parse_ipv4_cidr("pod CIDR", s, 8..=30)
}

#[derive(Default, Serialize, Deserialize, PartialEq)]
struct Leases {
    cidr: String,
    /// Pod uid → address.
    pods: BTreeMap<String, Ipv4Addr>,
}

/// The node's pod network.
pub struct PodNetwork {
    bridge: String,
    /// The MTU of pods' interfaces (the node's link's).
    pub mtu: std::sync::atomic::AtomicU32,
    base: Ipv4Addr,
    prefix: u8,
    path: PathBuf,
    leases: Mutex<Leases>,
}

impl PodNetwork {
    /// The network of a node with `cidr`, leases in `<data-dir>/state/ipam.json`.
    pub fn new(node: &str, cidr: &str, data_dir: &Path) -> Result<PodNetwork, String> {
        let (base, prefix) = parse_cidr(cidr)?;
        let path = data_dir.join("state/ipam.json");
        let mut leases: Leases = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if leases.cidr != cidr {
            // A new CIDR (the node was registered anew): old leases mean nothing.
            leases = Leases {
                cidr: cidr.to_string(),
                pods: BTreeMap::new(),
            };
        }
        let net = PodNetwork {
            bridge: format!("skb{:08x}", fnv(node)),
            mtu: std::sync::atomic::AtomicU32::new(1500),
            base,
            prefix,
            path,
            leases: Mutex::new(leases),
        };
        net.save(&net.leases.lock().unwrap())?;
        Ok(net)
    }

    /// The CIDR this network serves (read back from its lease file at a restart).
    pub fn stored_cidr(data_dir: &Path) -> Option<String> {
        let b = std::fs::read(data_dir.join("state/ipam.json")).ok()?;
        let l: Leases = serde_json::from_slice(&b).ok()?;
        (!l.cidr.is_empty()).then_some(l.cidr)
    }

    /// The pod CIDR as (network, prefix length).
    pub fn network(&self) -> (Ipv4Addr, u8) {
        (self.base, self.prefix)
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", self.base, self.prefix)
    }

    fn save(&self, l: &Leases) -> Result<(), String> {
        let bytes = serde_json::to_vec(l).map_err(|e| e.to_string())?;
        if std::fs::read(&self.path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        skiff_client::files::write_private(&self.path, &bytes)
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// The bridge's address: pods' gateway, and where the node's DNS answers them.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    /// The pod's address, if it has one.
    pub fn ip_of(&self, uid: &str) -> Option<Ipv4Addr> {
        self.leases.lock().unwrap().pods.get(uid).copied()
    }

    /// Uids holding leases.
    pub fn leased(&self) -> Vec<String> {
        self.leases.lock().unwrap().pods.keys().cloned().collect()
    }

    fn lease(&self, uid: &str) -> Result<Ipv4Addr, String> {
        let mut l = self.leases.lock().unwrap();
        if let Some(ip) = l.pods.get(uid) {
            return Ok(*ip);
        }
        let size = 1u32 << (32 - self.prefix);
        let used: std::collections::HashSet<Ipv4Addr> = l.pods.values().copied().collect();
        let ip = (2..size - 1)
            .map(|i| Ipv4Addr::from(u32::from(self.base) + i))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| format!("pod CIDR {} is full", self.cidr()))?;
        l.pods.insert(uid.to_string(), ip);
        self.save(&l)?;
        Ok(ip)
    }

    fn release(&self, uid: &str) -> Result<(), String> {
        let mut l = self.leases.lock().unwrap();
        if l.pods.remove(uid).is_some() {
            self.save(&l)?;
        }
        Ok(())
    }

    /// Makes sure the bridge exists, is up and holds the gateway address.
    pub fn ensure_bridge(&self) -> Result<(), String> {
        let err = |what: &'static str| {
            let b = self.bridge.clone();
            move |e: io::Error| format!("{what} bridge {b}: {e}")
        };
        let mut nl = Nl::new().map_err(err("netlink for"))?;
        let index = match nl.link_index(&self.bridge).map_err(err("finding"))? {
            Some(i) => i,
            None => {
                let mut m = LinkMessage::default();
                m.attributes
                    .push(LinkAttribute::IfName(self.bridge.clone()));
                m.attributes
                    .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                        InfoKind::Bridge,
                    )]));
                nl.new_link(m).map_err(err("creating"))?;
                nl.link_index(&self.bridge)
                    .map_err(err("finding"))?
                    .ok_or_else(|| format!("bridge {} vanished", self.bridge))?
            }
        };
        nl.add_address(index, self.gateway(), self.prefix)
            .map_err(err("addressing"))?;
        nl.set_link(index, vec![], true).map_err(err("raising"))?;
        Ok(())
    }

    fn veth_names(uid: &str) -> (String, String) {
        let h = fnv(uid);
        (format!("skv{h:08x}"), format!("skp{h:08x}"))
    }

    /// Connects a pod's network namespace: a veth pair, `eth0` with the pod's address
    /// inside, the host end on the bridge. Returns the pod's address.
    pub fn attach(&self, uid: &str, netns: &Path) -> Result<Ipv4Addr, String> {
        self.ensure_bridge()?;
        let ip = self.lease(uid)?;
        let (host, peer) = Self::veth_names(uid);
        let e = |what: &'static str| move |err: io::Error| format!("pod network: {what}: {err}");
        let mut nl = Nl::new().map_err(e("netlink"))?;
        // A pair left by an interrupted attach starts over.
        if let Some(i) = nl.link_index(&host).map_err(e("finding veth"))? {
            nl.del_link(i).map_err(e("removing stale veth"))?;
        }
        let ns = std::fs::File::open(netns).map_err(e("opening the pod's netns"))?;
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.clone()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.clone()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        nl.new_link(m).map_err(e("creating veth"))?;
        let bridge = nl
            .link_index(&self.bridge)
            .map_err(e("finding bridge"))?
            .ok_or_else(|| format!("bridge {} is gone", self.bridge))?;
        let hi = nl
            .link_index(&host)
            .map_err(e("finding veth"))?
            .ok_or("pod network: the veth vanished")?;
        let mtu = self.mtu.load(std::sync::atomic::Ordering::Relaxed);
        nl.set_link(
            hi,
            vec![LinkAttribute::Controller(bridge), LinkAttribute::Mtu(mtu)],
            true,
        )
        .map_err(e("attaching veth to the bridge"))?;
        // Inside the pod: rename to eth0, address, MTU, up, and the default route through
        // the bridge (from a thread in the pod's netns).
        let prefix = self.prefix;
        let gateway = self.gateway();
        std::thread::scope(|s| {
            s.spawn(|| -> Result<(), String> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|err| format!("pod network: entering the pod's netns: {err}"))?;
                let mut nl = Nl::new().map_err(e("netlink in the pod"))?;
                let pi = nl
                    .link_index(&peer)
                    .map_err(e("finding the pod's veth"))?
                    .ok_or("pod network: the pod's veth is missing")?;
                nl.set_link(
                    pi,
                    vec![
                        LinkAttribute::IfName("eth0".into()),
                        LinkAttribute::Mtu(mtu),
                    ],
                    false,
                )
                .map_err(e("naming eth0"))?;
                nl.add_address(pi, ip, prefix)
                    .map_err(e("addressing eth0"))?;
                nl.set_link(pi, vec![], true).map_err(e("raising eth0"))?;
                nl.replace_route(Nl::route_msg(
                    Ipv4Addr::UNSPECIFIED,
                    0,
                    Some(gateway),
                    RTPROT_STATIC,
                ))
                .map_err(e("default route"))
            })
            .join()
            .map_err(|_| "pod network: setup thread panicked".to_string())?
        })?;
        Ok(ip)
    }

    /// Routes to the other nodes' pods: each peer's pod CIDR via its address (host-gw:
    /// the nodes share a link). Routes skiff added for nodes that left are removed.
    pub fn sync_routes(&self, peers: &[crate::cluster::Peer]) -> Result<(), String> {
        let e = |what: &'static str| move |err: io::Error| format!("node routes: {what}: {err}");
        let mut nl = Nl::new().map_err(e("netlink"))?;
        let have = nl
            .routes(RouteHeader::RT_TABLE_MAIN, ROUTE_PROTO)
            .map_err(e("listing"))?;
        let own = (self.base, self.prefix);
        let want: Vec<(Ipv4Addr, u8, Option<Ipv4Addr>)> = peers
            .iter()
            .filter(|p| p.cidr != own)
            .map(|p| (p.cidr.0, p.cidr.1, Some(p.ip)))
            .collect();
        for &(dst, prefix, _) in have.iter().filter(|r| !want.contains(r)) {
            nl.del_route(Nl::route_msg(dst, prefix, None, ROUTE_PROTO))
                .map_err(e("removing"))?;
        }
        for &(dst, prefix, gw) in want.iter().filter(|r| !have.contains(r)) {
            nl.replace_route(Nl::route_msg(dst, prefix, gw, ROUTE_PROTO))
                .map_err(|err| format!("node routes: {dst}/{prefix} via {gw:?}: {err}"))?;
        }
        Ok(())
    }

    /// Disconnects a pod (its veth pair goes) and releases its address.
    pub fn detach(&self, uid: &str) -> Result<(), String> {
        let (host, _) = Self::veth_names(uid);
        let mut nl = Nl::new().map_err(|e| format!("netlink: {e}"))?;
        if let Some(i) = nl
            .link_index(&host)
            .map_err(|e| format!("finding {host}: {e}"))?
        {
            match nl.del_link(i) {
                Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                    return Err(format!("removing {host}: {e}"))
                }
                _ => {}
            }
        }
        self.release(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_normalize() {
        assert_eq!(
            parse_cidr("10.42.3.7/24"),
            Ok((Ipv4Addr::new(10, 42, 3, 0), 24))
        );
        assert!(parse_cidr("10.42.3.0").is_err());
        assert!(parse_cidr("10.42.3.0/31").is_err());
    }

    #[test]
    fn leases_are_kept_and_released() {
        let dir = std::env::temp_dir().join(format!("skiff-ipam-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let net = PodNetwork::new("n", "10.42.7.0/24", &dir).unwrap();
        let a = net.lease("a").unwrap();
        let b = net.lease("b").unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 42, 7, 2), Ipv4Addr::new(10, 42, 7, 3))
        );
        assert_eq!(net.lease("a").unwrap(), a, "a pod keeps its address");
        // A restarted agent reads the same leases.
        let again = PodNetwork::new("n", "10.42.7.0/24", &dir).unwrap();
        assert_eq!(again.ip_of("b"), Some(b));
        again.release("a").unwrap();
        assert_eq!(again.lease("c").unwrap(), a, "a released address is reused");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
