//! Where an HTTP request goes: Kubernetes' URL layout (`/api/v1/namespaces/{ns}/pods/{name}/
//! {subresource}`, `/apis/{group}/{version}/...`) read into a [`Route`], against the kinds
//! skiff serves. Pure: no I/O, unit-tested.

use skiff_api::Kind;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their `/...` checks).
    Health,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every group.
    Groups,
    /// `/apis/{group}`: one group.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: the resources of one group version.
    Resources {
        /// The group ("" for core).
        group: String,
        /// The version.
        version: String,
    },
    /// A kind's collection or one object, maybe a subresource of it.
    Object(Target),
    /// `/apis/metrics.k8s.io/v1beta1/...`: the resource metrics API.
    Metrics(Metrics),
    /// `/apis/metrics.k8s.io/v1beta1`: its resources.
    MetricsResources,
    /// `/openapi/v3`: the index of the group versions' documents.
    OpenApiRoot,
    /// `/openapi/v3/{api/v1|apis/{group}/{version}}`.
    OpenApi(String),
}

/// A collection (no name) or an object of a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The kind.
    pub kind: Kind,
    /// The namespace in the path (none: every namespace, or a cluster-scoped kind).
    pub namespace: Option<String>,
    /// The object's name (none: the collection).
    pub name: Option<String>,
    /// `status`, `scale`, `log`...
    pub subresource: Option<String>,
}

/// The resource metrics API's group.
pub const METRICS_GROUP: &str = "metrics.k8s.io";
/// Its one version.
pub const METRICS_VERSION: &str = "v1beta1";

/// What a metrics path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metrics {
    /// `nodes[/{name}]`.
    Nodes(Option<String>),
    /// `pods`, `namespaces/{ns}/pods[/{name}]`.
    Pods {
        /// The namespace (none: every namespace).
        namespace: Option<String>,
        /// The pod (none: the list).
        name: Option<String>,
    },
}

/// Reads the part of a path after `/apis/metrics.k8s.io/v1beta1/`.
pub fn metrics_route(rest: &[&str]) -> Option<Metrics> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match rest {
        ["nodes"] => Some(Metrics::Nodes(None)),
        ["nodes", n] => Some(Metrics::Nodes(Some(some(n)?))),
        ["pods"] => Some(Metrics::Pods {
            namespace: None,
            name: None,
        }),
        ["namespaces", ns, "pods", tail @ ..] if tail.len() <= 1 => Some(Metrics::Pods {
            namespace: Some(some(ns)?),
            name: match tail {
                [n] => Some(some(n)?),
                _ => None,
            },
        }),
        _ => None,
    }
}

/// Why a path names nothing skiff serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotServed(pub String);

/// The kind a group, version and plural name, if skiff serves it.
pub fn kind_of(group: &str, version: &str, plural: &str) -> Option<Kind> {
    Kind::ALL.iter().copied().find(|k| {
        let i = k.info();
        k.group() == group && i.plural == plural && api_version_of(group, version) == i.api_version
    })
}

fn api_version_of(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Does skiff serve this group version?
pub fn served_version(group: &str, version: &str) -> bool {
    let want = api_version_of(group, version);
    Kind::ALL.iter().any(|k| k.info().api_version == want)
}

/// Reads a path (without its query).
pub fn route(path: &str) -> Result<Route, NotServed> {
    let not_served = || {
        NotServed(format!(
            "the server could not find the requested resource ({path})"
        ))
    };
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        [h, ..] if matches!(*h, "healthz" | "livez" | "readyz") => Ok(Route::Health),
        ["api"] => Ok(Route::CoreVersions),
        ["openapi", "v3"] => Ok(Route::OpenApiRoot),
        ["openapi", "v3", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["apis"] => Ok(Route::Groups),
        ["apis", METRICS_GROUP] => Ok(Route::Group(METRICS_GROUP.into())),
        ["apis", METRICS_GROUP, METRICS_VERSION] => Ok(Route::MetricsResources),
        ["apis", METRICS_GROUP, METRICS_VERSION, rest @ ..] => metrics_route(rest)
            .map(Route::Metrics)
            .ok_or_else(not_served),
        ["apis", g] if Kind::ALL.iter().any(|k| k.group() == *g) => Ok(Route::Group(g.to_string())),
        ["api", v] if served_version("", v) => Ok(Route::Resources {
            group: String::new(),
            version: v.to_string(),
        }),
        ["apis", g, v] if served_version(g, v) => Ok(Route::Resources {
            group: g.to_string(),
            version: v.to_string(),
        }),
        ["api", v, rest @ ..] if served_version("", v) => target("", v, rest)
            .map(Route::Object)
            .ok_or_else(not_served),
        ["apis", g, v, rest @ ..] if served_version(g, v) => {
            target(g, v, rest).map(Route::Object).ok_or_else(not_served)
        }
        _ => Err(not_served()),
    }
}

/// `{plural}[/{name}[/{sub}]]` or `namespaces/{ns}/{plural}[/{name}[/{sub}]]`.
fn target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let name = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match rest {
        // A namespaced kind inside a namespace: namespaces/{ns}/{plural}...
        ["namespaces", ns, plural, tail @ ..]
            if kind_of(group, version, plural).is_some_and(Kind::namespaced) =>
        {
            let kind = kind_of(group, version, plural)?;
            match tail {
                [] => Some(Target {
                    kind,
                    namespace: name(ns),
                    name: None,
                    subresource: None,
                }),
                [n] | [n, _] => Some(Target {
                    kind,
                    namespace: name(ns),
                    name: Some(name(n)?),
                    subresource: tail.get(1).map(|s| s.to_string()),
                }),
                _ => None,
            }
        }
        // Any kind across namespaces, or a cluster-scoped kind (Namespace itself included).
        [plural, tail @ ..] => {
            let kind = kind_of(group, version, plural)?;
            match tail {
                [] => Some(Target {
                    kind,
                    namespace: None,
                    name: None,
                    subresource: None,
                }),
                // `namespaces/{ns}/{x}` with an `x` no kind serves is not a subresource.
                [_, sub] if kind == Kind::Namespace && !matches!(*sub, "status" | "finalize") => {
                    None
                }
                // A namespaced kind's object always needs its namespace.
                [n] | [n, _] if !kind.namespaced() => Some(Target {
                    kind,
                    namespace: None,
                    name: Some(name(n)?),
                    subresource: tail.get(1).map(|s| s.to_string()),
                }),
                _ => None,
            }
        }
        [] => None,
    }
}

/// The query parameters of a request, decoded (`+` and `%XX`), in order.
pub fn query(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `key` in a decoded query.
pub fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A boolean query parameter as Kubernetes reads one (`1`, `true`).
pub fn flag(q: &[(String, String)], key: &str) -> bool {
    matches!(param(q, key), Some("1" | "true" | "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(path: &str) -> Target {
        match route(path) {
            Ok(Route::Object(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn metrics_paths() {
        assert_eq!(metrics_route(&["nodes"]), Some(Metrics::Nodes(None)));
        assert_eq!(
            metrics_route(&["nodes", "n1"]),
            Some(Metrics::Nodes(Some("n1".into())))
        );
        assert_eq!(
            metrics_route(&["namespaces", "default", "pods", "web"]),
            Some(Metrics::Pods {
                namespace: Some("default".into()),
                name: Some("web".into())
            })
        );
        assert_eq!(
            metrics_route(&["pods"]),
            Some(Metrics::Pods {
                namespace: None,
                name: None
            })
        );
        assert_eq!(
            metrics_route(&["namespaces", "default", "pods", "web", "x"]),
            None
        );
        assert_eq!(metrics_route(&["services"]), None);
        assert_eq!(metrics_route(&["nodes", ""]), None);
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(route("/api"), Ok(Route::CoreVersions));
        assert_eq!(route("/apis/"), Ok(Route::Groups));
        assert_eq!(route("/apis/apps"), Ok(Route::Group("apps".into())));
        assert_eq!(
            route("/apis/apps/v1"),
            Ok(Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(route("/livez/ping"), Ok(Route::Health));
        assert_eq!(route("/openapi/v3"), Ok(Route::OpenApiRoot));
        assert_eq!(
            route("/openapi/v3/apis/apps/v1"),
            Ok(Route::OpenApi("apis/apps/v1".into()))
        );
        assert!(route("/apis/apps/v1beta1").is_err());
        assert!(route("/apis/certificates.k8s.io").is_err());
        assert!(route("/metrics").is_err());
    }

    #[test]
    fn namespaced_objects_and_collections() {
        let t = obj("/api/v1/namespaces/default/pods/web-1/log");
        assert_eq!(t.kind, Kind::Pod);
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web-1"));
        assert_eq!(t.subresource.as_deref(), Some("log"));
        let t = obj("/apis/apps/v1/deployments");
        assert_eq!(
            (t.kind, t.namespace, t.name),
            (Kind::Deployment, None, None)
        );
        let t = obj("/apis/apps/v1/namespaces/x/deployments");
        assert_eq!(t.namespace.as_deref(), Some("x"));
        assert_eq!(t.name, None);
        // A namespaced object is only reachable inside its namespace.
        assert!(route("/api/v1/pods/web-1").is_err());
        // Wrong group for the kind.
        assert!(route("/apis/apps/v1/pods").is_err());
        assert!(route("/api/v1/namespaces/default/widgets").is_err());
        assert!(route("/api/v1/namespaces/default/pods/a/log/extra").is_err());
    }

    #[test]
    fn namespaces_are_objects_too() {
        let t = obj("/api/v1/namespaces");
        assert_eq!((t.kind, t.name), (Kind::Namespace, None));
        let t = obj("/api/v1/namespaces/kube-system");
        assert_eq!(t.kind, Kind::Namespace);
        assert_eq!(t.name.as_deref(), Some("kube-system"));
        let t = obj("/api/v1/namespaces/kube-system/status");
        assert_eq!(t.kind, Kind::Namespace);
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = obj("/api/v1/nodes/n1/status");
        assert_eq!(
            (t.kind, t.subresource.as_deref()),
            (Kind::Node, Some("status"))
        );
    }

    #[test]
    fn queries_are_decoded() {
        let q = query(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&limit=5",
        ));
        assert_eq!(param(&q, "labelSelector"), Some("app=web,tier in (a)"));
        assert!(flag(&q, "watch"));
        assert!(!flag(&q, "allowWatchBookmarks"));
        assert_eq!(param(&q, "limit"), Some("5"));
    }
}
