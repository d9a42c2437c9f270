//! The coordinator's request path, by concern: [`dispatch`](Api::handle) here; who may do
//! what in [`authz`]; what the server does to an object before storing it, by kind, in
//! [`admission`]; create, apply, update and bind in [`writes`]; deletion and its
//! propagation in [`delete`]; join tokens and node enrolment in [`tokens`]. Transport
//! lives in `server.rs`; neither it nor this path knows a kind's fields beyond admission.

use crate::pki::{Identity, Pki};
use crate::store::{Put, Store, StoreError, Stored, WriteOp};
use base64::Engine;
use serde_json::Value;
use skiff_api::defaults::apply_defaults;
use skiff_api::manifest::{parse_json_with, FieldValidation};
use skiff_api::selector::Selector;
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::validate::{dns1123_subdomain_problem, validate_update};
use skiff_api::wire::{
    ApiError, ApplyOutcome, ErrorCode, Propagation, Request, Response, TokenInfo,
};
use skiff_api::{Kind, Object, ObjectKey};
use std::time::{SystemTime, UNIX_EPOCH};

mod accounts;
mod admission;
mod authz;
pub mod credentials;
mod delete;
mod eviction;
mod ingress_class;
mod node_restriction;
mod priority;
mod quota;
mod storage;
mod tokens;
mod writes;

use admission::*;
use authz::*;
use delete::*;
pub use delete::{DeleteOptions, Deleted};

/// Namespaces that exist from the first start and may not be deleted.
pub const SYSTEM_NAMESPACES: [&str; 2] = ["default", "kube-system"];

/// The most JSON one list page carries (well under the frame limit).
pub const PAGE_BYTES: usize = 4 << 20;

/// The API server's state.
pub struct Api<S: Store> {
    /// The store.
    pub store: S,
    /// The PKI.
    pub pki: Pki,
    /// Connected nodes, their leases and usage (memory only).
    pub nodes: crate::nodes::Nodes,
    /// Pod events routed to the watches of their node.
    pub pod_hub: crate::hub::PodHub,
    /// Service addresses and node ports, and who holds them.
    pub services: crate::services::Services,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fills `out` with bytes from the system's random source, fetched 4 KiB at a time into
/// a per-thread pool: every create needs uid and name bytes, and a `getrandom` call each
/// showed in profiles of creates.
fn fill_random(out: &mut [u8]) {
    use ring::rand::SecureRandom;
    use std::cell::RefCell;
    const POOL: usize = 4096;
    thread_local! {
        static BYTES: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }
    BYTES.with_borrow_mut(|(buf, used)| {
        for b in out {
            if *used == buf.len() {
                buf.resize(POOL, 0);
                ring::rand::SystemRandom::new()
                    .fill(buf)
                    .expect("system randomness");
                *used = 0;
            }
            *b = buf[*used];
            *used += 1;
        }
    })
}

fn random_string(n: usize, alphabet: &[u8]) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    buf.iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

fn random_bytes4() -> [u8; 4] {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    b
}

fn uid() -> String {
    let h = random_string(32, b"0123456789abcdef");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// `deployments.apps`, `pods`: how Kubernetes names a resource in messages.
pub fn resource(kind: Kind) -> String {
    match kind.group() {
        "" => kind.info().plural.to_string(),
        g => format!("{}.{g}", kind.info().plural),
    }
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Maps a store failure to what the client is told.
pub fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(k) => err(
            ErrorCode::NotFound,
            format!("{} {:?} not found", resource(k.kind), k.name),
        ),
        StoreError::AlreadyExists(k) => err(
            ErrorCode::AlreadyExists,
            format!("{} {:?} already exists", resource(k.kind), k.name),
        ),
        StoreError::Conflict { .. } => err(ErrorCode::Conflict, e.to_string()),
        StoreError::Expired { .. } => err(ErrorCode::Expired, e.to_string()),
        StoreError::Invalid(m) => err(ErrorCode::Invalid, m),
        StoreError::Backend(_) | StoreError::Closed => err(ErrorCode::Internal, e.to_string()),
    }
}

fn conflict_msg(key: &ObjectKey) -> String {
    format!(
        "Operation cannot be fulfilled on {} {:?}: the object has been modified; please apply your changes to the latest version and try again",
        resource(key.kind),
        key.name
    )
}

/// How a request is decoded, and what it is told besides its answer (Kubernetes'
/// `fieldValidation` parameter and `Warning` headers; the HTTPS front end sets and reads
/// them, QUIC requests use the defaults).
#[derive(Debug, Default)]
pub struct Options {
    /// What an unknown field does.
    pub field_validation: FieldValidation,
    /// Warnings about the request's object (fields skiff does not implement, dropped
    /// unknown fields).
    pub warnings: Vec<String>,
    /// Kubernetes' `dryRun=All` for a create or update: admitted, validated and answered
    /// as if written; nothing stored, nothing reserved.
    pub dry_run: bool,
    /// A status write stores the managed fields it sends: the HTTPS front end tracks the
    /// managers of status writes (entries with `subresource: status`); the QUIC clients
    /// track none and keep the stored ones.
    pub status_managers: bool,
}

/// Decodes an object the server itself wrote (strict: an unknown field is a bug).
fn decode(json: &str) -> Result<Object, ApiError> {
    decode_with(json, &mut Options::default())
}

/// Decodes a request's object as its options say, keeping the warnings.
fn decode_with(json: &str, opts: &mut Options) -> Result<Object, ApiError> {
    let fields = opts.field_validation;
    parse_json_with(json, fields)
        .map(|m| {
            opts.warnings.extend(m.warnings);
            m.object
        })
        .map_err(|e| {
            let msg = e.errors.join("; ");
            let code = if msg.starts_with("invalid JSON") {
                ErrorCode::BadRequest
            } else {
                ErrorCode::Invalid
            };
            err(code, msg)
        })
}

fn stored_object(s: &Stored) -> Result<Object, ApiError> {
    Object::from_json(s.key.kind, &s.json)
        .map_err(|e| err(ErrorCode::Internal, format!("stored {}: {e}", s.key)))
}

impl<S: Store> Api<S> {
    /// Creates what must exist from the first start: the system namespaces and priority
    /// classes.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        for ns in SYSTEM_NAMESPACES {
            let key = ObjectKey {
                kind: Kind::Namespace,
                namespace: String::new(),
                name: ns.into(),
            };
            if self.store.get(&key).map_err(store_err)?.is_none() {
                let o = decode(&format!(
                    r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{ns}"}}}}"#
                ))?;
                self.create(o).await?;
            }
        }
        self.bootstrap_accounts().await?;
        self.bootstrap_priority_classes().await?;
        self.bootstrap_storage_class().await
    }

    /// Answers one request from `id`.
    pub async fn handle(&self, id: &Identity, req: Request) -> Response {
        self.handle_with(id, req, &mut Options::default()).await
    }

    /// [`Api::handle`] with options, and the warnings the request earned in them.
    pub async fn handle_with(&self, id: &Identity, req: Request, opts: &mut Options) -> Response {
        match self.dispatch(id, req, opts).await {
            Ok(r) => r,
            Err(e) => Response::Error(e),
        }
    }

    /// Each request's work is boxed by its arm, so this future (spawned per request
    /// stream) stays small: one arm's state is allocated, not the largest of them all,
    /// and nothing moves kilobytes of future on every request.
    async fn dispatch(
        &self,
        id: &Identity,
        req: Request,
        opts: &mut Options,
    ) -> Result<Response, ApiError> {
        if *id == Identity::Anonymous && !matches!(req, Request::Join { .. }) {
            return Err(err(ErrorCode::Unauthorized, "Unauthorized: no client certificate; use a config with credentials (admin.config) or join with a node token"));
        }
        if opts.dry_run
            && !matches!(
                req,
                Request::Create { .. }
                    | Request::Update { .. }
                    | Request::Delete { .. }
                    | Request::Evict { .. }
            )
        {
            return Err(err(
                ErrorCode::BadRequest,
                "dryRun is supported for create, update, patch, delete and eviction; nothing was done",
            ));
        }
        match req {
            Request::Version => Ok(Response::Version {
                server: skiff_api::VERSION.into(),
                protocol: String::from_utf8_lossy(skiff_api::wire::ALPN).into(),
            }),
            Request::WhoAmI => Ok(Response::Identity { name: id.name() }),
            Request::Get { key } => {
                let s = self.current(&key)?;
                self.authorize_read(id, &s)?;
                Ok(Response::Object {
                    object: s.json.to_string(),
                })
            }
            Request::List {
                kind,
                namespace,
                selector,
                limit,
                continue_token,
            } => {
                let sel = parse_selector(selector.as_deref())?;
                self.authorize_list(id, kind)?;
                self.list_page(id, kind, namespace.as_deref(), &sel, limit, continue_token)
            }
            Request::Create { object } => {
                Box::pin(async {
                    let o = decode_with(&object, opts)?;
                    self.authorize_write(id, &o, false).await?;
                    let (s, _) = self.create_dry(o, opts.dry_run).await?;
                    Ok(Response::Object {
                        object: s.json.to_string(),
                    })
                })
                .await
            }
            Request::Apply { object } => {
                Box::pin(async {
                    let o = decode_with(&object, opts)?;
                    self.authorize_write(id, &o, false).await?;
                    let (outcome, s) = self.apply(o).await?;
                    Ok(Response::Applied {
                        outcome,
                        object: s.json.to_string(),
                    })
                })
                .await
            }
            Request::Update { object, status } => {
                Box::pin(async {
                    let o = decode_with(&object, opts)?;
                    self.authorize_write(id, &o, status).await?;
                    let managers = status && opts.status_managers;
                    let (s, _) = self.update_dry(o, status, opts.dry_run, managers).await?;
                    Ok(Response::Object {
                        object: s.json.to_string(),
                    })
                })
                .await
            }
            Request::Delete { .. } => self.delete_request(id, req, opts.dry_run).await,
            Request::Evict { .. } => Box::pin(self.evict_request(id, req, opts.dry_run)).await,
            Request::Heartbeat | Request::ReportUsage { .. } | Request::Top => {
                self.node_reports(id, req)
            }
            Request::Logs(_) | Request::Exec(_) | Request::Attach(_) | Request::PortForward(_) => {
                Err(err(
                    ErrorCode::BadRequest,
                    "logs, exec, attach and port-forward are served on their own stream",
                ))
            }
            Request::Watch { .. } => Err(err(
                ErrorCode::BadRequest,
                "watch is served on its own stream",
            )),
            Request::ServiceAccountToken { .. } => {
                Box::pin(self.service_account_token(id, req)).await
            }
            Request::TokenCreate { .. } | Request::TokenList | Request::TokenRevoke { .. } => {
                self.admin_only(id)?;
                Box::pin(self.tokens(req)).await
            }
            Request::Join {
                token,
                node_name,
                csr_pem,
            } => Box::pin(self.join(&token, &node_name, &csr_pem)).await,
            Request::Renew { csr_pem } => Box::pin(self.renew(id, &csr_pem)).await,
        }
    }

    /// Heartbeats and usage reports from nodes, and usage read by admins (memory only).
    fn node_reports(&self, id: &Identity, req: Request) -> Result<Response, ApiError> {
        match req {
            Request::Heartbeat => {
                let Identity::Node(n) = id else {
                    return Err(err(ErrorCode::Forbidden, "only nodes send heartbeats"));
                };
                self.nodes.renew(n);
                Ok(Response::Ack)
            }
            Request::ReportUsage { node, pods } => {
                let Identity::Node(n) = id else {
                    return Err(err(ErrorCode::Forbidden, "only nodes report usage"));
                };
                self.nodes.report(n, node, pods);
                Ok(Response::Ack)
            }
            Request::Top => {
                if !matches!(id, Identity::Admin(_)) {
                    return Err(forbidden_verb(id, "read usage"));
                }
                Ok(Response::Usage {
                    nodes: self.nodes.reports(),
                })
            }
            _ => Err(err(ErrorCode::BadRequest, "not a node report")),
        }
    }

    /// One page of a list: up to `limit` matching objects (default 500) and at most
    /// [`PAGE_BYTES`] of JSON, so a page always fits in a frame.
    fn list_page(
        &self,
        id: &Identity,
        kind: Kind,
        namespace: Option<&str>,
        sel: &Selector,
        limit: Option<u32>,
        continue_token: Option<String>,
    ) -> Result<Response, ApiError> {
        let want = limit.map_or(500, |l| l.clamp(1, 10_000)) as usize;
        let mut after = continue_token;
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut revision = None;
        loop {
            let page = self
                .store
                .list_page(kind, namespace, after.as_deref(), want.max(64))
                .map_err(store_err)?;
            let revision = *revision.get_or_insert(page.revision);
            for (i, s) in page.items.iter().enumerate() {
                after = Some(format!("{}/{}", s.key.namespace, s.key.name));
                if (sel.is_empty() || sel.matches(&crate::store::labels_of(&s.value())))
                    && self.visible_to(id, s)
                {
                    bytes += s.json.len();
                    items.push(s.json.to_string());
                }
                if items.len() >= want || bytes >= PAGE_BYTES {
                    let more = page.more || i + 1 < page.items.len();
                    return Ok(Response::List {
                        revision,
                        items,
                        continue_token: if more { after } else { None },
                    });
                }
            }
            if !page.more {
                return Ok(Response::List {
                    revision,
                    items,
                    continue_token: None,
                });
            }
        }
    }

    /// The stored object, or NotFound.
    fn current(&self, key: &ObjectKey) -> Result<Stored, ApiError> {
        self.store
            .get(key)
            .map_err(store_err)?
            .ok_or_else(|| store_err(StoreError::NotFound(key.clone())))
    }
}

fn parse_selector(s: Option<&str>) -> Result<Selector, ApiError> {
    match s {
        None => Ok(Selector::default()),
        Some(s) => Selector::parse(s).map_err(|e| err(ErrorCode::BadRequest, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_version_4_uuids_and_distinct_across_pool_refills() {
        // 10,000 uids use 320,000 pooled bytes: the pool refills about 80 times.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let u = uid();
            let parts: Vec<&str> = u.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{u}");
            assert!(
                parts[2].starts_with('4') && parts[3].starts_with('a'),
                "{u}"
            );
            assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{u}");
            assert!(seen.insert(u), "a uid repeated");
        }
    }

    #[test]
    fn pooled_strings_use_only_the_alphabet_and_vary() {
        let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
        let names: std::collections::HashSet<String> =
            (0..2_000).map(|_| random_string(5, alphabet)).collect();
        assert!(names
            .iter()
            .all(|n| n.len() == 5 && n.bytes().all(|b| alphabet.contains(&b))));
        // 27^5 = 14 million names: 2,000 draws give more than 1,990 distinct ones.
        assert!(names.len() > 1_990, "{} distinct", names.len());
    }
}
