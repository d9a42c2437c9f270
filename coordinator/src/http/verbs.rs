//! Kubernetes' verbs on a kind's collection or object, each turned into the request the
//! QUIC clients send and answered by [`Api::handle`]: get, list (label and field
//! selectors, `limit`/`continue`, Tables), create, update (and `/status`), patch (JSON,
//! merge, strategic merge; retried on a conflict it did not ask for), delete (grace
//! period, propagation, preconditions). Watches and logs are in `stream.rs`.

use super::listing::page;
use super::objects::{bad, content_type, current, key, now, object_in_body, unexpected};
use super::patch::{self, PatchKind};
use super::route::{flag, param, query, Target};
use super::scale;
use super::{body, failure, json, render, Body};
use crate::pki::Identity;
use crate::requests::{Api, Options};
use crate::store::Store;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::Value;
use skiff_api::manifest::FieldValidation;
use skiff_api::wire::{
    ApiError, ErrorCode, Propagation, Request as ApiRequest, Response as ApiResponse, MAX_FRAME_LEN,
};
use skiff_api::{Kind, ObjectKey};

/// A `Status` with a code the QUIC protocol has no error for (405, 415).
pub(super) fn plain_status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let s = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code});
    json(code, s.to_string())
}

/// Answers one request on a kind's collection or object.
pub(crate) async fn object<S: Store>(
    api: &std::sync::Arc<Api<S>>,
    id: &Identity,
    t: Target,
    req: Request<Incoming>,
) -> Response<Body> {
    let q = query(req.uri().query());
    let method = req.method().clone();
    let sub = t.subresource.clone();
    let about = t.name.clone().unwrap_or_default();
    let mut opts = match options(&q, &method, &t) {
        Ok(o) => o,
        Err(e) => return failure(&e, None),
    };
    let apply =
        method == Method::PATCH && content_type(&req).starts_with("application/apply-patch");
    let manager = match (&method, sub.as_deref()) {
        (&Method::POST | &Method::PUT | &Method::PATCH, None | Some("status")) => {
            match super::apply::field_manager(&q, &req, apply) {
                Ok(m) => m,
                Err(e) => return failure(&e, None),
            }
        }
        _ => String::new(),
    };
    let r = match (&method, t.name.is_some(), sub.as_deref()) {
        (&Method::GET, false, None) if flag(&q, "watch") => {
            let table = render::wants_table(accept(&req).as_deref());
            return super::stream::watch(api, id, &t, &q, table).await;
        }
        (&Method::GET | &Method::POST, true, Some("exec")) if t.kind == Kind::Pod => {
            return super::exec::exec(api, id, &t, &q, req).await
        }
        (&Method::GET | &Method::POST, true, Some("attach")) if t.kind == Kind::Pod => {
            return super::exec::attach(api, id, &t, &q, req).await
        }
        (&Method::GET | &Method::POST, true, Some("portforward")) if t.kind == Kind::Pod => {
            return super::portforward::portforward(api, id, &t, req).await
        }
        (&Method::GET, true, Some("log")) if t.kind == Kind::Pod => {
            return super::stream::logs(api, id, &t, &q).await
        }
        (&Method::GET, false, None) => list(api, id, &t, &q, accept(&req)).await,
        (&Method::GET, true, None | Some("status")) => get(api, id, &t, accept(&req)).await,
        (&Method::POST, false, None) => create(api, id, &t, &manager, req, &mut opts).await,
        (&Method::PUT, true, None | Some("status")) => {
            update(api, id, &t, &manager, req, &mut opts).await
        }
        (&Method::PATCH, true, None | Some("status")) => {
            let ct = content_type(&req);
            match PatchKind::of(&ct) {
                Some(pk) => patch(api, id, &t, &manager, pk, req, &mut opts).await,
                None if ct.split(';').next() == Some("application/apply-patch+yaml") => {
                    super::apply::server_side_apply(api, id, &t, &manager, &q, req, &mut opts).await
                }
                None if apply => {
                    return plain_status(415, "UnsupportedMediaType", &format!("an apply configuration must be application/apply-patch+yaml, not {ct:?}"))
                }
                None => {
                    return plain_status(415, "UnsupportedMediaType", &format!("the body of a patch must be application/json-patch+json, application/merge-patch+json or application/strategic-merge-patch+json, not {ct:?}"))
                }
            }
        }
        (&Method::DELETE, true, None) => delete(api, id, &t, &q, req, &mut opts).await,
        (&Method::DELETE, false, None) => delete_collection(api, id, &t, &q, req, &mut opts).await,
        (&Method::POST, true, Some("eviction")) if t.kind == Kind::Pod => {
            evict(api, id, &t, req, opts.dry_run).await
        }
        (&Method::POST, true, Some("token")) if t.kind == Kind::ServiceAccount => {
            token_request(api, id, &t, req).await
        }
        (&Method::GET, true, Some("scale")) if scale::scalable(t.kind) => current(api, id, &t)
            .await
            .map(|o| json(200, scale::scale_of(&o).to_string())),
        (&Method::PUT | &Method::PATCH, true, Some("scale")) if scale::scalable(t.kind) => {
            write_scale(api, id, &t, req).await
        }
        (_, _, Some(s)) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "the server could not find the requested resource ({}/{s} is not served)",
                t.kind.info().plural
            ),
        )),
        _ => {
            return plain_status(
                405,
                "MethodNotAllowed",
                &format!(
                    "the server does not allow this method on the requested resource ({method})"
                ),
            )
        }
    };
    let mut resp = match r {
        Ok(resp) => resp,
        Err(e) => failure(&e, Some((t.kind, &about))),
    };
    for w in &opts.warnings {
        resp.headers_mut().append("warning", warning_header(w));
    }
    resp
}

/// What only HTTP asks of the request path: `dryRun` (a create, update, patch or delete
/// is answered as if written; any other write refuses it) and `fieldValidation`.
fn options(q: &[(String, String)], method: &Method, t: &Target) -> Result<Options, ApiError> {
    let mutating = !matches!(*method, Method::GET | Method::HEAD);
    let dry_run = match param(q, "dryRun") {
        None | Some("") => false,
        Some("All") if mutating => true,
        Some("All") => return Err(bad("dryRun is for writes")),
        Some(other) => {
            return Err(bad(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )))
        }
    };
    let field_validation =
        FieldValidation::parse(param(q, "fieldValidation").unwrap_or("")).map_err(bad)?;
    let dry_ok = matches!(
        (method, t.name.is_some(), t.subresource.as_deref()),
        (&Method::POST, false, None)
            | (&Method::PUT | &Method::PATCH, true, None | Some("status"))
            | (&Method::DELETE, _, None)
            | (&Method::POST, true, Some("eviction"))
    );
    if dry_run && !dry_ok {
        return Err(bad(
            "dryRun is supported for create, update, patch, delete and eviction; nothing was done",
        ));
    }
    Ok(Options {
        field_validation,
        warnings: Vec::new(),
        dry_run,
        status_managers: true,
    })
}

/// A warning as Kubernetes sends one (`299 - "text"`): one line of visible ASCII.
fn warning_header(w: &str) -> hyper::header::HeaderValue {
    let text: String = w
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect();
    hyper::header::HeaderValue::from_str(&format!("299 - \"{text}\""))
        .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("299 - \"(unprintable)\""))
}

fn accept(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("accept")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

async fn get<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    accept: Option<String>,
) -> Result<Response<Body>, ApiError> {
    match api.handle(id, ApiRequest::Get { key: key(t) }).await {
        ApiResponse::Object { object } if render::wants_table(accept.as_deref()) => {
            let v: Value = serde_json::from_str(&object)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            Ok(json(
                200,
                render::table(t.kind, &[v], None, None, now()).to_string(),
            ))
        }
        ApiResponse::Object { object } => Ok(json(200, object)),
        r => Err(unexpected(r)),
    }
}

async fn list<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    accept: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let limit = match param(q, "limit") {
        None | Some("0") => None,
        Some(l) => Some(
            l.parse::<u32>()
                .map_err(|_| bad(format!("limit: invalid value {l:?}")))?,
        ),
    };
    let from = param(q, "continue")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let (revision, items, continue_token) = page(api, id, t, q, limit, from).await?;
    if render::wants_table(accept.as_deref()) {
        let values = items
            .iter()
            .map(|i| serde_json::from_str(i))
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let table = render::table(
            t.kind,
            &values,
            Some(revision),
            continue_token.as_deref(),
            now(),
        );
        return Ok(json(200, table.to_string()));
    }
    Ok(json(
        200,
        render::list(t.kind, revision, &items, continue_token.as_deref()),
    ))
}

/// `DELETE` of a collection (deletecollection): every object the selectors pick is
/// deleted as one `DELETE` of it would be; the answer lists them as they were deleted.
/// A dry run deletes nothing and lists what it would have.
async fn delete_collection<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    req: Request<Incoming>,
    http_opts: &mut Options,
) -> Result<Response<Body>, ApiError> {
    let bytes = body(req, 64 << 10).await?;
    let opts = delete_options(q, &bytes)?;
    if opts.resource_version.is_some() || opts.uid.is_some() {
        return Err(bad("preconditions name one object; a collection has none"));
    }
    http_opts.dry_run |= opts.dry_run;
    let mut deleted = Vec::new();
    let mut revision = 0;
    let mut from = None;
    loop {
        let (_, items, next) = page(api, id, t, q, Some(500), from).await?;
        for item in items {
            let v: Value = serde_json::from_str(&item)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let field = |f: &str| {
                v.pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let req = ApiRequest::Delete {
                key: ObjectKey {
                    kind: t.kind,
                    namespace: field("namespace"),
                    name: field("name"),
                },
                resource_version: None,
                grace_period_seconds: opts.grace,
                force: opts.grace == Some(0),
                propagation: opts.propagation,
            };
            match api.handle_with(id, req, http_opts).await {
                ApiResponse::Object { object } => {
                    if let Some(rv) = serde_json::from_str::<Value>(&object).ok().and_then(|o| {
                        o.pointer("/metadata/resourceVersion")?
                            .as_str()?
                            .parse()
                            .ok()
                    }) {
                        revision = revision.max(rv);
                    }
                    deleted.push(object);
                }
                // Gone meanwhile: nothing left to do for it.
                ApiResponse::Error(e) if e.code == ErrorCode::NotFound => {}
                r => return Err(unexpected(r)),
            }
        }
        match next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    Ok(json(200, render::list(t.kind, revision, &deleted, None)))
}

async fn create<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    manager: &str,
    req: Request<Incoming>,
    opts: &mut Options,
) -> Result<Response<Body>, ApiError> {
    let mut v = object_in_body(t, req).await?;
    super::apply::track(t, manager, None, &mut v);
    let create = ApiRequest::Create {
        object: v.to_string(),
    };
    match api.handle_with(id, create, opts).await {
        ApiResponse::Object { object } => Ok(json(201, object)),
        r => Err(unexpected(r)),
    }
}

async fn update<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    manager: &str,
    req: Request<Incoming>,
    opts: &mut Options,
) -> Result<Response<Body>, ApiError> {
    let mut v = object_in_body(t, req).await?;
    // The fields the writer changed are from the object as stored now (a missing one
    // is the update's own NotFound).
    if let Ok(now) = current(api, id, t).await {
        super::apply::track(t, manager, Some(&now), &mut v);
    }
    let update = ApiRequest::Update {
        object: v.to_string(),
        status: t.subresource.as_deref() == Some("status"),
    };
    match api.handle_with(id, update, opts).await {
        ApiResponse::Object { object } => Ok(json(200, object)),
        r => Err(unexpected(r)),
    }
}

async fn patch<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    manager: &str,
    kind: PatchKind,
    req: Request<Incoming>,
    opts: &mut Options,
) -> Result<Response<Body>, ApiError> {
    let bytes = body(req, MAX_FRAME_LEN).await?;
    let status = t.subresource.as_deref() == Some("status");
    // A patch that names a resourceVersion is a precondition; one that does not is
    // applied to the current object, again if someone else wrote in between.
    for _ in 0..5 {
        let current: Value = match api.handle(id, ApiRequest::Get { key: key(t) }).await {
            ApiResponse::Object { object } => serde_json::from_str(&object)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
            r => return Err(unexpected(r)),
        };
        let mut next = patch::apply(kind, &current, &bytes).map_err(bad)?;
        let asked = next.pointer("/metadata/resourceVersion")
            != current.pointer("/metadata/resourceVersion");
        if !asked {
            next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        for (field, want) in [("name", &t.name), ("namespace", &t.namespace)] {
            let got = next
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str);
            if want.is_some() && got != want.as_deref() {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    format!("metadata.{field}: Invalid value: a patch may not change it"),
                ));
            }
        }
        super::apply::track(t, manager, Some(&current), &mut next);
        opts.warnings.clear();
        let update = ApiRequest::Update {
            object: next.to_string(),
            status,
        };
        match api.handle_with(id, update, opts).await {
            ApiResponse::Object { object } => return Ok(json(200, object)),
            ApiResponse::Error(e) if e.code == ErrorCode::Conflict && !asked => continue,
            r => return Err(unexpected(r)),
        }
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!(
            "{} {:?} kept changing while the patch was applied; try again",
            t.kind.info().plural,
            t.name.as_deref().unwrap_or("")
        ),
    ))
}

/// `PUT` or `PATCH` of `.../scale`: the Scale the client sends (or the current one
/// patched) becomes the object's `spec.replicas`.
async fn write_scale<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let patch_kind = if req.method() == Method::PATCH {
        let ct = content_type(&req);
        Some(PatchKind::of(&ct).ok_or_else(|| {
            bad(format!(
                "a patch of a Scale must be a JSON, merge or strategic merge patch, not {ct:?}"
            ))
        })?)
    } else {
        None
    };
    let bytes = body(req, 64 << 10).await?;
    for _ in 0..5 {
        let object = current(api, id, t).await?;
        let now = scale::scale_of(&object);
        let wanted: Value = match patch_kind {
            Some(k) => patch::apply(k, &now, &bytes).map_err(bad)?,
            None => {
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?
            }
        };
        let asked = patch_kind.is_none()
            || wanted["metadata"]["resourceVersion"] != now["metadata"]["resourceVersion"];
        let next = scale::apply_scale(&object, &wanted).map_err(|e| {
            ApiError::new(
                ErrorCode::Invalid,
                format!(
                    "Scale.autoscaling {:?} is invalid: {e}",
                    t.name.as_deref().unwrap_or("")
                ),
            )
        })?;
        let update = ApiRequest::Update {
            object: next.to_string(),
            status: false,
        };
        match api.handle(id, update).await {
            ApiResponse::Object { object } => {
                let v: Value = serde_json::from_str(&object)
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                return Ok(json(200, scale::scale_of(&v).to_string()));
            }
            ApiResponse::Error(e) if e.code == ErrorCode::Conflict && !asked => continue,
            r => return Err(unexpected(r)),
        }
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "the object kept changing while it was scaled; try again",
    ))
}

/// `POST pods/{name}/eviction` (`kubectl drain`): the pod is evicted (deleted unless its
/// PodDisruptionBudget allows no disruption now: 429, which kubectl retries) with its
/// Eviction's grace period and uid precondition.
async fn evict<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    req: Request<Incoming>,
    dry_query: bool,
) -> Result<Response<Body>, ApiError> {
    let ct = content_type(&req);
    let bytes = body(req, 64 << 10).await?;
    let e: Value = if ct.starts_with(super::proto::CONTENT_TYPE) {
        super::proto::eviction(&bytes).map_err(bad)?
    } else {
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?
    };
    if e["kind"] != "Eviction" {
        return Err(bad("the body of an eviction must be an Eviction"));
    }
    let name = e.pointer("/metadata/name").and_then(Value::as_str);
    if name != t.name.as_deref() {
        return Err(bad(format!(
            "name in URL does not match name in Eviction object ({})",
            name.unwrap_or("")
        )));
    }
    let opts = e.get("deleteOptions").cloned().unwrap_or(Value::Null);
    let DeleteOpts {
        grace,
        uid,
        dry_run,
        ..
    } = delete_options(&[], opts.to_string().as_bytes())?;
    if let Some(uid) = uid {
        check_uid(api, id, t, &uid).await?;
    }
    let req = ApiRequest::Evict {
        key: key(t),
        grace_period_seconds: grace,
    };
    // `kubectl drain --dry-run=server`: the budget is checked, nothing spent or deleted.
    let mut o = Options {
        dry_run: dry_run || dry_query,
        ..Default::default()
    };
    match api.handle_with(id, req, &mut o).await {
        ApiResponse::Object { .. } => {
            let s = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Success", "code": 201});
            Ok(json(201, s.to_string()))
        }
        r => Err(unexpected(r)),
    }
}

/// `POST serviceaccounts/{name}/token` (Kubernetes' TokenRequest, `kubectl create
/// token`): a token for the account, for the spec's audiences (the API's when none),
/// living `expirationSeconds` (an hour by default), bound to a pod when `boundObjectRef`
/// names one.
async fn token_request<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let ct = content_type(&req);
    let bytes = body(req, 64 << 10).await?;
    let tr: Value = if ct.starts_with(super::proto::CONTENT_TYPE) {
        super::proto::access::token_request(&bytes).map_err(bad)?
    } else {
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?
    };
    if tr["kind"] != "TokenRequest" {
        return Err(bad("the body of a token request must be a TokenRequest"));
    }
    let spec = &tr["spec"];
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let expiration = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    let pod = match spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        None => None,
        Some(b) if b["kind"] == "Pod" => Some((
            b["name"].as_str().unwrap_or("").to_string(),
            b["uid"].as_str().unwrap_or("").to_string(),
        )),
        Some(b) => {
            return Err(bad(format!(
                "spec.boundObjectRef.kind: Unsupported value: {}: skiff binds tokens to pods only",
                b["kind"]
            )))
        }
    };
    let (namespace, name) = (
        t.namespace.clone().unwrap_or_default(),
        t.name.clone().unwrap_or_default(),
    );
    let req = ApiRequest::ServiceAccountToken {
        namespace: namespace.clone(),
        name: name.clone(),
        audiences: audiences.clone(),
        expiration_seconds: expiration,
        pod: pod.clone(),
    };
    match api.handle(id, req).await {
        ApiResponse::AccountToken { token, expires } => {
            let mut spec = serde_json::json!({
                "audiences": if audiences.is_empty() { vec![crate::sa_token::ISSUER.to_string()] } else { audiences },
                "expirationSeconds": expiration,
                "boundObjectRef": null,
            });
            if let Some((n, uid)) = pod {
                spec["boundObjectRef"] =
                    serde_json::json!({"kind": "Pod", "apiVersion": "v1", "name": n, "uid": uid});
            }
            let out = serde_json::json!({
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
                "spec": spec,
                "status": {"token": token, "expirationTimestamp": skiff_api::util::rfc3339(expires)},
            });
            Ok(json(201, out.to_string()))
        }
        ApiResponse::Error(e) => Err(e),
        r => Err(unexpected(r)),
    }
}

/// A delete's `preconditions.uid`: the object must still be the one the client saw (the
/// store's compare is by revision; a uid is compared here, just before).
async fn check_uid<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    uid: &str,
) -> Result<(), ApiError> {
    let current = current(api, id, t).await?;
    let now = current
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if now != uid {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {now}"),
        ));
    }
    Ok(())
}

/// What a delete asks, from Kubernetes' DeleteOptions.
#[derive(Debug, PartialEq)]
struct DeleteOpts {
    grace: Option<i64>,
    propagation: Propagation,
    resource_version: Option<u64>,
    uid: Option<String>,
    /// `dryRun: ["All"]` in the body.
    dry_run: bool,
}

/// Kubernetes' DeleteOptions, from the body and the query (the query wins, as in
/// Kubernetes' parameter decoding).
fn delete_options(q: &[(String, String)], body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| bad(format!("DeleteOptions: invalid JSON: {e}")))?
    };
    let dry_run = match b.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) if a.is_empty() => false,
        Some(Value::Array(a)) if a.len() == 1 && a[0] == "All" => true,
        Some(other) => {
            return Err(bad(format!(
                "dryRun: Unsupported value: {other}: supported values: \"All\""
            )))
        }
    };
    let grace = match param(q, "gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| bad(format!("gracePeriodSeconds: invalid value {g:?}")))?,
        ),
        None => b.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let mut policy = param(q, "propagationPolicy")
        .map(str::to_string)
        .or_else(|| {
            b.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    if policy.is_none() && b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
        policy = Some("Orphan".into());
    }
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(p) => return Err(ApiError::new(ErrorCode::Invalid, format!("propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""))),
    };
    let rv = match b
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            bad(format!(
                "preconditions.resourceVersion: invalid value {rv:?}"
            ))
        })?),
        None => None,
    };
    let uid = b
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(DeleteOpts {
        grace,
        propagation,
        resource_version: rv,
        uid,
        dry_run,
    })
}

async fn delete<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    req: Request<Incoming>,
    opts: &mut Options,
) -> Result<Response<Body>, ApiError> {
    let bytes = body(req, 64 << 10).await?;
    let DeleteOpts {
        grace,
        propagation,
        resource_version,
        uid,
        dry_run,
    } = delete_options(q, &bytes)?;
    opts.dry_run |= dry_run;
    if let Some(uid) = uid {
        check_uid(api, id, t, &uid).await?;
    }
    let req = ApiRequest::Delete {
        key: key(t),
        resource_version,
        grace_period_seconds: grace,
        force: grace == Some(0),
        propagation,
    };
    match api.handle_with(id, req, opts).await {
        ApiResponse::Object { object } => Ok(json(200, object)),
        r => Err(unexpected(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_options_from_query_and_body() {
        let q = query(Some("gracePeriodSeconds=5"));
        let o = delete_options(
            &q,
            br#"{"kind":"DeleteOptions","propagationPolicy":"Foreground","preconditions":{"resourceVersion":"12","uid":"u"}}"#,
        )
        .unwrap();
        assert_eq!(
            o,
            DeleteOpts {
                grace: Some(5),
                propagation: Propagation::Foreground,
                resource_version: Some(12),
                uid: Some("u".into()),
                dry_run: false,
            }
        );
        let o =
            delete_options(&[], br#"{"orphanDependents":true,"gracePeriodSeconds":0}"#).unwrap();
        assert_eq!((o.grace, o.propagation), (Some(0), Propagation::Orphan));
        let o = delete_options(&[], b"").unwrap();
        assert_eq!(
            (o.grace, o.propagation, o.resource_version),
            (None, Propagation::Background, None)
        );
        let e = delete_options(&query(Some("propagationPolicy=Later")), b"").unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(delete_options(&[], b"{nope").is_err());
        assert!(
            delete_options(&[], br#"{"dryRun":["All"]}"#)
                .unwrap()
                .dry_run
        );
        assert!(delete_options(&[], br#"{"dryRun":["Nope"]}"#).is_err());
    }
}
