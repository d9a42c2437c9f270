//! What the verbs share: the object a request names or carries, checked against its URL,
//! and the answers of the request path read back.

use super::body;
use super::route::Target;
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::Store;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::Value;
use skiff_api::wire::{
    ApiError, ErrorCode, Request as ApiRequest, Response as ApiResponse, MAX_FRAME_LEN,
};
use skiff_api::ObjectKey;

pub(super) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, msg)
}

pub(super) fn content_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase()
}

pub(super) fn key(t: &Target) -> ObjectKey {
    ObjectKey {
        kind: t.kind,
        namespace: t.namespace.clone().unwrap_or_default(),
        name: t.name.clone().unwrap_or_default(),
    }
}

pub(super) fn unexpected(r: ApiResponse) -> ApiError {
    match r {
        ApiResponse::Error(e) => e,
        other => ApiError::new(ErrorCode::Internal, format!("unexpected answer {other:?}")),
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The object a create or update carries, as JSON, checked against the URL: its kind, its
/// namespace (set from the URL when it has none) and, for an update, its name.
pub(super) async fn object_in_body(t: &Target, req: Request<Incoming>) -> Result<Value, ApiError> {
    let ct = content_type(&req);
    let bytes = body(req, MAX_FRAME_LEN).await?;
    let v: Value = if ct.starts_with(super::proto::CONTENT_TYPE) {
        super::proto::object(&bytes)
            .map_err(|e| ApiError::new(ErrorCode::UnsupportedMediaType, e))?
    } else if ct.starts_with("application/json") {
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?
    } else if ct.starts_with("application/yaml") {
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("the body is not UTF-8"))?;
        let mut docs = skiff_api::yaml::parse_documents(text).map_err(|e| bad(e.to_string()))?;
        if docs.len() != 1 {
            return Err(bad("the body must be one YAML document"));
        }
        docs.remove(0).value
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("the body must be application/json or application/yaml, not {ct:?}"),
        ));
    };
    checked_object(t, v)
}

/// An object sent for the URL `t`: of its kind (set when absent, as Kubernetes does), in
/// its namespace (set when absent) and, when the URL names one, with its name.
pub(super) fn checked_object(t: &Target, mut v: Value) -> Result<Value, ApiError> {
    if !v.is_object() {
        return Err(bad("the body must be an object"));
    }
    // As Kubernetes: a body without kind and apiVersion is of the URL's kind.
    let i = t.kind.info();
    for (field, want) in [("kind", i.name), ("apiVersion", i.api_version)] {
        match v.get(field).and_then(Value::as_str) {
            None | Some("") => v[field] = Value::String(want.into()),
            Some(got) if got != want => {
                return Err(bad(format!(
                    "the object's {field} is {got:?}, but the request is for {}/{}",
                    i.api_version, i.name
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(ns) = &t.namespace {
        match v.pointer("/metadata/namespace").and_then(Value::as_str) {
            None | Some("") => v["metadata"]["namespace"] = Value::String(ns.clone()),
            Some(given) if given != ns => {
                return Err(bad(format!("the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})")))
            }
            Some(_) => {}
        }
    }
    if let Some(name) = &t.name {
        let given = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if given != name {
            return Err(bad(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(v)
}

/// The object as stored now.
pub(super) async fn current<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
) -> Result<Value, ApiError> {
    match api.handle(id, ApiRequest::Get { key: key(t) }).await {
        ApiResponse::Object { object } => serde_json::from_str(&object)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string())),
        r => Err(unexpected(r)),
    }
}
