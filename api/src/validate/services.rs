//! Services, Endpoints, Ingresses, ConfigMaps, Secrets, Namespaces, Nodes and Events.

use super::*;
use crate::core::{ConfigMap, Endpoints, Event, Namespace, Node, Secret, Service};
use crate::defaults;
use crate::networking::Ingress;
use crate::resource::Resource;
use std::collections::BTreeSet;

pub(super) fn validate_endpoints(v: &mut Problems, e: &crate::core::Endpoints) {
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
pub(super) fn validate_ingress_host(v: &mut Problems, path: &str, host: &str) {
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

pub(super) fn validate_ingress_backend(
    v: &mut Problems,
    path: &str,
    b: &crate::networking::IngressBackend,
) {
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

pub(super) fn validate_ingress(v: &mut Problems, ing: &crate::networking::Ingress) {
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

pub(super) fn validate_service(v: &mut Problems, s: &Service) {
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

pub(super) fn validate_config_data<'a>(
    v: &mut Problems,
    field: &str,
    keys: impl Iterator<Item = &'a String>,
) {
    for k in keys {
        if let Some(why) = config_key_problem(k) {
            v.invalid(&format!("{field}[{k}]"), q(k), &why);
        }
    }
}

pub(super) fn validate_config_map(v: &mut Problems, c: &ConfigMap) {
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

pub(super) fn validate_secret(v: &mut Problems, s: &Secret) {
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

pub(super) fn validate_namespace(v: &mut Problems, n: &Namespace) {
    if let Some(s) = &n.spec {
        for f in &s.finalizers {
            if let Some(why) = qualified_name_problem(f) {
                v.invalid("spec.finalizers", q(f), &why);
            }
        }
    }
}

pub(super) fn validate_node(v: &mut Problems, n: &Node) {
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

impl Resource for Service {
    const NAME: NameRule = NameRule::Label;
    fn default_fields(&mut self) {
        defaults::service(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_service(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        let ip = |s: &Service| s.spec.cluster_ip.clone().unwrap_or_default();
        if !ip(old).is_empty() && !ip(self).is_empty() && ip(old) != ip(self) {
            v.invalid("spec.clusterIP", q(&ip(self)), IMMUTABLE);
        }
    }
}

impl Resource for Endpoints {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::endpoints(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_endpoints(v, self)
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Resource for Ingress {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {}
    fn validate(&self, v: &mut Problems) {
        validate_ingress(v, self)
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Resource for ConfigMap {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {}
    fn validate(&self, v: &mut Problems) {
        validate_config_map(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.immutable == Some(true)
            && (old.data != self.data || old.binary_data != self.binary_data)
        {
            v.forbidden("data", "field is immutable when `immutable` is set");
        }
    }
}

impl Resource for Secret {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::secret(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_secret(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.immutable == Some(true) && old.data != self.data {
            v.forbidden("data", "field is immutable when `immutable` is set");
        }
        if old.type_ != self.type_ {
            v.invalid("type", q(self.type_.as_deref().unwrap_or("")), IMMUTABLE);
        }
    }
}

impl Resource for Namespace {
    const NAME: NameRule = NameRule::Label;
    fn default_fields(&mut self) {
        defaults::namespace(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_namespace(v, self)
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Resource for Node {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {}
    fn validate(&self, v: &mut Problems) {
        validate_node(v, self)
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Resource for Event {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {}
    fn validate(&self, v: &mut Problems) {
        if self
            .involved_object
            .name
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            v.required("involvedObject.name");
        }
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}
