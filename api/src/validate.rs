//! Validation as Kubernetes does it, with its messages: DNS-1123 names, label keys and
//! values, selectors that match their template, ports, container names, enum fields.

use crate::core::{ConfigMap, Namespace, Node, Secret, Service};
use crate::object::{Kind, Object};
use crate::pod::{Container, PodSpec, Probe};
use crate::selector::LabelSelector;
use crate::workloads::{DaemonSet, Deployment, Job, PodTemplateSpec, ReplicaSet, StatefulSet};
use crate::IntOrString;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path (`spec.template.spec.containers[0].name`).
    pub path: String,
    /// Kubernetes-style message (`Required value`, `Invalid value: ...`).
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
struct V {
    errs: Vec<FieldError>,
}

impl V {
    fn push(&mut self, path: &str, message: String) {
        self.errs.push(FieldError {
            path: path.to_string(),
            message,
        });
    }
    fn required(&mut self, path: &str) {
        self.push(path, "Required value".into());
    }
    fn invalid(&mut self, path: &str, value: impl Display, why: &str) {
        self.push(path, format!("Invalid value: {value}: {why}"));
    }
    fn unsupported(&mut self, path: &str, value: &str, supported: &[&str]) {
        let s: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.push(
            path,
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                s.join(", ")
            ),
        );
    }
    fn forbidden(&mut self, path: &str, why: &str) {
        self.push(path, format!("Forbidden: {why}"));
    }
    fn one_of(&mut self, path: &str, value: &Option<String>, supported: &[&str]) {
        if let Some(v) = value {
            if !supported.contains(&v.as_str()) {
                self.unsupported(path, v, supported);
            }
        }
    }
    fn non_negative<T: PartialOrd + Default + Display + Copy>(&mut self, path: &str, v: Option<T>) {
        if let Some(v) = v {
            if v < T::default() {
                self.invalid(path, v, "must be greater than or equal to 0");
            }
        }
    }
    fn positive<T: PartialOrd + Default + Display + Copy>(&mut self, path: &str, v: Option<T>) {
        if let Some(v) = v {
            if v <= T::default() {
                self.invalid(path, v, "must be greater than 0");
            }
        }
    }
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Why `s` is not a DNS-1123 label (63 characters at most), or None.
pub fn dns1123_label_problem(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    (!is_label(s)).then(|| DNS1123_LABEL_MSG.to_string())
}

/// Why `s` is not a DNS-1123 subdomain (253 characters at most), or None.
pub fn dns1123_subdomain_problem(s: &str) -> Option<String> {
    if s.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    (!s.split('.').all(is_label)).then(|| DNS1123_SUBDOMAIN_MSG.to_string())
}

fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Why `s` is not a qualified name (`prefix/name`, as label and annotation keys), or None.
pub fn qualified_name_problem(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if let Some(why) = dns1123_subdomain_problem(p) {
            return Some(format!("prefix part {why}"));
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".into());
    }
    (!is_qualified_part(name)).then(|| "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string())
}

/// Why `s` is not a valid label value, or None.
pub fn label_value_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    if s.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    (!is_qualified_part(s)).then(|| "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string())
}

/// Why `s` is not an IANA service name (a port name), or None.
pub fn port_name_problem(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if s.len() > 15 {
        return Some("must be no more than 15 characters".into());
    }
    if b.is_empty()
        || !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Some(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
        );
    }
    if s.contains("--") {
        return Some("must not contain consecutive hyphens".into());
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Some("must not begin or end with a hyphen".into());
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        return Some("must contain at least one letter (a-z)".into());
    }
    None
}

fn config_key_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 253 {
        return Some("must be between 1 and 253 characters".into());
    }
    if s == "." || s == ".." || s.starts_with("..") {
        return Some("must not be '.' or '..' or start with '..'".into());
    }
    (!s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
    .then(|| "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string())
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

/// Validates an object as Kubernetes would on create or update.
pub fn validate(obj: &Object) -> Vec<FieldError> {
    let mut v = V::default();
    validate_meta(&mut v, obj);
    match obj {
        Object::Pod(p) => validate_pod_spec(&mut v, "spec", &p.spec, None),
        Object::ReplicaSet(r) => validate_replica_set(&mut v, r),
        Object::Deployment(d) => validate_deployment(&mut v, d),
        Object::DaemonSet(d) => validate_daemon_set(&mut v, d),
        Object::StatefulSet(s) => validate_stateful_set(&mut v, s),
        Object::Job(j) => validate_job(&mut v, j),
        Object::Service(s) => validate_service(&mut v, s),
        Object::Endpoints(e) => validate_endpoints(&mut v, e),
        Object::Ingress(i) => validate_ingress(&mut v, i),
        Object::ConfigMap(c) => validate_config_map(&mut v, c),
        Object::Secret(s) => validate_secret(&mut v, s),
        Object::Namespace(n) => validate_namespace(&mut v, n),
        Object::Node(n) => validate_node(&mut v, n),
        Object::Event(e) => {
            if e.involved_object.name.as_deref().unwrap_or("").is_empty() {
                v.required("involvedObject.name");
            }
        }
    }
    v.errs
}

/// Checks what may not change between an object and its update.
pub fn validate_update(old: &Object, new: &Object) -> Vec<FieldError> {
    let mut v = V::default();
    let immutable = "field is immutable";
    match (old, new) {
        (Object::Deployment(a), Object::Deployment(b)) if a.spec.selector != b.spec.selector => {
            v.invalid("spec.selector", "...", immutable)
        }
        (Object::ReplicaSet(a), Object::ReplicaSet(b)) if a.spec.selector != b.spec.selector => {
            v.invalid("spec.selector", "...", immutable)
        }
        (Object::DaemonSet(a), Object::DaemonSet(b)) if a.spec.selector != b.spec.selector => {
            v.invalid("spec.selector", "...", immutable)
        }
        (Object::StatefulSet(a), Object::StatefulSet(b)) => {
            if a.spec.selector != b.spec.selector {
                v.invalid("spec.selector", "...", immutable)
            }
            if a.spec.service_name != b.spec.service_name {
                v.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
            }
        }
        (Object::Service(a), Object::Service(b)) => {
            let ip = |s: &crate::core::Service| s.spec.cluster_ip.clone().unwrap_or_default();
            if !ip(a).is_empty() && !ip(b).is_empty() && ip(a) != ip(b) {
                v.invalid("spec.clusterIP", q(&ip(b)), immutable);
            }
        }
        (Object::Job(a), Object::Job(b)) if a.spec.template != b.spec.template => {
            v.invalid("spec.template", "...", immutable)
        }
        (Object::Pod(a), Object::Pod(b)) => {
            let mut sa = a.spec.clone();
            let mut sb = b.spec.clone();
            // Only images (and a binding) may change in a pod's spec.
            for c in sa
                .containers
                .iter_mut()
                .chain(sa.init_containers.iter_mut())
            {
                c.image = None;
            }
            for c in sb
                .containers
                .iter_mut()
                .chain(sb.init_containers.iter_mut())
            {
                c.image = None;
            }
            // A pod may be bound once (nodeName set where it was empty), never moved.
            if sa.node_name.is_none() {
                sb.node_name = None;
            }
            if sa != sb {
                v.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image` or `spec.activeDeadlineSeconds`");
            }
        }
        (Object::ConfigMap(a), Object::ConfigMap(b))
            if a.immutable == Some(true)
                && (a.data != b.data || a.binary_data != b.binary_data) =>
        {
            v.forbidden("data", "field is immutable when `immutable` is set");
        }
        (Object::Secret(a), Object::Secret(b)) => {
            if a.immutable == Some(true) && a.data != b.data {
                v.forbidden("data", "field is immutable when `immutable` is set");
            }
            if a.type_ != b.type_ {
                v.invalid("type", q(b.type_.as_deref().unwrap_or("")), immutable);
            }
        }
        _ => {}
    }
    v.errs
}

fn validate_meta(v: &mut V, obj: &Object) {
    let m = obj.meta();
    let kind = obj.kind();
    match (&m.name, &m.generate_name) {
        (None, None) => v.push(
            "metadata.name",
            "Required value: name or generateName is required".into(),
        ),
        (Some(name), _) => {
            let problem = match kind {
                Kind::Namespace | Kind::Service => dns1123_label_problem(name),
                _ => dns1123_subdomain_problem(name),
            };
            if let Some(why) = problem {
                v.invalid("metadata.name", q(name), &why);
            }
        }
        (None, Some(g)) => {
            if let Some(why) = dns1123_subdomain_problem(&format!("{g}a")) {
                v.invalid("metadata.generateName", q(g), &why);
            }
        }
    }
    if let Some(ns) = &m.namespace {
        if !kind.namespaced() {
            v.forbidden("metadata.namespace", "not allowed on this type");
        } else if let Some(why) = dns1123_label_problem(ns) {
            v.invalid("metadata.namespace", q(ns), &why);
        }
    }
    validate_labels(v, "metadata.labels", &m.labels);
    let mut total = 0;
    for (k, val) in &m.annotations {
        if let Some(why) = qualified_name_problem(k) {
            v.invalid(&format!("metadata.annotations[{k}]"), q(k), &why);
        }
        total += k.len() + val.len();
    }
    if total > 256 * 1024 {
        v.push(
            "metadata.annotations",
            format!("Too long: may not be more than 262144 bytes (got {total})"),
        );
    }
    for (i, o) in m.owner_references.iter().enumerate() {
        let p = format!("metadata.ownerReferences[{i}]");
        for (f, val) in [
            ("apiVersion", &o.api_version),
            ("kind", &o.kind),
            ("name", &o.name),
            ("uid", &o.uid),
        ] {
            if val.is_empty() {
                v.required(&format!("{p}.{f}"));
            }
        }
    }
}

fn validate_labels(v: &mut V, path: &str, labels: &BTreeMap<String, String>) {
    for (k, val) in labels {
        if let Some(why) = qualified_name_problem(k) {
            v.invalid(&format!("{path}[{k}]"), q(k), &why);
        }
        if let Some(why) = label_value_problem(val) {
            v.invalid(&format!("{path}[{k}]"), q(val), &why);
        }
    }
}

fn validate_selector(v: &mut V, path: &str, sel: &LabelSelector) {
    validate_labels(v, &format!("{path}.matchLabels"), &sel.match_labels);
    if let Err(e) = sel.to_selector() {
        let (sub, msg) = e.split_once(": ").unwrap_or(("", &e));
        v.push(&format!("{path}.{sub}"), msg.to_string());
    }
    for (i, e) in sel.match_expressions.iter().enumerate() {
        if let Some(why) = qualified_name_problem(&e.key) {
            v.invalid(
                &format!("{path}.matchExpressions[{i}].key"),
                q(&e.key),
                &why,
            );
        }
    }
}

/// Workload selector: required, non-empty, and matching the template's labels.
fn validate_workload_selector(
    v: &mut V,
    selector: &Option<LabelSelector>,
    template: &PodTemplateSpec,
) {
    match selector {
        None => v.required("spec.selector"),
        Some(s) if s.is_empty() => v.invalid(
            "spec.selector",
            "{}",
            "empty selector is invalid for deployment",
        ),
        Some(s) => {
            validate_selector(v, "spec.selector", s);
            if s.to_selector().is_ok() && !s.matches(&template.metadata.labels) {
                let labels: Vec<String> = template
                    .metadata
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k:?}:{v:?}"))
                    .collect();
                v.invalid(
                    "spec.template.metadata.labels",
                    format!("map[string]string{{{}}}", labels.join(", ")),
                    "`selector` does not match template `labels`",
                );
            }
        }
    }
}

fn validate_template(v: &mut V, t: &PodTemplateSpec, restart: &[&str]) {
    validate_labels(v, "spec.template.metadata.labels", &t.metadata.labels);
    validate_pod_spec(v, "spec.template.spec", &t.spec, Some(restart));
}

fn validate_replica_set(v: &mut V, r: &ReplicaSet) {
    v.non_negative("spec.replicas", r.spec.replicas);
    v.non_negative("spec.minReadySeconds", r.spec.min_ready_seconds);
    validate_workload_selector(v, &r.spec.selector, &r.spec.template);
    validate_template(v, &r.spec.template, &["Always"]);
}

fn validate_intstr_percent(v: &mut V, path: &str, x: &Option<IntOrString>) -> Option<i64> {
    match x {
        None => None,
        Some(IntOrString::Int(i)) => {
            if *i < 0 {
                v.invalid(path, i, "must be greater than or equal to 0");
            }
            Some(i64::from(*i))
        }
        Some(s @ IntOrString::String(raw)) => match s.percent() {
            Some(Ok(p)) if (0..=100).contains(&p) => Some(p),
            Some(Ok(p)) => {
                v.invalid(path, q(raw), "must not be greater than 100%");
                Some(p)
            }
            _ => {
                v.invalid(path, q(raw), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
                None
            }
        },
    }
}

fn validate_deployment(v: &mut V, d: &Deployment) {
    let s = &d.spec;
    v.non_negative("spec.replicas", s.replicas);
    v.non_negative("spec.minReadySeconds", s.min_ready_seconds);
    v.non_negative("spec.revisionHistoryLimit", s.revision_history_limit);
    validate_workload_selector(v, &s.selector, &s.template);
    validate_template(v, &s.template, &["Always"]);
    if let (Some(p), Some(m)) = (s.progress_deadline_seconds, s.min_ready_seconds) {
        if p <= m {
            v.invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            );
        }
    }
    v.positive("spec.progressDeadlineSeconds", s.progress_deadline_seconds);
    if let Some(st) = &s.strategy {
        v.one_of(
            "spec.strategy.type",
            &st.type_,
            &["Recreate", "RollingUpdate"],
        );
        if let Some(ru) = &st.rolling_update {
            if st.type_.as_deref() == Some("Recreate") {
                v.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
            let surge =
                validate_intstr_percent(v, "spec.strategy.rollingUpdate.maxSurge", &ru.max_surge);
            let unavail = validate_intstr_percent(
                v,
                "spec.strategy.rollingUpdate.maxUnavailable",
                &ru.max_unavailable,
            );
            if surge == Some(0) && unavail == Some(0) {
                v.invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    0,
                    "may not be 0 when `maxSurge` is 0",
                );
            }
        }
    }
}

fn validate_daemon_set(v: &mut V, d: &DaemonSet) {
    validate_workload_selector(v, &d.spec.selector, &d.spec.template);
    validate_template(v, &d.spec.template, &["Always"]);
    v.non_negative("spec.minReadySeconds", d.spec.min_ready_seconds);
    if let Some(u) = &d.spec.update_strategy {
        v.one_of(
            "spec.updateStrategy.type",
            &u.type_,
            &["OnDelete", "RollingUpdate"],
        );
        if let Some(ru) = &u.rolling_update {
            validate_intstr_percent(
                v,
                "spec.updateStrategy.rollingUpdate.maxSurge",
                &ru.max_surge,
            );
            validate_intstr_percent(
                v,
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
                &ru.max_unavailable,
            );
        }
    }
}

fn validate_stateful_set(v: &mut V, s: &StatefulSet) {
    v.non_negative("spec.replicas", s.spec.replicas);
    validate_workload_selector(v, &s.spec.selector, &s.spec.template);
    validate_template(v, &s.spec.template, &["Always"]);
    v.one_of(
        "spec.podManagementPolicy",
        &s.spec.pod_management_policy,
        &["OrderedReady", "Parallel"],
    );
    if let Some(u) = &s.spec.update_strategy {
        v.one_of(
            "spec.updateStrategy.type",
            &u.type_,
            &["OnDelete", "RollingUpdate"],
        );
        if let Some(ru) = &u.rolling_update {
            v.non_negative("spec.updateStrategy.rollingUpdate.partition", ru.partition);
        }
    }
    if let Some(n) = &s.spec.service_name {
        if let Some(why) = dns1123_label_problem(n) {
            v.invalid("spec.serviceName", q(n), &why);
        }
    }
}

fn validate_job(v: &mut V, j: &Job) {
    let s = &j.spec;
    v.non_negative("spec.completions", s.completions);
    v.non_negative("spec.parallelism", s.parallelism);
    v.non_negative("spec.backoffLimit", s.backoff_limit);
    v.positive("spec.activeDeadlineSeconds", s.active_deadline_seconds);
    v.non_negative("spec.ttlSecondsAfterFinished", s.ttl_seconds_after_finished);
    if s.manual_selector == Some(true) {
        validate_workload_selector(v, &s.selector, &s.template);
    } else if let Some(sel) = &s.selector {
        validate_selector(v, "spec.selector", sel);
    }
    match s.template.spec.restart_policy.as_deref() {
        Some("OnFailure") | Some("Never") => {}
        None => v.required("spec.template.spec.restartPolicy"),
        Some(other) => v.unsupported(
            "spec.template.spec.restartPolicy",
            other,
            &["OnFailure", "Never"],
        ),
    }
    validate_labels(
        v,
        "spec.template.metadata.labels",
        &s.template.metadata.labels,
    );
    validate_pod_spec(
        v,
        "spec.template.spec",
        &s.template.spec,
        Some(&["OnFailure", "Never"]),
    );
}

fn validate_endpoints(v: &mut V, e: &crate::core::Endpoints) {
    for (i, sub) in e.subsets.iter().enumerate() {
        let addrs = sub.addresses.iter().map(|a| ("addresses", a)).chain(
            sub.not_ready_addresses
                .iter()
                .map(|a| ("notReadyAddresses", a)),
        );
        let mut counts = BTreeMap::<&str, usize>::new();
        for (field, a) in addrs {
            let n = counts.entry(field).or_default();
            let path = format!("subsets[{i}].{field}[{n}].ip");
            *n += 1;
            match a.ip.parse::<std::net::IpAddr>() {
                Err(_) => v.invalid(&path, q(&a.ip), "must be a valid IP address"),
                Ok(ip) if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() => v
                    .invalid(
                        &path,
                        q(&a.ip),
                        "may not be a loopback, unspecified or multicast address",
                    ),
                Ok(_) => {}
            }
        }
        for (j, port) in sub.ports.iter().enumerate() {
            let p = format!("subsets[{i}].ports[{j}]");
            if sub.ports.len() > 1 && port.name.is_none() {
                v.required(&format!("{p}.name"));
            }
            validate_port(v, &format!("{p}.port"), port.port, true);
            v.one_of(
                &format!("{p}.protocol"),
                &port.protocol,
                &["SCTP", "TCP", "UDP"],
            );
        }
    }
}

/// A host an Ingress names: a DNS name, or `*.` and one; never an IP address.
fn validate_ingress_host(v: &mut V, path: &str, host: &str) {
    if host.parse::<std::net::IpAddr>().is_ok() {
        v.invalid(path, q(host), "must be a DNS name, not an IP address");
        return;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if let Some(why) = dns1123_subdomain_problem(name) {
        // A `*` past the first character is a misplaced wildcard.
        let why = if host.contains('*') && !host.starts_with('*') {
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain"
                .into()
        } else {
            why
        };
        v.invalid(path, q(host), &why);
    }
}

fn validate_ingress_backend(v: &mut V, path: &str, b: &crate::networking::IngressBackend) {
    match (&b.service, &b.resource) {
        (Some(_), Some(_)) => v.invalid(path, "", "cannot set both service and resource backends"),
        (None, None) => v.required(&format!("{path}.service")),
        (None, Some(_)) => v.push(
            &format!("{path}.resource"),
            "Unsupported value: skiff routes Ingress traffic to Services only; use `service`"
                .into(),
        ),
        (Some(s), None) => {
            let p = format!("{path}.service");
            if s.name.is_empty() {
                v.required(&format!("{p}.name"));
            } else if let Some(why) = dns1123_label_problem(&s.name) {
                v.invalid(&format!("{p}.name"), q(&s.name), &why);
            }
            match (&s.port.name, s.port.number) {
                (Some(_), Some(_)) => v.invalid(
                    &format!("{p}.port"),
                    "",
                    "cannot set both port name & port number",
                ),
                (None, None) => {
                    v.invalid(&format!("{p}.port"), "", "port name or number is required")
                }
                (Some(n), None) => {
                    if let Some(why) = port_name_problem(n) {
                        v.invalid(&format!("{p}.port.name"), q(n), &why);
                    }
                }
                (None, Some(n)) => validate_port(v, &format!("{p}.port.number"), Some(n), true),
            }
        }
    }
}

fn validate_ingress(v: &mut V, ing: &crate::networking::Ingress) {
    let spec = &ing.spec;
    if let Some(c) = &spec.ingress_class_name {
        if let Some(why) = dns1123_subdomain_problem(c) {
            v.invalid("spec.ingressClassName", q(c), &why);
        }
    }
    if spec.default_backend.is_none() && spec.rules.is_empty() {
        v.push(
            "spec.rules",
            "Required value: either `defaultBackend` or `rules` must be specified".into(),
        );
    }
    if let Some(b) = &spec.default_backend {
        validate_ingress_backend(v, "spec.defaultBackend", b);
    }
    for (i, t) in spec.tls.iter().enumerate() {
        for (j, h) in t.hosts.iter().enumerate() {
            validate_ingress_host(v, &format!("spec.tls[{i}].hosts[{j}]"), h);
        }
        if let Some(n) = &t.secret_name {
            if let Some(why) = dns1123_subdomain_problem(n) {
                v.invalid(&format!("spec.tls[{i}].secretName"), q(n), &why);
            }
        }
    }
    for (i, r) in spec.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
            validate_ingress_host(v, &format!("{p}.host"), h);
        }
        let Some(http) = &r.http else { continue };
        if http.paths.is_empty() {
            v.required(&format!("{p}.http.paths"));
        }
        for (j, path) in http.paths.iter().enumerate() {
            let pp = format!("{p}.http.paths[{j}]");
            let kinds = ["Exact", "ImplementationSpecific", "Prefix"];
            match path.path_type.as_deref() {
                None => v.required(&format!("{pp}.pathType")),
                Some(t) if !kinds.contains(&t) => {
                    v.unsupported(&format!("{pp}.pathType"), t, &kinds)
                }
                Some(t) => match path.path.as_deref() {
                    None | Some("") if t != "ImplementationSpecific" => {
                        v.required(&format!("{pp}.path"))
                    }
                    Some(s) if !s.is_empty() && !s.starts_with('/') => {
                        v.invalid(&format!("{pp}.path"), q(s), "must be an absolute path")
                    }
                    Some(s)
                        if t != "ImplementationSpecific"
                            && (s.contains("//")
                                || s.split('/').any(|seg| seg == "." || seg == "..")) =>
                    {
                        v.invalid(
                            &format!("{pp}.path"),
                            q(s),
                            "must not contain '//', '/./' or '/../'",
                        )
                    }
                    _ => {}
                },
            }
            validate_ingress_backend(v, &format!("{pp}.backend"), &path.backend);
        }
    }
}

fn validate_port(v: &mut V, path: &str, p: Option<i32>, required: bool) {
    match p {
        None if required => v.required(path),
        None => {}
        Some(n) if !(1..=65535).contains(&n) => {
            v.invalid(path, n, "must be between 1 and 65535, inclusive")
        }
        _ => {}
    }
}

fn validate_named_or_numbered_port(v: &mut V, path: &str, p: &Option<IntOrString>) {
    match p {
        None => v.required(path),
        Some(IntOrString::Int(n)) => validate_port(v, path, Some(*n), true),
        Some(IntOrString::String(s)) => {
            if let Some(why) = port_name_problem(s) {
                v.invalid(path, q(s), &why);
            }
        }
    }
}

/// Validates a pod spec at `base`; `restart` restricts restartPolicy (templates).
pub fn validate_pod_spec_at(base: &str, spec: &PodSpec) -> Vec<FieldError> {
    let mut v = V::default();
    validate_pod_spec(&mut v, base, spec, None);
    v.errs
}

fn validate_pod_spec(v: &mut V, base: &str, spec: &PodSpec, restart: Option<&[&str]>) {
    let all_policies = ["Always", "OnFailure", "Never"];
    if let Some(rp) = &spec.restart_policy {
        let allowed = restart.unwrap_or(&all_policies);
        if !allowed.contains(&rp.as_str()) {
            v.unsupported(&format!("{base}.restartPolicy"), rp, allowed);
        }
    }
    if spec.containers.is_empty() {
        v.required(&format!("{base}.containers"));
    }
    v.non_negative(
        &format!("{base}.terminationGracePeriodSeconds"),
        spec.termination_grace_period_seconds,
    );
    v.positive(
        &format!("{base}.activeDeadlineSeconds"),
        spec.active_deadline_seconds,
    );
    validate_labels(v, &format!("{base}.nodeSelector"), &spec.node_selector);
    if let Some(n) = &spec.node_name {
        if let Some(why) = dns1123_subdomain_problem(n) {
            v.invalid(&format!("{base}.nodeName"), q(n), &why);
        }
    }
    for field in ["hostname", "subdomain"] {
        let val = if field == "hostname" {
            &spec.hostname
        } else {
            &spec.subdomain
        };
        if let Some(h) = val {
            if let Some(why) = dns1123_label_problem(h) {
                v.invalid(&format!("{base}.{field}"), q(h), &why);
            }
        }
    }

    // Volumes.
    let mut volume_names = BTreeSet::new();
    for (i, vol) in spec.volumes.iter().enumerate() {
        let p = format!("{base}.volumes[{i}]");
        if vol.name.is_empty() {
            v.required(&format!("{p}.name"));
        } else if let Some(why) = dns1123_label_problem(&vol.name) {
            v.invalid(&format!("{p}.name"), q(&vol.name), &why);
        } else if !volume_names.insert(vol.name.clone()) {
            v.push(
                &format!("{p}.name"),
                format!("Duplicate value: {:?}", vol.name),
            );
        }
        let sources = [
            vol.empty_dir.is_some(),
            vol.host_path.is_some(),
            vol.config_map.is_some(),
            vol.secret.is_some(),
            vol.persistent_volume_claim.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        match sources {
            0 => v.required(&format!("{p}: must specify a volume type (skiff supports emptyDir, hostPath, configMap, secret, persistentVolumeClaim)")),
            1 => {}
            _ => v.forbidden(&p, "may not specify more than 1 volume type"),
        }
        if let Some(e) = &vol.empty_dir {
            v.one_of(&format!("{p}.emptyDir.medium"), &e.medium, &["", "Memory"]);
            if e.size_limit.as_ref().is_some_and(|q| q.is_negative()) {
                v.invalid(
                    &format!("{p}.emptyDir.sizeLimit"),
                    e.size_limit.as_ref().expect("checked"),
                    "must be greater than or equal to 0",
                );
            }
        }
        if let Some(h) = &vol.host_path {
            if h.path.is_empty() {
                v.required(&format!("{p}.hostPath.path"));
            }
            v.one_of(
                &format!("{p}.hostPath.type"),
                &h.type_,
                &[
                    "",
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice",
                ],
            );
        }
        if let Some(c) = &vol.config_map {
            if c.name.as_deref().unwrap_or("").is_empty() {
                v.required(&format!("{p}.configMap.name"));
            }
        }
        if let Some(s) = &vol.secret {
            if s.secret_name.as_deref().unwrap_or("").is_empty() {
                v.required(&format!("{p}.secret.secretName"));
            }
        }
        if let Some(c) = &vol.persistent_volume_claim {
            if c.claim_name.is_empty() {
                v.required(&format!("{p}.persistentVolumeClaim.claimName"));
            }
        }
    }

    // Containers.
    let mut names = BTreeSet::new();
    let groups: [(&str, &Vec<Container>); 2] = [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
    ];
    for (field, list) in groups {
        for (i, c) in list.iter().enumerate() {
            let p = format!("{base}.{field}[{i}]");
            validate_container(v, &p, c, &volume_names, field == "initContainers");
            if !c.name.is_empty() && !names.insert(c.name.clone()) {
                v.push(
                    &format!("{p}.name"),
                    format!("Duplicate value: {:?}", c.name),
                );
            }
        }
    }

    // Tolerations.
    for (i, t) in spec.tolerations.iter().enumerate() {
        let p = format!("{base}.tolerations[{i}]");
        v.one_of(&format!("{p}.operator"), &t.operator, &["Equal", "Exists"]);
        v.one_of(
            &format!("{p}.effect"),
            &t.effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        );
        if t.operator.as_deref() == Some("Exists")
            && t.value.as_deref().is_some_and(|x| !x.is_empty())
        {
            v.invalid(
                &format!("{p}.operator"),
                q(t.value.as_deref().unwrap_or("")),
                "value must be empty when `operator` is 'Exists'",
            );
        }
        if t.key.as_deref().unwrap_or("").is_empty() && t.operator.as_deref() != Some("Exists") {
            v.invalid(&format!("{p}.operator"), q(t.operator.as_deref().unwrap_or("Equal")), "operator must be Exists when `key` is empty, which means \"match all values and all keys\"");
        }
        if t.toleration_seconds.is_some() && t.effect.as_deref() != Some("NoExecute") {
            v.invalid(
                &format!("{p}.effect"),
                q(t.effect.as_deref().unwrap_or("")),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            );
        }
    }

    // Affinity.
    if let Some(a) = &spec.affinity {
        if let Some(na) = &a.node_affinity {
            if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
                let p = format!(
                    "{base}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                );
                if req.node_selector_terms.is_empty() {
                    v.required(&format!("{p}.nodeSelectorTerms"));
                }
                for (i, t) in req.node_selector_terms.iter().enumerate() {
                    for (j, e) in t.match_expressions.iter().enumerate() {
                        validate_node_req(
                            v,
                            &format!("{p}.nodeSelectorTerms[{i}].matchExpressions[{j}]"),
                            &e.operator,
                            &e.values,
                            &e.key,
                        );
                    }
                }
            }
            for (i, t) in na
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .enumerate()
            {
                let p = format!("{base}.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
                if !(1..=100).contains(&t.weight) {
                    v.invalid(
                        &format!("{p}.weight"),
                        t.weight,
                        "must be in the range 1-100",
                    );
                }
                for (j, e) in t.preference.match_expressions.iter().enumerate() {
                    validate_node_req(
                        v,
                        &format!("{p}.preference.matchExpressions[{j}]"),
                        &e.operator,
                        &e.values,
                        &e.key,
                    );
                }
            }
        }
        for (name, pa) in [
            ("podAffinity", &a.pod_affinity),
            ("podAntiAffinity", &a.pod_anti_affinity),
        ] {
            let Some(pa) = pa else { continue };
            let p = format!("{base}.affinity.{name}");
            for (i, t) in pa
                .required_during_scheduling_ignored_during_execution
                .iter()
                .enumerate()
            {
                let tp = format!("{p}.requiredDuringSchedulingIgnoredDuringExecution[{i}]");
                if t.topology_key.is_empty() {
                    v.push(
                        &format!("{tp}.topologyKey"),
                        "Required value: can not be empty".into(),
                    );
                } else if let Some(why) = qualified_name_problem(&t.topology_key) {
                    v.invalid(&format!("{tp}.topologyKey"), q(&t.topology_key), &why);
                }
                if let Some(s) = &t.label_selector {
                    validate_selector(v, &format!("{tp}.labelSelector"), s);
                }
            }
            for (i, w) in pa
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .enumerate()
            {
                let tp = format!("{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
                if !(1..=100).contains(&w.weight) {
                    v.invalid(
                        &format!("{tp}.weight"),
                        w.weight,
                        "must be in the range 1-100",
                    );
                }
                if w.pod_affinity_term.topology_key.is_empty() {
                    v.push(
                        &format!("{tp}.podAffinityTerm.topologyKey"),
                        "Required value: can not be empty".into(),
                    );
                }
            }
        }
    }
}

fn validate_node_req(v: &mut V, p: &str, op: &str, values: &[String], key: &str) {
    if let Some(why) = qualified_name_problem(key) {
        v.invalid(&format!("{p}.key"), q(key), &why);
    }
    match op {
        "In" | "NotIn" if values.is_empty() => v.push(
            &format!("{p}.values"),
            "Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
        ),
        "Exists" | "DoesNotExist" if !values.is_empty() => v.forbidden(
            &format!("{p}.values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        "Gt" | "Lt" if values.len() != 1 || values[0].parse::<i64>().is_err() => v.push(
            &format!("{p}.values"),
            "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'".into(),
        ),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => v.unsupported(
            &format!("{p}.operator"),
            other,
            &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"],
        ),
    }
}

fn validate_container(v: &mut V, p: &str, c: &Container, volumes: &BTreeSet<String>, init: bool) {
    if c.name.is_empty() {
        v.required(&format!("{p}.name"));
    } else if let Some(why) = dns1123_label_problem(&c.name) {
        v.invalid(&format!("{p}.name"), q(&c.name), &why);
    }
    if c.image.as_deref().unwrap_or("").trim().is_empty() {
        v.required(&format!("{p}.image"));
    }
    v.one_of(
        &format!("{p}.imagePullPolicy"),
        &c.image_pull_policy,
        &["Always", "IfNotPresent", "Never"],
    );
    let mut port_names = BTreeSet::new();
    for (i, port) in c.ports.iter().enumerate() {
        let pp = format!("{p}.ports[{i}]");
        validate_port(v, &format!("{pp}.containerPort"), port.container_port, true);
        if let Some(h) = port.host_port {
            if h != 0 {
                validate_port(v, &format!("{pp}.hostPort"), Some(h), false);
            }
        }
        v.one_of(
            &format!("{pp}.protocol"),
            &port.protocol,
            &["SCTP", "TCP", "UDP"],
        );
        if let Some(n) = &port.name {
            if let Some(why) = port_name_problem(n) {
                v.invalid(&format!("{pp}.name"), q(n), &why);
            } else if !port_names.insert(n.clone()) {
                v.push(&format!("{pp}.name"), format!("Duplicate value: {n:?}"));
            }
        }
    }
    for (i, e) in c.env.iter().enumerate() {
        let ep = format!("{p}.env[{i}]");
        if e.name.is_empty() {
            v.required(&format!("{ep}.name"));
        } else if e.name.contains('=') || e.name.chars().any(|ch| ch.is_control()) {
            v.invalid(&format!("{ep}.name"), q(&e.name), "a valid environment variable name must consist only of printable ASCII characters other than '='");
        }
        if let Some(src) = &e.value_from {
            if e.value.as_deref().is_some_and(|x| !x.is_empty()) {
                v.invalid(
                    &format!("{ep}.valueFrom"),
                    "",
                    "may not be specified when `value` is not empty",
                );
            }
            let n = [
                src.config_map_key_ref.is_some(),
                src.secret_key_ref.is_some(),
                src.field_ref.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if n == 0 {
                v.invalid(
                    &format!("{ep}.valueFrom"),
                    "",
                    "must specify one of: `fieldRef`, `configMapKeyRef` or `secretKeyRef`",
                );
            } else if n > 1 {
                v.invalid(
                    &format!("{ep}.valueFrom"),
                    "",
                    "may not have more than one field specified at a time",
                );
            }
            for (name, r) in [
                ("configMapKeyRef", &src.config_map_key_ref),
                ("secretKeyRef", &src.secret_key_ref),
            ] {
                if let Some(r) = r {
                    if r.key.is_empty() {
                        v.required(&format!("{ep}.valueFrom.{name}.key"));
                    }
                    if r.name.as_deref().unwrap_or("").is_empty() {
                        v.required(&format!("{ep}.valueFrom.{name}.name"));
                    }
                }
            }
            if let Some(f) = &src.field_ref {
                const FIELDS: &[&str] = &[
                    "metadata.name",
                    "metadata.namespace",
                    "metadata.uid",
                    "spec.nodeName",
                    "spec.serviceAccountName",
                    "status.hostIP",
                    "status.hostIPs",
                    "status.podIP",
                    "status.podIPs",
                ];
                let ok = FIELDS.contains(&f.field_path.as_str())
                    || f.field_path.starts_with("metadata.labels[")
                    || f.field_path.starts_with("metadata.annotations[");
                if !ok {
                    v.unsupported(
                        &format!("{ep}.valueFrom.fieldRef.fieldPath"),
                        &f.field_path,
                        FIELDS,
                    );
                }
            }
        }
    }
    for (i, e) in c.env_from.iter().enumerate() {
        let ep = format!("{p}.envFrom[{i}]");
        match (&e.config_map_ref, &e.secret_ref) {
            (Some(_), Some(_)) => v.invalid(
                &ep,
                "",
                "may not have more than one field specified at a time",
            ),
            (None, None) => v.invalid(
                &ep,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ),
            (Some(r), None) | (None, Some(r)) => {
                if r.name.as_deref().unwrap_or("").is_empty() {
                    let f = if e.config_map_ref.is_some() {
                        "configMapRef"
                    } else {
                        "secretRef"
                    };
                    v.required(&format!("{ep}.{f}.name"));
                }
            }
        }
    }
    if let Some(r) = &c.resources {
        const RES: &[&str] = &["cpu", "memory", "ephemeral-storage", "pods"];
        for (what, map) in [("limits", &r.limits), ("requests", &r.requests)] {
            for (k, qty) in map {
                let rp = format!("{p}.resources.{what}[{k}]");
                if !RES.contains(&k.as_str()) && !k.starts_with("hugepages-") && !k.contains('/') {
                    v.unsupported(&rp, k, RES);
                }
                if qty.is_negative() {
                    v.invalid(&rp, q(qty.as_str()), "must be greater than or equal to 0");
                }
            }
        }
        for (k, req) in &r.requests {
            if let Some(lim) = r.limits.get(k) {
                if req > lim {
                    v.invalid(
                        &format!("{p}.resources.requests[{k}]"),
                        q(req.as_str()),
                        &format!("must be less than or equal to {k} limit of {lim}"),
                    );
                }
            }
        }
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        if m.name.is_empty() {
            v.required(&format!("{mp}.name"));
        } else if !volumes.contains(&m.name) {
            v.push(&format!("{mp}.name"), format!("Not found: {:?}", m.name));
        }
        if m.mount_path.is_empty() {
            v.required(&format!("{mp}.mountPath"));
        } else if !mount_paths.insert(m.mount_path.clone()) {
            v.invalid(
                &format!("{mp}.mountPath"),
                q(&m.mount_path),
                "must be unique",
            );
        }
        if m.sub_path
            .as_deref()
            .is_some_and(|s| s.starts_with('/') || s.split('/').any(|x| x == ".."))
        {
            v.invalid(
                &format!("{mp}.subPath"),
                q(m.sub_path.as_deref().unwrap_or("")),
                "must be a relative path without '..'",
            );
        }
    }
    for (name, probe) in [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ] {
        if let Some(pr) = probe {
            if init {
                v.forbidden(&format!("{p}.{name}"), "may not be set for init containers");
            }
            validate_probe(v, &format!("{p}.{name}"), pr, name != "readinessProbe");
        }
    }
    if let Some(l) = &c.lifecycle {
        if let Some(h) = &l.pre_stop {
            let n = [
                h.exec.is_some(),
                h.http_get.is_some(),
                h.tcp_socket.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if n != 1 {
                v.required(&format!("{p}.lifecycle.preStop: must specify exactly one handler type (exec, httpGet or tcpSocket)"));
            }
        }
    }
    if let Some(sc) = &c.security_context {
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            v.invalid(
                &format!("{p}.securityContext"),
                "",
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        v.non_negative(&format!("{p}.securityContext.runAsUser"), sc.run_as_user);
        v.non_negative(&format!("{p}.securityContext.runAsGroup"), sc.run_as_group);
    }
}

fn validate_probe(v: &mut V, p: &str, pr: &Probe, success_must_be_one: bool) {
    let n = [
        pr.exec.is_some(),
        pr.http_get.is_some(),
        pr.tcp_socket.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if n == 0 {
        v.required(&format!(
            "{p}: must specify a handler type (exec, httpGet or tcpSocket)"
        ));
    } else if n > 1 {
        v.forbidden(p, "may not specify more than 1 handler type");
    }
    if let Some(e) = &pr.exec {
        if e.command.is_empty() {
            v.required(&format!("{p}.exec.command"));
        }
    }
    if let Some(h) = &pr.http_get {
        validate_named_or_numbered_port(v, &format!("{p}.httpGet.port"), &h.port);
        v.one_of(
            &format!("{p}.httpGet.scheme"),
            &h.scheme,
            &["HTTP", "HTTPS"],
        );
    }
    if let Some(t) = &pr.tcp_socket {
        validate_named_or_numbered_port(v, &format!("{p}.tcpSocket.port"), &t.port);
    }
    v.non_negative(
        &format!("{p}.initialDelaySeconds"),
        pr.initial_delay_seconds,
    );
    v.positive(&format!("{p}.periodSeconds"), pr.period_seconds);
    v.positive(&format!("{p}.timeoutSeconds"), pr.timeout_seconds);
    v.positive(&format!("{p}.successThreshold"), pr.success_threshold);
    v.positive(&format!("{p}.failureThreshold"), pr.failure_threshold);
    if success_must_be_one {
        if let Some(s) = pr.success_threshold {
            if s != 1 {
                v.invalid(&format!("{p}.successThreshold"), s, "must be 1");
            }
        }
    }
}

fn validate_service(v: &mut V, s: &Service) {
    let spec = &s.spec;
    v.one_of(
        "spec.type",
        &spec.type_,
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    );
    v.one_of(
        "spec.sessionAffinity",
        &spec.session_affinity,
        &["ClientIP", "None"],
    );
    validate_labels(v, "spec.selector", &spec.selector);
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if spec.ports.is_empty() && !headless && spec.type_.as_deref() != Some("ExternalName") {
        v.required("spec.ports");
    }
    if headless
        && matches!(
            spec.type_.as_deref(),
            Some("NodePort") | Some("LoadBalancer")
        )
    {
        v.invalid(
            "spec.clusterIPs[0]",
            "\"None\"",
            "may not be set to 'None' for LoadBalancer or NodePort services",
        );
    }
    if let Some(ip) = &spec.cluster_ip {
        if ip != "None" && !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            v.invalid(
                "spec.clusterIP",
                q(ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        match &port.name {
            None if spec.ports.len() > 1 => v.required(&format!("{p}.name")),
            Some(n) => {
                if let Some(why) = dns1123_label_problem(n) {
                    v.invalid(&format!("{p}.name"), q(n), &why);
                }
                if !names.insert(n.clone()) {
                    v.push(&format!("{p}.name"), format!("Duplicate value: {n:?}"));
                }
            }
            None => {}
        }
        validate_port(v, &format!("{p}.port"), port.port, true);
        v.one_of(
            &format!("{p}.protocol"),
            &port.protocol,
            &["SCTP", "TCP", "UDP"],
        );
        if let Some(t) = &port.target_port {
            match t {
                IntOrString::Int(n) => validate_port(v, &format!("{p}.targetPort"), Some(*n), true),
                IntOrString::String(n) => {
                    if let Some(why) = port_name_problem(n) {
                        v.invalid(&format!("{p}.targetPort"), q(n), &why);
                    }
                }
            }
        }
        if let Some(np) = port.node_port {
            if !matches!(
                spec.type_.as_deref(),
                Some("NodePort") | Some("LoadBalancer")
            ) {
                v.forbidden(
                    &format!("{p}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            } else {
                // The range is the coordinator's (--service-node-port-range): it checks it.
                validate_port(v, &format!("{p}.nodePort"), Some(np), true);
            }
        }
        let key = (
            port.port,
            port.protocol.clone().unwrap_or_else(|| "TCP".into()),
        );
        if port.port.is_some() && !seen.insert(key) {
            v.push(
                &p,
                format!(
                    "Duplicate value: {{Port:{} Protocol:{}}}",
                    port.port.unwrap_or(0),
                    port.protocol.as_deref().unwrap_or("TCP")
                ),
            );
        }
    }
}

fn validate_config_data<'a>(v: &mut V, field: &str, keys: impl Iterator<Item = &'a String>) {
    for k in keys {
        if let Some(why) = config_key_problem(k) {
            v.invalid(&format!("{field}[{k}]"), q(k), &why);
        }
    }
}

fn validate_config_map(v: &mut V, c: &ConfigMap) {
    validate_config_data(v, "data", c.data.keys());
    validate_config_data(v, "binaryData", c.binary_data.keys());
    for k in c.data.keys() {
        if c.binary_data.contains_key(k) {
            v.invalid(
                &format!("data[{k}]"),
                q(k),
                "duplicate of key present in binaryData",
            );
        }
    }
    for (k, val) in &c.binary_data {
        if base64_decode(val).is_none() {
            v.invalid(
                &format!("binaryData[{k}]"),
                "<value omitted>",
                "illegal base64 data",
            );
        }
    }
    let size: usize = c.data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + c.binary_data
            .iter()
            .map(|(k, v)| k.len() + v.len() * 3 / 4)
            .sum::<usize>();
    if size > 1024 * 1024 {
        v.push(
            "",
            format!("Too long: may not be more than 1048576 bytes (got {size})"),
        );
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

fn validate_secret(v: &mut V, s: &Secret) {
    validate_config_data(v, "data", s.data.keys());
    validate_config_data(v, "stringData", s.string_data.keys());
    let mut size = 0;
    for (k, val) in &s.data {
        match base64_decode(val) {
            None => v.invalid(
                &format!("data[{k}]"),
                "<secret contents redacted>",
                "illegal base64 data",
            ),
            Some(b) => size += b.len(),
        }
    }
    size += s.string_data.values().map(String::len).sum::<usize>();
    if size > 1024 * 1024 {
        v.push(
            "data",
            format!("Too long: may not be more than 1048576 bytes (got {size})"),
        );
    }
    match s.type_.as_deref() {
        Some("kubernetes.io/tls") => {
            for k in ["tls.crt", "tls.key"] {
                if !s.data.contains_key(k) && !s.string_data.contains_key(k) {
                    v.required(&format!("data[{k}]"));
                }
            }
        }
        Some("kubernetes.io/basic-auth") => {
            let has = |k: &str| s.data.contains_key(k) || s.string_data.contains_key(k);
            if !has("username") && !has("password") {
                v.required("data[username]");
            }
        }
        Some("kubernetes.io/dockerconfigjson")
            if !s.data.contains_key(".dockerconfigjson")
                && !s.string_data.contains_key(".dockerconfigjson") =>
        {
            v.required("data[.dockerconfigjson]");
        }
        _ => {}
    }
}

fn validate_namespace(v: &mut V, n: &Namespace) {
    if let Some(s) = &n.spec {
        for f in &s.finalizers {
            if let Some(why) = qualified_name_problem(f) {
                v.invalid("spec.finalizers", q(f), &why);
            }
        }
    }
}

fn validate_node(v: &mut V, n: &Node) {
    for (i, t) in n.spec.taints.iter().enumerate() {
        let p = format!("spec.taints[{i}]");
        if let Some(why) = qualified_name_problem(&t.key) {
            v.invalid(&format!("{p}.key"), q(&t.key), &why);
        }
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
            v.unsupported(
                &format!("{p}.effect"),
                &t.effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_label_problem("web-1").is_none());
        assert!(dns1123_label_problem("Web").is_some());
        assert!(dns1123_label_problem("-a").is_some());
        assert!(dns1123_label_problem(&"a".repeat(64)).is_some());
        assert!(dns1123_subdomain_problem("a.b-c.d").is_none());
        assert!(dns1123_subdomain_problem("a..b").is_some());
        assert!(qualified_name_problem("app.kubernetes.io/name").is_none());
        assert!(qualified_name_problem("/name").is_some());
        assert!(qualified_name_problem("a/b/c").is_some());
        assert!(label_value_problem("").is_none());
        assert!(label_value_problem("a b").is_some());
        assert!(port_name_problem("http").is_none());
        assert!(port_name_problem("80").is_some());
        assert!(port_name_problem("a--b").is_some());
    }
}
