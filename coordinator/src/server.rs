//! The QUIC listener: mutual TLS, the front door's limits (`front_door.rs`), one task per
//! stream, a deadline on reading each request and on answering it, watches on their own
//! streams. A malformed or oversized frame gets an error on its stream, which is then
//! closed; the connection and every other client carry on. A certificate that no longer
//! speaks for its holder (expired, revoked, replaced) gets the connection closed with
//! `CREDENTIAL_REFUSED` and a reason that says how to readmit the node.

use crate::front_door::{
    Admission, ExpiryTolerant, FrontDoor, Unauthenticated, ANON_LIFETIME, ANON_RECEIVE_WINDOW,
    ANON_STREAMS, AUTH_RECEIVE_WINDOW, BODY_BUDGET, FRAME_READ_DEADLINE, STREAMS,
};
use crate::pki::Identity;
use crate::requests::credentials::{readmit_hint, CertFacts};
use crate::requests::{store_err, Api};
use crate::store::{EventType, Store, WatchFilter, WatchStream};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use skiff_api::selector::Selector;
use skiff_api::util::rfc3339;
use skiff_api::wire::{
    ApiError, ErrorCode, FrameError, Request, Response, StreamFrame, WatchEvent, WatchEventRef,
    ALPN, CREDENTIAL_REFUSED, MAX_FRAME_LEN, MAX_JOIN_FRAME_LEN,
};
use skiff_transport::frames::{read_frame_within, take_end, write_frame, ReadError};
use skiff_transport::tls::{certs_from_pem, key_from_pem, provider};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one request may take.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Builds the QUIC endpoint: the server presents its certificate and the CA; clients
/// may present a certificate signed by the CA (or none, to join). Every connection starts
/// with a stranger's allowance (two streams, a 64 KiB window); `connection` raises it
/// once the peer has shown a certificate that still speaks for it.
pub fn endpoint<S: Store>(api: &Api<S>, listen: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let cfg = server_config(api)?;
    Ok(skiff_transport::udp::server_endpoint(listen, cfg)?)
}

/// The TLS server config for the PKI's current serving certificate, offering `alpn`:
/// the server presents its certificate and the CA; clients may present a certificate
/// signed by the CA (or none). QUIC and the HTTPS front end share it.
pub(crate) fn rustls_config<S: Store>(
    api: &Api<S>,
    alpn: Vec<Vec<u8>>,
) -> anyhow::Result<rustls::ServerConfig> {
    let ca = certs_from_pem("ca", &api.pki.ca_pem)?;
    let mut roots = RootCertStore::empty();
    for c in &ca {
        roots.add(c.clone())?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()?;
    let verifier = Arc::new(ExpiryTolerant(verifier));
    let (cert, key) = api.pki.serving();
    let mut chain: Vec<CertificateDer<'static>> = certs_from_pem("server", &cert)?;
    chain.extend(ca);
    let key: PrivateKeyDer<'static> = key_from_pem("server", &key)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = alpn;
    Ok(tls)
}

/// The QUIC server config for the PKI's current serving certificate.
pub fn server_config<S: Store>(api: &Api<S>) -> anyhow::Result<quinn::ServerConfig> {
    let tls = rustls_config(api, vec![ALPN.to_vec()])?;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = skiff_transport::transport();
    // Each connection keeps a send buffer as large as the largest transmit it made: with
    // segmentation offload up to ten packets (about 14 KB), which heaptrack measured as
    // 13 MB for a thousand nodes. Nearly every answer and watch event is one packet; a
    // large list costs one send call per packet instead.
    transport.enable_segmentation_offload(false);
    // A stranger's allowance; raised per connection once it authenticates.
    transport.max_concurrent_bidi_streams(ANON_STREAMS.into());
    transport.receive_window(ANON_RECEIVE_WINDOW.into());
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Serves until the endpoint closes: the front door decides on each attempt first.
pub async fn serve<S: Store>(api: Arc<Api<S>>, endpoint: quinn::Endpoint, door: Arc<FrontDoor>) {
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        match door.admit(
            peer.ip(),
            incoming.remote_address_validated(),
            Instant::now(),
        ) {
            Admission::Accept => {}
            Admission::Retry => {
                if let Err(e) = incoming.retry() {
                    // Already validated: the Retry was answered, so it may go on.
                    spawn_handshake(&api, &door, e.into_incoming());
                }
                continue;
            }
            Admission::Refuse => {
                tracing::debug!(%peer, "connection refused at the front door");
                incoming.refuse();
                continue;
            }
        }
        spawn_handshake(&api, &door, incoming);
    }
}

fn spawn_handshake<S: Store>(api: &Arc<Api<S>>, door: &Arc<FrontDoor>, incoming: quinn::Incoming) {
    let api = api.clone();
    // Counted as a stranger from the first packet until it shows a certificate.
    let stranger = door.count(incoming.remote_address().ip());
    tokio::spawn(async move {
        match incoming.await {
            Ok(conn) => connection(api, conn, stranger).await,
            Err(e) => tracing::debug!(error = %e, "handshake failed"),
        }
    });
}

fn peer_certificate(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    conn.peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|certs| certs.first().cloned())
}

/// Why a presented certificate must not authenticate (expired; a node's not recorded for
/// it any more), if it must not.
pub(crate) async fn refusal<S: Store>(api: &Api<S>, id: &Identity, der: &[u8]) -> Option<String> {
    let facts = CertFacts::of_der(der)?;
    if facts.expired() {
        let why = match id {
            Identity::Node(n) => {
                let why = format!(
                    "the certificate of node {n:?} expired at {}; {}",
                    rfc3339(facts.not_after),
                    readmit_hint(n)
                );
                api.note_certificate_expired(n, &why).await;
                why
            }
            _ => format!(
                "the certificate of {} expired at {}; use a config with a current certificate",
                id.name(),
                rfc3339(facts.not_after)
            ),
        };
        return Some(why);
    }
    match id {
        Identity::Node(n) => api.check_node_certificate(n, der).await,
        _ => None,
    }
}

async fn connection<S: Store>(
    api: Arc<Api<S>>,
    conn: quinn::Connection,
    stranger: Unauthenticated,
) {
    let cert = peer_certificate(&conn);
    let id = Arc::new(
        cert.as_ref()
            .map(|c| Identity::from_cert(c))
            .unwrap_or(Identity::Anonymous),
    );
    if let Some(der) = &cert {
        if let Some(why) = refusal(&api, &id, der).await {
            tracing::warn!(peer = %conn.remote_address(), who = %id.name(), "credential refused: {why}");
            // A close reason must fit one packet.
            let mut why = why.into_bytes();
            why.truncate(1000);
            conn.close(CREDENTIAL_REFUSED.into(), &why);
            return;
        }
    }
    tracing::debug!(peer = %conn.remote_address(), who = %id.name(), "connected");
    let _stranger = if *id == Identity::Anonymous {
        // A join is one request: the connection goes when it is done or its time is up.
        let c = conn.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ANON_LIFETIME).await;
            c.close(0u32.into(), b"time to join is up");
        });
        Some(stranger)
    } else {
        drop(stranger);
        conn.set_max_concurrent_bi_streams(STREAMS.into());
        conn.set_receive_window(quinn::VarInt::from_u32(AUTH_RECEIVE_WINDOW));
        None
    };
    // What this connection's request frames in flight may hold, in KiB.
    let budget = Arc::new(tokio::sync::Semaphore::new(match *id {
        Identity::Anonymous => ANON_STREAMS as usize * MAX_JOIN_FRAME_LEN / 1024,
        _ => BODY_BUDGET / 1024,
    }));
    while let Ok((send, recv)) = conn.accept_bi().await {
        let api = api.clone();
        let id = id.clone();
        let conn = conn.clone();
        let budget = budget.clone();
        tokio::spawn(async move { stream(api, &id, &conn, &budget, send, recv).await });
    }
    if let Identity::Node(n) = &*id {
        api.nodes.link_down(n, &conn);
    }
}

/// Opens a stream to the node of the pod a logs or exec request is for, and sends the
/// request on it: the coordinator finds the pod's node and opens a stream on the
/// connection the node keeps open (nodes open no port). For admins only.
pub(crate) async fn open_to_node<S: Store>(
    api: &Api<S>,
    id: &Identity,
    req: &Request,
) -> Result<(quinn::SendStream, quinn::RecvStream), ApiError> {
    let (ns, pod) = match req {
        Request::Logs(l) => (l.namespace.clone(), l.pod.clone()),
        Request::Exec(e) => (e.namespace.clone(), e.pod.clone()),
        Request::Attach(a) => (a.namespace.clone(), a.pod.clone()),
        Request::PortForward(p) => (p.namespace.clone(), p.pod.clone()),
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "not a logs, exec, attach or port-forward request",
            ))
        }
    };
    if !matches!(id, Identity::Admin(_)) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "{} may not read logs, exec, attach or port-forward in pods",
                id.name()
            ),
        ));
    }
    let key = skiff_api::ObjectKey {
        kind: skiff_api::Kind::Pod,
        namespace: ns.clone(),
        name: pod.clone(),
    };
    let node = match api.store.get(&key).map_err(store_err)? {
        Some(s) => s
            .value()
            .pointer("/spec/nodeName")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
        None => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("pods {pod:?} not found"),
            ))
        }
    };
    let Some(node) = node else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("pod {pod:?} is not scheduled to a node yet"),
        ));
    };
    let Some(link) = api.nodes.link(&node) else {
        return Err(ApiError::new(
            ErrorCode::Timeout,
            format!("node {node:?} of pod {pod:?} is not connected"),
        ));
    };
    let (mut nsend, nrecv) = link
        .open_bi()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Timeout, format!("node {node:?}: {e}")))?;
    if write_frame(&mut nsend, req).await.is_err() {
        return Err(ApiError::new(
            ErrorCode::Timeout,
            format!("node {node:?} went away"),
        ));
    }
    Ok((nsend, nrecv))
}

/// Logs and exec over QUIC: the request goes on to the pod's node ([`open_to_node`]) and
/// both directions are copied until either side ends.
async fn to_node<S: Store>(
    api: &Api<S>,
    id: &Identity,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    req: Request,
) {
    let (mut nsend, mut nrecv) = match open_to_node(api, id, &req).await {
        Ok(s) => s,
        Err(e) => {
            let _ = write_frame(send, &StreamFrame::Error(e)).await;
            return;
        }
    };
    // Client → node (stdin, resize) and node → client (output), until either ends.
    let up = async {
        let _ = tokio::io::copy(recv, &mut nsend).await;
        let _ = nsend.finish();
    };
    let down = async {
        let _ = tokio::io::copy(&mut nrecv, send).await;
    };
    tokio::pin!(up);
    tokio::select! {
        _ = down => {}
        _ = &mut up => {
            // The client finished sending; keep relaying output until the node is done.
            let _ = tokio::io::copy(&mut nrecv, send).await;
        }
    }
}

async fn stream<S: Store>(
    api: Arc<Api<S>>,
    id: &Identity,
    conn: &quinn::Connection,
    budget: &tokio::sync::Semaphore,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    // A stranger may only join: a join request's size is all it may send.
    let max = match id {
        Identity::Anonymous => MAX_JOIN_FRAME_LEN,
        _ => MAX_FRAME_LEN,
    };
    let read = tokio::time::timeout(
        FRAME_READ_DEADLINE,
        read_frame_within(&mut recv, max, budget),
    )
    .await;
    let read = read.unwrap_or_else(|_| {
        Err(ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the request frame did not arrive within {FRAME_READ_DEADLINE:?}"),
        )))
    });
    let (req, permit): (Request, _) = match read {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            let code = match &e {
                ReadError::Frame(FrameError::TooLarge { .. }) => ErrorCode::TooLarge,
                _ => ErrorCode::BadRequest,
            };
            tracing::debug!(error = %e, "refused a frame");
            let _ = recv.stop(1u32.into());
            let _ = write_frame(
                &mut send,
                &Response::Error(ApiError::new(code, e.to_string())),
            )
            .await;
            let _ = send.finish();
            return;
        }
    };
    // The node's link (what logs and exec reach it by) is the connection its agent
    // heartbeats on, not any connection made with its credential (a CLI using
    // node.config must not take it from the agent).
    if let (Request::Heartbeat, Identity::Node(n)) = (&req, id) {
        if api
            .nodes
            .link(n)
            .is_none_or(|l| l.stable_id() != conn.stable_id())
        {
            api.nodes.link_up(n, conn.clone());
        }
    }
    // A stream that goes on (logs, exec, watch) holds no budget: its request is read.
    if matches!(
        req,
        Request::Logs(_) | Request::Exec(_) | Request::Attach(_) | Request::PortForward(_)
    ) {
        drop(permit);
        Box::pin(to_node(&api, id, &mut send, &mut recv, req)).await;
        let _ = send.finish();
        return;
    }
    if let Request::Watch {
        kind,
        namespace,
        selector,
        since,
    } = req
    {
        drop(permit);
        Box::pin(watch(&api, id, &mut send, kind, namespace, selector, since)).await;
        let _ = send.finish();
        return;
    }
    // A plain request is the whole stream (logs, exec and watches go on past their first
    // frame): its end has usually come with it.
    take_end(&mut recv);
    let resp = match tokio::time::timeout(REQUEST_DEADLINE, api.handle(id, req)).await {
        Ok(r) => r,
        Err(_) => Response::Error(ApiError::new(
            ErrorCode::Timeout,
            format!("request did not finish within {REQUEST_DEADLINE:?}"),
        )),
    };
    match write_frame(&mut send, &resp).await {
        Ok(()) => {}
        // The answer itself could not be framed (too large): say so rather than go quiet.
        Err(ReadError::Frame(e)) => {
            let msg = ApiError::new(
                ErrorCode::TooLarge,
                format!("the answer could not be sent: {e}"),
            );
            let _ = write_frame(&mut send, &Response::Error(msg)).await;
        }
        Err(e) => tracing::debug!(error = %e, "client went away before its answer"),
    }
    let _ = send.finish();
    drop(permit);
}

/// The last message of a watch the store ended: Expired (relist), or the error.
fn watch_ended(e: crate::store::StoreError) -> WatchEvent {
    match e {
        crate::store::StoreError::Expired { oldest, .. } => WatchEvent::Expired { oldest },
        e => WatchEvent::Error(store_err(e)),
    }
}

async fn watch<S: Store>(
    api: &Api<S>,
    id: &Identity,
    send: &mut quinn::SendStream,
    kind: skiff_api::Kind,
    namespace: Option<String>,
    selector: Option<String>,
    since: Option<u64>,
) {
    let fail = |e: ApiError| WatchEvent::Error(e);
    if let Err(e) = api.authorize_watch(id, kind) {
        let _ = write_frame(send, &fail(e)).await;
        return;
    }
    let selector = match selector.as_deref().map(Selector::parse).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            let _ = write_frame(
                send,
                &fail(ApiError::new(ErrorCode::BadRequest, e.to_string())),
            )
            .await;
            return;
        }
    };
    if let (Identity::Node(n), skiff_api::Kind::Pod) = (id, kind) {
        if namespace.is_none() && selector.is_empty() {
            return node_pods(api, n, send, since).await;
        }
    }
    let since = since.unwrap_or_else(|| api.store.revision());
    let mut w = match api.store.watch(
        WatchFilter {
            kind,
            namespace,
            selector,
        },
        since,
    ) {
        Ok(w) => w,
        Err(e) => {
            let _ = write_frame(send, &watch_ended(e)).await;
            return;
        }
    };
    loop {
        let ev = tokio::select! {
            ev = w.next() => ev,
            _ = send.stopped() => return,
        };
        let e = match ev {
            Ok(e) => e,
            Err(e) => {
                let _ = write_frame(send, &watch_ended(e)).await;
                return;
            }
        };
        if !api.event_visible_to(id, &e) {
            continue;
        }
        if write_frame(send, &watch_event(&e)).await.is_err() {
            return;
        }
    }
}

fn watch_event(e: &crate::store::StoreEvent) -> WatchEventRef<'_> {
    let (revision, object) = (e.revision, &*e.object.json);
    match e.kind {
        EventType::Added => WatchEventRef::Added { revision, object },
        EventType::Modified => WatchEventRef::Modified { revision, object },
        EventType::Deleted => WatchEventRef::Deleted { revision, object },
    }
}

/// A node's watch of its pods, through the pod hub: the store's history up to the hub's
/// position when it starts from an older revision, then the hub's events for this node.
async fn node_pods<S: Store>(
    api: &Api<S>,
    node: &str,
    send: &mut quinn::SendStream,
    since: Option<u64>,
) {
    let current = api.store.revision();
    let since = since.unwrap_or(current);
    let sub = match api.pod_hub.subscribe(node, current, |from| {
        api.store.watch(crate::hub::pods(), from)
    }) {
        Ok(s) => s,
        Err(e) => {
            let _ = write_frame(send, &watch_ended(e)).await;
            return;
        }
    };
    if since < sub.position {
        match api.store.history(&crate::hub::pods(), since, sub.position) {
            Ok(events) => {
                for e in events.iter().filter(|e| e.node_name() == Some(node)) {
                    if write_frame(send, &watch_event(e)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = write_frame(send, &watch_ended(e)).await;
                return;
            }
        }
    }
    let mut events = sub.events;
    loop {
        let e = tokio::select! {
            e = events.recv() => e,
            _ = send.stopped() => return,
        };
        let Some(e) = e else {
            // Dropped by the hub (too far behind, or the hub restarted): relist.
            let oldest = api.store.revision();
            let _ = write_frame(send, &WatchEvent::Expired { oldest }).await;
            return;
        };
        if e.revision <= since {
            continue;
        }
        if write_frame(send, &watch_event(&e)).await.is_err() {
            return;
        }
    }
}
