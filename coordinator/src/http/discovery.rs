//! Discovery documents (`/api`, `/apis`, `/apis/{group}`, `/api/v1`,
//! `/apis/{group}/{version}`), generated from the kinds' rows: `kubectl api-resources`
//! lists exactly what skiff serves, with the verbs this front end answers. Pure.

use serde_json::{json, Value};
use skiff_api::Kind;

/// The verbs every collection and object answers.
pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The groups skiff serves, core first, each once, in the rows' order.
fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in Kind::ALL {
        if !out.contains(&k.group()) {
            out.push(k.group());
        }
    }
    out
}

fn version_of(k: Kind) -> &'static str {
    let v = k.info().api_version;
    v.rsplit_once('/').map_or(v, |(_, v)| v)
}

fn group_doc(group: &str) -> Value {
    let mut versions: Vec<&str> = Kind::ALL
        .iter()
        .filter(|k| k.group() == group)
        .map(|k| version_of(*k))
        .collect();
    versions.dedup();
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(group_doc)
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(group: &str) -> Value {
    group_doc(group)
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(group: &str, version: &str) -> Value {
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for k in Kind::ALL
        .iter()
        .filter(|k| k.info().api_version == group_version)
    {
        let i = k.info();
        resources.push(json!({
            "name": i.plural,
            "singularName": i.name.to_ascii_lowercase(),
            "namespaced": i.namespaced,
            "kind": i.name,
            "verbs": VERBS,
            "shortNames": i.short,
        }));
        if *k == Kind::Pod {
            resources.extend([
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                    "kind": "Pod", "verbs": ["get"]}),
                json!({"name": "pods/exec", "singularName": "", "namespaced": true,
                    "kind": "PodExecOptions", "verbs": ["create", "get"]}),
                json!({"name": "pods/eviction", "singularName": "", "namespaced": true,
                    "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
            ]);
        }
        if super::scale::scalable(*k) {
            resources.push(json!({
                "name": format!("{}/scale", i.plural),
                "singularName": "",
                "namespaced": i.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if i.has_status {
            resources.push(json!({
                "name": format!("{}/status", i.plural),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": i.name,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_under_its_group_version() {
        let mut seen = 0;
        for gv in [
            "v1",
            "apps/v1",
            "batch/v1",
            "networking.k8s.io/v1",
            "policy/v1",
        ] {
            let (g, v) = gv.rsplit_once('/').unwrap_or(("", gv));
            let doc = resource_list(g, v);
            assert_eq!(doc["groupVersion"], gv);
            for r in doc["resources"].as_array().unwrap() {
                let name = r["name"].as_str().unwrap();
                if !name.contains('/') {
                    let k = Kind::from_name(&format!("{name}.{g}"))
                        .or_else(|| Kind::from_name(name))
                        .unwrap();
                    assert_eq!(k.info().api_version, gv);
                    assert_eq!(r["kind"], k.name());
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, Kind::ALL.len());
    }

    #[test]
    fn groups_name_their_preferred_version() {
        let l = group_list();
        let names: Vec<&str> = l["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"apps") && names.contains(&"batch"),
            "{names:?}"
        );
        assert!(!names.contains(&""), "the core group is /api, not /apis");
        assert_eq!(group("apps")["preferredVersion"]["groupVersion"], "apps/v1");
    }

    #[test]
    fn status_subresources_only_for_kinds_with_a_status() {
        let core = resource_list("", "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods/status"));
        assert!(names.contains(&"pods/eviction") && names.contains(&"pods/exec"));
        assert!(!names.contains(&"configmaps/status"));
    }
}
