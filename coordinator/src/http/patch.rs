//! The three patch kinds Kubernetes accepts, applied to an object's JSON: JSON patch
//! (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch, whose lists merge by
//! Kubernetes' merge keys (containers by `name`, container ports by `containerPort`,
//! volume mounts by `mountPath`...) and whose directives (`$patch`, `$setElementOrder/`,
//! `$deleteFromPrimitiveList/`, `$retainKeys`) kubectl sends. Pure; fuzzed.

use serde_json::{Map, Value};

/// Which patch a request carries, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

impl PatchKind {
    /// The patch kind of a content type, if it is one.
    pub fn of(content_type: &str) -> Option<PatchKind> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            _ => None,
        }
    }
}

/// Applies `patch` (its text) to `target`.
pub fn apply(kind: PatchKind, target: &Value, patch: &[u8]) -> Result<Value, String> {
    let p: Value =
        serde_json::from_slice(patch).map_err(|e| format!("the patch is not valid JSON: {e}"))?;
    match kind {
        PatchKind::Json => json_patch(target.clone(), &p),
        PatchKind::Merge => {
            if !p.is_object() {
                return Err("a merge patch must be a JSON object".into());
            }
            Ok(merge(target.clone(), &p))
        }
        PatchKind::Strategic => {
            if !p.is_object() {
                return Err("a strategic merge patch must be a JSON object".into());
            }
            strategic(target.clone(), &p, "")
        }
    }
}

/// RFC 7386: objects merge, `null` removes, anything else replaces.
pub fn merge(target: Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut t = match target {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            let old = t.remove(k).unwrap_or(Value::Null);
            t.insert(k.clone(), merge(old, v));
        }
    }
    Value::Object(t)
}

/// RFC 6902's operations on JSON pointers.
fn json_patch(mut doc: Value, patch: &Value) -> Result<Value, String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for (i, op) in ops.iter().enumerate() {
        let at = |m: String| format!("operation {i}: {m}");
        let field = |name: &str| {
            op.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| at(format!("missing {name:?}")))
        };
        let path = field("path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| at("missing \"value\"".into()))
        };
        match field("op")? {
            "add" => add(&mut doc, path, value()?).map_err(at)?,
            "remove" => {
                remove(&mut doc, path).map_err(at)?;
            }
            "replace" => {
                remove(&mut doc, path).map_err(at)?;
                add(&mut doc, path, value()?).map_err(at)?;
            }
            "move" => {
                let v = remove(&mut doc, field("from")?).map_err(at)?;
                add(&mut doc, path, v).map_err(at)?;
            }
            "copy" => {
                let v = doc
                    .pointer(field("from")?)
                    .cloned()
                    .ok_or_else(|| at("\"from\" does not exist".into()))?;
                add(&mut doc, path, v).map_err(at)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(at(format!("test failed at {path}")));
                }
            }
            other => return Err(at(format!("unknown op {other:?}"))),
        }
    }
    Ok(doc)
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, v);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| format!("index {last:?} out of range at {parent:?}"))?
            };
            a.insert(i, v);
            Ok(())
        }
        _ => Err(format!("{parent:?} does not exist")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("{path:?} does not exist");
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// The key the elements of a list field merge by, as Kubernetes' types declare
/// (`patchMergeKey`); `None`: the list is replaced whole. `parent` is the path of the map
/// that holds the field, so a Service's `ports` and a container's differ.
pub(super) fn merge_key(parent: &str, field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "readinessGates" => {
            if field == "readinessGates" {
                "conditionType"
            } else {
                "name"
            }
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" if parent.ends_with("spec") && !parent.contains("containers") => "port",
        "ports" => "containerPort",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ownerReferences" => "uid",
        "taints" => "key",
        _ => return None,
    })
}

/// Lists of strings Kubernetes merges as sets (`patchStrategy: merge` on a primitive list).
fn merged_set(field: &str) -> bool {
    field == "finalizers"
}

fn strategic(target: Value, patch: &Value, path: &str) -> Result<Value, String> {
    let Value::Object(p) = patch else {
        return Ok(patch.clone());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut m = p.clone();
        m.remove("$patch");
        return Ok(Value::Object(m));
    }
    let mut t = match target {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        let here = format!("{path}.{k}");
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let old = t.remove(k).unwrap_or(Value::Null);
        let new = match (old, v) {
            (Value::Array(old), Value::Array(items)) => {
                Value::Array(strategic_list(old, items, path, k)?)
            }
            (old, Value::Object(_)) => strategic(old, v, &here)?,
            (_, v) => v.clone(),
        };
        t.insert(k.clone(), new);
    }
    Ok(Value::Object(t))
}

fn strategic_list(
    mut old: Vec<Value>,
    items: &[Value],
    parent: &str,
    field: &str,
) -> Result<Vec<Value>, String> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    }
    if merged_set(field) {
        for i in items {
            if !old.contains(i) {
                old.push(i.clone());
            }
        }
        return Ok(old);
    }
    let Some(key) = merge_key(parent, field) else {
        return Ok(items.to_vec());
    };
    let here = format!("{parent}.{field}");
    for item in items {
        let Some(id) = item.get(key).cloned() else {
            return Err(format!(
                "{}: an element of a list merged by {key:?} has no {key:?}",
                here.trim_start_matches('.')
            ));
        };
        let pos = old.iter().position(|o| o.get(key) == Some(&id));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                old.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => {
                let merged = strategic(std::mem::take(&mut old[i]), item, &here)?;
                old[i] = merged;
            }
            None => old.push(strategic(Value::Null, item, &here)?),
        }
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "x"},
                "finalizers": ["a"]},
               "spec": {"replicas": 1, "template": {"spec": {"containers": [
                   {"name": "app", "image": "busybox:1", "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80}]},
                   {"name": "side", "image": "busybox:1", "args": ["x", "y"]}]}}}})
    }

    #[test]
    fn merge_patch_removes_with_null_and_replaces_lists() {
        let p = br#"{"metadata":{"labels":{"tier":null,"new":"1"}},"spec":{"replicas":3}}"#;
        let out = apply(PatchKind::Merge, &deployment(), p).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "1"}));
        assert_eq!(out["spec"]["replicas"], 3);
        let p = br#"{"spec":{"template":{"spec":{"containers":[{"name":"only"}]}}}}"#;
        let out = apply(PatchKind::Merge, &deployment(), p).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only"}])
        );
    }

    #[test]
    fn strategic_patch_merges_containers_by_name() {
        let p = br#"{"spec":{"template":{"spec":{"containers":[
            {"name":"side","image":"busybox:2"},
            {"name":"app","env":[{"name":"B","value":"2"}]}]}}}}"#;
        let out = apply(PatchKind::Strategic, &deployment(), p).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "busybox:1");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["ports"], json!([{"containerPort": 80}]));
        assert_eq!(cs[1]["image"], "busybox:2");
        assert_eq!(cs[1]["args"], json!(["x", "y"]));
    }

    #[test]
    fn strategic_directives() {
        let p = br#"{"metadata":{"finalizers":["b"],"$deleteFromPrimitiveList/finalizers":["a"]},
            "spec":{"template":{"spec":{
              "$setElementOrder/containers":[{"name":"app"}],
              "containers":[{"name":"side","$patch":"delete"}]}}}}"#;
        let out = apply(PatchKind::Strategic, &deployment(), p).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert!(out["spec"]["template"]["spec"]
            .get("$setElementOrder/containers")
            .is_none());
        let p = br#"{"spec":{"template":{"spec":{"containers":[{"name":"n","$patch":"replace"},{"name":"n"}]}}}}"#;
        let out = apply(PatchKind::Strategic, &deployment(), p).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "n"}])
        );
        let bad = br#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#;
        let e = apply(PatchKind::Strategic, &deployment(), bad).unwrap_err();
        assert!(e.contains("spec.template.spec.containers"), "{e}");
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}});
        let out = apply(
            PatchKind::Strategic,
            &svc,
            br#"{"spec":{"ports":[{"port":80,"targetPort":8080}]}}"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
        assert_eq!(out["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(out["spec"]["ports"][0]["name"], "http");
    }

    #[test]
    fn json_patch_operations() {
        let p = br#"[{"op":"test","path":"/spec/replicas","value":1},
            {"op":"replace","path":"/spec/replicas","value":4},
            {"op":"add","path":"/metadata/labels/x~1y","value":"z"},
            {"op":"remove","path":"/metadata/labels/tier"},
            {"op":"add","path":"/metadata/finalizers/-","value":"b"},
            {"op":"copy","from":"/metadata/name","path":"/metadata/labels/name"},
            {"op":"move","from":"/metadata/labels/app","path":"/metadata/labels/was"}]"#;
        let out = apply(PatchKind::Json, &deployment(), p).unwrap();
        assert_eq!(out["spec"]["replicas"], 4);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"x/y": "z", "name": "web", "was": "web"})
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        let e = apply(
            PatchKind::Json,
            &deployment(),
            br#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
        )
        .unwrap_err();
        assert!(e.contains("test failed"), "{e}");
        assert!(apply(PatchKind::Json, &deployment(), br#"{"op":"add"}"#).is_err());
        assert!(apply(
            PatchKind::Json,
            &deployment(),
            br#"[{"op":"remove","path":"/nope"}]"#
        )
        .is_err());
        assert!(apply(PatchKind::Merge, &deployment(), b"not json").is_err());
    }

    #[test]
    fn numbers_print_and_read_back_exactly() {
        // The fuzzer's find: a number past u64 read as a float must print as the same float
        // (serde_json's `float_roundtrip`), or an object drifts each time it is stored.
        let target: Value = serde_json::from_str(&format!("[{}1]", "3".repeat(53))).unwrap();
        let out = apply(PatchKind::Json, &target, b"[]").unwrap();
        let back: Value = serde_json::from_str(&out.to_string()).unwrap();
        assert_eq!(back, out);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchKind::of("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchKind::Strategic)
        );
        assert_eq!(PatchKind::of("application/json"), None);
    }
}
