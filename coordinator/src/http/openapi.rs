//! OpenAPI v3 (`/openapi/v3` and one document per group version), generated from the
//! kinds' rows: each kind's paths and operations, each tagged with its
//! `x-kubernetes-group-version-kind` and `x-kubernetes-action`, and the query parameters
//! skiff honours — `fieldValidation` among them, which is how kubectl learns that the
//! server validates fields itself (so its default `--validate=strict` needs no schema of
//! its own) — and the schemas of the kinds, generated from skiff's own types (their doc
//! comments are the descriptions), each kind's marked with its
//! `x-kubernetes-group-version-kind`, which is how `kubectl explain` finds it. Pure.

use serde_json::{json, Map, Value};
use skiff_api::Kind;

/// The group versions skiff serves, as OpenAPI v3 names them (`api/v1`, `apis/apps/v1`).
fn group_versions() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for k in Kind::ALL {
        let v = k.info().api_version;
        let path = if k.group().is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{v}")
        };
        if !out.iter().any(|(a, _)| *a == v) {
            out.push((v, path));
        }
    }
    out
}

/// `/openapi/v3`: where each group version's document is. The hash changes with skiff's
/// version, so clients' caches follow upgrades.
pub fn root() -> Value {
    let hash = format!("{:016x}", fnv(skiff_api::VERSION.as_bytes()));
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|(_, p)| {
            let url = format!("/openapi/v3/{p}?hash={hash}");
            (p, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn query(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": ty}, "uniqueItems": true})
}

fn operation(k: Kind, action: &str, params: Vec<Value>) -> Value {
    let (group, version) = match k.info().api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", k.info().api_version),
    };
    json!({
        "operationId": format!("{action}{}", k.info().name),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": k.info().name},
    })
}

/// The document of one group version (`api/v1`, `apis/apps/v1`), if skiff serves it.
pub fn group_version(path: &str) -> Option<Value> {
    let (api_version, _) = group_versions().into_iter().find(|(_, p)| p == path)?;
    let mut paths = Map::new();
    for k in Kind::ALL
        .iter()
        .filter(|k| k.info().api_version == api_version)
    {
        let i = k.info();
        let base = if i.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", i.plural)
        } else {
            format!("/{path}/{}", i.plural)
        };
        let write = || vec![query("fieldValidation", "string")];
        let list = || {
            [
                "labelSelector",
                "fieldSelector",
                "continue",
                "resourceVersion",
            ]
            .iter()
            .map(|p| query(p, "string"))
            .chain([
                query("limit", "integer"),
                query("watch", "boolean"),
                query("timeoutSeconds", "integer"),
            ])
            .collect::<Vec<_>>()
        };
        paths.insert(
            base.clone(),
            json!({
                "get": operation(*k, "list", list()),
                "post": operation(*k, "post", write()),
                "delete": operation(*k, "deletecollection", list()),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": operation(*k, "get", vec![]),
                "put": operation(*k, "put", write()),
                "patch": operation(*k, "patch", write()),
                "delete": operation(*k, "delete", vec![query("gracePeriodSeconds", "integer"), query("propagationPolicy", "string")]),
            }),
        );
        if i.has_status {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({
                    "get": operation(*k, "get", vec![]),
                    "put": operation(*k, "put", write()),
                    "patch": operation(*k, "patch", write()),
                }),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (skiff)", "version": format!("v1.33.0+skiff-{}", skiff_api::VERSION)},
        "paths": paths,
        "components": {"schemas": schemas(api_version)},
    }))
}

/// The schemas of a group version's kinds and of every type they hold.
fn schemas(api_version: &str) -> Value {
    let mut generator = skiff_api::schemars::gen::SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    for k in Kind::ALL
        .iter()
        .filter(|k| k.info().api_version == api_version)
    {
        let reference = match k.schema(&mut generator) {
            skiff_api::schemars::schema::Schema::Object(o) => o.reference.unwrap_or_default(),
            skiff_api::schemars::schema::Schema::Bool(_) => String::new(),
        };
        let name = reference.rsplit('/').next().unwrap_or_default().to_string();
        kinds.push((*k, name));
    }
    let mut defs = serde_json::to_value(generator.take_definitions()).unwrap_or_default();
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if let Value::Object(all) = &mut defs {
        for d in all.values_mut() {
            describe_common(d);
        }
    }
    for (k, name) in kinds {
        if let Some(Value::Object(d)) = defs.get_mut(&name) {
            d.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": k.info().name}]),
            );
        }
    }
    defs
}

/// The fields every kind shares, described as Kubernetes describes them where the type
/// itself says nothing.
fn describe_common(schema: &mut Value) {
    const COMMON: &[(&str, &str)] = &[
        ("apiVersion", "The versioned schema of this representation of an object (group/version)."),
        ("kind", "The REST resource this object represents, in CamelCase."),
        ("metadata", "Standard object metadata: name, namespace, labels, annotations, owners, managed fields."),
        ("spec", "The desired state of the object."),
        ("status", "The most recently observed state of the object, written by the system; read-only."),
    ];
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    for (field, text) in COMMON {
        if let Some(Value::Object(p)) = props.get_mut(*field) {
            p.entry("description").or_insert_with(|| Value::from(*text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_lists_every_group_version_once() {
        let r = root();
        let paths = r["paths"].as_object().unwrap();
        assert!(paths.contains_key("api/v1") && paths.contains_key("apis/apps/v1"));
        for (p, v) in paths {
            let url = v["serverRelativeURL"].as_str().unwrap();
            assert!(url.starts_with(&format!("/openapi/v3/{p}?hash=")), "{url}");
            assert!(group_version(p).is_some(), "{p}");
        }
        assert!(group_version("apis/apps/v2").is_none());
    }

    #[test]
    fn patch_operations_say_the_server_validates_fields() {
        let d = group_version("apis/apps/v1").unwrap();
        let op = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert_eq!(op["x-kubernetes-group-version-kind"]["group"], "apps");
        assert!(op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        let core = group_version("api/v1").unwrap();
        assert!(core["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
    }

    #[test]
    fn each_kind_has_a_schema_from_its_type_that_kubectl_explain_finds() {
        let d = group_version("apis/apps/v1").unwrap();
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let deployment = schemas
            .values()
            .find(|s| s["x-kubernetes-group-version-kind"][0]["kind"] == "Deployment")
            .expect("the Deployment's schema");
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["group"],
            "apps"
        );
        // Every reference resolves inside the document.
        let text = d.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let name = r.split('"').next().unwrap();
            let name = name.strip_prefix("#/components/schemas/").expect(name);
            assert!(schemas.contains_key(name), "{name}");
        }
        // Descriptions are the types' doc comments; fields are as Kubernetes names them.
        let spec = &schemas["DeploymentSpec"];
        assert!(spec["properties"]["replicas"].is_object(), "{spec}");
        assert!(
            spec["properties"]["revisionHistoryLimit"].is_object(),
            "{spec}"
        );
        let core = group_version("api/v1").unwrap();
        let pod = &core["components"]["schemas"]["Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["version"], "v1");
        assert!(pod["description"].as_str().is_some_and(|s| !s.is_empty()));
        let port = &core["components"]["schemas"]["ServicePort"]["properties"]["targetPort"];
        assert_eq!(port["format"], "int-or-string", "{port}");
    }
}
