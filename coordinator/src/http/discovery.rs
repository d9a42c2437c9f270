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
        .chain([super::metrics::group_doc()])
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(group: &str) -> Value {
    if group == super::route::METRICS_GROUP {
        return super::metrics::group_doc();
    }
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
                json!({"name": "pods/attach", "singularName": "", "namespaced": true,
                    "kind": "PodAttachOptions", "verbs": ["create", "get"]}),
                json!({"name": "pods/portforward", "singularName": "", "namespaced": true,
                    "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}),
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

/// The content type of aggregated discovery (`apidiscovery.k8s.io/v2`).
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Does an `Accept` header offer aggregated discovery v2 (what kubectl asks for first)?
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|t| {
            let parts: Vec<&str> = t.split(';').map(str::trim).collect();
            parts.contains(&"g=apidiscovery.k8s.io")
                && parts.contains(&"v=v2")
                && parts.contains(&"as=APIGroupDiscoveryList")
        })
    })
}

/// Aggregated discovery: `/api` (`core`) or `/apis` as one `APIGroupDiscoveryList`, each
/// group's versions with their resources and subresources, from the same lists as the
/// per-version documents.
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = groups()
        .into_iter()
        .filter(|g| g.is_empty() == core)
        .map(|g| {
            let mut versions: Vec<&str> = Kind::ALL
                .iter()
                .filter(|k| k.group() == g)
                .map(|k| version_of(*k))
                .collect();
            versions.dedup();
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|v| json!({"version": v, "resources": aggregated_resources(g, v), "freshness": "Current"}))
                .collect();
            json!({"metadata": {"name": g}, "versions": versions})
        })
        .chain((!core).then(super::metrics::aggregated_item))
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resources(group: &str, version: &str) -> Vec<Value> {
    let list = resource_list(group, version);
    let all = list["resources"].as_array().cloned().unwrap_or_default();
    let kind_of = |r: &Value| {
        json!({
            "group": r.get("group").and_then(Value::as_str).unwrap_or(group),
            "version": r.get("version").and_then(Value::as_str).unwrap_or(version),
            "kind": r["kind"],
        })
    };
    all.iter()
        .filter(|r| !r["name"].as_str().unwrap_or("").contains('/'))
        .map(|r| {
            let name = r["name"].as_str().unwrap_or("");
            let subresources: Vec<Value> = all
                .iter()
                .filter_map(|s| {
                    let sub = s["name"].as_str()?.strip_prefix(name)?.strip_prefix('/')?;
                    Some(json!({"subresource": sub, "responseKind": kind_of(s), "verbs": s["verbs"]}))
                })
                .collect();
            json!({
                "resource": name,
                "responseKind": kind_of(r),
                "scope": if r["namespaced"] == true { "Namespaced" } else { "Cluster" },
                "singularResource": r["singularName"],
                "verbs": r["verbs"],
                "shortNames": r["shortNames"],
                "subresources": subresources,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_carries_every_kind_and_its_subresources() {
        let core = aggregated(true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap()
            .clone();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["responseKind"]["kind"], "Pod");
        let subs: Vec<&str> = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["subresource"].as_str().unwrap())
            .collect();
        assert!(
            subs.contains(&"eviction") && subs.contains(&"status"),
            "{subs:?}"
        );
        let eviction = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .unwrap();
        assert_eq!(eviction["responseKind"]["group"], "policy");
        let apis = aggregated(false);
        let total: usize = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["metadata"]["name"] != "metrics.k8s.io")
            .map(|g| g["versions"][0]["resources"].as_array().unwrap().len())
            .sum::<usize>()
            + core["items"][0]["versions"][0]["resources"]
                .as_array()
                .unwrap()
                .len();
        assert_eq!(total, Kind::ALL.len());
        assert!(wants_aggregated(Some(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(!wants_aggregated(Some("application/json")));
    }

    #[test]
    fn every_kind_is_listed_once_under_its_group_version() {
        let mut seen = 0;
        for gv in [
            "v1",
            "apps/v1",
            "batch/v1",
            "networking.k8s.io/v1",
            "policy/v1",
            "autoscaling/v2",
            "scheduling.k8s.io/v1",
            "storage.k8s.io/v1",
            "rbac.authorization.k8s.io/v1",
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
        assert!(names.contains(&"metrics.k8s.io"), "{names:?}");
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
