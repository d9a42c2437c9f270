//! Validation as Kubernetes does it, with its messages: DNS-1123 names, label keys and
//! values, selectors that match their template, ports, container names, enum fields.

mod pod;
mod services;
mod volumes;
mod workloads;

pub use self::pod::validate_pod_spec_at;

use crate::object::Object;
use crate::resource::NameRule;
use crate::selector::LabelSelector;
use crate::workloads::PodTemplateSpec;
use crate::IntOrString;
use std::collections::BTreeMap;
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

/// The problems found so far, each at its field path.
#[derive(Debug, Default)]
pub struct Problems {
    errs: Vec<FieldError>,
    /// Fields the model holds but skiff does not act on: named in a warning, never
    /// silently ignored.
    warns: Vec<FieldError>,
}

/// What a field skiff holds but does not act on is told.
pub const NO_EFFECT: &str = "skiff does not implement this Kubernetes field yet; it has no effect";

impl Problems {
    /// A field that is kept but has no effect in skiff (a warning, not an error).
    pub fn no_effect(&mut self, path: &str, what: &str) {
        self.warns.push(FieldError {
            path: path.to_string(),
            message: if what.is_empty() {
                NO_EFFECT.to_string()
            } else {
                format!("{NO_EFFECT} ({what})")
            },
        });
    }
    /// Takes in another object's problems, their paths' `from` prefix replaced by `to`
    /// (a template validated as the object it becomes).
    pub fn nest(&mut self, inner: Problems, from: &str, to: &str) {
        let re = |mut e: FieldError| {
            if let Some(rest) = e.path.strip_prefix(from) {
                e.path = format!("{to}{rest}");
            }
            e
        };
        self.errs.extend(inner.errs.into_iter().map(re));
        self.warns.extend(inner.warns.into_iter().map(re));
    }
    /// A problem at `path`.
    pub fn push(&mut self, path: &str, message: String) {
        self.errs.push(FieldError {
            path: path.to_string(),
            message,
        });
    }
    /// Kubernetes' `required` error.
    pub fn required(&mut self, path: &str) {
        self.push(path, "Required value".into());
    }
    /// Kubernetes' `invalid` error.
    pub fn invalid(&mut self, path: &str, value: impl Display, why: &str) {
        self.push(path, format!("Invalid value: {value}: {why}"));
    }
    /// Kubernetes' `unsupported` error.
    pub fn unsupported(&mut self, path: &str, value: &str, supported: &[&str]) {
        let s: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.push(
            path,
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                s.join(", ")
            ),
        );
    }
    /// Kubernetes' `forbidden` error.
    pub fn forbidden(&mut self, path: &str, why: &str) {
        self.push(path, format!("Forbidden: {why}"));
    }
    /// Kubernetes' `one_of` error.
    pub fn one_of(&mut self, path: &str, value: &Option<String>, supported: &[&str]) {
        if let Some(v) = value {
            if !supported.contains(&v.as_str()) {
                self.unsupported(path, v, supported);
            }
        }
    }
    /// `must be greater than or equal to 0`.
    pub fn non_negative<T: PartialOrd + Default + Display + Copy>(
        &mut self,
        path: &str,
        v: Option<T>,
    ) {
        if let Some(v) = v {
            if v < T::default() {
                self.invalid(path, v, "must be greater than or equal to 0");
            }
        }
    }
    /// A label selector's keys, values and operators, at `path`.
    pub fn selector(&mut self, path: &str, sel: &LabelSelector) {
        validate_selector(self, path, sel)
    }
    /// A count or a percentage (`2`, `25%`): not negative, at most 100%. Gives the value.
    pub fn int_or_percent(&mut self, path: &str, x: &Option<IntOrString>) -> Option<i64> {
        validate_intstr_percent(self, path, x)
    }
    /// `must be greater than 0`.
    pub fn positive<T: PartialOrd + Default + Display + Copy>(&mut self, path: &str, v: Option<T>) {
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

/// How many of the mutually exclusive fields (a volume's sources, a handler's actions...)
/// are set.
fn how_many_set(set: &[bool]) -> usize {
    set.iter().filter(|x| **x).count()
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

/// Validates an object as Kubernetes would on create or update.
pub fn validate(obj: &Object) -> Vec<FieldError> {
    validate_with_warnings(obj).0
}

/// Validates an object, and names the fields it sets that skiff keeps but does not act
/// on (warnings).
pub fn validate_with_warnings(obj: &Object) -> (Vec<FieldError>, Vec<FieldError>) {
    let mut v = Problems::default();
    validate_meta(&mut v, obj);
    obj.validate_fields(&mut v);
    (v.errs, v.warns)
}

/// Checks what may not change between an object and its update.
pub fn validate_update(old: &Object, new: &Object) -> Vec<FieldError> {
    let mut v = Problems::default();
    new.validate_change(old, &mut v);
    v.errs
}

/// Kubernetes' `IsValidPathSegmentName`: not `.` or `..`, no `/` or `%`.
fn path_segment_problem(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ['/', '%']
        .into_iter()
        .find(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
}

/// The message for a field that may not change.
const IMMUTABLE: &str = "field is immutable";

fn validate_meta(v: &mut Problems, obj: &Object) {
    let m = obj.meta();
    let kind = obj.kind();
    match (&m.name, &m.generate_name) {
        (None, None) => v.push(
            "metadata.name",
            "Required value: name or generateName is required".into(),
        ),
        (Some(name), _) => {
            let problem = match kind.name_rule() {
                NameRule::Label => dns1123_label_problem(name),
                NameRule::Subdomain => dns1123_subdomain_problem(name),
                NameRule::PathSegment => path_segment_problem(name),
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
    for (i, e) in m.managed_fields.iter().enumerate() {
        let p = format!("metadata.managedFields[{i}]");
        if e.manager.is_empty() {
            v.required(&format!("{p}.manager"));
        }
        if e.operation != "Apply" && e.operation != "Update" {
            v.push(
                &format!("{p}.operation"),
                format!(
                    "Unsupported value: {}: supported values: \"Apply\", \"Update\"",
                    q(&e.operation)
                ),
            );
        }
        if e.fields_type.as_deref().is_some_and(|t| t != "FieldsV1") {
            v.push(
                &format!("{p}.fieldsType"),
                "Unsupported value: supported values: \"FieldsV1\"".into(),
            );
        }
        if e.fields_v1.as_ref().is_some_and(|f| !f.is_object()) {
            v.invalid(
                &format!("{p}.fieldsV1"),
                "not an object",
                "must be an object",
            );
        }
    }
}

fn validate_labels(v: &mut Problems, path: &str, labels: &BTreeMap<String, String>) {
    for (k, val) in labels {
        if let Some(why) = qualified_name_problem(k) {
            v.invalid(&format!("{path}[{k}]"), q(k), &why);
        }
        if let Some(why) = label_value_problem(val) {
            v.invalid(&format!("{path}[{k}]"), q(val), &why);
        }
    }
}

fn validate_selector(v: &mut Problems, path: &str, sel: &LabelSelector) {
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
    v: &mut Problems,
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

fn validate_port(v: &mut Problems, path: &str, p: Option<i32>, required: bool) {
    match p {
        None if required => v.required(path),
        None => {}
        Some(n) if !(1..=65535).contains(&n) => {
            v.invalid(path, n, "must be between 1 and 65535, inclusive")
        }
        _ => {}
    }
}

fn validate_named_or_numbered_port(v: &mut Problems, path: &str, p: &Option<IntOrString>) {
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

fn validate_intstr_percent(v: &mut Problems, path: &str, x: &Option<IntOrString>) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_deadline_may_be_set_or_shortened_only() {
        let pod = |deadline: Option<i64>| {
            let mut p = crate::pod::Pod::default();
            p.metadata.name = Some("p".into());
            p.spec.active_deadline_seconds = deadline;
            Object::Pod(p)
        };
        let change = |a, b| {
            validate_update(&pod(a), &pod(b))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert!(change(None, Some(30)).is_empty());
        assert!(change(Some(30), Some(10)).is_empty());
        assert_eq!(
            change(Some(10), Some(30)),
            ["spec.activeDeadlineSeconds: Invalid value: 30: must be less than or equal to previous value"]
        );
        assert_eq!(
            change(Some(10), None),
            ["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"]
        );
    }

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
