//! The node's pod network: a bridge holding the first address of the node's pod CIDR
//! (which the coordinator assigns), one veth pair per pod (`eth0` inside the pod), and pod
//! addresses leased from the CIDR and kept in `<data-dir>/state/ipam.json` (written when a
//! lease changes, released when the pod goes).
//!
//! Inside a pod: `eth0` with the pod's address, the node's MTU, and a default route
//! through the bridge. Between nodes, one route per other node to its pod CIDR, as
//! `overlay.rs` plans it: via its InternalIP when they share a link (host-gw), or through
//! the node's VXLAN device to its VTEP address. [`PodNetwork::sync_peers`] keeps them,
//! marked with skiff's route protocol number so stale ones are found and removed, and
//! keeps the VXLAN device with its neighbour and forwarding entries (the device goes when
//! no peer needs it). The node forwards IPv4.
//!
//! Services' virtual IPs are made local by `local` routes on the loopback: packets to them
//! are delivered to the node itself, where the agent's proxy listens (see `services/proxy.rs`).
//!
//! Netlink directly (netlink-packet-route over a netlink socket), no `ip` commands.
//! Everything here blocks: callers run it on the blocking pool.

use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, InfoVxlan,
    LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteHeader};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::NetError;
pub use super::netlink::ROUTE_PROTO;
use super::netlink::{Nl, RouteEntry, LOCAL_TABLE};
use crate::network::overlay::{self, parse_cidr, PeerRoute, Via};

/// The protocol of a route set by hand (`proto static`): a pod's default route.
const RTPROT_STATIC: u8 = 4;

/// The MTU of the link holding `ip` (1500 if none does, or if `ip` is a loopback address:
/// the node reaches its coordinator on this host, and loopback's 65536 is more than a
/// veth takes).
pub fn mtu_of(ip: Ipv4Addr) -> u32 {
    if ip.is_loopback() {
        return 1500;
    }
    let find = || -> io::Result<Option<(u32, u32)>> {
        let mut nl = Nl::new()?;
        let addrs = nl.addresses()?;
        nl.link_of(&addrs, ip)
    };
    find().ok().flatten().map_or(1500, |(_, mtu)| mtu)
}

/// Lets the node forward IPv4 between pods and the network.
pub fn enable_forwarding() -> Result<(), NetError> {
    sysctl_on("/proc/sys/net/ipv4/ip_forward", "enabling IPv4 forwarding")
}

/// Lets the node's outgoing TCP connections reuse ports held in TIME_WAIT (safe with TCP
/// timestamps, Linux's default). The Service proxy opens a connection to an endpoint per
/// client connection and often closes first, so without it short connections at a few
/// hundred per second use up the ephemeral ports within a minute.
pub fn reuse_time_wait() -> Result<(), NetError> {
    sysctl_on(
        "/proc/sys/net/ipv4/tcp_tw_reuse",
        "letting connections reuse TIME_WAIT ports",
    )
}

/// Sets a sysctl (of the agent's network namespace) to 1 unless it already is.
fn sysctl_on(path: &str, what: &str) -> Result<(), NetError> {
    if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|e| NetError::os(what, e))
}

/// Makes exactly `vips` local to the node: one `local VIP/32 dev lo` route each in the
/// local table (marked with [`ROUTE_PROTO`]), so packets to a Service's virtual IP are
/// delivered to the node, where the proxy listens. (Routes, not addresses on a dummy
/// interface: boards' kernels often lack the dummy driver.)
pub fn sync_service_ips(vips: &std::collections::BTreeSet<Ipv4Addr>) -> Result<(), NetError> {
    let e = |what: &'static str| {
        move |err: io::Error| NetError::os(format!("service routes: {what}"), err)
    };
    let mut nl = Nl::new().map_err(e("netlink"))?;
    let lo = nl
        .link_index("lo")
        .map_err(e("finding lo"))?
        .ok_or_else(|| NetError::Missing("service routes: no loopback interface".into()))?;
    let have: Vec<Ipv4Addr> = nl
        .routes(LOCAL_TABLE, ROUTE_PROTO)
        .map_err(e("listing"))?
        .into_iter()
        .filter(|(_, p, _, _)| *p == 32)
        .map(|(ip, _, _, _)| ip)
        .collect();
    for ip in have.iter().filter(|ip| !vips.contains(ip)) {
        nl.del_route(Nl::local_route_msg(*ip))
            .map_err(|err| NetError::os(format!("service routes: removing {ip}"), err))?;
    }
    for ip in vips.iter().filter(|ip| !have.contains(ip)) {
        let mut m = Nl::local_route_msg(*ip);
        m.attributes.push(RouteAttribute::Oif(lo));
        nl.replace_route(m)
            .map_err(|err| NetError::os(format!("service routes: adding {ip}"), err))?;
    }
    Ok(())
}

/// A request for a veth pair: `name` here, the other end as `peer` describes it.
fn veth_pair(name: &str, peer: LinkMessage) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    m
}

/// The name of the node's VXLAN device.
fn vxlan_name(node: &str) -> String {
    format!("skx{:08x}", fnv(node))
}

/// Removes the node's VXLAN device, and with it the routes through it
/// (`skiff-agent clean-network`). Blocking.
pub fn remove_overlay(node: &str) -> Result<(), NetError> {
    let name = vxlan_name(node);
    let e = |err: io::Error| NetError::os(format!("removing {name}"), err);
    Nl::new()
        .and_then(|mut nl| nl.del_link_named(&name))
        .map_err(e)
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
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
    /// The VXLAN device, when some peer is reached over the overlay.
    vxlan: String,
    /// The MTU of pods' interfaces (the node's link's).
    pub mtu: std::sync::atomic::AtomicU32,
    base: Ipv4Addr,
    prefix: u8,
    path: PathBuf,
    leases: Mutex<Leases>,
}

impl PodNetwork {
    /// The network of a node with `cidr`, leases in `<data-dir>/state/ipam.json`.
    pub fn new(node: &str, cidr: &str, data_dir: &Path) -> Result<PodNetwork, NetError> {
        let (base, prefix) = parse_cidr(cidr)?;
        let path = data_dir.join("state/ipam.json");
        let mut leases: Leases = crate::local::read_or_set_aside(&path).unwrap_or_default();
        if leases.cidr != cidr {
            // A new CIDR (the node was registered anew): old leases mean nothing.
            leases = Leases {
                cidr: cidr.to_string(),
                pods: BTreeMap::new(),
            };
        }
        let net = PodNetwork {
            bridge: format!("skb{:08x}", fnv(node)),
            vxlan: vxlan_name(node),
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
        let l: Leases = crate::local::read_or_set_aside(&data_dir.join("state/ipam.json"))?;
        (!l.cidr.is_empty()).then_some(l.cidr)
    }

    /// The pod CIDR as (network, prefix length).
    pub fn network(&self) -> (Ipv4Addr, u8) {
        (self.base, self.prefix)
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", self.base, self.prefix)
    }

    fn save(&self, l: &Leases) -> Result<(), NetError> {
        let bytes = serde_json::to_vec(l).expect("leases serialize");
        if std::fs::read(&self.path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        skiff_transport::files::write_private(&self.path, &bytes)
            .map_err(|e| NetError::os(self.path.display().to_string(), e))
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

    fn lease(&self, uid: &str) -> Result<Ipv4Addr, NetError> {
        let mut l = self.leases.lock().unwrap();
        if let Some(ip) = l.pods.get(uid) {
            return Ok(*ip);
        }
        let size = 1u32 << (32 - self.prefix);
        let used: std::collections::HashSet<Ipv4Addr> = l.pods.values().copied().collect();
        let ip = (2..size - 1)
            .map(|i| Ipv4Addr::from(u32::from(self.base) + i))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| NetError::Full(self.cidr()))?;
        l.pods.insert(uid.to_string(), ip);
        self.save(&l)?;
        Ok(ip)
    }

    fn release(&self, uid: &str) -> Result<(), NetError> {
        let mut l = self.leases.lock().unwrap();
        if l.pods.remove(uid).is_some() {
            self.save(&l)?;
        }
        Ok(())
    }

    /// Makes sure the bridge exists, is up and holds the gateway address.
    pub fn ensure_bridge(&self) -> Result<(), NetError> {
        let err = |what: &'static str| {
            let b = self.bridge.clone();
            move |e: io::Error| NetError::os(format!("{what} bridge {b}"), e)
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
                // Another pod's attach may create it at the same moment.
                match nl.new_link(m) {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    r => r.map_err(err("creating"))?,
                }
                nl.link_index(&self.bridge)
                    .map_err(err("finding"))?
                    .ok_or_else(|| NetError::Missing(format!("bridge {} vanished", self.bridge)))?
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
    pub fn attach(&self, uid: &str, netns: &Path) -> Result<Ipv4Addr, NetError> {
        self.ensure_bridge()?;
        let ip = self.lease(uid)?;
        let (host, peer) = Self::veth_names(uid);
        let e = |what: &'static str| {
            move |err: io::Error| NetError::os(format!("pod network: {what}"), err)
        };
        let mut nl = Nl::new().map_err(e("netlink"))?;
        // A pair left by an interrupted attach starts over.
        nl.del_link_named(&host).map_err(e("removing stale veth"))?;
        let ns = std::fs::File::open(netns).map_err(e("opening the pod's netns"))?;
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.clone()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        nl.new_link(veth_pair(&host, peer_msg))
            .map_err(e("creating veth"))?;
        let bridge = nl
            .link_index(&self.bridge)
            .map_err(e("finding bridge"))?
            .ok_or_else(|| NetError::Missing(format!("bridge {} is gone", self.bridge)))?;
        let hi = nl
            .link_index(&host)
            .map_err(e("finding veth"))?
            .ok_or_else(|| NetError::Missing("pod network: the veth vanished".into()))?;
        let mtu = self.mtu.load(std::sync::atomic::Ordering::Relaxed);
        nl.set_link(
            hi,
            vec![LinkAttribute::Controller(bridge), LinkAttribute::Mtu(mtu)],
            true,
        )
        .map_err(e("attaching veth to the bridge"))?;
        // Hairpin: a frame may leave through the port it came in by. Where the bridge
        // hands IPv4 to netfilter (br_netfilter), a pod's connection to a Service that
        // translates to the pod itself is turned around at the bridge, back out its own
        // port (the CNI bridge plugin's hairpinMode).
        let mut hairpin = LinkMessage::default();
        hairpin.header.index = hi;
        hairpin.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        nl.request(RouteNetlinkMessage::NewLink(hairpin), 0)
            .map_err(e("hairpin mode on the bridge port"))?;
        // Inside the pod: rename to eth0, address, MTU, up, and the default route through
        // the bridge (from a thread in the pod's netns).
        let prefix = self.prefix;
        let gateway = self.gateway();
        std::thread::scope(|s| {
            s.spawn(|| -> Result<(), NetError> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|err| {
                    NetError::os("pod network: entering the pod's netns", err.into())
                })?;
                let mut nl = Nl::new().map_err(e("netlink in the pod"))?;
                let pi = nl
                    .link_index(&peer)
                    .map_err(e("finding the pod's veth"))?
                    .ok_or_else(|| {
                        NetError::Missing("pod network: the pod's veth is missing".into())
                    })?;
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
            .map_err(|_| NetError::SetupPanicked)?
        })?;
        Ok(ip)
    }

    /// Routes to `peers`' pods for a node running `backend` whose address is `node_ip`,
    /// as `overlay::plan` chooses them from the subnets of this namespace's links.
    pub fn sync_peers(
        &self,
        backend: overlay::Backend,
        peers: &[super::overlay::Peer],
        node_ip: Ipv4Addr,
    ) -> Result<(), NetError> {
        let mut nl = Nl::new().map_err(|e| NetError::os("node routes: netlink", e))?;
        let addrs = nl
            .addresses()
            .map_err(|e| NetError::os("node routes: listing addresses", e))?;
        let subnets: Vec<(Ipv4Addr, u8)> = addrs.iter().map(|&(_, ip, p)| (ip, p)).collect();
        let routes = overlay::plan(backend, self.network(), &subnets, peers);
        self.apply_routes(&mut nl, &addrs, &routes, node_ip)
    }

    /// Routes to the other nodes' pods as planned in `routes`, for a node whose address
    /// is `node_ip` (what [`PodNetwork::sync_peers`] does once it has planned).
    #[cfg(test)]
    fn sync_routes(&self, routes: &[PeerRoute], node_ip: Ipv4Addr) -> Result<(), NetError> {
        let mut nl = Nl::new().map_err(|e| NetError::os("netlink", e))?;
        let addrs = nl.addresses().map_err(|e| NetError::os("addresses", e))?;
        self.apply_routes(&mut nl, &addrs, routes, node_ip)
    }

    /// Makes the routes skiff keeps what `routes` says: those of nodes that left are
    /// removed; the VXLAN device is made (or kept) when some peer is reached through it,
    /// and removed when none is. `addrs` are this namespace's addresses.
    fn apply_routes(
        &self,
        nl: &mut Nl,
        addrs: &[(u32, Ipv4Addr, u8)],
        routes: &[PeerRoute],
        node_ip: Ipv4Addr,
    ) -> Result<(), NetError> {
        let e = |what: &'static str| {
            move |err: io::Error| NetError::os(format!("node routes: {what}"), err)
        };
        let overlay: Vec<(Ipv4Addr, Ipv4Addr)> = routes
            .iter()
            .filter_map(|r| match r.via {
                Via::Vxlan { node, vtep } => Some((vtep, node)),
                Via::Direct(_) => None,
            })
            .collect();
        let vx = if overlay.is_empty() {
            nl.del_link_named(&self.vxlan)
                .map_err(e("removing the vxlan device"))?;
            None
        } else {
            let i = self.ensure_vxlan(nl, addrs, node_ip)?;
            Self::sync_vteps(nl, i, &overlay).map_err(e("vxlan neighbours"))?;
            Some(i)
        };
        let have: Vec<RouteEntry> = nl
            .routes(RouteHeader::RT_TABLE_MAIN, ROUTE_PROTO)
            .map_err(e("listing"))?
            .into_iter()
            .map(|(d, p, gw, oif)| (d, p, gw, oif.filter(|o| Some(*o) == vx)))
            .collect();
        let want: Vec<RouteEntry> = routes
            .iter()
            .map(|r| match r.via {
                Via::Direct(ip) => (r.cidr.0, r.cidr.1, Some(ip), None),
                Via::Vxlan { vtep, .. } => (r.cidr.0, r.cidr.1, Some(vtep), vx),
            })
            .collect();
        for &(dst, prefix, _, _) in have
            .iter()
            .filter(|h| !want.iter().any(|w| (w.0, w.1) == (h.0, h.1)))
        {
            nl.del_route(Nl::route_msg(dst, prefix, None, ROUTE_PROTO))
                .map_err(e("removing"))?;
        }
        for &(dst, prefix, gw, oif) in want.iter().filter(|r| !have.contains(r)) {
            let mut m = Nl::route_msg(dst, prefix, gw, ROUTE_PROTO);
            if let Some(oif) = oif {
                // The VTEP address is no neighbour of any link: it is on-link by fiat.
                m.attributes.push(RouteAttribute::Oif(oif));
                m.header.flags = RouteFlags::Onlink;
            }
            nl.replace_route(m).map_err(|err| {
                NetError::os(format!("node routes: {dst}/{prefix} via {gw:?}"), err)
            })?;
        }
        Ok(())
    }

    /// Makes sure the node's VXLAN device exists with `node_ip` as its source, the
    /// node's VTEP address and MAC, the MTU of the link under it less the overlay's
    /// headers, and is up. Returns its index.
    fn ensure_vxlan(
        &self,
        nl: &mut Nl,
        addrs: &[(u32, Ipv4Addr, u8)],
        node_ip: Ipv4Addr,
    ) -> Result<u32, NetError> {
        let name = &self.vxlan;
        let e =
            |what: &'static str| move |err: io::Error| NetError::os(format!("{what} {name}"), err);
        let vtep = overlay::vtep((self.base, self.prefix));
        let mac = overlay::vtep_mac(vtep).to_vec();
        let link = nl.link_of(addrs, node_ip).map_err(e("link MTU for"))?;
        let underlay = link.map(|(index, _)| index);
        let mtu = link
            .map_or(1500, |(_, mtu)| mtu)
            .saturating_sub(overlay::OVERHEAD);
        if let Some(i) = nl.link_index(name).map_err(e("finding"))? {
            // Kept if it still has the node's address as source and only its VTEP
            // address; made anew otherwise (the node's address or pod CIDR changed).
            let local = nl.vxlan_local(i).map_err(e("reading"))?;
            let mine: Vec<Ipv4Addr> = addrs
                .iter()
                .filter(|(x, _, _)| *x == i)
                .map(|x| x.1)
                .collect();
            if local == Some(node_ip) && mine.iter().all(|a| *a == vtep) {
                nl.set_link(i, vec![LinkAttribute::Mtu(mtu)], true)
                    .map_err(e("raising"))?;
                nl.add_address(i, vtep, 32).map_err(e("addressing"))?;
                return Ok(i);
            }
            nl.del_link(i).map_err(e("replacing"))?;
        }
        let mut data = vec![
            InfoVxlan::Id(overlay::VNI),
            InfoVxlan::Local(node_ip),
            InfoVxlan::Port(overlay::PORT),
            InfoVxlan::Learning(false),
        ];
        if let Some(u) = underlay {
            data.push(InfoVxlan::Link(u));
        }
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.clone()));
        m.attributes.push(LinkAttribute::Address(mac));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(data)),
        ]));
        nl.new_link(m).map_err(e("creating"))?;
        let i = nl
            .link_index(name)
            .map_err(e("finding"))?
            .ok_or_else(|| NetError::Missing(format!("{name} vanished")))?;
        nl.add_address(i, vtep, 32).map_err(e("addressing"))?;
        nl.set_link(i, vec![], true).map_err(e("raising"))?;
        Ok(i)
    }

    /// The VXLAN device's entries for exactly the peers in `peers` (VTEP address, node
    /// address): VTEP → MAC (neighbour) and MAC → node (forwarding database).
    fn sync_vteps(nl: &mut Nl, index: u32, peers: &[(Ipv4Addr, Ipv4Addr)]) -> io::Result<()> {
        use AddressFamily::{Bridge, Inet};
        let want_arp: Vec<(Option<Ipv4Addr>, Vec<u8>)> = peers
            .iter()
            .map(|(vtep, _)| (Some(*vtep), overlay::vtep_mac(*vtep).to_vec()))
            .collect();
        let want_fdb: Vec<(Option<Ipv4Addr>, Vec<u8>)> = peers
            .iter()
            .map(|(vtep, node)| (Some(*node), overlay::vtep_mac(*vtep).to_vec()))
            .collect();
        let have = nl.neighbours(Inet, index)?;
        for (ip, _) in have.iter().filter(|h| !want_arp.contains(h)) {
            nl.del_neighbour(Nl::neighbour_msg(Inet, index, *ip, &[]))?;
        }
        for (ip, mac) in want_arp.iter().filter(|w| !have.contains(w)) {
            nl.set_neighbour(Nl::neighbour_msg(Inet, index, *ip, mac))?;
        }
        let have = nl.neighbours(Bridge, index)?;
        for (ip, mac) in have.iter().filter(|h| !want_fdb.contains(h)) {
            nl.del_neighbour(Nl::neighbour_msg(Bridge, index, *ip, mac))?;
        }
        for (ip, mac) in want_fdb.iter().filter(|w| !have.contains(w)) {
            nl.set_neighbour(Nl::neighbour_msg(Bridge, index, *ip, mac))?;
        }
        Ok(())
    }

    /// The pods among `uids` whose veth is missing, down or off the bridge (every one with
    /// a lease if the bridge itself is gone or down), from one dump of the node's links:
    /// cheap enough to run every few seconds, so a sandbox broken under a quiet pod is
    /// found without waiting for the pod's next pass.
    pub fn broken_ports(&self, uids: &[String]) -> Result<Vec<String>, NetError> {
        let links = Nl::new()
            .and_then(|mut nl| nl.links())
            .map_err(|e| NetError::os("checking the pod network: listing links", e))?;
        let bridge = links.get(&self.bridge).filter(|b| b.up).map(|b| b.index);
        Ok(uids
            .iter()
            .filter(|uid| self.ip_of(uid).is_some())
            .filter(|uid| {
                let (host, _) = Self::veth_names(uid);
                let port = links.get(&host);
                bridge.is_none() || !port.is_some_and(|p| p.up && p.controller == bridge)
            })
            .cloned()
            .collect())
    }

    /// Why a pod's network is not whole, if it is not: the node's bridge missing, down or
    /// without the gateway address; the pod's veth missing, down or off the bridge; inside
    /// the pod, `eth0` missing or down, without its address, or without the default route
    /// through the bridge; or its address lease gone (a lease file set aside as unreadable:
    /// the veth in the pod cannot be told apart from a stale one). `Ok(None)`: whole.
    pub fn problem(&self, uid: &str, netns: &Path) -> Result<Option<String>, NetError> {
        let Some(ip) = self.ip_of(uid) else {
            return Ok(Some("its address lease is gone".into()));
        };
        let e = |what: &'static str| {
            move |err: io::Error| NetError::os(format!("checking the pod network: {what}"), err)
        };
        let mut nl = Nl::new().map_err(e("netlink"))?;
        let Some(bridge) = nl.link(&self.bridge).map_err(e("the bridge"))? else {
            return Ok(Some(format!("the node's bridge {} is gone", self.bridge)));
        };
        if !bridge.up {
            return Ok(Some(format!("the node's bridge {} is down", self.bridge)));
        }
        let addrs = nl.addresses().map_err(e("addresses"))?;
        if !addrs.contains(&(bridge.index, self.gateway(), self.prefix)) {
            return Ok(Some(format!(
                "the node's bridge {} lost its address {}",
                self.bridge,
                self.gateway()
            )));
        }
        let (host, _) = Self::veth_names(uid);
        let Some(veth) = nl.link(&host).map_err(e("the veth"))? else {
            return Ok(Some(format!("its veth {host} is gone")));
        };
        if !veth.up || veth.controller != Some(bridge.index) {
            return Ok(Some(format!("its veth {host} is down or off the bridge")));
        }
        let ns = std::fs::File::open(netns).map_err(e("opening the pod's netns"))?;
        let (prefix, gateway) = (self.prefix, self.gateway());
        std::thread::scope(|s| {
            s.spawn(|| -> Result<Option<String>, NetError> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|err| {
                    NetError::os("checking the pod network: entering its netns", err.into())
                })?;
                let mut nl = Nl::new().map_err(e("netlink in the pod"))?;
                let Some(eth0) = nl.link("eth0").map_err(e("eth0"))? else {
                    return Ok(Some("its eth0 is gone".into()));
                };
                if !eth0.up {
                    return Ok(Some("its eth0 is down".into()));
                }
                let addrs = nl.addresses().map_err(e("the pod's addresses"))?;
                if !addrs.contains(&(eth0.index, ip, prefix)) {
                    return Ok(Some(format!("its eth0 lost its address {ip}")));
                }
                let routes = nl
                    .routes(RouteHeader::RT_TABLE_MAIN, RTPROT_STATIC)
                    .map_err(e("the pod's routes"))?;
                if !routes.iter().any(|(dst, len, gw, _)| {
                    dst.is_unspecified() && *len == 0 && *gw == Some(gateway)
                }) {
                    return Ok(Some(format!("its default route via {gateway} is gone")));
                }
                Ok(None)
            })
            .join()
            .map_err(|_| NetError::SetupPanicked)?
        })
    }

    /// Disconnects a pod (its veth pair goes) and releases its address. The bridge's
    /// neighbour entry for the address goes too: the next pod given it (the lowest free
    /// address is leased first) has another MAC, and until a stale entry expired the
    /// node would send that pod's traffic to the old one.
    pub fn detach(&self, uid: &str) -> Result<(), NetError> {
        let (host, _) = Self::veth_names(uid);
        let mut nl = Nl::new().map_err(|e| NetError::os("netlink", e))?;
        nl.del_link_named(&host)
            .map_err(|e| NetError::os(format!("removing {host}"), e))?;
        if let (Some(ip), Ok(Some(index))) = (self.ip_of(uid), nl.link_index(&self.bridge)) {
            nl.del_neighbour(Nl::neighbour_msg(AddressFamily::Inet, index, Some(ip), &[]))
                .map_err(|e| NetError::os(format!("forgetting {ip}'s neighbour entry"), e))?;
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
            parse_cidr("10.42.3.7/24").unwrap(),
            (Ipv4Addr::new(10, 42, 3, 0), 24)
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

    /// Routes, the VXLAN device and its entries follow the plan, in a network namespace
    /// of the test's own. Needs root (CAP_NET_ADMIN); CI runs it as root.
    #[test]
    fn routes_and_the_overlay_follow_the_plan() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root for a network namespace; CI runs it as root"
        );
        let dir = std::env::temp_dir().join(format!("skiff-overlay-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let d = dir.clone();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let mut nl = Nl::new().unwrap();
            // The node's link: one end of a veth pair, 192.168.77.1/24.
            let mut peer = LinkMessage::default();
            peer.attributes.push(LinkAttribute::IfName("u1".into()));
            nl.new_link(veth_pair("u0", peer)).unwrap();
            let u0 = nl.link_index("u0").unwrap().unwrap();
            let u1 = nl.link_index("u1").unwrap().unwrap();
            nl.set_link(u0, vec![LinkAttribute::Mtu(1400)], true)
                .unwrap();
            nl.set_link(u1, vec![], true).unwrap();
            let node = Ipv4Addr::new(192, 168, 77, 1);
            nl.add_address(u0, node, 24).unwrap();

            let net = PodNetwork::new("t", "10.42.1.0/24", &d).unwrap();
            let cidr = |c: u8| (Ipv4Addr::new(10, 42, c, 0), 24);
            let direct = PeerRoute {
                cidr: cidr(2),
                via: Via::Direct(Ipv4Addr::new(192, 168, 77, 2)),
            };
            let over = |c: u8, host: u8| PeerRoute {
                cidr: cidr(c),
                via: Via::Vxlan {
                    node: Ipv4Addr::new(192, 168, 99, host),
                    vtep: Ipv4Addr::new(10, 42, c, 0),
                },
            };
            let mac = |c: u8| overlay::vtep_mac(Ipv4Addr::new(10, 42, c, 0)).to_vec();
            net.sync_routes(&[direct, over(3, 3)], node).unwrap();
            let vx = nl
                .link_index(&net.vxlan)
                .unwrap()
                .expect("the vxlan device");
            assert_eq!(nl.vxlan_local(vx).unwrap(), Some(node));
            assert_eq!(
                nl.link_mtu(vx).unwrap(),
                Some(1350),
                "the link's MTU less 50"
            );
            let routes = |nl: &mut Nl| {
                let mut r = nl.routes(RouteHeader::RT_TABLE_MAIN, ROUTE_PROTO).unwrap();
                r.sort();
                r
            };
            assert_eq!(
                routes(&mut nl),
                [
                    (
                        cidr(2).0,
                        24,
                        Some(Ipv4Addr::new(192, 168, 77, 2)),
                        Some(u0)
                    ),
                    (cidr(3).0, 24, Some(cidr(3).0), Some(vx)),
                ]
            );
            let arp = |nl: &mut Nl| nl.neighbours(AddressFamily::Inet, vx).unwrap();
            let fdb = |nl: &mut Nl| nl.neighbours(AddressFamily::Bridge, vx).unwrap();
            assert_eq!(arp(&mut nl), [(Some(cidr(3).0), mac(3))]);
            assert_eq!(
                fdb(&mut nl),
                [(Some(Ipv4Addr::new(192, 168, 99, 3)), mac(3))]
            );
            // Again: nothing changes (the device is kept).
            net.sync_routes(&[direct, over(3, 3)], node).unwrap();
            assert_eq!(nl.link_index(&net.vxlan).unwrap(), Some(vx));

            // Node 3 leaves, node 4 comes, node 2 moves behind a router.
            let moved = PeerRoute {
                cidr: cidr(2),
                via: Via::Vxlan {
                    node: Ipv4Addr::new(192, 168, 99, 2),
                    vtep: cidr(2).0,
                },
            };
            net.sync_routes(&[moved, over(4, 4)], node).unwrap();
            assert_eq!(
                routes(&mut nl),
                [
                    (cidr(2).0, 24, Some(cidr(2).0), Some(vx)),
                    (cidr(4).0, 24, Some(cidr(4).0), Some(vx)),
                ]
            );
            let mut a = arp(&mut nl);
            a.sort();
            assert_eq!(a, [(Some(cidr(2).0), mac(2)), (Some(cidr(4).0), mac(4))]);
            let mut f = fdb(&mut nl);
            f.sort();
            assert_eq!(
                f,
                [
                    (Some(Ipv4Addr::new(192, 168, 99, 2)), mac(2)),
                    (Some(Ipv4Addr::new(192, 168, 99, 4)), mac(4)),
                ]
            );

            // The node's address changes: the device is made anew with it.
            let node2 = Ipv4Addr::new(192, 168, 77, 9);
            nl.add_address(u0, node2, 24).unwrap();
            net.sync_routes(&[over(4, 4)], node2).unwrap();
            let vx2 = nl.link_index(&net.vxlan).unwrap().unwrap();
            assert_eq!(nl.vxlan_local(vx2).unwrap(), Some(node2));
            assert_eq!(
                routes(&mut nl),
                [(cidr(4).0, 24, Some(cidr(4).0), Some(vx2))]
            );

            // No peer behind the overlay: the device goes, and its routes with it.
            net.sync_routes(&[direct], node2).unwrap();
            assert_eq!(nl.link_index(&net.vxlan).unwrap(), None);
            assert_eq!(
                routes(&mut nl),
                [(
                    cidr(2).0,
                    24,
                    Some(Ipv4Addr::new(192, 168, 77, 2)),
                    Some(u0)
                )]
            );
            net.sync_routes(&[over(5, 5)], node2).unwrap();
            remove_overlay("t").unwrap();
            assert_eq!(nl.link_index(&net.vxlan).unwrap(), None);
            remove_overlay("t").expect("removing what is not there is fine");
        })
        .join()
        .expect("the test thread");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
