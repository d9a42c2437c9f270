//! The Kubernetes API over HTTPS: a second front end on the same request path as QUIC.
//! A request's URL and verb become the same [`Request`](skiff_api::wire::Request) the QUIC
//! clients send, answered by [`Api::handle`] (authentication by the same client
//! certificates, the same authorization, admission, validation and store); watches read
//! the same store watch with the same visibility rules. What is HTTP's own lives here:
//! the TLS listener (`hyper` over `tokio-rustls`, HTTP/1.1), URL routing (`route.rs`),
//! discovery generated from the kinds' rows (`discovery.rs`), Kubernetes' answer shapes
//! (`render.rs`: `Status`, lists, Tables), patches (`patch.rs`) and field selectors
//! (`fields.rs`). Verbs are in `verbs.rs`, watches and logs (streamed bodies) in
//! `stream.rs`, the resource metrics API (`kubectl top`) in `metrics.rs`.

mod apply;
mod discovery;
mod exec;
mod fields;
mod fieldsets;
mod listing;
mod metrics;
mod objects;
mod openapi;
pub mod patch;
mod portforward;
mod proto;
mod render;
mod route;
mod scale;
mod spdy;
mod stream;
mod verbs;

use crate::front_door::{FrontDoor, ANON_LIFETIME, FRAME_READ_DEADLINE};
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::Store;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::net::TcpListener;

/// A response body: whole, or streamed (watches, logs).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// The TLS configuration served, replaced when the serving certificate is renewed.
pub struct Https {
    tls: RwLock<Arc<rustls::ServerConfig>>,
}

impl Https {
    /// The HTTPS front end's TLS for the PKI's current serving certificate.
    pub fn new<S: Store>(api: &Api<S>) -> anyhow::Result<Https> {
        Ok(Https {
            tls: RwLock::new(Arc::new(tls_config(api)?)),
        })
    }

    /// Serves the PKI's current serving certificate from now on.
    pub fn reload<S: Store>(&self, api: &Api<S>) -> anyhow::Result<()> {
        *self.tls.write().unwrap() = Arc::new(tls_config(api)?);
        Ok(())
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.tls.read().unwrap().clone()
    }
}

fn tls_config<S: Store>(api: &Api<S>) -> anyhow::Result<rustls::ServerConfig> {
    crate::server::rustls_config(api, vec![b"http/1.1".to_vec()])
}

/// Who is asking, and whether their certificate still speaks for them.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) id: Identity,
    /// Why the presented certificate is refused (expired, revoked), if it is.
    pub(crate) refused: Option<String>,
}

/// Serves HTTPS connections until the listener fails. The front door's limits hold here
/// as on QUIC: connections without a certificate count against the same caps.
pub async fn serve<S: Store>(
    api: Arc<Api<S>>,
    listener: TcpListener,
    https: Arc<Https>,
    door: Arc<FrontDoor>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTPS connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // TCP's handshake has shown the source address: no retry needed.
        if door.admit(peer.ip(), true, Instant::now()) == crate::front_door::Admission::Refuse {
            tracing::debug!(%peer, "HTTPS connection refused at the front door");
            continue;
        }
        let stranger = door.count(peer.ip());
        let acceptor = tokio_rustls::TlsAcceptor::from(https.current());
        let api = api.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(FRAME_READ_DEADLINE, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first().cloned());
            let caller = match &cert {
                Some(der) => {
                    let id = Identity::from_cert(der);
                    let refused = crate::server::refusal(&api, &id, der).await;
                    Caller { id, refused }
                }
                None => Caller {
                    id: Identity::Anonymous,
                    refused: None,
                },
            };
            let anonymous = caller.id == Identity::Anonymous;
            // Only strangers stay counted (and get a short life).
            let _stranger = anonymous.then_some(stranger);
            let caller = Arc::new(caller);
            let svc = hyper::service::service_fn(move |req| {
                let api = api.clone();
                let caller = caller.clone();
                async move { Ok::<_, Infallible>(handle(&api, &caller, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(FRAME_READ_DEADLINE)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .with_upgrades();
            if anonymous {
                let _ = tokio::time::timeout(ANON_LIFETIME, conn).await;
            } else if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended");
            }
        });
    }
}

/// A JSON answer.
pub(crate) fn json(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(body.into()).boxed_unsync())
        .expect("a valid response")
}

/// A plain text answer.
pub(crate) fn text(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(body.into()).boxed_unsync())
        .expect("a valid response")
}

/// An error as a `Status`.
pub(crate) fn failure(
    e: &skiff_api::wire::ApiError,
    about: Option<(skiff_api::Kind, &str)>,
) -> Response<Body> {
    let (code, s) = render::status(e, about);
    json(code, s.to_string())
}

async fn handle<S: Store>(
    api: &Arc<Api<S>>,
    caller: &Caller,
    req: Request<Incoming>,
) -> Response<Body> {
    use skiff_api::wire::{ApiError, ErrorCode};
    let r = match route::route(req.uri().path()) {
        Ok(r) => r,
        Err(route::NotServed(m)) => return failure(&ApiError::new(ErrorCode::NotFound, m), None),
    };
    // Health and version are public, as Kubernetes' system:public-info-viewer makes them.
    let core = matches!(r, route::Route::CoreVersions);
    let mut refusal = denied(caller);
    // A ServiceAccount's bearer token: checked, and then good for discovery only (RBAC is
    // not enforced, so it grants nothing more).
    if let (Some(token), Identity::Anonymous) = (bearer(&req), &caller.id) {
        match api.authenticate_token(token) {
            Err(why) => {
                tracing::debug!(%why, "bearer token refused");
                refusal = Some(ApiError::new(ErrorCode::Unauthorized, "Unauthorized"));
            }
            Ok(c) if matches!(r, route::Route::Object(_) | route::Route::Metrics(_)) => {
                let what = match &r {
                    route::Route::Object(t) => t.kind.info().plural.to_string(),
                    _ => "metrics".into(),
                };
                let e = ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "{what} is forbidden: User {:?} cannot {} resource {what:?}: skiff does not enforce RBAC, so a ServiceAccount token grants only discovery",
                        c.user(),
                        req.method().as_str().to_ascii_lowercase()
                    ),
                );
                return failure(&e, None);
            }
            Ok(_) => refusal = None,
        }
    }
    match (r, refusal) {
        (route::Route::Health, _) => text(200, "ok"),
        (route::Route::Version, _) => json(200, version().to_string()),
        (_, Some(e)) => failure(&e, None),
        (route::Route::CoreVersions | route::Route::Groups, None)
            if discovery::wants_aggregated(header(&req, "accept")) =>
        {
            Response::builder()
                .status(200)
                .header("content-type", discovery::AGGREGATED)
                .body(
                    Full::new(Bytes::from(discovery::aggregated(core).to_string())).boxed_unsync(),
                )
                .expect("a valid response")
        }
        (route::Route::CoreVersions, None) => {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            json(200, discovery::core_versions(&host).to_string())
        }
        (route::Route::Groups, None) => json(200, discovery::group_list().to_string()),
        (route::Route::Group(g), None) => json(200, discovery::group(&g).to_string()),
        (route::Route::Resources { group, version }, None) => {
            json(200, discovery::resource_list(&group, &version).to_string())
        }
        (route::Route::Object(t), None) => verbs::object(api, &caller.id, t, req).await,
        (route::Route::MetricsResources, None) => json(200, metrics::resource_list().to_string()),
        (route::Route::Metrics(m), None) => {
            metrics::serve(api, &caller.id, m, req.method(), req.uri().query()).await
        }
        (route::Route::OpenApiRoot, None) => json(200, openapi::root().to_string()),
        (route::Route::OpenApi(p), None) => match openapi::group_version(&p) {
            Some(doc) => json(200, doc.to_string()),
            None => failure(
                &ApiError::new(
                    ErrorCode::NotFound,
                    format!("no OpenAPI document for {p:?}"),
                ),
                None,
            ),
        },
    }
}

/// The bearer token of an `Authorization` header, if there is one.
fn bearer(req: &Request<Incoming>) -> Option<&str> {
    header(req, "authorization")?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|h| h.to_str().ok())
}

/// Why a caller may not use the API, if it may not: no certificate, or one refused.
fn denied(caller: &Caller) -> Option<skiff_api::wire::ApiError> {
    use skiff_api::wire::{ApiError, ErrorCode};
    if let Some(why) = &caller.refused {
        return Some(ApiError::new(ErrorCode::Unauthorized, why.clone()));
    }
    (caller.id == Identity::Anonymous).then(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "Unauthorized: no client certificate; use a kubeconfig with credentials (admin.kubeconfig, or `skiff config kubeconfig`)",
        )
    })
}

/// `/version`: the Kubernetes API version skiff serves, and skiff's own.
fn version() -> serde_json::Value {
    serde_json::json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("v1.33.0+skiff-{}", skiff_api::VERSION),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("linux/{}", std::env::consts::ARCH),
    })
}

/// Reads a request body of at most `limit` bytes; the declared length is checked before
/// anything is read.
pub(crate) async fn body(
    req: Request<Incoming>,
    limit: usize,
) -> Result<Bytes, skiff_api::wire::ApiError> {
    use skiff_api::wire::{ApiError, ErrorCode};
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match tokio::time::timeout(FRAME_READ_DEADLINE, limited.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("reading the body: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::Timeout,
            format!("the request body did not arrive within {FRAME_READ_DEADLINE:?}"),
        )),
    }
}
