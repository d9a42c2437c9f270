//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets (what `kubectl
//! scale` and autoscalers use): the object seen as an `autoscaling/v1` `Scale`, and a
//! Scale written back as the object's `spec.replicas`. Pure.

use serde_json::{json, Value};
use skiff_api::selector::LabelSelector;
use skiff_api::Kind;

/// Does the kind have a scale subresource?
pub fn scalable(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet
    )
}

/// The object (its JSON) as a `Scale`.
pub fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut m = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            m.insert(f.into(), v.clone());
        }
    }
    let selector = serde_json::from_value::<LabelSelector>(object["spec"]["selector"].clone())
        .ok()
        .and_then(|s| s.to_selector().ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// The object with the replicas a `Scale` asks for, and the Scale's `resourceVersion` as
/// the write's precondition (none when the Scale has none).
pub fn apply_scale(object: &Value, scale: &Value) -> Result<Value, String> {
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .ok_or("spec.replicas: Required value: a Scale must say how many replicas")?;
    if replicas < 0 {
        return Err(format!(
            "spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
        ));
    }
    let mut next = object.clone();
    next["spec"]["replicas"] = json!(replicas);
    match scale["metadata"]["resourceVersion"].as_str() {
        Some(rv) if !rv.is_empty() => next["metadata"]["resourceVersion"] = json!(rv),
        _ => {
            if let Some(m) = next["metadata"].as_object_mut() {
                m.remove("resourceVersion");
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "uid": "u"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}})
    }

    #[test]
    fn a_deployment_seen_as_a_scale() {
        let s = scale_of(&deployment());
        assert_eq!(s["kind"], "Scale");
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn a_scale_written_back() {
        let next = apply_scale(
            &deployment(),
            &json!({"spec": {"replicas": 5}, "metadata": {"resourceVersion": "7"}}),
        )
        .unwrap();
        assert_eq!(next["spec"]["replicas"], 5);
        assert_eq!(next["metadata"]["resourceVersion"], "7");
        let unconditional = apply_scale(&deployment(), &json!({"spec": {"replicas": 0}})).unwrap();
        assert!(unconditional["metadata"].get("resourceVersion").is_none());
        assert!(apply_scale(&deployment(), &json!({"spec": {"replicas": -1}})).is_err());
        assert!(apply_scale(&deployment(), &json!({"spec": {}})).is_err());
    }
}
