//! The API: authorization, then create/apply/replace/delete/get/list against the store,
//! node join tokens and node enrolment. Transport lives in `server.rs`.

use crate::pki::{Identity, Pki};
use crate::store::{Put, Store, StoreError, Stored, WriteOp};
use base64::Engine;
use serde_json::Value;
use skiff_api::defaults::apply_defaults;
use skiff_api::manifest::parse_json;
use skiff_api::selector::Selector;
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::validate::{dns1123_subdomain_problem, validate_update};
use skiff_api::wire::{
    ApiError, ApplyOutcome, ErrorCode, Propagation, Request, Response, TokenInfo,
};
use skiff_api::{Kind, Object, ObjectKey};
use std::time::{SystemTime, UNIX_EPOCH};

/// Namespaces that exist from the first start and may not be deleted.
pub const SYSTEM_NAMESPACES: [&str; 2] = ["default", "kube-system"];

const TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";

/// The most JSON one list page carries (well under the frame limit).
pub const PAGE_BYTES: usize = 4 << 20;

/// What a delete did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object was marked (`deletionTimestamp`): its node, finalizers or the garbage
    /// collector finish the deletion.
    Marked(Stored),
    /// The object is gone; its last state.
    Gone(Stored),
}

impl Deleted {
    /// The object's state after the delete (its last state when gone).
    pub fn stored(&self) -> &Stored {
        match self {
            Deleted::Marked(s) | Deleted::Gone(s) => s,
        }
    }
}

/// How a delete goes (`Api::delete_object`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions<'a> {
    /// Only this revision (a `resourceVersion` precondition).
    pub rv: Option<u64>,
    /// Only the object with this uid.
    pub uid: Option<&'a str>,
    /// A pod's grace period, instead of its `terminationGracePeriodSeconds`.
    pub grace: Option<i64>,
    /// At once, without the node's graceful stop (pods).
    pub force: bool,
    /// What becomes of the objects it owns.
    pub propagation: Propagation,
    /// The pod's node confirms it stopped the pod.
    pub by_node: bool,
}

/// What a read-modify-write decided (`Api::rewrite`).
enum Step {
    /// Write this object in place of the one read.
    Put(Box<Object>),
    /// Delete the object read.
    Delete,
    /// Nothing to write: the object read is the answer.
    Keep,
}

/// What marking a pod for its node to stop did.
enum PodMark {
    /// Marked (or a shorter grace period set): write it.
    Marked(Box<skiff_api::pod::Pod>),
    /// Already terminating with a grace period no longer than asked.
    Already,
    /// On no node: nothing will stop it, so it goes at once.
    Unbound,
}

/// Marks a pod bound to a node as terminating (`deletionTimestamp`, grace period).
fn mark_pod(pod: &skiff_api::pod::Pod, grace: Option<i64>) -> PodMark {
    if pod.spec.node_name.is_none() {
        return PodMark::Unbound;
    }
    let grace = grace
        .or(pod.spec.termination_grace_period_seconds)
        .unwrap_or(30)
        .max(0);
    let m = &pod.metadata;
    // Already terminating: a shorter grace period may replace the longer one.
    if m.deletion_timestamp.is_some() && m.deletion_grace_period_seconds.is_some_and(|g| grace >= g)
    {
        return PodMark::Already;
    }
    let mut pod = pod.clone();
    let m = &mut pod.metadata;
    if m.deletion_timestamp.is_none() {
        m.deletion_timestamp = Some(rfc3339(now()));
    }
    m.deletion_grace_period_seconds = Some(grace);
    PodMark::Marked(Box::new(pod))
}

/// Marks an object as being deleted (`deletionTimestamp`), with a finalizer to wait for.
fn mark_deleted(mut o: Object, finalizer: Option<&str>) -> Object {
    let m = o.meta_mut();
    if m.deletion_timestamp.is_none() {
        m.deletion_timestamp = Some(rfc3339(now()));
        m.deletion_grace_period_seconds = Some(0);
    }
    if let Some(f) = finalizer {
        if !m.finalizers.iter().any(|x| x == f) {
            m.finalizers.push(f.to_string());
        }
    }
    o
}

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

type Held = std::collections::HashMap<ObjectKey, crate::services::Holding>;

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

/// Notes what a Service holds after its write was acknowledged.
fn record_service(held: Option<&mut Option<Held>>, key: &ObjectKey, o: &Object) {
    if let (Some(Some(held)), Object::Service(svc)) = (held, o) {
        held.insert(key.clone(), crate::services::Holding::of(&svc.spec));
    }
}

/// A one-object write's result and the object written, its `resourceVersion` the
/// revision the store gave it.
fn written(mut stored: Vec<Stored>, mut o: Object) -> (Stored, Object) {
    let s = stored.remove(0);
    o.meta_mut().resource_version = Some(s.revision.to_string());
    (s, o)
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

fn decode(json: &str) -> Result<Object, ApiError> {
    parse_json(json).map(|m| m.object).map_err(|e| {
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

/// A pod bound to `node`, if it still has `uid` and is neither bound nor being deleted.
fn bound_pod(
    key: &ObjectKey,
    mut pod: skiff_api::pod::Pod,
    uid: &str,
    node: &str,
) -> Result<skiff_api::pod::Pod, ApiError> {
    if pod.metadata.uid.as_deref() != Some(uid) {
        return Err(store_err(StoreError::NotFound(key.clone())));
    }
    if pod.spec.node_name.is_some() || pod.metadata.deletion_timestamp.is_some() {
        return Err(err(
            ErrorCode::Conflict,
            format!("pod {:?} is already bound or being deleted", key.name),
        ));
    }
    pod.spec.node_name = Some(node.to_string());
    let st = pod.status.get_or_insert_with(Default::default);
    skiff_api::conditions::set_condition(
        &mut st.conditions,
        "PodScheduled",
        "True",
        "Scheduled",
        "",
        now(),
    );
    if let Some(c) = st.conditions.iter_mut().find(|c| c.type_ == "PodScheduled") {
        c.reason = None;
        c.message = None;
        c.last_update_time = None;
    }
    Ok(pod)
}

/// Annotations the system writes; apply keeps them.
fn system_annotation(k: &str) -> bool {
    k.starts_with("deployment.kubernetes.io/")
        || k.starts_with("skiff.io/")
        || k.starts_with("kubectl.kubernetes.io/restartedAt")
}

impl<S: Store> Api<S> {
    /// Creates what must exist from the first start: the system namespaces.
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
        Ok(())
    }

    /// Answers one request from `id`.
    pub async fn handle(&self, id: &Identity, req: Request) -> Response {
        match self.dispatch(id, req).await {
            Ok(r) => r,
            Err(e) => Response::Error(e),
        }
    }

    /// Each request's work is boxed by its arm, so this future (spawned per request
    /// stream) stays small: one arm's state is allocated, not the largest of them all,
    /// and nothing moves kilobytes of future on every request.
    async fn dispatch(&self, id: &Identity, req: Request) -> Result<Response, ApiError> {
        if *id == Identity::Anonymous && !matches!(req, Request::Join { .. }) {
            return Err(err(ErrorCode::Unauthorized, "Unauthorized: no client certificate; use a config with credentials (admin.config) or join with a node token"));
        }
        match req {
            Request::Version => Ok(Response::Version {
                server: skiff_api::VERSION.into(),
                protocol: String::from_utf8_lossy(skiff_api::wire::ALPN).into(),
            }),
            Request::WhoAmI => Ok(Response::Identity { name: id.name() }),
            Request::Get { key } => {
                let s = self
                    .store
                    .get(&key)
                    .map_err(store_err)?
                    .ok_or_else(|| store_err(StoreError::NotFound(key.clone())))?;
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
                    let o = decode(&object)?;
                    self.authorize_write(id, &o, false).await?;
                    let s = self.create(o).await?;
                    Ok(Response::Object {
                        object: s.json.to_string(),
                    })
                })
                .await
            }
            Request::Apply { object } => {
                Box::pin(async {
                    let o = decode(&object)?;
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
                    let o = decode(&object)?;
                    self.authorize_write(id, &o, status).await?;
                    let s = self.update(o, status).await?;
                    Ok(Response::Object {
                        object: s.json.to_string(),
                    })
                })
                .await
            }
            Request::Delete {
                key,
                resource_version,
                grace_period_seconds,
                force,
                propagation,
            } => {
                if !matches!(id, Identity::Admin(_)) {
                    let s = self
                        .store
                        .get(&key)
                        .map_err(store_err)?
                        .ok_or_else(|| store_err(StoreError::NotFound(key.clone())))?;
                    if !(key.kind == Kind::Pod && self.pod_on_node(id, &s)) {
                        return Err(forbidden(id, "delete", &key));
                    }
                }
                let opts = DeleteOptions {
                    rv: resource_version,
                    grace: grace_period_seconds,
                    force,
                    propagation,
                    by_node: matches!(id, Identity::Node(_)),
                    ..Default::default()
                };
                let s = Box::pin(self.delete_object(&key, opts)).await?;
                Ok(Response::Object {
                    object: s.stored().json.to_string(),
                })
            }
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
            Request::Logs(_) | Request::Exec(_) => Err(err(
                ErrorCode::BadRequest,
                "logs and exec are served on their own stream",
            )),
            Request::Watch { .. } => Err(err(
                ErrorCode::BadRequest,
                "watch is served on its own stream",
            )),
            Request::TokenCreate {
                ttl_seconds,
                description,
            } => {
                self.admin_only(id)?;
                Box::pin(self.token_create(ttl_seconds, description)).await
            }
            Request::TokenList => {
                self.admin_only(id)?;
                Ok(Response::Tokens {
                    tokens: self.token_list()?,
                })
            }
            Request::TokenRevoke { id: tid } => {
                self.admin_only(id)?;
                let key = ObjectKey {
                    kind: Kind::Secret,
                    namespace: "kube-system".into(),
                    name: format!("bootstrap-token-{tid}"),
                };
                self.store
                    .write(WriteOp::Delete {
                        key,
                        expected: None,
                    })
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound(_) => {
                            err(ErrorCode::NotFound, format!("token {tid:?} not found"))
                        }
                        e => store_err(e),
                    })?;
                Ok(Response::Tokens {
                    tokens: self.token_list()?,
                })
            }
            Request::Join {
                token,
                node_name,
                csr_pem,
            } => self.join(&token, &node_name, &csr_pem),
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

    fn admin_only(&self, id: &Identity) -> Result<(), ApiError> {
        match id {
            Identity::Admin(_) => Ok(()),
            _ => Err(err(
                ErrorCode::Forbidden,
                format!("{} may not manage join tokens", id.name()),
            )),
        }
    }

    /// Checks a watch request; returns the extra filter a node identity is held to.
    pub fn authorize_watch(&self, id: &Identity, kind: Kind) -> Result<(), ApiError> {
        if *id == Identity::Anonymous {
            return Err(err(
                ErrorCode::Unauthorized,
                "Unauthorized: no client certificate",
            ));
        }
        self.authorize_list(id, kind)
    }

    fn authorize_list(&self, id: &Identity, kind: Kind) -> Result<(), ApiError> {
        match id {
            Identity::Admin(_) => Ok(()),
            Identity::Node(_)
                if matches!(
                    kind,
                    Kind::Pod
                        | Kind::Node
                        | Kind::ConfigMap
                        | Kind::Secret
                        | Kind::Service
                        | Kind::Endpoints
                        | Kind::Ingress
                ) =>
            {
                Ok(())
            }
            _ => Err(err(
                ErrorCode::Forbidden,
                format!("{} may not list {}", id.name(), resource(kind)),
            )),
        }
    }

    /// Whether a listed or watched object may be shown to `id`.
    pub fn visible_to(&self, id: &Identity, s: &Stored) -> bool {
        match id {
            Identity::Admin(_) => true,
            Identity::Node(n) => match s.key.kind {
                Kind::Pod => self.pod_on_node(id, s),
                // Every node routes to every other node's pods and serves every
                // Service and Ingress (as the kubelet, kube-proxy and an ingress
                // controller read them).
                Kind::Node | Kind::Service | Kind::Endpoints | Kind::Ingress => true,
                Kind::ConfigMap | Kind::Secret => {
                    self.referenced_by_node_pods(n, &s.key).unwrap_or(false)
                }
                _ => false,
            },
            Identity::Anonymous => false,
        }
    }

    /// The stored object, or NotFound.
    fn current(&self, key: &ObjectKey) -> Result<Stored, ApiError> {
        self.store
            .get(key)
            .map_err(store_err)?
            .ok_or_else(|| store_err(StoreError::NotFound(key.clone())))
    }

    /// Whether a watch event may be shown to `id` (a node's pods by the event's memo).
    pub fn event_visible_to(&self, id: &Identity, e: &crate::store::StoreEvent) -> bool {
        match (id, e.object.key.kind) {
            (Identity::Node(n), Kind::Pod) => e.node_name() == Some(n.as_str()),
            _ => self.visible_to(id, &e.object),
        }
    }

    fn pod_on_node(&self, id: &Identity, s: &Stored) -> bool {
        let Identity::Node(n) = id else { return false };
        s.value().pointer("/spec/nodeName").and_then(Value::as_str) == Some(n.as_str())
    }

    fn authorize_read(&self, id: &Identity, s: &Stored) -> Result<(), ApiError> {
        let Identity::Node(n) = id else { return Ok(()) };
        let allowed = match s.key.kind {
            Kind::Node | Kind::Service | Kind::Endpoints | Kind::Ingress => true,
            Kind::Pod => self.pod_on_node(id, s),
            Kind::ConfigMap | Kind::Secret => self.referenced_by_node_pods(n, &s.key)?,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden(id, "get", &s.key))
        }
    }

    /// Whether a node may read a ConfigMap or Secret: one its pods use, or (a Secret) the
    /// certificate of an Ingress, which every node serves.
    fn referenced_by_node_pods(&self, node: &str, key: &ObjectKey) -> Result<bool, ApiError> {
        if key.kind == Kind::Secret {
            let (_, ingresses) = self
                .store
                .list(Kind::Ingress, Some(&key.namespace))
                .map_err(store_err)?;
            for i in ingresses {
                if let Ok(Object::Ingress(ing)) = stored_object(&i) {
                    if ing.tls_secret_names().contains(&key.name) {
                        return Ok(true);
                    }
                }
            }
        }
        let (_, pods) = self
            .store
            .list(Kind::Pod, Some(&key.namespace))
            .map_err(store_err)?;
        for p in pods {
            let Ok(Object::Pod(pod)) = stored_object(&p) else {
                continue;
            };
            if pod.spec.node_name.as_deref() != Some(node) {
                continue;
            }
            let names = if key.kind == Kind::Secret {
                pod.spec.secret_names()
            } else {
                pod.spec.config_map_names()
            };
            if names.contains(&key.name) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn authorize_write(
        &self,
        id: &Identity,
        o: &Object,
        status: bool,
    ) -> Result<(), ApiError> {
        let Identity::Node(n) = id else { return Ok(()) };
        let key = o.key();
        let allowed = match o.kind() {
            Kind::Node => key.name == *n,
            Kind::Event => true,
            Kind::Pod if status => {
                let mut k = key.clone();
                if k.namespace.is_empty() {
                    k.namespace = "default".into();
                }
                match self.store.get(&k).map_err(store_err)? {
                    Some(s) => self.pod_on_node(id, &s),
                    None => false,
                }
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden(
                id,
                if status { "update status of" } else { "write" },
                &key,
            ))
        }
    }

    /// For a Service write (none for other kinds): what every Service holds (read from
    /// the store when first needed), locked until the write is acknowledged.
    async fn service_lock(
        &self,
        kind: Kind,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, Option<Held>>>, ApiError> {
        if kind != Kind::Service {
            return Ok(None);
        }
        let mut g = self.services.held.lock().await;
        if g.is_none() {
            let (_, all) = self.store.list(Kind::Service, None).map_err(store_err)?;
            let mut m = Held::new();
            for s in &all {
                if let Ok(Object::Service(svc)) = stored_object(s) {
                    m.insert(s.key.clone(), crate::services::Holding::of(&svc.spec));
                }
            }
            *g = Some(m);
        }
        Ok(Some(g))
    }

    /// Gives a Service its ClusterIP and node ports (see [`crate::services::assign`]).
    fn assign_service(
        &self,
        held: &Option<Held>,
        key: &ObjectKey,
        next: &mut Object,
        old: Option<&Object>,
    ) -> Result<(), ApiError> {
        let (Object::Service(svc), Some(held)) = (next, held) else {
            return Ok(());
        };
        let old = match old {
            Some(Object::Service(o)) => Some(&o.spec),
            _ => None,
        };
        let mut others = held.iter().filter(|(k, _)| *k != key).map(|(_, h)| h);
        let seed = u32::from_le_bytes(random_bytes4());
        crate::services::assign(&self.services, &mut svc.spec, old, &mut others, seed).map_err(
            |e| {
                err(
                    ErrorCode::Invalid,
                    format!("services {:?} is invalid: {e}", key.name),
                )
            },
        )
    }

    /// Fills in what the server owns on a new object and stores it.
    pub async fn create(&self, o: Object) -> Result<Stored, ApiError> {
        self.create_object(o).await.map(|(s, _)| s)
    }

    /// [`Api::create`], also handing back the object as stored (its `resourceVersion`
    /// set), so a caller that keeps objects need not parse the stored text again.
    pub async fn create_object(&self, mut o: Object) -> Result<(Stored, Object), ApiError> {
        // A new node gets its pod CIDR: one /24 of the cluster CIDR no other node holds.
        let mut _cidr_guard = match &mut o {
            Object::Node(n) if n.spec.pod_cidr.is_none() => {
                let mut guard = self.nodes.cidr_lock.lock().await;
                if guard.is_none() {
                    let (_, nodes) = self.store.list(Kind::Node, None).map_err(store_err)?;
                    *guard = Some(
                        nodes
                            .iter()
                            .filter_map(|s| {
                                s.value()
                                    .pointer("/spec/podCIDR")
                                    .and_then(Value::as_str)
                                    .map(String::from)
                            })
                            .collect(),
                    );
                }
                let taken = guard.as_ref().expect("filled above");
                let cidr = crate::nodes::free_node_cidr(self.nodes.cluster_cidr, taken)
                    .ok_or_else(|| {
                        err(
                            ErrorCode::Invalid,
                            "the cluster CIDR has no /24 left for another node",
                        )
                    })?;
                n.spec.pod_cidrs = vec![cidr.clone()];
                n.spec.pod_cidr = Some(cidr);
                // Forget what is known of taken CIDRs if this create fails; it is rebuilt.
                Some(guard)
            }
            _ => None,
        };
        let kind = o.kind();
        {
            let m = o.meta_mut();
            if m.resource_version.is_some() {
                return Err(err(ErrorCode::BadRequest, "metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created"));
            }
            if kind.namespaced() && m.namespace.is_none() {
                m.namespace = Some("default".into());
            }
            m.uid = Some(uid());
            m.creation_timestamp = Some(rfc3339(now()));
            m.generation = None;
            m.deletion_timestamp = None;
        }
        // Status is the system's to write, except a Node's (its agent reports it) and Events.
        clear_status(&mut o);
        apply_defaults(&mut o);
        let mut svc_held = self.service_lock(kind).await?;
        if kind.namespaced() {
            let ns = o.meta().namespace().to_string();
            let key = ObjectKey {
                kind: Kind::Namespace,
                namespace: String::new(),
                name: ns.clone(),
            };
            if !self.store.contains(&key).map_err(store_err)? {
                return Err(err(
                    ErrorCode::NotFound,
                    format!("namespaces {ns:?} not found"),
                ));
            }
        }
        let generated = o.meta().name.is_none();
        for _ in 0..8 {
            if generated {
                let prefix = o.meta().generate_name.clone().unwrap_or_default();
                o.meta_mut().name = Some(format!(
                    "{prefix}{}",
                    random_string(5, b"bcdfghjklmnpqrstvwxz2456789")
                ));
            }
            set_generation(None, &mut o);
            if let Some(held) = &svc_held {
                self.assign_service(held, &o.key(), &mut o, None)?;
            }
            let op = WriteOp::Create(Put::from_object(&mut o).map_err(store_err)?);
            match self.store.write(op).await {
                Ok(s) => {
                    record_service(svc_held.as_deref_mut(), &o.key(), &o);
                    if let (Some(guard), Object::Node(n)) = (_cidr_guard.as_mut(), &o) {
                        if let (Some(set), Some(c)) = (guard.as_mut(), &n.spec.pod_cidr) {
                            set.insert(c.clone());
                        }
                    }
                    return Ok(written(s, o));
                }
                Err(StoreError::AlreadyExists(_)) if generated => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(
            ErrorCode::AlreadyExists,
            "could not generate a unique name; try again",
        ))
    }

    /// Creates, or replaces the user-owned parts of, an object.
    pub async fn apply(&self, mut o: Object) -> Result<(ApplyOutcome, Stored), ApiError> {
        let kind = o.kind();
        if kind.namespaced() && o.meta().namespace.is_none() {
            o.meta_mut().namespace = Some("default".into());
        }
        let key = o.key();
        for _ in 0..5 {
            let Some(cur) = self.store.get(&key).map_err(store_err)? else {
                o.meta_mut().resource_version = None;
                match self.create(o.clone()).await {
                    Ok(s) => return Ok((ApplyOutcome::Created, s)),
                    Err(e) if e.code == ErrorCode::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            };
            let current = stored_object(&cur)?;
            let mut next = o.clone();
            carry_system_fields(&current, &mut next, true);
            let mut svc_held = self.service_lock(kind).await?;
            // Annotations the system wrote survive an apply.
            for (k, v) in &current.meta().annotations {
                if system_annotation(k) {
                    next.meta_mut()
                        .annotations
                        .entry(k.clone())
                        .or_insert_with(|| v.clone());
                }
            }
            apply_defaults(&mut next);
            check_update(&current, &next)?;
            if let Some(held) = &svc_held {
                self.assign_service(held, &key, &mut next, Some(&current))?;
            }
            if next == current {
                return Ok((ApplyOutcome::Unchanged, cur));
            }
            set_generation(Some(&current), &mut next);
            let op = WriteOp::Update {
                put: Put::from_object(&mut next).map_err(store_err)?,
                expected: Some(cur.revision),
            };
            match self.store.write(op).await {
                Ok(mut s) => {
                    record_service(svc_held.as_deref_mut(), &key, &next);
                    return Ok((ApplyOutcome::Configured, s.remove(0)));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(ErrorCode::Conflict, conflict_msg(&key)))
    }

    /// Replaces an object (or only its status). A `resourceVersion` in it is a precondition.
    pub async fn update(&self, o: Object, status_only: bool) -> Result<Stored, ApiError> {
        self.update_object(o, status_only).await.map(|(s, _)| s)
    }

    /// [`Api::update`], also handing back the object as stored (its `resourceVersion`
    /// set).
    pub async fn update_object(
        &self,
        mut o: Object,
        status_only: bool,
    ) -> Result<(Stored, Object), ApiError> {
        if o.kind().namespaced() && o.meta().namespace.is_none() {
            o.meta_mut().namespace = Some("default".into());
        }
        let key = o.key();
        let given = match &o.meta().resource_version {
            None => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| err(ErrorCode::BadRequest, format!("metadata.resourceVersion: Invalid value: {rv:?}: must be a revision number")))?),
        };
        for _ in 0..5 {
            let cur = self.current(&key)?;
            if let Some(g) = given {
                if g != cur.revision {
                    return Err(err(ErrorCode::Conflict, conflict_msg(&key)));
                }
            }
            let current = stored_object(&cur)?;
            let mut next = if status_only {
                let mut n = current.clone();
                copy_status(&o, &mut n);
                n
            } else {
                let mut n = o.clone();
                carry_system_fields(&current, &mut n, false);
                apply_defaults(&mut n);
                check_update(&current, &n)?;
                set_generation(Some(&current), &mut n);
                n
            };
            let mut svc_held = match status_only {
                true => None,
                false => self.service_lock(key.kind).await?,
            };
            if let Some(held) = &svc_held {
                self.assign_service(held, &key, &mut next, Some(&current))?;
            }
            let op = WriteOp::Update {
                put: Put::from_object(&mut next).map_err(store_err)?,
                expected: Some(cur.revision),
            };
            match self.store.write(op).await {
                Ok(s) => {
                    record_service(svc_held.as_deref_mut(), &key, &next);
                    return Ok(written(s, next));
                }
                Err(StoreError::Conflict { .. }) if given.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(err(ErrorCode::Conflict, conflict_msg(&key)))
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(ErrorCode::Conflict, conflict_msg(&key)))
    }

    /// Deletes an object; a namespace takes everything in it along.
    pub async fn delete(&self, key: ObjectKey, rv: Option<u64>) -> Result<Stored, ApiError> {
        if key.kind == Kind::Namespace {
            if SYSTEM_NAMESPACES.contains(&key.name.as_str()) {
                return Err(err(
                    ErrorCode::Forbidden,
                    format!(
                        "namespaces {:?} is forbidden: this namespace may not be deleted",
                        key.name
                    ),
                ));
            }
            let cur = self.current(&key)?;
            if rv.is_some_and(|r| r != cur.revision) {
                return Err(err(ErrorCode::Conflict, conflict_msg(&key)));
            }
            let mut held = self.services.held.lock().await;
            *held = None;
            let gone = self
                .store
                .write(WriteOp::DeleteNamespace(key.name.clone()))
                .await
                .map_err(store_err)?;
            return gone
                .into_iter()
                .find(|s| s.key == key)
                .ok_or_else(|| err(ErrorCode::Internal, "namespace vanished"));
        }
        let mut gone = self
            .store
            .write(WriteOp::Delete {
                key: key.clone(),
                expected: rv,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => err(ErrorCode::Conflict, conflict_msg(&key)),
                e => store_err(e),
            })?;
        Ok(gone.remove(0))
    }

    /// Reads `key`, lets `decide` choose what becomes of it, and writes that with the
    /// revision read as precondition; on a conflict it reads again, unless the caller gave
    /// `rv` (then the conflict is the answer).
    async fn rewrite(
        &self,
        key: &ObjectKey,
        rv: Option<u64>,
        mut decide: impl FnMut(&Stored, Object) -> Result<Step, ApiError>,
    ) -> Result<Deleted, ApiError> {
        for _ in 0..5 {
            let cur = self.current(key)?;
            if rv.is_some_and(|r| r != cur.revision) {
                return Err(err(ErrorCode::Conflict, conflict_msg(key)));
            }
            let obj = stored_object(&cur)?;
            let (op, gone) = match decide(&cur, obj)? {
                Step::Keep => return Ok(Deleted::Marked(cur)),
                Step::Put(mut o) => (
                    WriteOp::Update {
                        put: Put::from_object(&mut o).map_err(store_err)?,
                        expected: Some(cur.revision),
                    },
                    false,
                ),
                Step::Delete => (
                    WriteOp::Delete {
                        key: key.clone(),
                        expected: Some(cur.revision),
                    },
                    true,
                ),
            };
            match self.store.write(op).await {
                Ok(mut s) if gone => return Ok(Deleted::Gone(s.remove(0))),
                Ok(mut s) => return Ok(Deleted::Marked(s.remove(0))),
                Err(StoreError::Conflict { .. }) if rv.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(err(ErrorCode::Conflict, conflict_msg(key)))
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(ErrorCode::Conflict, conflict_msg(key)))
    }

    /// Deletes an object as asked: `propagation` other than background marks an owner
    /// (`deletionTimestamp` and the `foregroundDeletion` or `orphan` finalizer) for the
    /// garbage collector; a pod bound to a node is marked for its node to stop it (unless
    /// `force`, or the node itself confirms); an object with finalizers is only marked.
    pub async fn delete_object(
        &self,
        key: &ObjectKey,
        opts: DeleteOptions<'_>,
    ) -> Result<Deleted, ApiError> {
        if key.kind == Kind::Namespace {
            return self.delete(key.clone(), opts.rv).await.map(Deleted::Gone);
        }
        let finalizer = match opts.propagation {
            Propagation::Foreground => Some(skiff_api::well_known::FOREGROUND),
            Propagation::Orphan => Some(skiff_api::well_known::ORPHAN),
            Propagation::Background => None,
        };
        let d = self
            .rewrite(key, opts.rv, |_, obj| {
                if opts
                    .uid
                    .is_some_and(|u| obj.meta().uid.as_deref() != Some(u))
                {
                    return Err(store_err(StoreError::NotFound(key.clone())));
                }
                let finalized = obj.meta().finalizers.is_empty();
                Ok(match (finalizer, &obj) {
                    (Some(f), _) if key.kind != Kind::Pod && !opts.by_node => {
                        Step::Put(Box::new(mark_deleted(obj, Some(f))))
                    }
                    // A pod on a node ends gracefully: this marks it, its node stops the
                    // containers and then confirms with its own delete.
                    (_, Object::Pod(pod)) if !opts.force && !opts.by_node => {
                        match mark_pod(pod, opts.grace) {
                            PodMark::Marked(p) => Step::Put(Box::new(Object::Pod(*p))),
                            PodMark::Already => Step::Keep,
                            PodMark::Unbound if finalized => Step::Delete,
                            PodMark::Unbound => Step::Put(Box::new(mark_deleted(obj, None))),
                        }
                    }
                    _ if !finalized && obj.meta().deletion_timestamp.is_some() => Step::Keep,
                    _ if !finalized => Step::Put(Box::new(mark_deleted(obj, None))),
                    _ => Step::Delete,
                })
            })
            .await?;
        if key.kind == Kind::Service && matches!(d, Deleted::Gone(_)) {
            if let Some(held) = self.services.held.lock().await.as_mut() {
                held.remove(key);
            }
        }
        if key.kind == Kind::Node && matches!(d, Deleted::Gone(_)) {
            // Its pod CIDR is free again: read the taken ones anew next time.
            *self.nodes.cidr_lock.lock().await = None;
        }
        Ok(d)
    }

    /// Removes a finalizer; an object being deleted goes with its last one.
    pub async fn remove_finalizer(
        &self,
        key: &ObjectKey,
        uid: &str,
        finalizer: &str,
    ) -> Result<Deleted, ApiError> {
        self.rewrite(key, None, |_, mut obj| {
            if obj.meta().uid.as_deref() != Some(uid) {
                return Err(store_err(StoreError::NotFound(key.clone())));
            }
            obj.meta_mut().finalizers.retain(|f| f != finalizer);
            let m = obj.meta();
            Ok(
                if m.deletion_timestamp.is_some()
                    && m.finalizers.is_empty()
                    && key.kind != Kind::Pod
                {
                    Step::Delete
                } else {
                    Step::Put(Box::new(obj))
                },
            )
        })
        .await
    }

    /// Binds a pod to a node (the scheduler's `pods/binding`): sets `spec.nodeName` and
    /// PodScheduled=True, only if the pod still has `uid` and is neither bound nor being
    /// deleted. `seen` is the pod as the caller last saw it and the revision that wrote
    /// it: it is bound from that without reading the store, the revision as precondition;
    /// if the pod changed since, it is read again.
    pub async fn bind(
        &self,
        key: &ObjectKey,
        uid: &str,
        node: &str,
        seen: Option<(u64, &Object)>,
    ) -> Result<Stored, ApiError> {
        self.bind_object(key, uid, node, seen).await.map(|(s, _)| s)
    }

    /// [`Api::bind`], also handing back the pod as stored when it was bound from `seen`.
    pub async fn bind_object(
        &self,
        key: &ObjectKey,
        uid: &str,
        node: &str,
        seen: Option<(u64, &Object)>,
    ) -> Result<(Stored, Option<Object>), ApiError> {
        if let Some((revision, Object::Pod(pod))) = seen {
            let mut next = Object::Pod(bound_pod(key, pod.clone(), uid, node)?);
            let op = WriteOp::Update {
                put: Put::from_object(&mut next).map_err(store_err)?,
                expected: Some(revision),
            };
            match self.store.write(op).await {
                Ok(s) => {
                    let (s, next) = written(s, next);
                    return Ok((s, Some(next)));
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        let d = self
            .rewrite(key, None, |_, obj| {
                let Object::Pod(pod) = obj else {
                    return Err(err(ErrorCode::BadRequest, "only pods are bound"));
                };
                Ok(Step::Put(Box::new(Object::Pod(bound_pod(
                    key, pod, uid, node,
                )?))))
            })
            .await?;
        Ok((d.stored().clone(), None))
    }

    async fn token_create(
        &self,
        ttl: Option<u64>,
        description: String,
    ) -> Result<Response, ApiError> {
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let id = random_string(6, alphabet);
        let secret = random_string(16, alphabet);
        let expires = ttl.map(|t| now() + t);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut data = serde_json::Map::new();
        data.insert("token-id".into(), b64.encode(&id).into());
        data.insert("token-secret".into(), b64.encode(&secret).into());
        data.insert(
            "usage-bootstrap-authentication".into(),
            b64.encode("true").into(),
        );
        data.insert("description".into(), b64.encode(&description).into());
        if let Some(e) = expires {
            data.insert("expiration".into(), b64.encode(rfc3339(e)).into());
        }
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
            "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
            "data": data,
        });
        let o = decode(&v.to_string())?;
        self.create(o).await?;
        Ok(Response::Token {
            token: format!("SK10{}::{id}.{secret}", self.pki.ca_fingerprint()),
            info: TokenInfo {
                id,
                expires,
                description,
            },
        })
    }

    fn token_list(&self) -> Result<Vec<TokenInfo>, ApiError> {
        let (_, secrets) = self
            .store
            .list(Kind::Secret, Some("kube-system"))
            .map_err(store_err)?;
        let mut out = Vec::new();
        for s in secrets {
            let Ok(Object::Secret(sec)) = stored_object(&s) else {
                continue;
            };
            if sec.type_.as_deref() != Some(TOKEN_TYPE) {
                continue;
            }
            let field = |k: &str| {
                sec.data
                    .get(k)
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            };
            out.push(TokenInfo {
                id: field("token-id").unwrap_or_default(),
                expires: field("expiration").and_then(|e| parse_rfc3339(&e)),
                description: field("description").unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Checks a join token; returns its id when valid.
    pub fn check_token(&self, token: &str) -> Result<String, ApiError> {
        let bad = || err(ErrorCode::Unauthorized, "invalid or expired join token");
        let (fp, cred) = skiff_client::parse_token(token).ok_or_else(bad)?;
        if fp != self.pki.ca_fingerprint() {
            return Err(bad());
        }
        let (id, secret) = cred.split_once('.').ok_or_else(bad)?;
        let key = ObjectKey {
            kind: Kind::Secret,
            namespace: "kube-system".into(),
            name: format!("bootstrap-token-{id}"),
        };
        let s = self.store.get(&key).map_err(store_err)?.ok_or_else(bad)?;
        let Object::Secret(sec) = stored_object(&s)? else {
            return Err(bad());
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let stored_secret = sec
            .data
            .get("token-secret")
            .and_then(|v| b64.decode(v).ok())
            .ok_or_else(bad)?;
        if !constant_time_eq(&stored_secret, secret.as_bytes()) {
            return Err(bad());
        }
        if let Some(exp) = sec.data.get("expiration").and_then(|v| b64.decode(v).ok()) {
            let exp = parse_rfc3339(&String::from_utf8_lossy(&exp)).ok_or_else(bad)?;
            if exp <= now() {
                return Err(bad());
            }
        }
        Ok(id.to_string())
    }

    fn join(&self, token: &str, node: &str, csr: &str) -> Result<Response, ApiError> {
        self.check_token(token)?;
        if let Some(why) = dns1123_subdomain_problem(node) {
            return Err(err(
                ErrorCode::Invalid,
                format!("node name {node:?}: {why}"),
            ));
        }
        let cert = self.pki.sign_node_csr(csr, node).map_err(|e| {
            err(
                ErrorCode::BadRequest,
                format!("certificate signing request: {e}"),
            )
        })?;
        tracing::info!(node, "node joined");
        Ok(Response::Joined {
            cert_pem: cert,
            ca_pem: self.pki.ca_pem.clone(),
        })
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn forbidden_verb(id: &Identity, what: &str) -> ApiError {
    err(
        ErrorCode::Forbidden,
        format!("{} may not {what}", id.name()),
    )
}

fn forbidden(id: &Identity, verb: &str, key: &ObjectKey) -> ApiError {
    err(
        ErrorCode::Forbidden,
        format!(
            "{} {:?} is forbidden: {} may not {verb} it",
            resource(key.kind),
            key.name,
            id.name()
        ),
    )
}

fn parse_selector(s: Option<&str>) -> Result<Selector, ApiError> {
    match s {
        None => Ok(Selector::default()),
        Some(s) => Selector::parse(s).map_err(|e| err(ErrorCode::BadRequest, e.to_string())),
    }
}

fn check_update(current: &Object, next: &Object) -> Result<(), ApiError> {
    let errs = validate_update(current, next);
    if errs.is_empty() {
        Ok(())
    } else {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        Err(err(
            ErrorCode::Invalid,
            format!(
                "{} {:?} is invalid: {}",
                resource(current.kind()),
                current.meta().name(),
                msgs.join("; ")
            ),
        ))
    }
}

/// Keeps what the server owns (identity, generation, status) from the stored object.
/// An apply (`keep_refs`) also keeps owner references and finalizers a manifest does not
/// name; a replace sets them as given (the garbage collector removes references so).
fn carry_system_fields(current: &Object, next: &mut Object, keep_refs: bool) {
    let cm = current.meta().clone();
    let m = next.meta_mut();
    m.uid = cm.uid;
    m.creation_timestamp = cm.creation_timestamp;
    m.generation = cm.generation;
    m.resource_version = cm.resource_version;
    m.deletion_timestamp = cm.deletion_timestamp;
    m.deletion_grace_period_seconds = cm.deletion_grace_period_seconds;
    if keep_refs && m.owner_references.is_empty() {
        m.owner_references = cm.owner_references;
    }
    if keep_refs && m.finalizers.is_empty() {
        m.finalizers = cm.finalizers;
    }
    copy_status(current, next);
}

macro_rules! same_spec {
    ($a:expr, $b:expr, $($variant:ident),*) => {
        match ($a, $b) {
            $((Object::$variant(x), Object::$variant(y)) => Some(x.spec == y.spec),)*
            _ => None,
        }
    };
}

/// `metadata.generation`: 1 on create, one more whenever `spec` changes; absent for
/// kinds without a spec (as in Kubernetes).
fn set_generation(current: Option<&Object>, next: &mut Object) {
    let kinds_spec = |a: &Object, b: &Object| {
        same_spec!(
            a,
            b,
            Pod,
            ReplicaSet,
            Deployment,
            DaemonSet,
            StatefulSet,
            Job,
            Service,
            Node,
            Namespace,
            Ingress
        )
    };
    if kinds_spec(next, next).is_none() {
        next.meta_mut().generation = None;
        return;
    }
    let generation = match current {
        None => 1,
        Some(c) => {
            let g = c.meta().generation.unwrap_or(1);
            if kinds_spec(c, next) == Some(true) {
                g
            } else {
                g + 1
            }
        }
    };
    next.meta_mut().generation = Some(generation);
}

macro_rules! with_status {
    ($from:expr, $to:expr, $($variant:ident),*) => {
        match ($from, $to) {
            $((Object::$variant(a), Object::$variant(b)) => b.status = a.status.clone(),)*
            _ => {}
        }
    };
}

fn copy_status(from: &Object, to: &mut Object) {
    with_status!(
        from,
        to,
        Pod,
        ReplicaSet,
        Deployment,
        DaemonSet,
        StatefulSet,
        Job,
        Service,
        Namespace,
        Node,
        Ingress
    );
}

fn clear_status(o: &mut Object) {
    match o {
        Object::Pod(x) => x.status = None,
        Object::ReplicaSet(x) => x.status = None,
        Object::Deployment(x) => x.status = None,
        Object::DaemonSet(x) => x.status = None,
        Object::StatefulSet(x) => x.status = None,
        Object::Job(x) => x.status = None,
        Object::Service(x) => x.status = None,
        Object::Namespace(x) => x.status = None,
        Object::Ingress(x) => x.status = None,
        Object::Node(_)
        | Object::Endpoints(_)
        | Object::ConfigMap(_)
        | Object::Secret(_)
        | Object::Event(_) => {}
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
