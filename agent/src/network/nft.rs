//! The node's nftables table (`skiff-<node>`, family ip), two nat chains:
//! - `services` (prerouting, priority -100, dstnat): pods' connections to ClusterIP ports
//!   are translated to a ready endpoint ([`services_batch`]; `services/proxy.rs` decides which).
//! - `postrouting` (priority 100, srcnat): masquerading of traffic that leaves the
//!   cluster, as flannel does for k3s: a pod's packet to an address outside the pod
//!   network goes out with the node's address, so the answer finds its way back.
//!
//! The postrouting rules are, in order: a translated connection from this node's pods to
//! this node's pods is masqueraded (the hairpin: the answer must come back through the
//! translation, not straight over the bridge); traffic not from this node's pod CIDR
//! returns; traffic to this node's pod CIDR, to another node's pod CIDR or
//! to multicast returns; the rest is masqueraded. Written over netlink (nfnetlink) as one
//! atomic batch that creates the table and chain if missing, flushes the chain and writes
//! the rules, so a restart or a changed set of nodes converges on the same state. The
//! message building is pure; [`apply`] only sends and reads the acknowledgements.

use super::NetError;
use std::io::{self, Read};
use std::net::Ipv4Addr;

// linux/netfilter/nfnetlink.h, nf_tables.h, netfilter.h.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFPROTO_IPV4: u8 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_ACCEPT: u32 = 1;
const NFT_RETURN: i32 = -5;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_L4PROTO: u32 = 16;
const NFT_NG_RANDOM: u32 = 1;
const NFT_NAT_DNAT: u32 = 1;
const NFT_CT_STATUS: u32 = 2;
/// Conntrack status bit: the connection's destination was rewritten.
const IPS_DST_NAT: u32 = 1 << 5;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;

/// The masquerade chain's name in the node's table.
const CHAIN: &str = "postrouting";
/// The Services' DNAT chain's name in the node's table.
const SERVICES: &str = "services";
/// The chains forwarding pods' host ports: arriving packets, and the node's own.
const HOSTPORTS: &str = "hostports";
const HOSTPORTS_LOCAL: &str = "hostports-local";
const NF_INET_LOCAL_OUT: u32 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
/// `RTN_LOCAL`: a route type, an address of this machine.
const RTN_LOCAL: u32 = 2;

/// A netlink attribute tree, serialized by [`Attr::write`].
enum Attr {
    Bytes(u16, Vec<u8>),
    Nested(u16, Vec<Attr>),
}

fn str_attr(t: u16, s: &str) -> Attr {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    Attr::Bytes(t, b)
}

fn u32_attr(t: u16, v: u32) -> Attr {
    Attr::Bytes(t, v.to_be_bytes().to_vec())
}

impl Attr {
    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
        let t = match self {
            Attr::Bytes(t, b) => {
                out.extend_from_slice(b);
                *t
            }
            Attr::Nested(t, children) => {
                for c in children {
                    c.write(out);
                }
                *t | NLA_F_NESTED
            }
        };
        let len = (out.len() - start) as u16;
        out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        out[start + 2..start + 4].copy_from_slice(&t.to_ne_bytes());
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
}

/// One netlink message: header, nfgenmsg, attributes.
fn message(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[Attr],
) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.push(family);
    out.push(0);
    out.extend_from_slice(&res_id.to_be_bytes());
    for a in attrs {
        a.write(out);
    }
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn expr(name: &str, data: Vec<Attr>) -> Attr {
    // NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }.
    Attr::Nested(1, vec![str_attr(1, name), Attr::Nested(2, data)])
}

fn data_value(t: u16, v: &[u8]) -> Attr {
    // { NFTA_DATA_VALUE }.
    Attr::Nested(t, vec![Attr::Bytes(1, v.to_vec())])
}

/// Loads `len` bytes at `offset` of header `base` into register 1.
fn payload(base: u32, offset: u32, len: u32) -> Attr {
    expr(
        "payload",
        vec![
            u32_attr(1, NFT_REG_1),
            u32_attr(2, base),
            u32_attr(3, offset),
            u32_attr(4, len),
        ],
    )
}

/// Register 1 `& mask`, then compared (`==` or `!=`) with `value`.
fn masked_cmp(mask: [u8; 4], value: [u8; 4], equal: bool) -> [Attr; 2] {
    [
        expr(
            "bitwise",
            vec![
                u32_attr(1, NFT_REG_1),
                u32_attr(2, NFT_REG_1),
                u32_attr(3, 4),
                data_value(4, &mask),
                data_value(5, &[0; 4]),
            ],
        ),
        expr(
            "cmp",
            vec![
                u32_attr(1, NFT_REG_1),
                u32_attr(2, if equal { NFT_CMP_EQ } else { NFT_CMP_NEQ }),
                data_value(3, &value),
            ],
        ),
    ]
}

/// `ip saddr|daddr [!=|==] net/prefix`: load, mask, compare.
fn match_net(offset: u32, (net, prefix): (Ipv4Addr, u8), equal: bool) -> Vec<Attr> {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let net = u32::from(net) & mask;
    let mut v = vec![payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 4)];
    v.extend(masked_cmp(mask.to_be_bytes(), net.to_be_bytes(), equal));
    v
}

fn verdict_return() -> Attr {
    expr(
        "immediate",
        vec![
            u32_attr(1, NFT_REG_VERDICT),
            // NFTA_IMMEDIATE_DATA { NFTA_DATA_VERDICT { NFTA_VERDICT_CODE } }.
            Attr::Nested(
                2,
                vec![Attr::Nested(2, vec![u32_attr(1, NFT_RETURN as u32)])],
            ),
        ],
    )
}

const SADDR: u32 = 12;
const DADDR: u32 = 16;

/// The node's table name.
pub fn table_name(node: &str) -> String {
    format!("skiff-{node}")
}

/// nf_tables commands between a batch's begin and end messages, applied atomically; each
/// command asks for an acknowledgement.
pub struct Batch {
    bytes: Vec<u8>,
    /// The commands' sequence numbers (begin is 1, end the last).
    seqs: Vec<u32>,
}

impl Batch {
    fn new() -> Batch {
        let mut bytes = Vec::new();
        message(
            &mut bytes,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            1,
            0,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        Batch {
            bytes,
            seqs: Vec::new(),
        }
    }

    /// A batch that starts by rewriting the node's nat chain `chain` (on `hook` at
    /// `priority`): the table and chain are created if missing and the chain emptied.
    fn rewrite_chain(node: &str, chain: &'static str, hook: u32, priority: i32) -> Batch {
        let mut b = Batch::new();
        b.chain(node, chain, hook, priority);
        b
    }

    /// Adds the creation (if missing) and emptying of the nat chain `chain` (and its
    /// table) to the batch.
    fn chain(&mut self, node: &str, chain: &'static str, hook: u32, priority: i32) {
        let table = table_name(node);
        let b = self;
        b.cmd(NFT_MSG_NEWTABLE, NLM_F_CREATE, &[str_attr(1, &table)]);
        b.cmd(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            &[
                str_attr(1, &table),
                str_attr(3, chain),
                Attr::Nested(4, vec![u32_attr(1, hook), u32_attr(2, priority as u32)]),
                u32_attr(5, NF_ACCEPT),
                str_attr(7, "nat"),
            ],
        );
        // Without a handle: every rule of the chain goes.
        b.cmd(
            NFT_MSG_DELRULE,
            0,
            &[str_attr(1, &table), str_attr(2, chain)],
        );
    }

    /// Appends a rule of `exprs` to the node's `chain`.
    fn rule(&mut self, node: &str, chain: &str, exprs: Vec<Attr>) {
        self.cmd(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            &[
                str_attr(1, &table_name(node)),
                str_attr(2, chain),
                Attr::Nested(4, exprs),
            ],
        );
    }

    fn cmd(&mut self, ty: u16, flags: u16, attrs: &[Attr]) {
        let seq = self.seqs.len() as u32 + 2;
        self.seqs.push(seq);
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | ty;
        let flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        message(&mut self.bytes, ty, flags, seq, NFPROTO_IPV4, 0, attrs);
    }

    fn end(mut self) -> Batch {
        let seq = self.seqs.len() as u32 + 2;
        message(
            &mut self.bytes,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        self
    }

    /// Sends it and waits for the acknowledgement of every command; the first error the
    /// kernel reports is returned.
    fn send(&self) -> io::Result<()> {
        let sock = socket2::Socket::new_raw(
            socket2::Domain::from(libc::AF_NETLINK),
            socket2::Type::RAW,
            Some(socket2::Protocol::from(libc::NETLINK_NETFILTER)),
        )?;
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        // An unbound netlink socket sends to the kernel.
        sock.send(&self.bytes)?;
        let mut waiting: std::collections::BTreeSet<u32> = self.seqs.iter().copied().collect();
        let mut buf = vec![0u8; 64 << 10];
        while !waiting.is_empty() {
            let n = (&sock).read(&mut buf)?;
            let mut off = 0;
            while off + 16 <= n {
                let word =
                    |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
                let (len, seq) = (word(off) as usize, word(off + 8));
                let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
                if len < 16 || off + len > n {
                    break;
                }
                if ty == NLMSG_ERROR && len >= 20 {
                    let code = word(off + 16) as i32;
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    waiting.remove(&seq);
                }
                off += (len + 3) & !3;
            }
        }
        Ok(())
    }
}

/// The batch that makes the node's masquerade table what it should be. Pure.
pub fn batch(node: &str, own: (Ipv4Addr, u8), peers: &[(Ipv4Addr, u8)]) -> Batch {
    let mut b = Batch::rewrite_chain(node, CHAIN, NF_INET_POST_ROUTING, 100);
    // A pod's connection to a Service that the services chain sent to a pod on this node
    // leaves through the bridge, and the answer would come straight back over it,
    // bypassing the translation: it goes out with the bridge's address instead.
    let mut hairpin = dnatted();
    hairpin.extend(match_net(SADDR, own, true));
    hairpin.extend(match_net(DADDR, own, true));
    hairpin.push(expr("masq", Vec::new()));
    b.rule(node, CHAIN, hairpin);
    let returns = [match_net(SADDR, own, false), match_net(DADDR, own, true)]
        .into_iter()
        .chain(peers.iter().map(|p| match_net(DADDR, *p, true)))
        .chain([match_net(DADDR, (Ipv4Addr::new(224, 0, 0, 0), 4), true)])
        .map(|mut exprs| {
            exprs.push(verdict_return());
            exprs
        });
    for exprs in returns.chain([vec![expr("masq", Vec::new())]]) {
        b.rule(node, CHAIN, exprs);
    }
    b.end()
}

/// `ct status dnat`: the connection's destination was translated.
fn dnatted() -> Vec<Attr> {
    let mut v = vec![expr(
        "ct",
        vec![u32_attr(1, NFT_REG_1), u32_attr(2, NFT_CT_STATUS)],
    )];
    // Conntrack status is in host byte order.
    v.extend(masked_cmp(IPS_DST_NAT.to_ne_bytes(), [0; 4], false));
    v
}

/// Loads `value.len()` bytes at `offset` of header `base` and compares them with `value`.
fn match_bytes(base: u32, offset: u32, value: &[u8]) -> Vec<Attr> {
    vec![payload(base, offset, value.len() as u32), cmp_eq(value)]
}

fn cmp_eq(value: &[u8]) -> Attr {
    expr(
        "cmp",
        vec![
            u32_attr(1, NFT_REG_1),
            u32_attr(2, NFT_CMP_EQ),
            data_value(3, value),
        ],
    )
}

fn immediate(reg: u32, value: &[u8]) -> Attr {
    expr("immediate", vec![u32_attr(1, reg), data_value(2, value)])
}

/// `meta l4proto PROTO th dport PORT`.
fn match_proto_port(proto: u8, port: u16) -> Vec<Attr> {
    let mut v = vec![
        expr(
            "meta",
            vec![u32_attr(1, NFT_REG_1), u32_attr(2, NFT_META_L4PROTO)],
        ),
        cmp_eq(&[proto]),
    ];
    v.extend(match_bytes(
        NFT_PAYLOAD_TRANSPORT_HEADER,
        2,
        &port.to_be_bytes(),
    ));
    v
}

/// The destination rewritten to `ip:port`.
fn dnat_to(ip: Ipv4Addr, port: u16) -> [Attr; 3] {
    [
        immediate(NFT_REG_1, &ip.octets()),
        immediate(NFT_REG_2, &port.to_be_bytes()),
        expr(
            "nat",
            vec![
                u32_attr(1, NFT_NAT_DNAT),
                u32_attr(2, u32::from(NFPROTO_IPV4)),
                u32_attr(3, NFT_REG_1),
                u32_attr(5, NFT_REG_2),
            ],
        ),
    ]
}

/// One Service port translated in the kernel: packets to `vip:port` (`proto`: 6 TCP,
/// 17 UDP) go to one of `endpoints`, picked at random per connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dnat {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: u8,
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

/// The batch that makes the node's Service chain (nat, prerouting, priority -100:
/// dstnat) hold exactly `dnats`. For a port with n endpoints, rule i matches the virtual
/// address, protocol and port and takes endpoint i with probability 1/(n-i) (the last
/// always), which spreads connections evenly as kube-proxy's iptables rules do;
/// conntrack keeps a connection on its endpoint. Pure.
pub fn services_batch(node: &str, dnats: &[Dnat]) -> Batch {
    let mut b = Batch::rewrite_chain(node, SERVICES, NF_INET_PRE_ROUTING, -100);
    for d in dnats {
        let n = d.endpoints.len();
        for (i, (ip, port)) in d.endpoints.iter().enumerate() {
            let mut exprs = match_bytes(NFT_PAYLOAD_NETWORK_HEADER, DADDR, &d.vip.octets());
            exprs.extend(match_proto_port(d.proto, d.port));
            if i + 1 < n {
                exprs.push(expr(
                    "numgen",
                    vec![
                        u32_attr(1, NFT_REG_1),
                        u32_attr(2, (n - i) as u32),
                        u32_attr(3, NFT_NG_RANDOM),
                    ],
                ));
                exprs.push(cmp_eq(&0u32.to_ne_bytes()));
            }
            exprs.extend(dnat_to(*ip, *port));
            b.rule(node, SERVICES, exprs);
        }
    }
    b.end()
}

/// A pod's `hostPort` as the kubelet's portmap plugin forwards it: packets to
/// `host_ip:port` (any of the node's own addresses when `None`) go to the pod's
/// `pod_ip:pod_port`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPortRule {
    pub host_ip: Option<Ipv4Addr>,
    pub port: u16,
    /// 6 TCP, 17 UDP, 132 SCTP.
    pub proto: u8,
    pub pod_ip: Ipv4Addr,
    pub pod_port: u16,
}

/// `fib daddr type local`: the destination is one of this machine's addresses.
fn to_local_address() -> Vec<Attr> {
    // NFTA_FIB_DREG, NFTA_FIB_RESULT (ADDRTYPE), NFTA_FIB_FLAGS (DADDR); the result is
    // a route type in host byte order, RTN_LOCAL = 2.
    vec![
        expr(
            "fib",
            vec![
                u32_attr(1, NFT_REG_1),
                u32_attr(2, NFT_FIB_RESULT_ADDRTYPE),
                u32_attr(3, NFTA_FIB_F_DADDR),
            ],
        ),
        cmp_eq(&RTN_LOCAL.to_ne_bytes()),
    ]
}

/// The batch that makes the node's host port chains hold exactly `rules`: `hostports`
/// on prerouting (packets from other machines and from pods) and `hostports-local` on
/// output (the node's own connections, but not those to loopback, which the kernel
/// would not route to a pod). Both at priority -99, after the Services' chain, so a
/// ClusterIP (an address of the node too) keeps its own translation. Pure.
pub fn hostports_batch(node: &str, rules: &[HostPortRule]) -> Batch {
    let mut b = Batch::rewrite_chain(node, HOSTPORTS, NF_INET_PRE_ROUTING, -99);
    b.chain(node, HOSTPORTS_LOCAL, NF_INET_LOCAL_OUT, -99);
    for (chain, local) in [(HOSTPORTS, false), (HOSTPORTS_LOCAL, true)] {
        for r in rules {
            let mut exprs = match r.host_ip {
                Some(ip) => match_bytes(NFT_PAYLOAD_NETWORK_HEADER, DADDR, &ip.octets()),
                None => to_local_address(),
            };
            if local {
                exprs.extend(match_net(DADDR, (Ipv4Addr::new(127, 0, 0, 0), 8), false));
            }
            exprs.extend(match_proto_port(r.proto, r.port));
            exprs.extend(dnat_to(r.pod_ip, r.pod_port));
            b.rule(node, chain, exprs);
        }
    }
    b.end()
}

/// Writes the node's host port forwarding in the calling thread's network namespace.
/// Blocking.
pub fn apply_hostports(node: &str, rules: &[HostPortRule]) -> Result<(), NetError> {
    hostports_batch(node, rules)
        .send()
        .map_err(|e| NetError::os("host port rules", e))
}

/// Writes the node's Service translations in the calling thread's network namespace.
/// Blocking.
pub fn apply_services(node: &str, dnats: &[Dnat]) -> Result<(), NetError> {
    services_batch(node, dnats)
        .send()
        .map_err(|e| NetError::os("service rules", e))
}

/// Writes the node's masquerade rules in the calling thread's network namespace.
/// Blocking.
pub fn apply(node: &str, own: (Ipv4Addr, u8), peers: &[(Ipv4Addr, u8)]) -> Result<(), NetError> {
    batch(node, own, peers)
        .send()
        .map_err(|e| NetError::os("masquerade rules", e))
}

/// Removes the node's masquerade table (`skiff-agent clean-network`): the rules outlive
/// the agent, as its pods do. Blocking.
pub fn remove(node: &str) -> Result<(), NetError> {
    let table = table_name(node);
    let mut b = Batch::new();
    b.cmd(NFT_MSG_DELTABLE, 0, &[str_attr(1, &table)]);
    match b.end().send() {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(NetError::os(format!("removing nftables table {table}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of a batch: (type, flags, seq, attribute bytes).
    fn messages(b: &[u8]) -> Vec<(u16, u16, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(b[off + 4..off + 6].try_into().unwrap());
            let flags = u16::from_ne_bytes(b[off + 6..off + 8].try_into().unwrap());
            let seq = u32::from_ne_bytes(b[off + 8..off + 12].try_into().unwrap());
            out.push((ty, flags, seq, b[off + 20..off + len].to_vec()));
            off += len;
        }
        out
    }

    #[test]
    fn a_batch_creates_flushes_and_writes_the_rules() {
        let own = (Ipv4Addr::new(10, 42, 1, 0), 24);
        let peers = [(Ipv4Addr::new(10, 42, 2, 0), 24)];
        let Batch { bytes: b, seqs } = batch("n1", own, &peers);
        assert!(b.len().is_multiple_of(4));
        let m = messages(&b);
        let types: Vec<u16> = m.iter().map(|x| x.0).collect();
        let nft = |t: u16| (10 << 8) | t;
        assert_eq!(
            types,
            [
                0x10,
                nft(0),
                nft(3),
                nft(8),
                nft(6),
                nft(6),
                nft(6),
                nft(6),
                nft(6),
                nft(6),
                0x11
            ],
            "begin, table, chain, flush, the hairpin, 4 returns and the masquerade, end"
        );
        // Every command asks for an acknowledgement, under the sequence numbers returned.
        let acked: Vec<u32> = m
            .iter()
            .filter(|x| x.1 & NLM_F_ACK != 0)
            .map(|x| x.2)
            .collect();
        assert_eq!(acked, seqs);
        // The table's name, NUL-terminated, in its attribute.
        assert!(m[1].3.windows(9).any(|w| w == b"skiff-n1\0"));
        // The own network's compare holds 10.42.1.0 and the peer's 10.42.2.0.
        let has = |i: usize, v: &[u8]| m[i].3.windows(v.len()).any(|w| w == v);
        // The hairpin: translated connections from and to the node's pods.
        assert!(has(4, b"ct\0") && has(4, &IPS_DST_NAT.to_ne_bytes()));
        assert!(has(4, &[10, 42, 1, 0]) && has(4, b"masq\0"));
        assert!(has(5, &[10, 42, 1, 0]) && has(5, &[255, 255, 255, 0]));
        assert!(has(7, &[10, 42, 2, 0]));
        assert!(has(8, &[224, 0, 0, 0]) && has(8, &[240, 0, 0, 0]));
        assert!(has(9, b"masq\0"));
        // The source rule compares "not equal", the destination ones "equal".
        let cmp_op = |i: usize, op: u32| {
            // NFTA_CMP_OP, then the nested NFTA_CMP_DATA.
            let mut want = vec![8, 0, 2, 0];
            want.extend_from_slice(&op.to_be_bytes());
            want.extend_from_slice(&[12, 0, 3, 0x80]);
            has(i, &want)
        };
        assert!(cmp_op(5, NFT_CMP_NEQ) && !cmp_op(5, NFT_CMP_EQ));
        assert!(cmp_op(6, NFT_CMP_EQ) && !cmp_op(6, NFT_CMP_NEQ));
    }

    #[test]
    fn service_rules_pick_each_endpoint_with_the_right_odds() {
        let d = Dnat {
            vip: Ipv4Addr::new(10, 43, 0, 10),
            port: 80,
            proto: 6,
            endpoints: vec![
                (Ipv4Addr::new(10, 42, 1, 2), 8080),
                (Ipv4Addr::new(10, 42, 2, 2), 8080),
                (Ipv4Addr::new(10, 42, 2, 3), 8081),
            ],
        };
        let Batch { bytes: b, .. } = services_batch("n1", &[d]);
        let m = messages(&b);
        let nft = |t: u16| (10 << 8) | t;
        let types: Vec<u16> = m.iter().map(|x| x.0).collect();
        assert_eq!(
            types,
            [0x10, nft(0), nft(3), nft(8), nft(6), nft(6), nft(6), 0x11],
            "begin, table, chain, flush, a rule per endpoint, end"
        );
        // The chain hooks prerouting at priority -100.
        let has = |i: usize, v: &[u8]| m[i].3.windows(v.len()).any(|w| w == v);
        assert!(has(2, b"services\0") && has(2, &(-100i32).to_be_bytes()));
        // Modulus 3, then 2, then none: endpoint i with probability 1/(n-i).
        let modulus = |i: usize, k: u32| {
            let mut want = vec![8, 0, 2, 0];
            want.extend_from_slice(&k.to_be_bytes());
            has(i, b"numgen\0") && has(i, &want)
        };
        assert!(modulus(4, 3) && modulus(5, 2) && !has(6, b"numgen\0"));
        for (i, (ip, port)) in [(4, ([10, 42, 1, 2], 8080u16)), (6, ([10, 42, 2, 3], 8081))] {
            assert!(has(i, &[10, 43, 0, 10]) && has(i, &80u16.to_be_bytes()));
            assert!(has(i, &ip) && has(i, &port.to_be_bytes()) && has(i, b"nat\0"));
        }
    }

    #[test]
    fn host_ports_go_to_their_pods_from_outside_and_from_the_node() {
        let r = HostPortRule {
            host_ip: None,
            port: 8080,
            proto: 6,
            pod_ip: Ipv4Addr::new(10, 42, 1, 2),
            pod_port: 80,
        };
        let Batch { bytes: b, .. } = hostports_batch("n1", &[r]);
        let m = messages(&b);
        let nft = |t: u16| (10 << 8) | t;
        let types: Vec<u16> = m.iter().map(|x| x.0).collect();
        assert_eq!(
            types,
            [
                0x10,
                nft(0),
                nft(3),
                nft(8),
                nft(0),
                nft(3),
                nft(8),
                nft(6),
                nft(6),
                0x11
            ],
            "begin, two chains made and emptied, the rule in each, end"
        );
        let has = |i: usize, v: &[u8]| m[i].3.windows(v.len()).any(|w| w == v);
        assert!(has(2, b"hostports\0") && has(2, &NF_INET_PRE_ROUTING.to_be_bytes()));
        assert!(has(5, b"hostports-local\0") && has(5, &NF_INET_LOCAL_OUT.to_be_bytes()));
        assert!(has(2, &(-99i32).to_be_bytes()), "after the Services' chain");
        for i in [7, 8] {
            assert!(has(i, b"fib\0") && has(i, &RTN_LOCAL.to_ne_bytes()));
            assert!(has(i, &8080u16.to_be_bytes()) && has(i, &[10, 42, 1, 2]));
            assert!(has(i, &80u16.to_be_bytes()) && has(i, b"nat\0"));
        }
        // The node's own connections to loopback are left alone.
        assert!(!has(7, &[127, 0, 0, 0]) && has(8, &[127, 0, 0, 0]));
    }

    /// The kernel takes the batch, again (it converges), and the table goes on removal.
    /// Needs root (CAP_NET_ADMIN): runs in a network namespace of its own.
    #[test]
    fn the_kernel_takes_the_batch_and_the_table_goes() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root for a network namespace and nftables; CI runs it as root"
        );
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let own = (Ipv4Addr::new(10, 42, 1, 0), 24);
            let peers = [(Ipv4Addr::new(10, 42, 2, 0), 24)];
            apply("t", own, &peers).expect("first write");
            apply("t", own, &[]).expect("rewrite with other peers");
            // The chain exists: flushing it is acknowledged.
            let flush = |table: &str| {
                let mut b = Batch::new();
                b.cmd(
                    NFT_MSG_DELRULE,
                    0,
                    &[str_attr(1, table), str_attr(2, CHAIN)],
                );
                b.end().send()
            };
            flush(&table_name("t")).expect("the chain is there");
            // The Service chain in the same table, written and rewritten.
            let d = Dnat {
                vip: Ipv4Addr::new(10, 43, 0, 10),
                port: 53,
                proto: 17,
                endpoints: vec![
                    (Ipv4Addr::new(10, 42, 1, 2), 5353),
                    (Ipv4Addr::new(10, 42, 2, 2), 5353),
                ],
            };
            apply_services("t", std::slice::from_ref(&d)).expect("service rules");
            apply_services("t", &[]).expect("no service rules");
            apply_services("t", &[d]).expect("service rules again");
            // Host ports: on every local address and on one, in both chains.
            let hp = [
                HostPortRule {
                    host_ip: None,
                    port: 8080,
                    proto: 6,
                    pod_ip: Ipv4Addr::new(10, 42, 1, 2),
                    pod_port: 80,
                },
                HostPortRule {
                    host_ip: Some(Ipv4Addr::new(192, 168, 1, 5)),
                    port: 5353,
                    proto: 17,
                    pod_ip: Ipv4Addr::new(10, 42, 1, 3),
                    pod_port: 53,
                },
            ];
            apply_hostports("t", &hp).expect("host port rules");
            apply_hostports("t", &[]).expect("no host port rules");
            remove("t").expect("removed");
            let gone = flush(&table_name("t")).expect_err("the table is gone");
            assert_eq!(gone.raw_os_error(), Some(libc::ENOENT), "{gone}");
            remove("t").expect("removing what is not there is fine");
        })
        .join()
        .expect("the test thread");
    }
}
