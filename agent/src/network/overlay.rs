//! How this node reaches each other node's pods: a plain route when the two nodes share a
//! link (host-gw), a VXLAN overlay when they don't. Pure: `pod_net.rs` applies the plan.
//!
//! Each node says in its Node's `skiff.dev/pod-network` annotation which it was started
//! with (`--pod-network`):
//! - `host-gw`: a route to the peer's pod CIDR via the peer's address, which must be on
//!   one of this node's links;
//! - `vxlan`: always the overlay (what flannel's `vxlan` backend does);
//! - `auto` (the default): a route when the peer's address is on one of this node's
//!   subnets, the overlay otherwise (flannel's `vxlan` with `DirectRouting`).
//!
//! Both ends of a pair choose the same way, or replies would not come back: the overlay is
//! used if either end asks for `vxlan`, a route if both ask for `host-gw`, and otherwise
//! (one `auto`) it depends on whether the two share a subnet, which holds both ways. A
//! node without the annotation (an older agent) counts as `host-gw`, which it did.
//!
//! The overlay, as flannel lays it out: VNI 1 on UDP port 8472; each node's VXLAN device
//! holds the first address of its pod CIDR (its VTEP address) and a MAC derived from it,
//! so peers need nothing from each other but the Node object. For a peer B reached over
//! it: a route `podCIDR(B) via vtep(B) dev <vxlan> onlink`, a permanent neighbour entry
//! `vtep(B) → mac(B)`, and a forwarding entry `mac(B) → B's address`.

use super::NetError;
use std::net::Ipv4Addr;

/// The node annotation naming the backend the node's agent runs.
pub const ANNOTATION: &str = "skiff.dev/pod-network";

/// The VXLAN network identifier and UDP port (flannel's, and Linux's own default port).
pub const VNI: u32 = 1;
pub const PORT: u16 = 8472;
/// What VXLAN adds to each packet (outer IPv4, UDP, VXLAN and Ethernet headers): pods'
/// MTU is the link's less this when the overlay may carry their traffic.
pub const OVERHEAD: u32 = 50;

/// The pod network backend (`--pod-network`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Backend {
    /// Routes via the other nodes' addresses: every node must share a link.
    HostGw,
    /// A VXLAN overlay to every other node.
    Vxlan,
    /// Routes to nodes on a shared subnet, the overlay to the others.
    #[default]
    Auto,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
            Backend::Auto => "auto",
        }
    }

    /// A Node's annotation value; none (or one this agent does not know) is `host-gw`.
    pub fn of_annotation(v: Option<&str>) -> Backend {
        match v {
            Some("vxlan") => Backend::Vxlan,
            Some("auto") => Backend::Auto,
            _ => Backend::HostGw,
        }
    }

    /// The MTU of pods' interfaces on a node whose link has `link_mtu`.
    pub fn pod_mtu(self, link_mtu: u32) -> u32 {
        match self {
            Backend::HostGw => link_mtu,
            Backend::Vxlan | Backend::Auto => link_mtu.saturating_sub(OVERHEAD).max(576),
        }
    }
}

/// How packets for one peer's pods leave this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// Routed to the peer's address on a shared link.
    Direct(Ipv4Addr),
    /// Encapsulated to the peer's address (`node`), addressed to its VTEP.
    Vxlan { node: Ipv4Addr, vtep: Ipv4Addr },
}

/// The route to one peer's pod CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerRoute {
    pub cidr: (Ipv4Addr, u8),
    pub via: Via,
}

/// A node's VTEP address: the first address of its pod CIDR.
pub fn vtep(cidr: (Ipv4Addr, u8)) -> Ipv4Addr {
    cidr.0
}

/// The MAC of the VXLAN device whose VTEP address is `vtep`: locally administered,
/// unicast, and as unique as pod CIDRs are.
pub fn vtep_mac(vtep: Ipv4Addr) -> [u8; 6] {
    let o = vtep.octets();
    [0x0e, 0x6b, o[0], o[1], o[2], o[3]]
}

fn within(ip: Ipv4Addr, (net, prefix): (Ipv4Addr, u8)) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// The routes to the peers' pods from a node running `me`, whose pod CIDR is `own` and
/// whose links hold `subnets` (address, prefix). Sorted by CIDR.
pub fn plan(
    me: Backend,
    own: (Ipv4Addr, u8),
    subnets: &[(Ipv4Addr, u8)],
    peers: &[Peer],
) -> Vec<PeerRoute> {
    let mut out: Vec<PeerRoute> = peers
        .iter()
        .filter(|p| p.cidr != own)
        .map(|p| {
            let overlay = match (me, p.backend) {
                (Backend::HostGw, Backend::HostGw) => false,
                (Backend::Vxlan, _) | (_, Backend::Vxlan) => true,
                _ => !subnets.iter().any(|s| within(p.ip, *s)),
            };
            let via = if overlay {
                Via::Vxlan {
                    node: p.ip,
                    vtep: vtep(p.cidr),
                }
            } else {
                Via::Direct(p.ip)
            };
            PeerRoute { cidr: p.cidr, via }
        })
        .collect();
    out.sort();
    out
}

/// A /24 (or any IPv4 prefix) as `10.42.3.0/24`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), NetError> {
    skiff_api::util::parse_ipv4_cidr("pod CIDR", s, 8..=30).map_err(NetError::Cidr)
}

/// A peer node for routing: its pod CIDR and its address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub name: String,
    pub cidr: (Ipv4Addr, u8),
    pub ip: Ipv4Addr,
    /// The pod network backend its agent runs (see `overlay.rs`).
    pub backend: Backend,
}

impl Peer {
    /// What routing needs of a Node, if it has it yet.
    pub fn of(n: &skiff_api::core::Node) -> Option<Peer> {
        let cidr = parse_cidr(n.spec.pod_cidr.as_deref()?).ok()?;
        let ip = n
            .status
            .as_ref()?
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")?
            .address
            .parse()
            .ok()?;
        Some(Peer {
            name: n.metadata.name().to_string(),
            cidr,
            ip,
            backend: Backend::of_annotation(
                n.metadata.annotations.get(ANNOTATION).map(String::as_str),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, cidr: [u8; 4], ip: [u8; 4], backend: Backend) -> Peer {
        Peer {
            name: name.into(),
            cidr: (Ipv4Addr::from(cidr), 24),
            ip: Ipv4Addr::from(ip),
            backend,
        }
    }

    const OWN: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 42, 0, 0), 24);
    const LAN: (Ipv4Addr, u8) = (Ipv4Addr::new(172, 31, 0, 10), 24);

    fn via(me: Backend, other: Backend, ip: [u8; 4]) -> Via {
        let p = [peer("b", [10, 42, 1, 0], ip, other)];
        let r = plan(me, OWN, &[LAN], &p);
        assert_eq!(r.len(), 1);
        r[0].via
    }

    #[test]
    fn both_ends_choose_alike() {
        use Backend::*;
        let same = [172, 31, 0, 11];
        let other = [172, 31, 1, 10];
        let direct = Via::Direct(Ipv4Addr::from(same));
        let overlay = |ip: [u8; 4]| Via::Vxlan {
            node: Ipv4Addr::from(ip),
            vtep: Ipv4Addr::new(10, 42, 1, 0),
        };
        // On a shared subnet: a route unless either end wants the overlay.
        assert_eq!(via(HostGw, HostGw, same), direct);
        assert_eq!(via(Auto, Auto, same), direct);
        assert_eq!(via(Auto, HostGw, same), direct);
        assert_eq!(via(HostGw, Auto, same), direct);
        assert_eq!(via(Vxlan, HostGw, same), overlay(same));
        assert_eq!(via(HostGw, Vxlan, same), overlay(same));
        assert_eq!(via(Auto, Vxlan, same), overlay(same));
        // Across a router: the overlay unless both ends insist on routes.
        assert_eq!(via(Auto, Auto, other), overlay(other));
        assert_eq!(via(Auto, HostGw, other), overlay(other));
        assert_eq!(via(HostGw, Auto, other), overlay(other));
        assert_eq!(via(Vxlan, Vxlan, other), overlay(other));
        assert_eq!(
            via(HostGw, HostGw, other),
            Via::Direct(Ipv4Addr::from(other))
        );
    }

    #[test]
    fn own_cidr_is_skipped_and_routes_are_sorted() {
        let peers = [
            peer("c", [10, 42, 2, 0], [172, 31, 1, 10], Backend::Auto),
            peer("me", [10, 42, 0, 0], [172, 31, 0, 10], Backend::Auto),
            peer("b", [10, 42, 1, 0], [172, 31, 0, 11], Backend::Auto),
        ];
        let r = plan(Backend::Auto, OWN, &[LAN], &peers);
        let cidrs: Vec<Ipv4Addr> = r.iter().map(|r| r.cidr.0).collect();
        assert_eq!(
            cidrs,
            [Ipv4Addr::new(10, 42, 1, 0), Ipv4Addr::new(10, 42, 2, 0)]
        );
        assert!(matches!(r[0].via, Via::Direct(_)));
        assert!(matches!(r[1].via, Via::Vxlan { .. }));
    }

    #[test]
    fn annotations_macs_and_mtus() {
        assert_eq!(Backend::of_annotation(None), Backend::HostGw);
        assert_eq!(Backend::of_annotation(Some("vxlan")), Backend::Vxlan);
        assert_eq!(Backend::of_annotation(Some("auto")), Backend::Auto);
        assert_eq!(Backend::of_annotation(Some("wireguard")), Backend::HostGw);
        for b in [Backend::HostGw, Backend::Vxlan, Backend::Auto] {
            assert_eq!(Backend::of_annotation(Some(b.as_str())), b);
        }
        let m = vtep_mac(Ipv4Addr::new(10, 42, 3, 0));
        assert_eq!(m, [0x0e, 0x6b, 10, 42, 3, 0]);
        assert_eq!(m[0] & 1, 0, "unicast");
        assert_eq!(m[0] & 2, 2, "locally administered");
        assert_eq!(Backend::HostGw.pod_mtu(1500), 1500);
        assert_eq!(Backend::Auto.pod_mtu(1500), 1450);
        assert_eq!(Backend::Vxlan.pod_mtu(9000), 8950);
        assert!(within(
            Ipv4Addr::new(127, 0, 0, 1),
            (Ipv4Addr::new(127, 0, 0, 1), 8)
        ));
        assert!(!within(
            Ipv4Addr::new(10, 0, 1, 1),
            (Ipv4Addr::new(10, 0, 0, 1), 24)
        ));
        assert!(within(
            Ipv4Addr::new(1, 2, 3, 4),
            (Ipv4Addr::UNSPECIFIED, 0)
        ));
    }
}
