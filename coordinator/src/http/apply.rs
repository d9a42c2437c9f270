//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) and the field manager
//! every write through this front end names: the I/O around `fieldsets.rs`.

use super::fieldsets::{self, Conflict, Writer};
use super::objects::{bad, checked_object, key, now, unexpected};
use super::route::{flag, param, Target};
use super::{body, json, Body};
use crate::pki::Identity;
use crate::requests::{Api, Options};
use crate::store::Store;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use skiff_api::wire::{
    ApiError, ErrorCode, Request as ApiRequest, Response as ApiResponse, MAX_FRAME_LEN,
};

/// The field manager of a write: `fieldManager`, else (not for an apply) the client's
/// `User-Agent` up to its first `/`, as Kubernetes names one.
pub(super) fn field_manager(
    q: &[(String, String)],
    req: &Request<Incoming>,
    apply: bool,
) -> Result<String, ApiError> {
    let named = param(q, "fieldManager").filter(|m| !m.is_empty());
    let manager = match named {
        Some(m) => m.to_string(),
        None if apply => {
            return Err(bad(
                "fieldManager: Required value: is required for apply patch",
            ))
        }
        None => req
            .headers()
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|m| !m.is_empty())
            .unwrap_or("unknown")
            .chars()
            .take(128)
            .collect(),
    };
    if manager.len() > 128 || manager.chars().any(|c| !(' '..='~').contains(&c)) {
        return Err(bad(format!(
            "fieldManager: Invalid value: {manager:?}: must be at most 128 printable ASCII characters"
        )));
    }
    if flag(q, "force") && !apply {
        return Err(bad("force: Invalid value: force is only for apply patches"));
    }
    Ok(manager)
}

/// `PATCH` with `application/apply-patch+yaml`: the configuration is applied as
/// `fieldsets::apply` says, creating the object when it does not exist.
pub(super) async fn server_side_apply<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    manager: &str,
    q: &[(String, String)],
    req: Request<Incoming>,
    opts: &mut Options,
) -> Result<Response<Body>, ApiError> {
    if t.subresource.as_deref().is_some_and(|s| s != "status") {
        return Err(bad(
            "server-side apply is served for objects and their status, not this subresource",
        ));
    }
    let bytes = body(req, MAX_FRAME_LEN).await?;
    let config = checked_object(t, parse_config(&bytes)?)?;
    let force = flag(q, "force");
    let subresource = t.subresource.as_deref().unwrap_or("");
    let time = skiff_api::util::rfc3339(now());
    let w = Writer {
        manager,
        api_version: t.kind.info().api_version,
        time: &time,
        subresource,
    };
    let asked = config.pointer("/metadata/resourceVersion").is_some();
    for _ in 0..5 {
        let current: Option<Value> = match api.handle(id, ApiRequest::Get { key: key(t) }).await {
            ApiResponse::Object { object } => Some(
                serde_json::from_str(&object)
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
            ),
            ApiResponse::Error(e) if e.code == ErrorCode::NotFound && subresource.is_empty() => {
                None
            }
            r => return Err(unexpected(r)),
        };
        let next = match fieldsets::apply(current.as_ref(), &config, &w, force) {
            Ok(n) => n,
            Err(conflicts) => return Ok(conflict_status(t, &conflicts)),
        };
        opts.warnings.clear();
        let (request, code) = match current {
            None => (
                ApiRequest::Create {
                    object: next.to_string(),
                },
                201,
            ),
            Some(_) => (
                ApiRequest::Update {
                    object: next.to_string(),
                    status: subresource == "status",
                },
                200,
            ),
        };
        match api.handle_with(id, request, opts).await {
            ApiResponse::Object { object } => return Ok(json(code, object)),
            // Written by someone else between the read and the write (or created
            // meanwhile): apply again to what is there now.
            ApiResponse::Error(e)
                if !asked && matches!(e.code, ErrorCode::Conflict | ErrorCode::AlreadyExists) =>
            {
                continue
            }
            r => return Err(unexpected(r)),
        }
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "the object kept changing while the configuration was applied; try again",
    ))
}

/// An apply configuration: YAML (JSON is YAML too).
fn parse_config(bytes: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("the body is not UTF-8"))?;
    let mut docs = skiff_api::yaml::parse_documents(text)
        .map_err(|e| bad(format!("the apply configuration is not valid YAML: {e}")))?;
    if docs.len() != 1 {
        return Err(bad("an apply configuration must be one YAML document"));
    }
    Ok(docs.remove(0).value)
}

/// 409 as Kubernetes answers an apply that conflicts: one cause per field, which kubectl
/// prints with its advice (`--force-conflicts`).
fn conflict_status(t: &Target, conflicts: &[Conflict]) -> Response<Body> {
    let n = conflicts.len();
    let mut message = format!(
        "Apply failed with {n} conflict{}:",
        if n == 1 { "" } else { "s" }
    );
    for c in conflicts {
        message.push_str(&format!(
            " conflict with {:?} using {}: {}",
            c.manager, c.api_version, c.field
        ));
        if n > 1 {
            message.push(';');
        }
    }
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"type": "FieldManagerConflict",
                "message": format!("conflict with {:?} using {}", c.manager, c.api_version),
                "field": c.field})
        })
        .collect();
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.trim_end_matches(';'), "reason": "Conflict", "code": 409,
        "details": {"name": t.name.as_deref().unwrap_or(""), "group": t.kind.group(),
            "kind": t.kind.info().plural, "causes": causes},
    });
    json(409, status.to_string())
}

/// Records `manager`'s write of `next` (over `current`) in its managed fields.
pub(super) fn track(t: &Target, manager: &str, current: Option<&Value>, next: &mut Value) {
    let time = skiff_api::util::rfc3339(now());
    let w = Writer {
        manager,
        api_version: t.kind.info().api_version,
        time: &time,
        subresource: t.subresource.as_deref().unwrap_or(""),
    };
    fieldsets::track_update(current, next, &w);
}
