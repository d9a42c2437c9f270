//! The ingress controller's work, in the agent: every node serves every Ingress of its
//! class on its HTTP and HTTPS ports (default 80 and 443), as k3s' bundled controller
//! does, so a client may use any node.
//!
//! A request's Host picks the rules (an exact host, then the longest matching wildcard
//! `*.example.com`, then the rules without a host), its path picks the longest matching
//! path among them (Exact before Prefix at equal length), and else the default backend
//! answers; with none, 404. The backend Service's ready endpoints take the requests in
//! turn; the agent connects to the endpoint itself (not through the Service's virtual
//! IP), adds the `X-Forwarded-*` headers and relays the request and its answer, protocol
//! upgrades (WebSocket) included. HTTPS is terminated with the certificate of the TLS
//! Secret whose hosts match the client's SNI.
//!
//! The listeners exist only while some Ingress is served, so a node without Ingresses
//! holds neither port. The routing ([`Router`]) is a pure function of the cluster view.

use crate::services::cluster::{ClusterView, Name, TlsPair};
use crate::services::proxy::{endpoints_for, rotated, Frontend, Proto};
use crate::state::Agent;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use skiff_api::networking::{Ingress, IngressBackend};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Which requests a rule takes by their Host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostMatch {
    /// `www.example.com`.
    Exact(String),
    /// `*.example.com`, kept as `.example.com`: one more label in front.
    Wildcard(String),
    /// A rule without a host.
    Any,
}

impl HostMatch {
    fn of(host: Option<&str>) -> HostMatch {
        match host.map(str::to_ascii_lowercase) {
            None => HostMatch::Any,
            Some(h) if h.is_empty() => HostMatch::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Wildcard(suffix.to_string()),
                None => HostMatch::Exact(h),
            },
        }
    }

    /// How well it matches `host` (higher is more specific), or `None`.
    fn rank(&self, host: &str) -> Option<usize> {
        match self {
            HostMatch::Exact(h) => (h == host).then_some(usize::MAX),
            HostMatch::Wildcard(suffix) => {
                let label = host.strip_suffix(suffix.as_str())?;
                (!label.is_empty() && !label.contains('.')).then_some(suffix.len())
            }
            HostMatch::Any => Some(0),
        }
    }
}

/// A Service port by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

/// Where matched requests go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
}

impl Backend {
    fn of(namespace: &str, b: &IngressBackend) -> Option<Backend> {
        let s = b.service.as_ref()?;
        let port = match (&s.port.number, &s.port.name) {
            (Some(n), _) => PortRef::Number(*n),
            (None, Some(n)) => PortRef::Name(n.clone()),
            (None, None) => return None,
        };
        Some(Backend {
            namespace: namespace.to_string(),
            service: s.name.clone(),
            port,
        })
    }

    /// The ready endpoints of the Service port it names.
    pub fn endpoints(&self, view: &ClusterView) -> Vec<SocketAddr> {
        let key = (self.namespace.clone(), self.service.clone());
        let Some(svc) = view.services.get(&key) else {
            return Vec::new();
        };
        let port = svc.spec.ports.iter().find(|p| match &self.port {
            PortRef::Number(n) => p.port == Some(*n),
            PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
        });
        match port {
            Some(p) if p.protocol.as_deref().unwrap_or("TCP") == "TCP" => {
                endpoints_for(p, view.endpoints.get(&key))
            }
            _ => Vec::new(),
        }
    }
}

/// One path rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathRule {
    /// Without a trailing `/` for prefixes (`/` itself is empty).
    path: String,
    exact: bool,
    backend: Backend,
}

impl PathRule {
    fn matches(&self, path: &str) -> bool {
        if self.exact {
            return path == self.path;
        }
        // Prefix: whole path elements (`/foo` takes `/foo` and `/foo/bar`, not `/foobar`).
        match path.strip_prefix(self.path.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// Every Ingress of one class, merged into one routing table. Pure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Router {
    hosts: BTreeMap<HostMatch, Vec<PathRule>>,
    default: Option<Backend>,
    /// Certificates by the hosts they serve (`Any`: a TLS entry without hosts), in the
    /// order the Ingresses give them.
    certs: Vec<(HostMatch, Name)>,
}

/// Whether an Ingress is this agent's: its class, or no class at all.
pub fn served(i: &Ingress, class: &str) -> bool {
    i.class().is_none_or(|c| c == class)
}

impl Router {
    /// The routes of every Ingress of `class` (or without a class) in the view. Where two
    /// Ingresses give the same host and path, or both a default backend, the older wins.
    pub fn new(view: &ClusterView, class: &str) -> Router {
        let mut ingresses: Vec<(&Name, &Ingress)> = view
            .ingresses
            .iter()
            .filter(|(_, i)| served(i, class))
            .collect();
        ingresses.sort_by_key(|(k, i)| (i.metadata.creation_timestamp.clone(), (*k).clone()));
        let mut r = Router::default();
        for ((ns, _), ing) in ingresses {
            if r.default.is_none() {
                r.default = ing
                    .spec
                    .default_backend
                    .as_ref()
                    .and_then(|b| Backend::of(ns, b));
            }
            for rule in &ing.spec.rules {
                let Some(http) = &rule.http else { continue };
                let rules = r
                    .hosts
                    .entry(HostMatch::of(rule.host.as_deref()))
                    .or_default();
                for p in &http.paths {
                    let Some(backend) = Backend::of(ns, &p.backend) else {
                        continue;
                    };
                    let exact = p.path_type.as_deref() == Some("Exact");
                    let raw = p.path.as_deref().unwrap_or("/");
                    let path = if exact {
                        raw.to_string()
                    } else {
                        raw.trim_end_matches('/').to_string()
                    };
                    if !rules.iter().any(|x| x.path == path && x.exact == exact) {
                        rules.push(PathRule {
                            path,
                            exact,
                            backend,
                        });
                    }
                }
            }
            for t in &ing.spec.tls {
                let Some(secret) = &t.secret_name else {
                    continue;
                };
                let name = (ns.clone(), secret.clone());
                if t.hosts.is_empty() {
                    r.certs.push((HostMatch::Any, name.clone()));
                }
                for h in &t.hosts {
                    r.certs.push((HostMatch::of(Some(h)), name.clone()));
                }
            }
        }
        r
    }

    /// Whether there is nothing to serve.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.default.is_none()
    }

    /// The backend for a request to `host` (lower case, without a port) and `path`.
    pub fn route(&self, host: &str, path: &str) -> Option<&Backend> {
        let rules = self
            .hosts
            .iter()
            .filter_map(|(m, rules)| m.rank(host).map(|r| (r, rules)))
            .max_by_key(|(r, _)| *r)
            .map(|(_, rules)| rules);
        let hit = rules.and_then(|rules| {
            rules
                .iter()
                .filter(|p| p.matches(path))
                .max_by_key(|p| (p.path.len(), p.exact))
        });
        hit.map(|p| &p.backend).or(self.default.as_ref())
    }

    /// The Secret whose certificate serves `sni`: the most specific host match, else a
    /// TLS entry without hosts; without SNI (a client that dialled an address), the first.
    pub fn cert_for(&self, sni: Option<&str>) -> Option<&Name> {
        let Some(sni) = sni else {
            return self.certs.first().map(|(_, n)| n);
        };
        let sni = sni.to_ascii_lowercase();
        self.certs
            .iter()
            .filter_map(|(m, n)| m.rank(&sni).map(|r| (r, n)))
            .fold(None, |best: Option<(usize, &Name)>, (r, n)| match best {
                Some((b, _)) if b >= r => best,
                _ => Some((r, n)),
            })
            .map(|(_, n)| n)
    }
}

/// What the servers read on every request; replaced whole when the view changes.
struct Routing {
    router: Router,
    view: Arc<ClusterView>,
    certs: HashMap<Name, Arc<rustls::sign::CertifiedKey>>,
}

struct Shared {
    routing: Mutex<Arc<Routing>>,
    /// Per backend, the next endpoint in turn.
    turns: Mutex<HashMap<Backend, Arc<AtomicUsize>>>,
}

impl Shared {
    fn routing(&self) -> Arc<Routing> {
        self.routing.lock().unwrap().clone()
    }
}

/// Why a TLS Secret cannot serve.
#[derive(Debug, thiserror::Error)]
enum BadTlsSecret {
    #[error("tls.crt: {0}")]
    Cert(std::io::Error),
    #[error("tls.crt: no PEM certificate")]
    NoCert,
    #[error("tls.key: {0}")]
    Key(std::io::Error),
    #[error("tls.key: no PEM private key")]
    NoKey,
    #[error("tls.key: {0}")]
    KeyType(rustls::Error),
}

/// Parses a TLS Secret's PEM certificate chain and key.
fn certified_key(pair: &TlsPair) -> Result<rustls::sign::CertifiedKey, BadTlsSecret> {
    let certs = rustls_pemfile::certs(&mut pair.cert.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(BadTlsSecret::Cert)?;
    if certs.is_empty() {
        return Err(BadTlsSecret::NoCert);
    }
    let key = rustls_pemfile::private_key(&mut pair.key.as_slice())
        .map_err(BadTlsSecret::Key)?
        .ok_or(BadTlsSecret::NoKey)?;
    let key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(BadTlsSecret::KeyType)?;
    Ok(rustls::sign::CertifiedKey::new(certs, key))
}

#[derive(Debug)]
struct Resolver(Arc<Shared>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ingress routing")
    }
}

impl rustls::server::ResolvesServerCert for Resolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let r = self.0.routing();
        let name = r.router.cert_for(hello.server_name())?;
        r.certs.get(name).cloned()
    }
}

fn tls_acceptor(shared: Arc<Shared>) -> Result<tokio_rustls::TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(shared)));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Follows the cluster view: routes, certificates, listeners.
pub async fn run(agent: Arc<Agent>) {
    let class = agent.cfg.ingress_class.clone();
    let ports = (agent.cfg.ingress_http_port, agent.cfg.ingress_https_port);
    if ports == (0, 0) {
        return;
    }
    let shared = Arc::new(Shared {
        routing: Mutex::new(Arc::new(Routing {
            router: Router::default(),
            view: Arc::default(),
            certs: HashMap::new(),
        })),
        turns: Mutex::default(),
    });
    let acceptor = match tls_acceptor(shared.clone()) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("ingress: TLS set-up: {e}");
            return;
        }
    };
    let mut rx = agent.cluster.subscribe();
    let mut listeners: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut certs: HashMap<Name, (TlsPair, Arc<rustls::sign::CertifiedKey>)> = HashMap::new();
    loop {
        let view = rx.borrow_and_update().clone();
        let router = Router::new(&view, &class);
        certs.retain(|k, (pair, _)| view.tls.get(k) == Some(pair));
        for (k, pair) in &view.tls {
            if certs.contains_key(k) {
                continue;
            }
            match certified_key(pair) {
                Ok(c) => {
                    certs.insert(k.clone(), (pair.clone(), Arc::new(c)));
                }
                Err(e) => {
                    tracing::warn!(secret = %format!("{}/{}", k.0, k.1), "ingress certificate: {e}")
                }
            }
        }
        let serving = !router.is_empty();
        *shared.routing.lock().unwrap() = Arc::new(Routing {
            router,
            view,
            certs: certs
                .iter()
                .map(|(k, (_, c))| (k.clone(), c.clone()))
                .collect(),
        });
        listeners.retain(|t| !t.is_finished());
        if !serving {
            for t in listeners.drain(..) {
                t.abort();
            }
        } else if listeners.is_empty() {
            for (port, tls) in [(ports.0, false), (ports.1, true)] {
                if port == 0 {
                    continue;
                }
                let tls = tls.then(|| acceptor.clone());
                let f = Frontend {
                    addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                    proto: Proto::Tcp,
                };
                match crate::services::proxy::tcp_listener(f) {
                    Ok(l) => listeners.push(tokio::spawn(accept(l, shared.clone(), tls))),
                    Err(e) => tracing::warn!(port, "ingress: cannot listen: {e}"),
                }
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Serves one ingress port: HTTP, or HTTPS with `tls`.
async fn accept(l: TcpListener, shared: Arc<Shared>, tls: Option<tokio_rustls::TlsAcceptor>) {
    crate::services::proxy::accept_each(l, "ingress", move |conn, peer| {
        let (shared, tls) = (shared.clone(), tls.clone());
        async move {
            match tls {
                None => serve_conn(conn, peer, shared, false).await,
                Some(acc) => match tokio::time::timeout(HEAD_TIMEOUT, acc.accept(conn)).await {
                    Ok(Ok(s)) => serve_conn(s, peer, shared, true).await,
                    Ok(Err(e)) => Err(ConnError::Tls(e)),
                    Err(_) => Err(ConnError::TlsTimeout),
                },
            }
        }
    })
    .await
}

const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

async fn serve_conn<S>(
    io: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    https: bool,
) -> Result<(), ConnError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(req, peer, &shared, https).await) }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await
        .map_err(ConnError::Http)
}

/// Why an ingress connection ended badly (logged, at debug).
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("TLS handshake timed out")]
    TlsTimeout,
    #[error(transparent)]
    Http(hyper::Error),
}

type Body = BoxBody<Bytes, hyper::Error>;

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The request's host: lower case, without the port or a final dot.
fn request_host(req: &Request<Incoming>) -> String {
    let raw = match req.uri().host() {
        Some(h) => h,
        None => {
            let h = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match h.strip_prefix('[') {
                // An IPv6 literal keeps its brackets.
                Some(rest) => rest.split(']').next().map_or(h, |a| &h[..a.len() + 2]),
                None => h.split(':').next().unwrap_or(""),
            }
        }
    };
    raw.trim_end_matches('.').to_ascii_lowercase()
}

/// Headers that belong to one connection, not to the request or answer (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Drops hop-by-hop headers (and those the Connection header names); returns the
/// Upgrade header's value if the message asks for an upgrade.
fn strip_hop_by_hop(h: &mut HeaderMap) -> Option<HeaderValue> {
    let named: Vec<HeaderName> = h
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let upgrade = named
        .contains(&hyper::header::UPGRADE)
        .then(|| h.get(hyper::header::UPGRADE).cloned())
        .flatten();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    h.remove(hyper::header::UPGRADE);
    upgrade
}

async fn handle(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
    https: bool,
) -> Response<Body> {
    let host = request_host(&req);
    let routing = shared.routing();
    let Some(backend) = routing.router.route(&host, req.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "404 page not found");
    };
    let addrs = backend.endpoints(&routing.view);
    if addrs.is_empty() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "no ready endpoints for service {}/{}",
                backend.namespace, backend.service
            ),
        );
    }
    let turn = shared
        .turns
        .lock()
        .unwrap()
        .entry(backend.clone())
        .or_default()
        .clone();
    let first = turn.fetch_add(1, Ordering::Relaxed) % addrs.len();
    drop(routing);

    // The request as the backend sees it: origin-form target, forwarding headers.
    let host_header = req.headers().get(hyper::header::HOST).cloned();
    let upgrade = strip_hop_by_hop(req.headers_mut());
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = match path.parse() {
        Ok(u) => u,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request target"),
    };
    *req.version_mut() = hyper::Version::HTTP_11;
    let h = req.headers_mut();
    if let (None, Ok(v)) = (host_header, HeaderValue::from_str(&host)) {
        h.insert(hyper::header::HOST, v);
    }
    let client = peer.ip().to_canonical().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {client}"),
        None => client.clone(),
    };
    for (k, v) in [
        ("x-forwarded-for", xff),
        ("x-real-ip", client),
        ("x-forwarded-host", host.clone()),
        (
            "x-forwarded-proto",
            if https { "https" } else { "http" }.into(),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    if let Some(u) = &upgrade {
        h.insert(
            hyper::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        h.insert(hyper::header::UPGRADE, u.clone());
    }

    // The endpoint in turn, then the next.
    let stream = match crate::services::proxy::connect_any(rotated(&addrs, first)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("ingress: no endpoint answered: {e}");
            return plain(StatusCode::BAD_GATEWAY, "502 bad gateway");
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!("ingress: backend handshake: {e}");
            return plain(StatusCode::BAD_GATEWAY, "502 bad gateway");
        }
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("ingress: backend connection: {e}");
        }
    });
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let mut resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("ingress: backend request: {e}");
            return plain(StatusCode::BAD_GATEWAY, "502 bad gateway");
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_up) = client_upgrade {
            let backend_up = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let (Ok(c), Ok(b)) = (client_up.await, backend_up.await) else {
                    return;
                };
                let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
            });
            return resp.map(|b| b.boxed());
        }
    }
    strip_hop_by_hop(resp.headers_mut());
    resp.map(|b| b.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::{
        EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
    };

    fn ingress(yaml: &str) -> (Name, Ingress) {
        let m = skiff_api::manifest::parse_manifests(yaml).unwrap();
        let skiff_api::Object::Ingress(i) = m.into_iter().next().unwrap().object else {
            panic!("not an Ingress")
        };
        let ns = i.metadata.namespace().to_string();
        ((ns, i.metadata.name().to_string()), i)
    }

    fn view(docs: &[&str]) -> ClusterView {
        let mut v = ClusterView::default();
        for d in docs {
            let (k, i) = ingress(d);
            v.ingresses.insert(k, i);
        }
        v
    }

    fn svc(name: &str) -> Option<String> {
        Some(name.to_string())
    }

    fn to(b: Option<&Backend>) -> Option<String> {
        b.map(|b| {
            let port = match &b.port {
                PortRef::Number(n) => n.to_string(),
                PortRef::Name(n) => n.clone(),
            };
            format!("{}:{port}", b.service)
        })
    }

    const TWO_HOSTS: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a, namespace: default, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  defaultBackend: {service: {name: fallback, port: {number: 80}}}\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}\n      - {path: /api/v1/exact, pathType: Exact, backend: {service: {name: exact, port: {number: 80}}}}\n  - host: '*.example'\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: wild, port: {number: 80}}}}\n  - http:\n      paths:\n      - {path: /anyhost, pathType: Exact, backend: {service: {name: any, port: {number: 80}}}}\n";

    #[test]
    fn hosts_exact_then_wildcard_then_any_then_default() {
        let r = Router::new(&view(&[TWO_HOSTS]), "skiff");
        assert_eq!(to(r.route("a.example", "/")), svc("web:80"));
        assert_eq!(to(r.route("b.example", "/x")), svc("wild:80"));
        // A wildcard covers one label only.
        assert_eq!(to(r.route("c.b.example", "/anyhost")), svc("any:80"));
        assert_eq!(to(r.route("other", "/anyhost")), svc("any:80"));
        // No path of the chosen host matches: the default backend.
        assert_eq!(to(r.route("other", "/nothing")), svc("fallback:80"));
        assert_eq!(to(r.route("example", "/")), svc("fallback:80"));
    }

    #[test]
    fn paths_longest_prefix_by_element_and_exact_first() {
        let r = Router::new(&view(&[TWO_HOSTS]), "skiff");
        assert_eq!(to(r.route("a.example", "/api")), svc("api:http"));
        assert_eq!(to(r.route("a.example", "/api/")), svc("api:http"));
        assert_eq!(to(r.route("a.example", "/api/v1")), svc("api:http"));
        // Prefix matches whole path elements.
        assert_eq!(to(r.route("a.example", "/apis")), svc("web:80"));
        assert_eq!(to(r.route("a.example", "/api/v1/exact")), svc("exact:80"));
        assert_eq!(to(r.route("a.example", "/api/v1/exact/")), svc("api:http"));
    }

    #[test]
    fn classes_and_the_older_ingress_win() {
        let newer = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: b, namespace: default, creationTimestamp: '2026-02-01T00:00:00Z'}\nspec:\n  defaultBackend: {service: {name: other-default, port: {number: 80}}}\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: newer, port: {number: 80}}}}\n      - {path: /new, pathType: Prefix, backend: {service: {name: new, port: {number: 80}}}}\n";
        let nginx = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: c, namespace: default}\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: n.test\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: n, port: {number: 80}}}}\n";
        let r = Router::new(&view(&[newer, TWO_HOSTS, nginx]), "skiff");
        assert_eq!(to(r.route("a.example", "/")), svc("web:80"));
        assert_eq!(to(r.route("a.example", "/new/x")), svc("new:80"));
        assert_eq!(to(r.route("zzz", "/")), svc("fallback:80"));
        // Another class's Ingress is not served here.
        assert_eq!(to(r.route("n.test", "/")), svc("fallback:80"));
        let only_nginx = Router::new(&view(&[nginx]), "skiff");
        assert!(only_nginx.is_empty());
        assert!(!Router::new(&view(&[nginx]), "nginx").is_empty());
    }

    #[test]
    fn certificates_by_sni() {
        let doc = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: t, namespace: shop}\nspec:\n  tls:\n  - {hosts: [a.example], secretName: a-cert}\n  - {hosts: ['*.example'], secretName: wild-cert}\n  - {secretName: any-cert}\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n";
        let r = Router::new(&view(&[doc]), "skiff");
        let name = |s: Option<&Name>| s.map(|n| format!("{}/{}", n.0, n.1));
        assert_eq!(name(r.cert_for(Some("A.example"))), svc("shop/a-cert"));
        assert_eq!(name(r.cert_for(Some("b.example"))), svc("shop/wild-cert"));
        assert_eq!(name(r.cert_for(Some("elsewhere"))), svc("shop/any-cert"));
        assert_eq!(name(r.cert_for(None)), svc("shop/a-cert"));
    }

    #[test]
    fn backends_resolve_ports_by_number_and_name_to_ready_endpoints() {
        let mut v = ClusterView::default();
        let key = ("default".to_string(), "api".to_string());
        v.services.insert(
            key.clone(),
            Service {
                spec: ServiceSpec {
                    ports: vec![
                        ServicePort {
                            name: Some("http".into()),
                            port: Some(80),
                            ..Default::default()
                        },
                        ServicePort {
                            name: Some("admin".into()),
                            port: Some(9000),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        v.endpoints.insert(
            key,
            Endpoints {
                subsets: vec![EndpointSubset {
                    addresses: vec![EndpointAddress {
                        ip: "10.42.1.5".into(),
                        ..Default::default()
                    }],
                    not_ready_addresses: vec![EndpointAddress {
                        ip: "10.42.1.6".into(),
                        ..Default::default()
                    }],
                    ports: vec![
                        EndpointPort {
                            name: Some("http".into()),
                            port: Some(8080),
                            ..Default::default()
                        },
                        EndpointPort {
                            name: Some("admin".into()),
                            port: Some(9090),
                            ..Default::default()
                        },
                    ],
                }],
                ..Default::default()
            },
        );
        let b = |port| Backend {
            namespace: "default".into(),
            service: "api".into(),
            port,
        };
        let addrs = |p| {
            b(p).endpoints(&v)
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(addrs(PortRef::Number(80)), vec!["10.42.1.5:8080"]);
        assert_eq!(addrs(PortRef::Name("admin".into())), vec!["10.42.1.5:9090"]);
        assert!(addrs(PortRef::Number(81)).is_empty());
    }

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade, x-private"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let up = strip_hop_by_hop(&mut h);
        assert_eq!(up, Some(HeaderValue::from_static("websocket")));
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["x-kept"]);
    }
}
