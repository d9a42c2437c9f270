//! A netlink route socket: links, addresses, routes and neighbours by message, with the
//! kernel's acknowledgements read back (netlink-packet-route, no `ip` commands).

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};

/// skiff's routes carry this protocol number (`ip route` shows `proto 157`).
pub const ROUTE_PROTO: u8 = 157;

/// The kernel's local routing table (`ip route show table local`).
pub(super) const LOCAL_TABLE: u8 = 255;

/// A link as [`Nl::link`] reports it.
pub(super) struct Link {
    pub index: u32,
    pub up: bool,
    pub controller: Option<u32>,
}

impl Link {
    fn of(r: &RouteNetlinkMessage) -> Option<Link> {
        let RouteNetlinkMessage::NewLink(l) = r else {
            return None;
        };
        Some(Link {
            index: l.header.index,
            up: l.header.flags.contains(LinkFlags::Up),
            controller: l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Controller(i) => Some(*i),
                _ => None,
            }),
        })
    }
}

/// A netlink route socket in the calling thread's network namespace.
pub(super) struct Nl {
    sock: Socket,
    seq: u32,
}

impl Nl {
    pub(super) fn new() -> io::Result<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nl { sock, seq: 0 })
    }

    /// Sends a request and collects the answers until the kernel's ACK (or error).
    pub(super) fn request(
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

    pub(super) fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// The link named `name`: its index, whether it is up, and its controller (the bridge
    /// a port is on).
    pub(super) fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(msgs) => Ok(msgs.iter().find_map(Link::of)),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace, by name (one dump).
    pub(super) fn links(&mut self) -> io::Result<std::collections::HashMap<String, Link>> {
        let msgs = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            netlink_packet_core::NLM_F_DUMP,
        )?;
        Ok(msgs
            .iter()
            .filter_map(|r| {
                let RouteNetlinkMessage::NewLink(l) = r else {
                    return None;
                };
                let name = l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })?;
                Some((name, Link::of(r)?))
            })
            .collect())
    }

    pub(super) fn new_link(&mut self, m: LinkMessage) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(|_| ())
    }

    pub(super) fn set_link(
        &mut self,
        index: u32,
        attrs: Vec<LinkAttribute>,
        up: bool,
    ) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        }
        m.attributes = attrs;
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(|_| ())
    }

    pub(super) fn del_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(|_| ())
    }

    /// Removes the link named `name`; one that is not there (or went meanwhile) is fine.
    pub(super) fn del_link_named(&mut self, name: &str) -> io::Result<()> {
        match self.link_index(name)? {
            Some(i) => match self.del_link(i) {
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
                r => r,
            },
            None => Ok(()),
        }
    }

    pub(super) fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
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

    /// The link holding address `ip` among `addrs` (as [`Nl::addresses`] lists them) and
    /// its MTU.
    pub(super) fn link_of(
        &mut self,
        addrs: &[(u32, Ipv4Addr, u8)],
        ip: Ipv4Addr,
    ) -> io::Result<Option<(u32, u32)>> {
        let Some(&(index, _, _)) = addrs.iter().find(|(_, a, _)| *a == ip) else {
            return Ok(None);
        };
        Ok(self.link_mtu(index)?.map(|mtu| (index, mtu)))
    }

    pub(super) fn link_mtu(&mut self, index: u32) -> io::Result<Option<u32>> {
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
    pub(super) fn addresses(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
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

    pub(super) fn route_msg(
        dst: Ipv4Addr,
        prefix: u8,
        via: Option<Ipv4Addr>,
        proto: u8,
    ) -> RouteMessage {
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
    pub(super) fn local_route_msg(ip: Ipv4Addr) -> RouteMessage {
        let mut m = Self::route_msg(ip, 32, None, ROUTE_PROTO);
        m.header.table = LOCAL_TABLE;
        m.header.kind = RouteType::Local;
        m.header.scope = RouteScope::Host;
        m
    }

    /// Creates or replaces what `m` describes.
    pub(super) fn replace(&mut self, m: RouteNetlinkMessage) -> io::Result<()> {
        self.request(m, NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE)
            .map(|_| ())
    }

    /// Deletes what `m` describes; the kernel's `gone` error (it is not there) is fine.
    pub(super) fn remove(&mut self, m: RouteNetlinkMessage, gone: i32) -> io::Result<()> {
        match self.request(m, 0) {
            Err(e) if e.raw_os_error() == Some(gone) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Adds or replaces a route.
    pub(super) fn replace_route(&mut self, m: RouteMessage) -> io::Result<()> {
        self.replace(RouteNetlinkMessage::NewRoute(m))
    }

    /// Removes a route; one already gone is fine.
    pub(super) fn del_route(&mut self, m: RouteMessage) -> io::Result<()> {
        self.remove(RouteNetlinkMessage::DelRoute(m), libc::ESRCH)
    }

    /// Routes of `table` with protocol `proto`: (destination, prefix, gateway, output
    /// link).
    pub(super) fn routes(&mut self, table: u8, proto: u8) -> io::Result<Vec<RouteEntry>> {
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
                    let oif = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(*i),
                        _ => None,
                    });
                    Some((
                        dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        r.header.destination_prefix_length,
                        gw,
                        oif,
                    ))
                }
                _ => None,
            })
            .collect())
    }
}

/// A route as [`Nl::routes`] lists it: (destination, prefix, gateway, output link).
pub(super) type RouteEntry = (Ipv4Addr, u8, Option<Ipv4Addr>, Option<u32>);

impl Nl {
    /// The local (source) address of VXLAN device `index`, if it is one.
    pub(super) fn vxlan_local(&mut self, index: u32) -> io::Result<Option<Ipv4Addr>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        let msgs = self.request(RouteNetlinkMessage::GetLink(m), 0)?;
        Ok(msgs.iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Vxlan(v)) => v.iter().find_map(|x| match x {
                        InfoVxlan::Local(ip) => Some(*ip),
                        _ => None,
                    }),
                    _ => None,
                }),
                _ => None,
            }),
            _ => None,
        }))
    }

    /// The neighbour entries (`Inet`: ARP; `Bridge`: forwarding database) of link
    /// `index`, as (address, link-layer address).
    pub(super) fn neighbours(
        &mut self,
        family: AddressFamily,
        index: u32,
    ) -> io::Result<Vec<(Option<Ipv4Addr>, Vec<u8>)>> {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = index;
        let msgs = self.request(
            RouteNetlinkMessage::GetNeighbour(m),
            netlink_packet_core::NLM_F_DUMP,
        )?;
        Ok(msgs
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.ifindex == index => {
                    let mut ip = None;
                    let mut mac = Vec::new();
                    for a in &n.attributes {
                        match a {
                            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => {
                                ip = Some(*v)
                            }
                            NeighbourAttribute::Destination(NeighbourAddress::Other(b))
                                if b.len() == 4 =>
                            {
                                ip = Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                            }
                            NeighbourAttribute::LinkLayerAddress(b) => mac = b.clone(),
                            _ => {}
                        }
                    }
                    Some((ip, mac))
                }
                _ => None,
            })
            .collect())
    }

    pub(super) fn neighbour_msg(
        family: AddressFamily,
        index: u32,
        ip: Option<Ipv4Addr>,
        mac: &[u8],
    ) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = index;
        m.header.state = NeighbourState::Permanent;
        if family == AddressFamily::Bridge {
            // The VXLAN device's own forwarding table, not a bridge's it might be on.
            m.header.flags = NeighbourFlags::Own;
        }
        if let Some(ip) = ip {
            m.attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        }
        if !mac.is_empty() {
            m.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        }
        m
    }

    /// Adds or replaces a permanent neighbour entry.
    pub(super) fn set_neighbour(&mut self, m: NeighbourMessage) -> io::Result<()> {
        self.replace(RouteNetlinkMessage::NewNeighbour(m))
    }

    /// Removes a neighbour entry; one already gone is fine.
    pub(super) fn del_neighbour(&mut self, m: NeighbourMessage) -> io::Result<()> {
        self.remove(RouteNetlinkMessage::DelNeighbour(m), libc::ENOENT)
    }
}
