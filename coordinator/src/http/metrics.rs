//! The resource metrics API, `metrics.k8s.io/v1beta1` (what metrics-server serves and
//! `kubectl top` reads): NodeMetrics and PodMetrics made from the agents' usage reports,
//! which the coordinator keeps in memory (never in the store, as metrics-server keeps
//! them). Objects are joined with the stored Nodes and Pods, so a label selector works and
//! a deleted pod's last figures are not served. The documents and objects are pure; the
//! handler at the end reads through the same request path as everything else (the usage
//! read is the admin-only `Top` request).

use super::listing;
use super::route::{query, Metrics, Target, METRICS_GROUP as GROUP, METRICS_VERSION as VERSION};
use super::{failure, json, Body};
use crate::nodes::fresh;
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::Store;
use hyper::{Method, Response};
use serde_json::{json, Value};
use skiff_api::util::rfc3339;
use skiff_api::wire::{
    ApiError, ErrorCode, NodeUsageReport, PodUsage, Request as ApiRequest, Response as ApiResponse,
    Usage,
};
use skiff_api::Kind;

fn resources() -> Vec<Value> {
    [
        ("nodes", "NodeMetrics", false),
        ("pods", "PodMetrics", true),
    ]
    .iter()
    .map(|(name, kind, namespaced)| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["get", "list"]})
    })
    .collect()
}

/// `/apis/metrics.k8s.io`, and its entry in `/apis`.
pub fn group_doc() -> Value {
    let gv = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": GROUP,
        "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis/metrics.k8s.io/v1beta1`.
pub fn resource_list() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"), "resources": resources()})
}

/// The group's entry in aggregated discovery.
pub fn aggregated_item() -> Value {
    let resources: Vec<Value> = resources()
        .iter()
        .map(|r| {
            json!({
                "resource": r["name"],
                "responseKind": {"group": GROUP, "version": VERSION, "kind": r["kind"]},
                "scope": if r["namespaced"] == true { "Namespaced" } else { "Cluster" },
                "singularResource": if r["namespaced"] == true { "podmetrics" } else { "nodemetrics" },
                "verbs": r["verbs"],
            })
        })
        .collect();
    json!({"metadata": {"name": GROUP},
        "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}]})
}

/// A Kubernetes duration as Go prints it (`10.5s`).
fn window(ms: u64) -> String {
    let s = format!("{}.{:03}", ms / 1000, ms % 1000);
    format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
}

fn usage(u: &Usage) -> Value {
    json!({"cpu": format!("{}m", u.cpu_millis), "memory": format!("{}Ki", u.memory_bytes / 1024)})
}

/// What metrics-server copies from the measured object: name, namespace, labels.
fn meta(object: &Value, at: u64) -> Value {
    let m = &object["metadata"];
    let mut out = json!({"name": m["name"], "creationTimestamp": rfc3339(at)});
    for f in ["namespace", "labels"] {
        if let Some(v) = m.get(f) {
            out[f] = v.clone();
        }
    }
    out
}

/// A NodeMetrics: the node object and its report.
pub fn node_metrics(node: &Value, r: &NodeUsageReport) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": meta(node, r.at),
        "timestamp": rfc3339(r.at),
        "window": window(r.window_ms),
        "usage": usage(&r.usage),
    })
}

/// A PodMetrics: the pod object, its figures, and the report that carried them.
pub fn pod_metrics(pod: &Value, p: &PodUsage, r: &NodeUsageReport) -> Value {
    let containers: Vec<Value> = p
        .containers
        .iter()
        .map(|c| json!({"name": c.name, "usage": usage(&c.usage)}))
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": meta(pod, r.at),
        "timestamp": rfc3339(r.at),
        "window": window(r.window_ms),
        "containers": containers,
    })
}

/// The figures of one pod in fresh reports, with its report.
pub fn find_pod<'a>(
    reports: &'a [NodeUsageReport],
    namespace: &str,
    name: &str,
) -> Option<(&'a PodUsage, &'a NodeUsageReport)> {
    reports.iter().find_map(|r| {
        r.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
            .map(|p| (p, r))
    })
}

/// Answers a metrics request: GET only, list or one object.
pub async fn serve<S: Store>(
    api: &Api<S>,
    id: &Identity,
    m: Metrics,
    method: &Method,
    raw_query: Option<&str>,
) -> Response<Body> {
    if method != Method::GET {
        return super::verbs::plain_status(
            405,
            "MethodNotAllowed",
            &format!("the metrics API is read-only: {method} is not supported"),
        );
    }
    match answer(api, id, m, raw_query).await {
        Ok(v) => json(200, v.to_string()),
        Err(e) => failure(&e, None),
    }
}

async fn answer<S: Store>(
    api: &Api<S>,
    id: &Identity,
    m: Metrics,
    raw_query: Option<&str>,
) -> Result<Value, ApiError> {
    let now = crate::controllers::runner::now_secs();
    let reports: Vec<NodeUsageReport> = match api.handle(id, ApiRequest::Top).await {
        ApiResponse::Usage { nodes } => nodes.into_iter().filter(|r| fresh(r, now)).collect(),
        ApiResponse::Error(e) => return Err(e),
        other => {
            return Err(ApiError::new(
                ErrorCode::Internal,
                format!("unexpected answer {other:?}"),
            ))
        }
    };
    let mut q = query(raw_query);
    let (kind, namespace, name) = match &m {
        Metrics::Nodes(name) => (Kind::Node, None, name.clone()),
        Metrics::Pods { namespace, name } => (Kind::Pod, namespace.clone(), name.clone()),
    };
    if let Some(n) = &name {
        q.retain(|(k, _)| k != "fieldSelector");
        q.push(("fieldSelector".into(), format!("metadata.name={n}")));
    }
    let t = Target {
        kind,
        namespace,
        name: None,
        subresource: None,
    };
    let (_, objects, _) = listing::page(api, id, &t, &q, None, None).await?;
    let mut items = Vec::new();
    for o in &objects {
        let o: Value = serde_json::from_str(o)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let obj_name = o["metadata"]["name"].as_str().unwrap_or("");
        let item = match &m {
            Metrics::Nodes(_) => reports
                .iter()
                .find(|r| r.node == obj_name)
                .map(|r| node_metrics(&o, r)),
            Metrics::Pods { .. } => {
                let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
                find_pod(&reports, ns, obj_name).map(|(p, r)| pod_metrics(&o, p, r))
            }
        };
        items.extend(item);
    }
    let kind = match m {
        Metrics::Nodes(_) => "NodeMetrics",
        Metrics::Pods { .. } => "PodMetrics",
    };
    match name {
        Some(n) => items.pop().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("{}.{GROUP} \"{n}\" not found", kind.to_ascii_lowercase()),
            )
        }),
        None => Ok(json!({
            "kind": format!("{kind}List"),
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "metadata": {},
            "items": items,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::wire::ContainerUsage;

    fn report(at: u64) -> NodeUsageReport {
        NodeUsageReport {
            node: "n1".into(),
            usage: Usage {
                cpu_millis: 250,
                memory_bytes: 512 << 20,
            },
            pods: vec![PodUsage {
                namespace: "default".into(),
                name: "web".into(),
                usage: Usage {
                    cpu_millis: 30,
                    memory_bytes: 3 << 20,
                },
                containers: vec![ContainerUsage {
                    name: "nginx".into(),
                    usage: Usage {
                        cpu_millis: 30,
                        memory_bytes: 3 << 20,
                    },
                }],
            }],
            at,
            window_ms: 10_500,
        }
    }

    #[test]
    fn objects_as_metrics_server_writes_them() {
        let r = report(1_700_000_000);
        let pod = json!({"metadata": {"name": "web", "namespace": "default",
            "labels": {"app": "web"}, "uid": "u"}});
        let m = pod_metrics(&pod, &r.pods[0], &r);
        assert_eq!(m["kind"], "PodMetrics");
        assert_eq!(m["apiVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(m["metadata"]["labels"]["app"], "web");
        assert!(m["metadata"].get("uid").is_none());
        assert_eq!(m["window"], "10.5s");
        assert_eq!(m["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(m["containers"][0]["name"], "nginx");
        assert_eq!(m["containers"][0]["usage"]["cpu"], "30m");
        assert_eq!(m["containers"][0]["usage"]["memory"], "3072Ki");
        let n = node_metrics(&json!({"metadata": {"name": "n1"}}), &r);
        assert_eq!(n["usage"]["cpu"], "250m");
        assert_eq!(n["usage"]["memory"], "524288Ki");
        assert!(n["metadata"].get("namespace").is_none());
        assert_eq!(window(10_000), "10s");
        assert_eq!(window(0), "0s");
    }

    #[test]
    fn stale_reports_are_not_served() {
        let r = report(1000);
        assert!(fresh(&r, 1000 + 60));
        assert!(!fresh(&r, 1000 + 61));
        let slow = NodeUsageReport {
            window_ms: 40_000,
            ..report(1000)
        };
        assert!(fresh(&slow, 1000 + 120));
        let reports = [r];
        assert!(find_pod(&reports, "default", "web").is_some());
        assert!(find_pod(&reports, "other", "web").is_none());
    }

    #[test]
    fn discovery_documents() {
        assert_eq!(
            group_doc()["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
        let l = resource_list();
        assert_eq!(l["resources"].as_array().unwrap().len(), 2);
        let a = aggregated_item();
        assert_eq!(a["versions"][0]["resources"][1]["scope"], "Namespaced");
    }
}
