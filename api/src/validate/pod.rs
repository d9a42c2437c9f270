//! Pods and pod templates: containers, probes, volumes, scheduling constraints.

use super::volumes::{validate_resource_ref, validate_volumes};
use super::*;
use crate::defaults;
use crate::pod::is_extended_resource;
use crate::pod::{Affinity, Container, Pod, PodSpec, Probe, ResourceRequirements, Toleration};
use crate::resource::Resource;
use std::collections::BTreeSet;

/// Validates a pod spec at `base`; `restart` restricts restartPolicy (templates).
pub fn validate_pod_spec_at(base: &str, spec: &PodSpec) -> Vec<FieldError> {
    let mut v = Problems::default();
    validate_pod_spec(&mut v, base, spec, None);
    v.errs
}

pub(super) fn validate_pod_spec(
    v: &mut Problems,
    base: &str,
    spec: &PodSpec,
    restart: Option<&[&str]>,
) {
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
    v.one_of(
        &format!("{base}.preemptionPolicy"),
        &spec.preemption_policy,
        &crate::scheduling::PREEMPTION_POLICIES,
    );
    if let Some(pc) = &spec.priority_class_name {
        if let Some(why) = dns1123_subdomain_problem(pc) {
            v.invalid(&format!("{base}.priorityClassName"), q(pc), &why);
        }
    }
    v.positive(
        &format!("{base}.activeDeadlineSeconds"),
        spec.active_deadline_seconds,
    );
    for (i, a) in spec.host_aliases.iter().enumerate() {
        let at = format!("{base}.hostAliases[{i}]");
        if a.ip.is_empty() {
            v.required(&format!("{at}.ip"));
        } else if a.ip.parse::<std::net::IpAddr>().is_err() {
            v.invalid(&format!("{at}.ip"), q(&a.ip), "must be a valid IP address");
        }
        for (j, h) in a.hostnames.iter().enumerate() {
            if let Some(why) = dns1123_subdomain_problem(h) {
                v.invalid(&format!("{at}.hostnames[{j}]"), q(h), &why);
            }
        }
    }
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

    for (f, name) in [
        ("serviceAccountName", &spec.service_account_name),
        ("serviceAccount", &spec.service_account),
    ] {
        if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
            if let Some(why) = dns1123_subdomain_problem(n) {
                v.invalid(&format!("{base}.{f}"), q(n), &why);
            }
        }
    }
    validate_dns(v, base, spec);
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().enumerate() {
        let gp = format!("{base}.schedulingGates[{i}].name");
        if let Some(why) = qualified_name_problem(&g.name) {
            v.invalid(&gp, q(&g.name), &why);
        } else if !gates.insert(g.name.clone()) {
            v.push(&gp, format!("Duplicate value: {:?}", g.name));
        }
    }
    let volume_names = validate_volumes(v, base, &spec.volumes);

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

    validate_tolerations(v, base, &spec.tolerations);
    if let Some(a) = &spec.affinity {
        validate_affinity(v, base, a);
    }
}

/// `dnsPolicy` and `dnsConfig`, as Kubernetes validates them: `None` needs a config with
/// a nameserver; at most 3 nameservers (IP addresses) and 32 searches.
fn validate_dns(v: &mut Problems, base: &str, spec: &PodSpec) {
    v.one_of(
        &format!("{base}.dnsPolicy"),
        &spec.dns_policy,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    let none = spec.dns_policy.as_deref() == Some("None");
    let Some(c) = &spec.dns_config else {
        if none {
            v.push(
                &format!("{base}.dnsConfig"),
                "Required value: must provide `dnsConfig` when `dnsPolicy` is None".into(),
            );
        }
        return;
    };
    let p = format!("{base}.dnsConfig");
    if none && c.nameservers.is_empty() {
        v.push(
            &format!("{p}.nameservers"),
            "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"
                .into(),
        );
    }
    if c.nameservers.len() > 3 {
        v.invalid(
            &format!("{p}.nameservers"),
            format!("{:?}", c.nameservers),
            "must not have more than 3 nameservers",
        );
    }
    for (i, ns) in c.nameservers.iter().enumerate() {
        if ns.parse::<std::net::IpAddr>().is_err() {
            v.invalid(
                &format!("{p}.nameservers[{i}]"),
                q(ns),
                "must be a valid IP address",
            );
        }
    }
    if c.searches.len() > 32 {
        v.invalid(
            &format!("{p}.searches"),
            format!("{:?}", c.searches),
            "must not have more than 32 search paths",
        );
    }
    for (i, o) in c.options.iter().enumerate() {
        if o.name.as_deref().unwrap_or("").is_empty() {
            v.required(&format!("{p}.options[{i}].name"));
        }
    }
}

/// `tolerations`: operators, effects, and the combinations Kubernetes refuses.
fn validate_tolerations(v: &mut Problems, base: &str, tolerations: &[Toleration]) {
    for (i, t) in tolerations.iter().enumerate() {
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
}

/// `affinity`: node affinity's terms and weights, pod (anti-)affinity's topology keys and
/// selectors.
fn validate_affinity(v: &mut Problems, base: &str, a: &Affinity) {
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
            let p = format!(
                "{base}.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            );
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

pub(super) fn validate_node_req(v: &mut Problems, p: &str, op: &str, values: &[String], key: &str) {
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

pub(super) fn validate_container(
    v: &mut Problems,
    p: &str,
    c: &Container,
    volumes: &BTreeSet<String>,
    init: bool,
) {
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
    validate_env(v, p, c);
    if let Some(r) = &c.resources {
        validate_resources(v, p, r);
    }
    validate_mounts(v, p, c, volumes);
    // A sidecar (an init container with restartPolicy Always) may have probes and hooks;
    // other init containers may not; app containers have no restartPolicy of their own.
    match (&c.restart_policy, init) {
        (Some(rp), true) if rp != "Always" => {
            v.unsupported(&format!("{p}.restartPolicy"), rp, &["Always"])
        }
        (Some(_), false) => v.forbidden(
            &format!("{p}.restartPolicy"),
            "may not be set for non-init containers",
        ),
        _ => {}
    }
    let plain_init = init && !c.is_sidecar();
    for (name, probe) in [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ] {
        if let Some(pr) = probe {
            if plain_init {
                v.forbidden(
                    &format!("{p}.{name}"),
                    "may not be set for init containers without restartPolicy=Always",
                );
            }
            validate_probe(v, &format!("{p}.{name}"), pr, name != "readinessProbe");
        }
    }
    if c.lifecycle.is_some() && plain_init {
        v.forbidden(
            &format!("{p}.lifecycle"),
            "may not be set for init containers without restartPolicy=Always",
        );
    }
    if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
        let n = how_many_set(&[
            h.exec.is_some(),
            h.http_get.is_some(),
            h.tcp_socket.is_some(),
        ]);
        if n != 1 {
            v.required(&format!("{p}.lifecycle.postStart: must specify exactly one handler type (exec, httpGet or tcpSocket)"));
        }
    }
    if let Some(l) = &c.lifecycle {
        if let Some(h) = &l.pre_stop {
            let n = how_many_set(&[
                h.exec.is_some(),
                h.http_get.is_some(),
                h.tcp_socket.is_some(),
            ]);
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

/// A container's `env` (names, one `valueFrom` source, the fields a `fieldRef` may name)
/// and `envFrom` (one source, named).
fn validate_env(v: &mut Problems, p: &str, c: &Container) {
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
            let n = how_many_set(&[
                src.config_map_key_ref.is_some(),
                src.secret_key_ref.is_some(),
                src.field_ref.is_some(),
                src.resource_field_ref.is_some(),
            ]);
            if n == 0 {
                v.invalid(
                    &format!("{ep}.valueFrom"),
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
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
            if let Some(r) = &src.resource_field_ref {
                validate_resource_ref(v, &format!("{ep}.valueFrom.resourceFieldRef"), r, false);
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
}

/// A container's `resources`: known names, no negative quantities, requests within limits;
/// extended resources (`example.com/gpu`) and hugepages as Kubernetes has them: whole
/// numbers for extended ones, a limit required and a request equal to it.
fn validate_resources(v: &mut Problems, p: &str, r: &ResourceRequirements) {
    const RES: &[&str] = &["cpu", "memory", "ephemeral-storage", "pods"];
    for (what, map) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (k, qty) in map {
            let rp = format!("{p}.resources.{what}[{k}]");
            if k.starts_with("hugepages-") {
                v.no_effect(&rp, "no huge pages are counted or given to the container");
            } else if k == "ephemeral-storage" && what == "limits" {
                v.no_effect(
                    &rp,
                    "the scheduler counts it as the request, but a pod over it is not evicted",
                );
            }
            if !RES.contains(&k.as_str())
                && !k.starts_with("hugepages-")
                && !is_extended_resource(k)
            {
                v.unsupported(&rp, k, RES);
            }
            if qty.is_negative() {
                v.invalid(&rp, q(qty.as_str()), "must be greater than or equal to 0");
            } else if (is_extended_resource(k) || k == "pods") && qty.nanos() % 1_000_000_000 != 0 {
                v.invalid(&rp, q(qty.as_str()), "must be an integer");
            }
        }
    }
    for (k, req) in &r.requests {
        let rp = format!("{p}.resources.requests[{k}]");
        // Only cpu, memory and ephemeral-storage may be overcommitted.
        let overcommit = !is_extended_resource(k) && !k.starts_with("hugepages-");
        match r.limits.get(k) {
            Some(lim) if req != lim && !overcommit => v.invalid(
                &rp,
                q(req.as_str()),
                &format!("must be equal to {k} limit of {lim}"),
            ),
            Some(lim) if req > lim => v.invalid(
                &rp,
                q(req.as_str()),
                &format!("must be less than or equal to {k} limit of {lim}"),
            ),
            None if !overcommit => v.push(
                &format!("{p}.resources.limits[{k}]"),
                "Required value: Limit must be set for non overcommitable resources".into(),
            ),
            _ => {}
        }
    }
}

/// A container's `volumeMounts`: declared volumes, unique mount paths, relative subPaths.
fn validate_mounts(v: &mut Problems, p: &str, c: &Container, volumes: &BTreeSet<String>) {
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
}

pub(super) fn validate_probe(v: &mut Problems, p: &str, pr: &Probe, success_must_be_one: bool) {
    let n = how_many_set(&[
        pr.exec.is_some(),
        pr.http_get.is_some(),
        pr.tcp_socket.is_some(),
    ]);
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

impl Resource for Pod {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::pod(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_pod_spec(v, "spec", &self.spec, None)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        let mut sa = old.spec.clone();
        let mut sb = self.spec.clone();
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
        // activeDeadlineSeconds may be set or shortened, not lengthened or removed.
        let path = "spec.activeDeadlineSeconds";
        match (sa.active_deadline_seconds, sb.active_deadline_seconds) {
            (Some(a), Some(b)) if b > a => {
                v.invalid(path, b, "must be less than or equal to previous value")
            }
            (Some(_), None) => v.invalid(
                path,
                "null",
                "must not update from a positive integer to nil value",
            ),
            _ => {}
        }
        sb.active_deadline_seconds = sa.active_deadline_seconds;
        // Scheduling gates may only be removed.
        for g in &sb.scheduling_gates {
            if !sa.scheduling_gates.contains(g) {
                v.forbidden(
                    "spec.schedulingGates",
                    &format!(
                        "only deletion is allowed, but found new scheduling gate '{}'",
                        g.name
                    ),
                );
            }
        }
        sb.scheduling_gates = sa.scheduling_gates.clone();
        if sa != sb {
            v.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.schedulingGates` (removal)");
        }
    }
}
