//! Cluster DNS for the node's pods, as CoreDNS's kubernetes plugin answers it, served by
//! the agent on the pod bridge's address (port 53, UDP and TCP), which pods get as their
//! nameserver:
//! - `<svc>.<ns>.svc.cluster.local`: A of the ClusterIP, or of every ready endpoint of a
//!   headless Service;
//! - `<hostname>.<svc>.<ns>.svc.cluster.local`: a StatefulSet pod behind a headless
//!   Service (its endpoint's hostname);
//! - `_<port>._<proto>.<svc>.<ns>.svc.cluster.local`: SRV for named ports;
//! - `<a-b-c-d>.<ns>.pod.cluster.local`: A of that pod address;
//! - other names in `cluster.local`: NXDOMAIN; names elsewhere go to the node's own
//!   resolvers (its `/etc/resolv.conf`) and their answer is relayed.
//!
//! `<svc>` and `<svc>.<ns>` resolve through the search path the pods' resolv.conf carries
//! (`<ns>.svc.cluster.local svc.cluster.local cluster.local`, `ndots:5`).
//!
//! Over UDP an answer larger than the client takes (512 bytes, or the payload size its
//! EDNS record offers) goes out truncated (TC set, no records), and the client asks again
//! over TCP, where answers take up to 64 KiB: a headless Service with many endpoints
//! resolves in full. Queries over TCP that are not the cluster's go upstream over TCP.
//! Messages are parsed and written with hickory-proto.

use crate::services::cluster::ClusterView;
use crate::state::Agent;
use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The cluster's DNS domain.
pub const DOMAIN: &str = "cluster.local";
const TTL: u32 = 5;

/// What a name is, for the cluster.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Records (possibly none: the name exists without records of that type).
    Records(Vec<(String, RData)>),
    /// No such name in the cluster domain.
    NxDomain,
    /// Not the cluster's name: ask upstream.
    Upstream,
}

fn dashed(ip: &str) -> String {
    ip.replace(['.', ':'], "-")
}

/// Answers `qname` (lowercase, without the final dot) for `qtype`. Pure.
pub fn answer(view: &ClusterView, qname: &str, qtype: RecordType) -> Answer {
    let name = qname.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = name
        .strip_suffix(DOMAIN)
        .filter(|r| r.is_empty() || r.ends_with('.'))
    else {
        return Answer::Upstream;
    };
    let labels: Vec<&str> = rest.trim_end_matches('.').split('.').collect();
    let fqdn = |n: &str| format!("{n}.");
    let a = |ip: Ipv4Addr| RData::A(A(ip));
    let want_a = matches!(qtype, RecordType::A | RecordType::ANY);
    match labels.as_slice() {
        // `<ip>.<ns>.pod.cluster.local`
        [ip, _ns, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
            Ok(ip) => Answer::Records(if want_a {
                vec![(fqdn(&name), a(ip))]
            } else {
                vec![]
            }),
            Err(_) => Answer::NxDomain,
        },
        [svc, ns, "svc"] => {
            let Some(s) = view.services.get(&(ns.to_string(), svc.to_string())) else {
                return Answer::NxDomain;
            };
            if !want_a {
                return Answer::Records(vec![]);
            }
            if let Some(ip) = crate::services::proxy::cluster_ip(s) {
                return Answer::Records(vec![(fqdn(&name), a(ip))]);
            }
            let ep = view.endpoints.get(&(ns.to_string(), svc.to_string()));
            let mut ips: Vec<Ipv4Addr> = ep
                .iter()
                .flat_map(|e| e.subsets.iter())
                .flat_map(|s| s.addresses.iter())
                .filter_map(|x| x.ip.parse().ok())
                .collect();
            ips.sort();
            ips.dedup();
            Answer::Records(ips.into_iter().map(|ip| (fqdn(&name), a(ip))).collect())
        }
        [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
            let key = (ns.to_string(), svc.to_string());
            let Some(s) = view.services.get(&key) else {
                return Answer::NxDomain;
            };
            let (port, proto) = (&port[1..], proto[1..].to_ascii_uppercase());
            let Some(sp) = s.spec.ports.iter().find(|p| {
                p.name.as_deref() == Some(port) && p.protocol.as_deref().unwrap_or("TCP") == proto
            }) else {
                return Answer::NxDomain;
            };
            if !matches!(qtype, RecordType::SRV | RecordType::ANY) {
                return Answer::Records(vec![]);
            }
            let base = format!("{svc}.{ns}.svc.{DOMAIN}");
            let srv = |target: &str, port: u16| {
                Name::from_ascii(format!("{target}."))
                    .ok()
                    .map(|t| (fqdn(&name), RData::SRV(SRV::new(0, 100, port, t))))
            };
            if crate::services::proxy::cluster_ip(s).is_some() {
                let p = sp.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
                return Answer::Records(srv(&base, p).into_iter().collect());
            }
            // Headless: one record per endpoint, under its own name.
            let mut out = Vec::new();
            for sub in view
                .endpoints
                .get(&key)
                .iter()
                .flat_map(|e| e.subsets.iter())
            {
                let Some(p) = sub
                    .ports
                    .iter()
                    .find(|p| p.name == sp.name)
                    .and_then(|p| p.port)
                    .and_then(|p| u16::try_from(p).ok())
                else {
                    continue;
                };
                for addr in &sub.addresses {
                    let host = addr.hostname.clone().unwrap_or_else(|| dashed(&addr.ip));
                    out.extend(srv(&format!("{host}.{base}"), p));
                }
            }
            Answer::Records(out)
        }
        [host, svc, ns, "svc"] => {
            let ep = view.endpoints.get(&(ns.to_string(), svc.to_string()));
            let ips: Vec<Ipv4Addr> = ep
                .iter()
                .flat_map(|e| e.subsets.iter())
                .flat_map(|s| s.addresses.iter())
                .filter(|x| x.hostname.as_deref() == Some(*host) || dashed(&x.ip) == *host)
                .filter_map(|x| x.ip.parse().ok())
                .collect();
            if ips.is_empty() {
                return Answer::NxDomain;
            }
            Answer::Records(if want_a {
                ips.into_iter().map(|ip| (fqdn(&name), a(ip))).collect()
            } else {
                vec![]
            })
        }
        // The zone itself and the intermediate names exist.
        [""] | ["svc"] | [_, "svc"] | ["pod"] | [_, "pod"] => Answer::Records(vec![]),
        _ => Answer::NxDomain,
    }
}

/// The response to one query message (parsed with hickory), or None to ask upstream.
pub fn respond(view: &ClusterView, query: &Message) -> Option<Message> {
    let q = query.queries().first()?;
    let qname = q.name().to_lowercase().to_ascii();
    let found = answer(view, &qname, q.query_type());
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .add_query(q.clone());
    if query.extensions().is_some() {
        // An EDNS query gets an EDNS answer, offering what this server takes.
        let mut e = Edns::new();
        e.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(e);
    }
    match found {
        Answer::Upstream => return None,
        Answer::NxDomain => {
            m.set_response_code(ResponseCode::NXDomain);
            m.add_name_server(soa());
        }
        Answer::Records(rs) if rs.is_empty() => {
            m.add_name_server(soa());
        }
        Answer::Records(rs) => {
            for (n, data) in rs {
                if let Ok(n) = Name::from_ascii(&n) {
                    m.add_answer(Record::from_rdata(n, TTL, data));
                }
            }
        }
    }
    Some(m)
}

/// The UDP payload this server offers in its EDNS records (the 2020 DNS flag day's).
const EDNS_PAYLOAD: u16 = 1232;

/// The largest UDP answer `query`'s sender takes: 512 bytes, or what its EDNS offers.
pub fn udp_limit(query: &Message) -> usize {
    query
        .extensions()
        .as_ref()
        .map_or(512, |e| usize::from(e.max_payload()).max(512))
}

/// `m` written for UDP: whole if it fits in `limit`, else without its records and with
/// TC set, which sends the client to TCP.
pub fn udp_bytes(mut m: Message, limit: usize) -> Option<Vec<u8>> {
    let out = m.to_vec().ok()?;
    if out.len() <= limit {
        return Some(out);
    }
    m.take_answers();
    m.take_name_servers();
    m.take_additionals();
    m.set_truncated(true);
    m.to_vec().ok()
}

fn soa() -> Record {
    let zone = Name::from_ascii(format!("{DOMAIN}.")).expect("valid zone");
    let ns = Name::from_ascii(format!("ns.dns.{DOMAIN}.")).expect("valid name");
    let mbox = Name::from_ascii(format!("hostmaster.{DOMAIN}.")).expect("valid name");
    Record::from_rdata(
        zone,
        TTL,
        RData::SOA(SOA::new(ns, mbox, 1, 7200, 1800, 86400, TTL)),
    )
}

/// A resolv.conf's nameservers, search domains and options.
pub fn parse_resolv_conf(text: &str) -> skiff_runtime::DnsConfig {
    let mut cfg = skiff_runtime::DnsConfig::default();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(ip) = w.next().and_then(|a| a.parse().ok()) {
                    cfg.nameservers.push(ip);
                }
            }
            Some("search") => cfg.searches.extend(w.map(String::from)),
            Some("options") => cfg.options.extend(w.map(String::from)),
            _ => {}
        }
    }
    cfg
}

/// The node's own resolver configuration (`/etc/resolv.conf`).
pub fn host_config() -> skiff_runtime::DnsConfig {
    parse_resolv_conf(&std::fs::read_to_string(RESOLV_CONF).unwrap_or_default())
}

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The node's resolvers, for names outside the cluster (not `own`, the cluster DNS).
pub fn upstreams(resolv_conf: &str, own: IpAddr) -> Vec<SocketAddr> {
    parse_resolv_conf(resolv_conf)
        .nameservers
        .into_iter()
        .filter(|ip| *ip != own)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The node's resolvers, read again only when `/etc/resolv.conf` changes.
#[derive(Default)]
struct Upstreams {
    stamp: Option<std::time::SystemTime>,
    list: Arc<Vec<SocketAddr>>,
}

impl Upstreams {
    fn current(&mut self, own: IpAddr) -> Arc<Vec<SocketAddr>> {
        let stamp = std::fs::metadata(RESOLV_CONF)
            .and_then(|m| m.modified())
            .ok();
        if stamp.is_none() || stamp != self.stamp {
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            self.list = Arc::new(upstreams(&text, own));
            self.stamp = stamp;
        }
        self.list.clone()
    }
}

/// Serves DNS on the pod bridge's address once the pod network exists.
pub async fn run(agent: Arc<Agent>) {
    let net = loop {
        if let Some(n) = agent.net() {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let addr = SocketAddr::new(IpAddr::V4(net.gateway()), 53);
    let frontend = crate::services::proxy::Frontend {
        addr,
        proto: crate::services::proxy::Proto::Udp,
    };
    let sock = loop {
        match crate::services::proxy::socket(frontend).and_then(|s| UdpSocket::from_std(s.into())) {
            Ok(s) => break Arc::new(s),
            Err(e) => {
                tracing::warn!(%addr, "cluster DNS cannot listen yet: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!(%addr, "cluster DNS serving");
    let tcp_front = crate::services::proxy::Frontend {
        addr,
        proto: crate::services::proxy::Proto::Tcp,
    };
    // The node's resolvers, one cache for both transports.
    let upstreams = Arc::new(std::sync::Mutex::new(Upstreams::default()));
    match crate::services::proxy::tcp_listener(tcp_front) {
        Ok(l) => {
            let (agent, ups) = (agent.clone(), upstreams.clone());
            tokio::spawn(crate::services::proxy::accept_each(
                l,
                "dns",
                move |conn, _| {
                    let (agent, ups) = (agent.clone(), ups.clone());
                    async move {
                        serve_tcp(
                            conn,
                            || agent.cluster.borrow().clone(),
                            || ups.lock().unwrap().current(addr.ip()),
                        )
                        .await
                    }
                },
            ));
        }
        Err(e) => tracing::warn!(%addr, "cluster DNS over TCP: {e}"),
    }
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, client)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let view = agent.cluster.borrow().clone();
        match respond(&view, &query) {
            Some(m) => {
                if let Some(out) = udp_bytes(m, udp_limit(&query)) {
                    let _ = sock.send_to(&out, client).await;
                }
            }
            None => {
                let (sock, bytes, ups) = (
                    sock.clone(),
                    buf[..n].to_vec(),
                    upstreams.lock().unwrap().current(addr.ip()),
                );
                tokio::spawn(async move {
                    let out = forward(&bytes, &ups, false)
                        .await
                        .unwrap_or_else(|| servfail(&query));
                    let _ = sock.send_to(&out, client).await;
                });
            }
        }
    }
}

/// A SERVFAIL answer to `query`.
fn servfail(query: &Message) -> Vec<u8> {
    let mut m = Message::error_msg(query.id(), query.op_code(), ResponseCode::ServFail);
    m.add_queries(query.queries().to_vec());
    m.to_vec().unwrap_or_default()
}

/// How long a TCP client may stay silent before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Reads one length-prefixed DNS message (None at EOF, on silence, or on a bad length).
async fn read_framed(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let len = usize::from(u16::from_be_bytes(len));
    if len < 12 {
        return None;
    }
    let mut msg = vec![0u8; len];
    tokio::time::timeout(TCP_IDLE, conn.read_exact(&mut msg))
        .await
        .ok()?
        .ok()?;
    Some(msg)
}

async fn write_framed(conn: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::Error::other("answer over 64 KiB"))?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    conn.write_all(&out).await
}

/// One DNS-over-TCP connection: length-prefixed queries, answered in order, until the
/// client closes or stays silent for [`TCP_IDLE`].
pub async fn serve_tcp(
    mut conn: TcpStream,
    view: impl Fn() -> Arc<ClusterView>,
    upstreams: impl Fn() -> Arc<Vec<SocketAddr>>,
) -> std::io::Result<()> {
    while let Some(bytes) = read_framed(&mut conn).await {
        let Ok(query) = Message::from_vec(&bytes) else {
            return Ok(());
        };
        let out = match respond(&view(), &query) {
            Some(m) => m.to_vec().unwrap_or_else(|_| servfail(&query)),
            None => forward(&bytes, &upstreams(), true)
                .await
                .unwrap_or_else(|| servfail(&query)),
        };
        write_framed(&mut conn, &out).await?;
    }
    Ok(())
}

/// Asks each upstream in turn (2 s each), over TCP or UDP; the first answer is relayed
/// as it came.
async fn forward(query: &[u8], ups: &[SocketAddr], tcp: bool) -> Option<Vec<u8>> {
    for &up in ups {
        let ask = async {
            if tcp {
                let mut c = TcpStream::connect(up).await.ok()?;
                write_framed(&mut c, query).await.ok()?;
                read_framed(&mut c).await
            } else {
                let s = crate::services::proxy::udp_to(up).await.ok()?;
                s.send(query).await.ok()?;
                let mut buf = vec![0u8; 4096];
                let n = s.recv(&mut buf).await.ok()?;
                buf.truncate(n);
                Some(buf)
            }
        };
        if let Ok(Some(a)) = tokio::time::timeout(Duration::from_secs(2), ask).await {
            return Some(a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::{
        EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort,
    };

    fn view() -> ClusterView {
        let mut v = ClusterView::default();
        let svc = |name: &str, ip: &str| {
            let mut s = Service::default();
            s.metadata.name = Some(name.into());
            s.metadata.namespace = Some("default".into());
            s.spec.cluster_ip = Some(ip.into());
            s.spec.ports = vec![ServicePort {
                name: Some("http".into()),
                port: Some(80),
                protocol: Some("TCP".into()),
                ..Default::default()
            }];
            s
        };
        v.services
            .insert(("default".into(), "web".into()), svc("web", "10.43.0.10"));
        v.services
            .insert(("default".into(), "db".into()), svc("db", "None"));
        v.endpoints.insert(
            ("default".into(), "db".into()),
            Endpoints {
                subsets: vec![EndpointSubset {
                    addresses: vec![
                        EndpointAddress {
                            ip: "10.42.1.4".into(),
                            hostname: Some("db-0".into()),
                            ..Default::default()
                        },
                        EndpointAddress {
                            ip: "10.42.0.7".into(),
                            hostname: Some("db-1".into()),
                            ..Default::default()
                        },
                    ],
                    ports: vec![EndpointPort {
                        name: Some("http".into()),
                        port: Some(5432),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        v
    }

    fn ips(a: Answer) -> Vec<String> {
        match a {
            Answer::Records(rs) => rs.into_iter().map(|(_, d)| d.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn services_pods_and_ports_resolve() {
        let v = view();
        assert_eq!(
            ips(answer(&v, "web.default.svc.cluster.local.", RecordType::A)),
            ["10.43.0.10"]
        );
        assert_eq!(
            ips(answer(&v, "db.default.svc.cluster.local", RecordType::A)),
            ["10.42.0.7", "10.42.1.4"],
            "a headless service answers with its endpoints"
        );
        assert_eq!(
            ips(answer(
                &v,
                "db-0.db.default.svc.cluster.local",
                RecordType::A
            )),
            ["10.42.1.4"]
        );
        assert_eq!(
            ips(answer(
                &v,
                "_http._tcp.web.default.svc.cluster.local",
                RecordType::SRV
            )),
            ["0 100 80 web.default.svc.cluster.local."]
        );
        let srv = ips(answer(
            &v,
            "_http._tcp.db.default.svc.cluster.local",
            RecordType::SRV,
        ));
        assert!(srv.contains(&"0 100 5432 db-0.db.default.svc.cluster.local.".to_string()));
        assert_eq!(
            ips(answer(
                &v,
                "10-42-0-9.default.pod.cluster.local",
                RecordType::A
            )),
            ["10.42.0.9"]
        );
        assert!(ips(answer(
            &v,
            "web.default.svc.cluster.local",
            RecordType::AAAA
        ))
        .is_empty());
        assert_eq!(
            answer(&v, "nope.default.svc.cluster.local", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            answer(
                &v,
                "web.default.svc.cluster.local.default.svc.cluster.local",
                RecordType::A
            ),
            Answer::NxDomain
        );
        assert_eq!(answer(&v, "example.com", RecordType::A), Answer::Upstream);
        assert_eq!(
            answer(&v, "notcluster.local", RecordType::A),
            Answer::Upstream
        );
    }

    #[test]
    fn responses_round_trip_through_the_wire_format() {
        let v = view();
        let mut q = Message::new();
        q.set_id(77)
            .set_recursion_desired(true)
            .add_query(hickory_proto::op::Query::query(
                Name::from_ascii("web.default.svc.cluster.local.").unwrap(),
                RecordType::A,
            ));
        let bytes = q.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        let r = respond(&v, &parsed).unwrap();
        let back = Message::from_vec(&r.to_vec().unwrap()).unwrap();
        assert_eq!(back.id(), 77);
        assert_eq!(back.answers().len(), 1);
        assert_eq!(back.answers()[0].data().to_string(), "10.43.0.10");
        assert_eq!(
            upstreams(
                "nameserver 10.0.0.2\nsearch x\nnameserver 10.42.0.1\n",
                "10.42.0.1".parse().unwrap()
            ),
            vec!["10.0.0.2:53".parse::<SocketAddr>().unwrap()]
        );
    }

    /// The view with a headless Service `many` of `n` ready endpoints.
    fn many(n: usize) -> ClusterView {
        let mut v = view();
        let mut s = v.services[&("default".into(), "db".into())].clone();
        s.metadata.name = Some("many".into());
        v.services.insert(("default".into(), "many".into()), s);
        let addresses = (0..n)
            .map(|i| EndpointAddress {
                ip: format!("10.42.{}.{}", i / 200, 2 + i % 200),
                ..Default::default()
            })
            .collect();
        v.endpoints.insert(
            ("default".into(), "many".into()),
            Endpoints {
                subsets: vec![EndpointSubset {
                    addresses,
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        v
    }

    fn query(id: u16, name: &str, edns: Option<u16>) -> Message {
        let mut q = Message::new();
        q.set_id(id)
            .set_recursion_desired(true)
            .add_query(hickory_proto::op::Query::query(
                Name::from_ascii(name).unwrap(),
                RecordType::A,
            ));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            q.set_edns(e);
        }
        q
    }

    #[test]
    fn udp_answers_too_big_for_the_client_are_truncated() {
        let v = many(60);
        let name = "many.default.svc.cluster.local.";
        // 60 A records do not fit in 512 bytes: TC, no records.
        let q = query(1, name, None);
        assert_eq!(udp_limit(&q), 512);
        let out = udp_bytes(respond(&v, &q).unwrap(), udp_limit(&q)).unwrap();
        assert!(out.len() <= 512);
        let m = Message::from_vec(&out).unwrap();
        assert!(m.truncated(), "TC sends the client to TCP");
        assert!(m.answers().is_empty());
        assert_eq!(m.queries().len(), 1, "the question stays");
        // A client offering 4096 bytes over EDNS takes them all, and gets EDNS back.
        let q = query(2, name, Some(4096));
        assert_eq!(udp_limit(&q), 4096);
        let out = udp_bytes(respond(&v, &q).unwrap(), udp_limit(&q)).unwrap();
        let m = Message::from_vec(&out).unwrap();
        assert!(!m.truncated());
        assert_eq!(m.answers().len(), 60);
        assert_eq!(
            m.extensions().as_ref().map(|e| e.max_payload()),
            Some(EDNS_PAYLOAD)
        );
        // An offer below 512 still gets 512; small answers are untouched.
        let q = query(3, "web.default.svc.cluster.local.", Some(100));
        assert_eq!(udp_limit(&q), 512);
        let out = udp_bytes(respond(&v, &q).unwrap(), 512).unwrap();
        assert_eq!(Message::from_vec(&out).unwrap().answers().len(), 1);
    }

    #[tokio::test]
    async fn tcp_answers_in_full_and_in_order() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let v = Arc::new(many(300));
        tokio::spawn(async move {
            let (conn, _) = l.accept().await.unwrap();
            serve_tcp(conn, move || v.clone(), || Arc::new(Vec::new())).await
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Three queries on one connection: 300 records, NXDOMAIN, and an outside name
        // with no upstream to ask (SERVFAIL).
        for (id, name) in [
            (7, "many.default.svc.cluster.local."),
            (8, "nope.default.svc.cluster.local."),
            (9, "example.org."),
        ] {
            write_framed(&mut c, &query(id, name, None).to_vec().unwrap())
                .await
                .unwrap();
        }
        let read = |b: Option<Vec<u8>>| Message::from_vec(&b.expect("an answer")).unwrap();
        let m = read(read_framed(&mut c).await);
        assert_eq!((m.id(), m.answers().len(), m.truncated()), (7, 300, false));
        let m = read(read_framed(&mut c).await);
        assert_eq!((m.id(), m.response_code()), (8, ResponseCode::NXDomain));
        let m = read(read_framed(&mut c).await);
        assert_eq!((m.id(), m.response_code()), (9, ResponseCode::ServFail));
    }
}
