//! `v1` LimitRange and ResourceQuota, and the pure halves of their admission as
//! Kubernetes' LimitRanger and ResourceQuota plugins do it: a LimitRange gives containers
//! their default requests and limits and holds containers, pods and claims between its
//! minimums and maximums; a ResourceQuota caps what a namespace's objects may ask for
//! (compute requests and limits, storage, object counts), with `status.used` kept by the
//! coordinator.

use crate::k8s_struct;
use crate::meta::ObjectMeta;
use crate::pod::{Container, Pod};
use crate::print::{age, Page, Print};
use crate::quantity::Quantity;
use crate::resource::{NameRule, Resource};
use crate::validate::Problems;
use std::collections::BTreeMap;

/// Resource name → quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

k8s_struct! {
    /// `corev1.LimitRange`.
    pub struct LimitRange {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: LimitRangeSpec,
    }
}

k8s_struct! {
    /// `corev1.LimitRangeSpec`.
    pub struct LimitRangeSpec {
        pub limits: Vec<LimitRangeItem>,
    }
}

k8s_struct! {
    /// `corev1.LimitRangeItem`: bounds and defaults for one type of object.
    pub struct LimitRangeItem {
        /// `Container`, `Pod` or `PersistentVolumeClaim`.
        #[serde(rename = "type")]
        pub type_: String,
        pub max: ResourceList,
        pub min: ResourceList,
        pub default: ResourceList,
        pub default_request: ResourceList,
        pub max_limit_request_ratio: ResourceList,
    }
}

k8s_struct! {
    /// `corev1.ResourceQuota`.
    pub struct ResourceQuota {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: ResourceQuotaSpec,
        pub status: Option<ResourceQuotaStatus>,
    }
}

k8s_struct! {
    /// `corev1.ResourceQuotaSpec`.
    pub struct ResourceQuotaSpec {
        pub hard: ResourceList,
        pub scopes: Vec<String>,
        pub scope_selector: Option<serde_json::Value>,
    }
}

k8s_struct! {
    /// `corev1.ResourceQuotaStatus`.
    pub struct ResourceQuotaStatus {
        pub hard: ResourceList,
        pub used: ResourceList,
    }
}

const LIMIT_TYPES: [&str; 3] = ["Container", "Pod", "PersistentVolumeClaim"];

impl Resource for LimitRange {
    const NAME: NameRule = NameRule::Subdomain;

    /// Kubernetes' `SetDefaults_LimitRangeItem`: for containers, a default limit is the
    /// max, a default request the default limit, else the min.
    fn default_fields(&mut self) {
        for item in &mut self.spec.limits {
            if item.type_ != "Container" {
                continue;
            }
            for (k, v) in &item.max {
                item.default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for (k, v) in &item.default {
                item.default_request
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            for (k, v) in &item.min {
                item.default_request
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
        }
    }

    fn validate(&self, v: &mut Problems) {
        for (i, item) in self.spec.limits.iter().enumerate() {
            let p = format!("spec.limits[{i}]");
            if !LIMIT_TYPES.contains(&item.type_.as_str()) {
                v.unsupported(&format!("{p}.type"), &item.type_, &LIMIT_TYPES);
            }
            if item.type_ != "Container" {
                for (what, map) in [
                    ("default", &item.default),
                    ("defaultRequest", &item.default_request),
                ] {
                    for k in map.keys() {
                        v.forbidden(
                            &format!("{p}.{what}[{k}]"),
                            &format!("may not be specified when `type` is '{}'", item.type_),
                        );
                    }
                }
            }
            for (k, min) in &item.min {
                if let Some(max) = item.max.get(k).filter(|max| min > *max) {
                    v.invalid(
                        &format!("{p}.min[{k}]"),
                        format!("{min:?}", min = min.to_string()),
                        &format!("min value {min} is greater than max value {max}"),
                    );
                }
            }
            for (k, d) in &item.default {
                if let Some(max) = item.max.get(k).filter(|max| d > *max) {
                    v.invalid(
                        &format!("{p}.default[{k}]"),
                        format!("{:?}", d.to_string()),
                        &format!("default value {d} is greater than max value {max}"),
                    );
                }
            }
            for (k, r) in &item.default_request {
                if let Some(d) = item.default.get(k).filter(|d| r > *d) {
                    v.invalid(
                        &format!("{p}.defaultRequest[{k}]"),
                        format!("{:?}", r.to_string()),
                        &format!(
                            "default request value {r} is greater than default limit value {d}"
                        ),
                    );
                }
            }
        }
    }

    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Print for LimitRange {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "CREATED AT"]
    }

    fn row(&self, _wide: bool, _now: u64) -> Vec<String> {
        vec![
            self.metadata.name().to_string(),
            self.metadata.creation_timestamp.clone().unwrap_or_default(),
        ]
    }

    fn describe(&self, page: &mut Page) {
        let dash = |m: &ResourceList, k: &str| m.get(k).map_or("-".into(), |q| q.to_string());
        let rows: Vec<Vec<String>> = self
            .spec
            .limits
            .iter()
            .flat_map(|item| {
                let mut names: Vec<&String> = item
                    .min
                    .keys()
                    .chain(item.max.keys())
                    .chain(item.default.keys())
                    .chain(item.default_request.keys())
                    .chain(item.max_limit_request_ratio.keys())
                    .collect();
                names.sort();
                names.dedup();
                names
                    .into_iter()
                    .map(|k| {
                        vec![
                            item.type_.clone(),
                            k.clone(),
                            dash(&item.min, k),
                            dash(&item.max, k),
                            dash(&item.default_request, k),
                            dash(&item.default, k),
                            dash(&item.max_limit_request_ratio, k),
                        ]
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        page.table(
            &[
                "Type",
                "Resource",
                "Min",
                "Max",
                "Default Request",
                "Default Limit",
                "Max Limit/Request Ratio",
            ],
            &rows,
        );
    }
}

/// Whether a quota resource name is one skiff counts.
pub fn quota_resource_known(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "requests.storage",
        "persistentvolumeclaims",
        "services",
        "services.nodeports",
        "services.loadbalancers",
        "configmaps",
        "secrets",
        "replicationcontrollers",
        "resourcequotas",
    ];
    NAMES.contains(&name) || name.starts_with("count/")
}

impl Resource for ResourceQuota {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {}

    fn validate(&self, v: &mut Problems) {
        for (k, q) in &self.spec.hard {
            let p = format!("spec.hard[{k}]");
            if q.is_negative() {
                v.invalid(
                    &p,
                    format!("{:?}", q.to_string()),
                    "must be greater than or equal to 0",
                );
            }
            if !quota_resource_known(k) {
                v.no_effect(&p, "skiff does not count this resource: it limits nothing");
            }
        }
        if !self.spec.scopes.is_empty() || self.spec.scope_selector.is_some() {
            v.no_effect(
                "spec.scopes",
                "skiff applies a quota to every object of its namespace, whatever its scopes",
            );
        }
    }

    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Print for ResourceQuota {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "AGE", "REQUEST", "LIMIT"]
    }

    /// As kubectl: `limits.*` in LIMIT, everything else in REQUEST, `used/hard`.
    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let cell = |limits: bool| {
            st.hard
                .iter()
                .filter(|(k, _)| k.starts_with("limits.") == limits)
                .map(|(k, h)| {
                    let used = st.used.get(k).map_or("0".into(), |u| u.to_string());
                    format!("{k}: {used}/{h}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            self.metadata.name().to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
            cell(false),
            cell(true),
        ]
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        let rows: Vec<Vec<String>> = self
            .spec
            .hard
            .iter()
            .map(|(k, h)| {
                let used = st.used.get(k).map_or("0".into(), |u| u.to_string());
                vec![k.clone(), used, h.to_string()]
            })
            .collect();
        page.table(&["Resource", "Used", "Hard"], &rows);
    }
}

/// One container's request or limit of `name` (a request defaults to the limit).
fn amount(c: &Container, limit: bool, name: &str) -> Option<Quantity> {
    let r = c.resources.as_ref()?;
    if limit {
        r.limits.get(name).cloned()
    } else {
        r.requests.get(name).or(r.limits.get(name)).cloned()
    }
}

/// The LimitRanger's defaults for a new pod: each container without a request or limit of
/// a resource a Container item defaults gets it. Returns the annotation Kubernetes writes
/// (`LimitRanger plugin set: cpu request for container web...`), if anything was set.
pub fn apply_limit_defaults(ranges: &[LimitRange], pod: &mut Pod) -> Option<String> {
    let mut said = Vec::new();
    let items = ranges
        .iter()
        .flat_map(|r| &r.spec.limits)
        .filter(|i| i.type_ == "Container");
    for item in items {
        let spec = &mut pod.spec;
        for c in spec
            .init_containers
            .iter_mut()
            .chain(spec.containers.iter_mut())
        {
            let r = c.resources.get_or_insert_with(Default::default);
            let (mut req, mut lim) = (Vec::new(), Vec::new());
            for (k, d) in &item.default {
                if !r.limits.contains_key(k) {
                    r.limits.insert(k.clone(), d.clone());
                    lim.push(k.clone());
                }
            }
            for (k, d) in &item.default_request {
                if !r.requests.contains_key(k) {
                    // A request not given follows the limit when there is one.
                    let v = r.limits.get(k).filter(|_| !lim.contains(k)).unwrap_or(d);
                    r.requests.insert(k.clone(), v.clone());
                    req.push(k.clone());
                }
            }
            if !req.is_empty() {
                said.push(format!(
                    "{} request for container {}",
                    req.join(", "),
                    c.name
                ));
            }
            if !lim.is_empty() {
                said.push(format!("{} limit for container {}", lim.join(", "), c.name));
            }
        }
    }
    (!said.is_empty()).then(|| format!("LimitRanger plugin set: {}", said.join("; ")))
}

/// Kubernetes' LimitRanger checks of one set of requests and limits against an item.
fn check_item(
    item: &LimitRangeItem,
    what: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    out: &mut Vec<String>,
) {
    for (k, min) in &item.min {
        match requests.get(k) {
            None => out.push(format!(
                "minimum {k} usage per {what} is {min}.  No request is specified"
            )),
            Some(r) if r < min => out.push(format!(
                "minimum {k} usage per {what} is {min}, but request is {r}"
            )),
            _ => {}
        }
    }
    for (k, max) in &item.max {
        match limits.get(k) {
            None => out.push(format!(
                "maximum {k} usage per {what} is {max}.  No limit is specified"
            )),
            Some(l) if l > max => out.push(format!(
                "maximum {k} usage per {what} is {max}, but limit is {l}"
            )),
            _ => {}
        }
    }
    for (k, ratio) in &item.max_limit_request_ratio {
        let (Some(l), Some(r)) = (limits.get(k), requests.get(k)) else {
            continue;
        };
        if r.nanos() > 0 {
            let actual = l.nanos() as f64 / r.nanos() as f64;
            if actual > ratio.nanos() as f64 / 1e9 {
                out.push(format!(
                    "{k} max limit to request ratio per {what} is {ratio}, but provided ratio is {actual:.6}"
                ));
            }
        }
    }
}

fn sum(cs: &[&Container], limit: bool) -> ResourceList {
    let mut out: BTreeMap<String, i128> = BTreeMap::new();
    for c in cs {
        if let Some(r) = &c.resources {
            let map = if limit { &r.limits } else { &r.requests };
            for (k, q) in map {
                *out.entry(k.clone()).or_default() += q.nanos();
            }
        }
    }
    out.into_iter()
        .map(|(k, n)| (k.clone(), amount_of(&k, n)))
        .collect()
}

/// A total of `name` in nano-units, written as Kubernetes would write it.
pub fn amount_of(name: &str, nanos: i128) -> Quantity {
    if name == "cpu" || name.ends_with(".cpu") {
        return Quantity::from_millis((nanos / 1_000_000) as i64);
    }
    let units = nanos / 1_000_000_000;
    let text = [("Gi", 1i128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        .into_iter()
        .find(|(_, f)| units != 0 && units % f == 0)
        .map_or(units.to_string(), |(s, f)| format!("{}{s}", units / f));
    Quantity::parse(&text).unwrap_or_default()
}

/// What the LimitRanger refuses in a pod (its defaults already applied).
pub fn limit_problems(ranges: &[LimitRange], pod: &Pod) -> Vec<String> {
    let mut out = Vec::new();
    let cs: Vec<&Container> = pod
        .spec
        .init_containers
        .iter()
        .chain(&pod.spec.containers)
        .collect();
    for item in ranges.iter().flat_map(|r| &r.spec.limits) {
        match item.type_.as_str() {
            "Container" => {
                for c in &cs {
                    let r = c.resources.clone().unwrap_or_default();
                    let mut requests = r.requests.clone();
                    for (k, l) in &r.limits {
                        requests.entry(k.clone()).or_insert_with(|| l.clone());
                    }
                    check_item(item, "Container", &requests, &r.limits, &mut out);
                }
            }
            "Pod" => {
                let apps: Vec<&Container> = pod.spec.containers.iter().collect();
                check_item(item, "Pod", &sum(&apps, false), &sum(&apps, true), &mut out);
            }
            _ => {}
        }
    }
    out
}

/// What a new pod asks of a quota: its non-terminal count, and requests and limits
/// summed over its app containers (the larger of that and any init container).
pub fn pod_usage(pod: &Pod) -> BTreeMap<String, i128> {
    let mut out = BTreeMap::new();
    out.insert("pods".to_string(), 1_000_000_000);
    let each = |limit: bool, name: &str| -> i128 {
        let apps: i128 = pod
            .spec
            .containers
            .iter()
            .filter_map(|c| amount(c, limit, name))
            .map(|q| q.nanos())
            .sum();
        pod.spec
            .init_containers
            .iter()
            .filter_map(|c| amount(c, limit, name))
            .map(|q| q.nanos())
            .fold(apps, i128::max)
    };
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let (r, l) = (each(false, name), each(true, name));
        out.insert(name.to_string(), r);
        out.insert(format!("requests.{name}"), r);
        out.insert(format!("limits.{name}"), l);
    }
    out
}

/// The resources of a quota a pod must state (a quota on `requests.cpu` needs every
/// container to request cpu): Kubernetes' "must specify" message, if some do not.
pub fn unstated(hard: &ResourceList, pod: &Pod) -> Option<String> {
    let mut missing: Vec<String> = Vec::new();
    for (key, limit, name) in [
        ("requests.cpu", false, "cpu"),
        ("cpu", false, "cpu"),
        ("requests.memory", false, "memory"),
        ("memory", false, "memory"),
        ("limits.cpu", true, "cpu"),
        ("limits.memory", true, "memory"),
    ] {
        if !hard.contains_key(key) {
            continue;
        }
        let without: Vec<&str> = pod
            .spec
            .containers
            .iter()
            .filter(|c| amount(c, limit, name).is_none())
            .map(|c| c.name.as_str())
            .collect();
        if !without.is_empty() {
            missing.push(format!("{key} for: {}", without.join(",")));
        }
    }
    missing.sort();
    missing.dedup();
    (!missing.is_empty()).then(|| format!("must specify {}", missing.join("; ")))
}

/// The kinds whose objects a quota resource counts.
pub fn counted_kinds(resource: &str) -> Vec<crate::Kind> {
    match resource {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => vec![crate::Kind::Pod],
        r if r.starts_with("requests.") && r != "requests.storage" => vec![crate::Kind::Pod],
        r if r.starts_with("limits.") => vec![crate::Kind::Pod],
        "requests.storage" | "persistentvolumeclaims" => vec![crate::Kind::PersistentVolumeClaim],
        "services" | "services.nodeports" | "services.loadbalancers" => vec![crate::Kind::Service],
        "configmaps" => vec![crate::Kind::ConfigMap],
        "secrets" => vec![crate::Kind::Secret],
        "resourcequotas" => vec![crate::Kind::ResourceQuota],
        r => r
            .strip_prefix("count/")
            .and_then(crate::Kind::from_name)
            .into_iter()
            .collect(),
    }
}

/// What one object counts against a quota: a pod that has not ended its count and
/// compute; a Service, ConfigMap, Secret, claim (and its storage) or quota its count; and
/// every object its `count/<resource>[.<group>]`. Amounts in nano-units.
pub fn object_usage(o: &crate::Object) -> BTreeMap<String, i128> {
    use crate::Object;
    const ONE: i128 = 1_000_000_000;
    let mut out = BTreeMap::new();
    let info = o.kind().info();
    let group = info.api_version.rsplit_once('/').map(|(g, _)| g);
    let count = match group {
        Some(g) => format!("count/{}.{g}", info.plural),
        None => format!("count/{}", info.plural),
    };
    match o {
        Object::Pod(p) => {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                return out;
            }
            out = pod_usage(p);
        }
        Object::Service(s) => {
            out.insert("services".into(), ONE);
            let t = s.spec.type_.as_deref().unwrap_or("ClusterIP");
            if t == "NodePort" || t == "LoadBalancer" {
                out.insert(
                    "services.nodeports".into(),
                    ONE * s.spec.ports.len() as i128,
                );
            }
            if t == "LoadBalancer" {
                out.insert("services.loadbalancers".into(), ONE);
            }
        }
        Object::ConfigMap(_) => {
            out.insert("configmaps".into(), ONE);
        }
        Object::Secret(_) => {
            out.insert("secrets".into(), ONE);
        }
        Object::ResourceQuota(_) => {
            out.insert("resourcequotas".into(), ONE);
        }
        Object::PersistentVolumeClaim(c) => {
            out.insert("persistentvolumeclaims".into(), ONE);
            let storage = c
                .spec
                .resources
                .requests
                .get("storage")
                .map_or(0, |q| q.nanos());
            out.insert("requests.storage".into(), storage);
        }
        _ => {}
    }
    out.insert(count, ONE);
    out
}

/// A resource past a quota: its name, what is asked, what is used, the limit.
type Over = (String, i128, i128, Quantity);

/// Why a new object may not be created under `quota` (its namespace's objects using
/// `used`), in Kubernetes' words, if it may not.
pub fn exceeded(
    quota: &ResourceQuota,
    used: &BTreeMap<String, i128>,
    new: &BTreeMap<String, i128>,
) -> Option<String> {
    let mut over: Vec<Over> = Vec::new();
    for (k, hard) in &quota.spec.hard {
        let Some(ask) = new.get(k).filter(|a| **a > 0) else {
            continue;
        };
        let have = used.get(k).copied().unwrap_or(0);
        if have + ask > hard.nanos() {
            over.push((k.clone(), *ask, have, hard.clone()));
        }
    }
    if over.is_empty() {
        return None;
    }
    let list = |f: &dyn Fn(&Over) -> String| over.iter().map(f).collect::<Vec<_>>().join(",");
    Some(format!(
        "exceeded quota: {}, requested: {}, used: {}, limited: {}",
        quota.metadata.name(),
        list(&|(k, a, _, _)| format!("{k}={}", amount_of(k, *a))),
        list(&|(k, _, u, _)| format!("{k}={}", amount_of(k, *u))),
        list(&|(k, _, _, h)| format!("{k}={h}")),
    ))
}

/// A quota's status from its namespace's objects: `hard` as its spec says, `used` for
/// each of those resources.
pub fn status_from<'a>(
    q: &ResourceQuota,
    objects: impl Iterator<Item = &'a crate::Object>,
) -> ResourceQuotaStatus {
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for o in objects {
        for (k, v) in object_usage(o) {
            *used.entry(k).or_default() += v;
        }
    }
    ResourceQuotaStatus {
        hard: q.spec.hard.clone(),
        used: q
            .spec
            .hard
            .keys()
            .map(|k| (k.clone(), amount_of(k, used.get(k).copied().unwrap_or(0))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;
    use crate::object::Object;

    fn pod(resources: &str) -> Pod {
        let y = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: web\n    image: x\n{resources}");
        match parse_manifests(&y).unwrap().remove(0).object {
            Object::Pod(p) => p,
            _ => panic!(),
        }
    }

    /// The docs' cpu-constraints LimitRange (admin/resource/cpu-constraints.yaml) with a
    /// memory default (memory-defaults.yaml).
    fn ranges() -> Vec<LimitRange> {
        let y = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: cpu-min-max-demo-lr}\nspec:\n  limits:\n  - max: {cpu: 800m}\n    min: {cpu: 200m}\n    default: {memory: 512Mi}\n    defaultRequest: {memory: 256Mi}\n    type: Container\n";
        let mut m = parse_manifests(y).unwrap();
        let Object::LimitRange(mut r) = m.remove(0).object else {
            panic!()
        };
        Resource::default_fields(&mut r);
        vec![r]
    }

    #[test]
    fn limit_ranges_default_and_bound_containers_as_kubernetes() {
        let rs = ranges();
        // cpu's default limit is the max, its default request the default limit.
        assert_eq!(rs[0].spec.limits[0].default["cpu"].to_string(), "800m");
        let mut p = pod("");
        let said = apply_limit_defaults(&rs, &mut p).unwrap();
        assert_eq!(
            said,
            "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web"
        );
        let r = p.spec.containers[0].resources.clone().unwrap();
        assert_eq!(r.requests["memory"].to_string(), "256Mi");
        assert_eq!(r.limits["cpu"].to_string(), "800m");
        assert!(limit_problems(&rs, &p).is_empty());
        // A request that is stated keeps its own limit's value.
        let mut p = pod("    resources:\n      limits: {cpu: 700m}\n");
        apply_limit_defaults(&rs, &mut p);
        assert_eq!(
            p.spec.containers[0].resources.as_ref().unwrap().requests["cpu"].to_string(),
            "700m"
        );
        // Over the max, under the min.
        let mut p =
            pod("    resources:\n      limits: {cpu: 1500m}\n      requests: {cpu: 100m}\n");
        apply_limit_defaults(&rs, &mut p);
        assert_eq!(
            limit_problems(&rs, &p),
            [
                "minimum cpu usage per Container is 200m, but request is 100m",
                "maximum cpu usage per Container is 800m, but limit is 1500m"
            ]
        );
    }

    #[test]
    fn quotas_count_what_pods_ask_and_name_what_they_must_state() {
        let p = pod("    resources:\n      requests: {cpu: 250m, memory: 64Mi}\n      limits: {memory: 128Mi}\n");
        let u = pod_usage(&p);
        assert_eq!(
            amount_of("requests.cpu", u["requests.cpu"]).to_string(),
            "250m"
        );
        assert_eq!(
            amount_of("limits.memory", u["limits.memory"]).to_string(),
            "128Mi"
        );
        assert_eq!(amount_of("pods", u["pods"]).to_string(), "1");
        let hard: ResourceList = [("limits.cpu".to_string(), Quantity::parse("2").unwrap())].into();
        assert_eq!(
            unstated(&hard, &p).unwrap(),
            "must specify limits.cpu for: web"
        );
    }
}
