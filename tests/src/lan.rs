//! Several hosts on one machine: each agent in a network namespace of its own with its own
//! address, all joined by a bridge "LAN" in a namespace where the coordinator (and the test's
//! client) sit. No namespace has a route off the machine: cluster addresses stay here.
//!
//! The LAN is `172.31.0.0/24`: the coordinator `.1`, node i `.10+i`. A test may put some
//! nodes on other subnets (`172.31.s.0/24`, node i at `172.31.s.(10+i)`): each is a bridge
//! of its own, and the LAN namespace (`172.31.s.1` on each) routes between them, so those
//! nodes share no link with the others.

use crate::node::{eventually, AgentProc, Node};
use crate::{err, out, Coordinator, NetNs, TempDir};
use std::process::Command;

/// One host of a [`Lan`]: its node's `role` label, its subnet and its agent's own flags.
#[derive(Clone, Copy, Default)]
pub struct Host<'a> {
    pub role: &'a str,
    pub subnet: u8,
    pub flags: &'a [&'a str],
}

pub struct Lan {
    /// Each node's address.
    pub ips: Vec<String>,
    // Drop order: processes first, then the namespaces.
    pub agents: Vec<AgentProc>,
    pub c: Coordinator,
    pub nodes: Vec<Node>,
    pub hosts: Vec<NetNs>,
    _dir: TempDir,
    pub lan: NetNs,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The LAN address of node `i` (on subnet 0).
pub fn node_ip(i: usize) -> String {
    format!("172.31.0.{}", 10 + i)
}

pub const COORDINATOR_IP: &str = "172.31.0.1";

/// A pod named `client` on the node labelled `role=client`, idle: where tests and the
/// network benchmark run `probe` from.
pub fn client_pod() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeSelector: {{role: client}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {}
    imagePullPolicy: Never
    command: ["sleep", "3600"]
"#,
        crate::node::IMAGE
    )
}

impl Lan {
    /// A coordinator (with `coord_flags`) and `n` agents, each labelled `role=<roles[i]>`,
    /// all on one subnet.
    pub fn new(tag: &str, roles: &[&str], coord_flags: &[&str]) -> Lan {
        let hosts: Vec<Host> = roles
            .iter()
            .map(|role| Host {
                role,
                ..Host::default()
            })
            .collect();
        Lan::with_hosts(tag, &hosts, coord_flags)
    }

    /// A coordinator (with `coord_flags`, on subnet 0) and one agent per host.
    pub fn with_hosts(tag: &str, specs: &[Host], coord_flags: &[&str]) -> Lan {
        let lan = NetNs::new(&format!("{tag}-lan"));
        let subnets: std::collections::BTreeSet<u8> =
            specs.iter().map(|h| h.subnet).chain([0]).collect();
        for s in &subnets {
            let br = format!("br{s}");
            ip(&["-n", &lan.name, "link", "add", &br, "type", "bridge"]);
            let addr = format!("172.31.{s}.1/24");
            ip(&["-n", &lan.name, "addr", "add", &addr, "dev", &br]);
            ip(&["-n", &lan.name, "link", "set", &br, "up"]);
        }
        if subnets.len() > 1 {
            let o = crate::command_in(Some(&lan.name), "sh")
                .args(["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
                .output()
                .expect("sysctl");
            assert!(o.status.success(), "{}", err(&o));
        }
        let mut hosts = Vec::new();
        let mut ips = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let h = NetNs::new(&format!("{tag}-h{i}"));
            let (a, b) = (format!("lan{i}"), format!("eth-{i}"));
            let addr = format!("172.31.{}.{}", spec.subnet, 10 + i);
            let br = format!("br{}", spec.subnet);
            ip(&[
                "-n", &lan.name, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns",
                &h.name,
            ]);
            ip(&["-n", &lan.name, "link", "set", &a, "master", &br, "up"]);
            ip(&["-n", &h.name, "link", "set", &b, "name", "eth0"]);
            ip(&[
                "-n",
                &h.name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &h.name, "link", "set", "eth0", "up"]);
            if subnets.len() > 1 {
                // The other subnets through the LAN namespace (and nothing beyond them).
                let gw = format!("172.31.{}.1", spec.subnet);
                ip(&["-n", &h.name, "route", "add", "172.31.0.0/16", "via", &gw]);
            }
            hosts.push(h);
            ips.push(addr);
        }
        let dir = TempDir::new(&format!("{tag}-coord"));
        let mut flags = vec!["--advertise-address", COORDINATOR_IP];
        flags.extend_from_slice(coord_flags);
        let port = crate::free_port();
        let c = Coordinator::start_listening(
            dir.path(),
            &format!("0.0.0.0:{port}"),
            Some(&lan.name),
            &flags,
        );
        let server = format!("{COORDINATOR_IP}:{port}");
        let nodes: Vec<Node> = (0..specs.len())
            .map(|i| Node::new(&format!("{tag}{i}")))
            .collect();
        let agents = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let labels = format!("role={}", specs[i].role);
                let mut flags = vec![
                    "--heartbeat-interval",
                    "500ms",
                    "--restart-backoff",
                    "1s",
                    "--labels",
                    &labels,
                ];
                flags.extend_from_slice(specs[i].flags);
                AgentProc::start(n, &server, &c.node_token(), &flags, Some(&hosts[i].name))
            })
            .collect();
        let l = Lan {
            ips,
            agents,
            c,
            nodes,
            hosts,
            _dir: dir,
            lan,
        };
        eventually(40, "every node Ready", || {
            let o = l.c.skiff(&["get", "nodes"]);
            let s = out(&o);
            if s.matches(" Ready").count() >= specs.len() {
                Ok(())
            } else {
                Err(format!("{s}{}", err(&o)))
            }
        });
        l
    }

    /// Cuts (or restores) node `i`'s link to the LAN.
    pub fn set_link(&self, i: usize, up: bool) {
        ip(&[
            "-n",
            &self.lan.name,
            "link",
            "set",
            &format!("lan{i}"),
            if up { "up" } else { "down" },
        ]);
    }

    /// Runs busybox in the LAN namespace (a host on the LAN, not a node).
    pub fn on_lan(&self, args: &[&str]) -> std::process::Output {
        crate::command_in(Some(&self.lan.name), "busybox")
            .args(args)
            .output()
            .expect("busybox")
    }
}

/// A CA and a serving certificate for `host` signed by it: (CA DER, chain PEM, key PEM).
pub fn tls_cert(host: &str) -> (Vec<u8>, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::from_ca_cert_der(ca_cert.der(), ca_key).expect("issuer");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec![host.to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    (ca_cert.der().to_vec(), leaf.pem(), key.serialize_pem())
}

impl Lan {
    /// An HTTPS GET of `/` from the LAN (a host that is not a node) to `addr`, with SNI
    /// and Host `host`, trusting only `ca` (DER): the answer's first body line.
    pub fn https_get(&self, addr: &str, host: &str, ca: &[u8]) -> Result<String, String> {
        use std::io::{Read, Write};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
            .map_err(|e| e.to_string())?;
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let (addr, host) = (addr.to_string(), host.to_string());
        let path = self.lan.path();
        // Sockets belong to the namespace of the thread that opens them.
        std::thread::spawn(move || {
            crate::enter_netns(&path);
            let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name)
                .map_err(|e| e.to_string())?;
            let tcp = std::net::TcpStream::connect(&addr).map_err(|e| format!("{addr}: {e}"))?;
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            write!(
                s,
                "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .map_err(|e| format!("TLS: {e}"))?;
            let mut got = Vec::new();
            if let Err(e) = s.read_to_end(&mut got) {
                // A peer that closes without close_notify: the answer is all there.
                if got.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
                    return Err(format!("TLS: {e}"));
                }
            }
            let text = String::from_utf8_lossy(&got);
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            Ok(body.lines().next().unwrap_or("").to_string())
        })
        .join()
        .map_err(|_| "the TLS client thread panicked".to_string())?
    }

    /// An HTTP server on the LAN's own address (a host outside the cluster, with no route
    /// to the pod network) that answers every request with the client address it saw.
    /// Serves until the test ends; returns its port.
    pub fn whoami_on_lan(&self) -> u16 {
        use std::io::{Read, Write};
        let path = self.lan.path();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            crate::enter_netns(&path);
            let l = std::net::TcpListener::bind((COORDINATOR_IP, 0)).expect("bind");
            tx.send(l.local_addr().expect("address").port())
                .expect("port");
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let (mut head, mut buf) = (Vec::new(), [0u8; 1024]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                let peer = c
                    .peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                let _ = write!(c, "HTTP/1.0 200 OK\r\n\r\n{peer}\n");
            }
        });
        rx.recv().expect("the LAN server's port")
    }

    /// Asks node `i`'s cluster DNS (at `gateway`, its pod bridge's address) for the A
    /// records of `name` over TCP, from the node's namespace: the addresses answered.
    pub fn dns_over_tcp(&self, i: usize, gateway: &str, name: &str) -> Result<Vec<String>, String> {
        use std::io::{Read, Write};
        // A query: id 0x5a5a, RD, one question (name, A, IN).
        let mut q = vec![0x5a, 0x5a, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let ns = format!("/run/netns/{}", self.hosts[i].name);
        let addr = format!("{gateway}:53");
        std::thread::spawn(move || -> Result<Vec<String>, String> {
            crate::enter_netns(std::path::Path::new(&ns));
            let e = |x: std::io::Error| x.to_string();
            let mut c = std::net::TcpStream::connect(&addr).map_err(e)?;
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .map_err(e)?;
            let mut framed = (q.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&q);
            c.write_all(&framed).map_err(e)?;
            let mut len = [0u8; 2];
            c.read_exact(&mut len).map_err(e)?;
            let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
            c.read_exact(&mut m).map_err(e)?;
            if m.len() < 12 || m[..2] != [0x5a, 0x5a] || m[3] & 0xf != 0 {
                return Err(format!("bad answer {m:?}"));
            }
            // Skip the question (as sent), then read each answer's A data.
            let count = u16::from_be_bytes([m[6], m[7]]);
            let mut at = q.len();
            let mut out = Vec::new();
            for _ in 0..count {
                // Name: a pointer (2 bytes) or labels ending in 0.
                while at < m.len() && m[at] != 0 && m[at] & 0xc0 != 0xc0 {
                    at += 1 + m[at] as usize;
                }
                at += if m.get(at).is_some_and(|b| b & 0xc0 == 0xc0) {
                    2
                } else {
                    1
                };
                let rdlen = u16::from_be_bytes([m[at + 8], m[at + 9]]) as usize;
                let data = &m[at + 10..at + 10 + rdlen];
                if rdlen == 4 {
                    out.push(format!("{}.{}.{}.{}", data[0], data[1], data[2], data[3]));
                }
                at += 10 + rdlen;
            }
            Ok(out)
        })
        .join()
        .map_err(|_| "the DNS thread panicked".to_string())?
    }
}
