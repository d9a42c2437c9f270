//! Answers as Kubernetes writes them: `metav1.Status` for errors (reason and code), lists
//! with their `resourceVersion` and `continue`, watch events, and `meta.k8s.io/v1` Tables
//! built from the same printers as `skiff get` (so `kubectl get` shows skiff's columns).
//! Pure.

use serde_json::{json, Value};
use skiff_api::wire::{ApiError, ErrorCode};
use skiff_api::{Kind, Object};

/// The HTTP status and Kubernetes' reason for an error.
pub fn code_and_reason(code: ErrorCode) -> (u16, &'static str) {
    match code {
        ErrorCode::BadRequest => (400, "BadRequest"),
        ErrorCode::Unauthorized => (401, "Unauthorized"),
        ErrorCode::Forbidden => (403, "Forbidden"),
        ErrorCode::NotFound => (404, "NotFound"),
        ErrorCode::AlreadyExists => (409, "AlreadyExists"),
        ErrorCode::Conflict => (409, "Conflict"),
        ErrorCode::Expired => (410, "Expired"),
        ErrorCode::TooLarge => (413, "RequestEntityTooLarge"),
        ErrorCode::Invalid => (422, "Invalid"),
        ErrorCode::Timeout => (504, "Timeout"),
        ErrorCode::UnsupportedMediaType => (415, "UnsupportedMediaType"),
        ErrorCode::TooManyRequests => (429, "TooManyRequests"),
        ErrorCode::Internal => (500, "InternalError"),
    }
}

/// A `Status` for a failure, with the kind and name it is about when known.
pub fn status(e: &ApiError, about: Option<(Kind, &str)>) -> (u16, Value) {
    let (code, reason) = code_and_reason(e.code);
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": e.message,
        "reason": reason,
        "code": code,
    });
    match about {
        // As Kubernetes' Invalid: the kind's name and one cause per problem, each with its
        // field path (kubectl prints `The Pod "web" is invalid: <field>: <message>` from
        // them, and nothing of the message without them).
        Some((kind, name)) if e.code == ErrorCode::Invalid => {
            let (object, causes) = invalid_causes(&e.message);
            let name = if name.is_empty() {
                object
            } else {
                name.to_string()
            };
            s["details"] = json!({"name": name, "group": kind.group(), "kind": kind.info().name,
                "causes": causes});
        }
        Some((kind, name)) => {
            s["details"] = json!({"name": name, "group": kind.group(), "kind": kind.info().plural});
        }
        None => {}
    }
    (code, s)
}

/// The causes of a validation failure from skiff's message (`deployment "web":
/// spec.replicas: Invalid value: -1: must be ...; ...`), and the object's name in it.
fn invalid_causes(message: &str) -> (String, Vec<Value>) {
    let mut name = String::new();
    let causes = message
        .split("; ")
        .map(|part| {
            // `kind "name": ` first, when the problem names its object.
            let rest = match part.split_once("\": ") {
                Some((head, rest)) if head.contains(" \"") && !head.contains(": ") => {
                    if let Some((_, n)) = head.split_once(" \"") {
                        name = n.to_string();
                    }
                    rest
                }
                _ => part,
            };
            let (field, msg) = match rest.split_once(": ") {
                Some((f, m)) if !f.contains(' ') => (f, m),
                _ => ("", rest),
            };
            json!({"reason": "FieldValueInvalid", "message": msg, "field": field})
        })
        .collect();
    (name, causes)
}

/// A list of stored objects, written around their JSON text (never re-parsed).
pub fn list(kind: Kind, revision: u64, items: &[String], continue_token: Option<&str>) -> String {
    let i = kind.info();
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    let mut out = String::with_capacity(items.iter().map(|s| s.len() + 1).sum::<usize>() + 128);
    out.push_str(&format!(
        r#"{{"kind":"{}List","apiVersion":"{}","metadata":{},"items":["#,
        i.name, i.api_version, meta
    ));
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("]}");
    out
}

/// One watch event line (`{"type":"ADDED","object":...}` and a newline).
pub fn watch_line(kind: &str, object: &str) -> String {
    format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n")
}

/// The watch event that ends a watch whose revision is gone (410: relist).
pub fn expired_line(message: &str) -> String {
    let (_, s) = status(&ApiError::new(ErrorCode::Expired, message), None);
    watch_line("ERROR", &s.to_string())
}

/// Does the client ask for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`)?
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
    })
}

/// A Table of objects: the kind's `get` columns (wide ones at priority 1, which kubectl
/// shows with `-o wide`), a row per object and its metadata as `PartialObjectMetadata`.
pub fn table(
    kind: Kind,
    objects: &[Value],
    revision: Option<u64>,
    continue_token: Option<&str>,
    now: u64,
) -> Value {
    let narrow = kind.columns(false);
    let columns: Vec<Value> = kind
        .columns(true)
        .iter()
        .map(|c| {
            let name = column_name(c);
            json!({
                "name": name,
                "type": "string",
                "format": if *c == "NAME" { "name" } else { "" },
                "description": "",
                "priority": if narrow.contains(c) { 0 } else { 1 },
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|v| {
            let cells = match Object::from_value(v) {
                Ok(o) => o.row(true, now),
                Err(_) => Vec::new(),
            };
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": v.get("metadata").cloned().unwrap_or(Value::Null),
                },
            })
        })
        .collect();
    let mut meta = json!({});
    if let Some(r) = revision {
        meta["resourceVersion"] = json!(r.to_string());
    }
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `NOMINATED NODE` → `Nominated Node`: Kubernetes' column names (kubectl upper-cases them).
fn column_name(c: &str) -> String {
    c.split(' ')
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut ch = lower.chars();
            match ch.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + ch.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_kubernetes_statuses() {
        let e = ApiError::new(ErrorCode::NotFound, "pods \"x\" not found");
        let (code, s) = status(&e, Some((Kind::Pod, "x")));
        assert_eq!(code, 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["kind"], "pods");
        assert_eq!(s["message"], "pods \"x\" not found");
        assert_eq!(code_and_reason(ErrorCode::Invalid), (422, "Invalid"));
    }

    #[test]
    fn invalid_objects_name_each_field() {
        let e = ApiError::new(
            ErrorCode::Invalid,
            "pod \"w\": spec.containers[0].bogus: unknown field; pod \"w\": metadata.name: Invalid value: \"W\": must be lower case",
        );
        let (code, s) = status(&e, Some((Kind::Pod, "")));
        assert_eq!(code, 422);
        assert_eq!(s["details"]["name"], "w");
        assert_eq!(s["details"]["kind"], "Pod");
        let causes = s["details"]["causes"].as_array().unwrap();
        assert_eq!(causes.len(), 2);
        assert_eq!(causes[0]["field"], "spec.containers[0].bogus");
        assert_eq!(causes[0]["message"], "unknown field");
        assert_eq!(causes[1]["field"], "metadata.name");
        let plain = ApiError::new(ErrorCode::Invalid, "the cluster CIDR has no /24 left");
        let (_, s) = status(&plain, Some((Kind::Node, "n1")));
        assert_eq!(s["details"]["causes"][0]["field"], "");
        assert_eq!(
            s["details"]["causes"][0]["message"],
            "the cluster CIDR has no /24 left"
        );
    }

    #[test]
    fn lists_wrap_the_stored_text() {
        let l = list(
            Kind::Deployment,
            42,
            &[r#"{"a":1}"#.into(), r#"{"b":2}"#.into()],
            Some("default/x"),
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["kind"], "DeploymentList");
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["metadata"]["continue"], "default/x");
        assert_eq!(v["items"][1]["b"], 2);
    }

    #[test]
    fn tables_carry_the_printers_columns_and_rows() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let t = table(Kind::Pod, &[pod], Some(7), None, 0);
        let cols: Vec<(&str, i64)> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
            .collect();
        assert_eq!(cols[0], ("Name", 0));
        assert!(cols.contains(&("Node", 1)), "{cols:?}");
        assert_eq!(t["rows"][0]["cells"][0], "web");
        assert_eq!(t["rows"][0]["cells"].as_array().unwrap().len(), cols.len());
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    }

    #[test]
    fn only_a_first_choice_of_table_is_a_table() {
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }
}
