//! `skiff describe`: a readable page per object, with its recent events.

use crate::print::{age, secret_len, table};
use serde_json::Value;
use skiff_api::Kind;
use std::fmt::Write;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}
fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
fn or_none(x: &str) -> &str {
    if x.is_empty() {
        "<none>"
    } else {
        x
    }
}
fn scalar(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "<none>".into(),
        Some(x) => x.to_string(),
    }
}

fn map_lines(out: &mut String, label: &str, v: Option<&Value>, indent: usize) {
    let pad = " ".repeat(indent);
    match v.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => {
            for (i, (k, val)) in m.iter().enumerate() {
                let l = if i == 0 {
                    format!("{label}:")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{pad}{l:<w$}{k}={}",
                    val.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| val.to_string()),
                    w = 20 - indent.min(19)
                );
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "{pad}{:<w$}<none>",
                format!("{label}:"),
                w = 20 - indent.min(19)
            );
        }
    }
}

fn field(out: &mut String, indent: usize, label: &str, value: &str) {
    let pad = " ".repeat(indent);
    let width = (20 - indent.min(19)).max(label.len() + 2);
    let _ = writeln!(out, "{pad}{:<width$}{value}", format!("{label}:"));
}

fn containers(out: &mut String, spec: &Value, status: Option<&Value>, indent: usize) {
    for (title, list_ptr, status_ptr) in [
        (
            "Init Containers",
            "/initContainers",
            "/initContainerStatuses",
        ),
        ("Containers", "/containers", "/containerStatuses"),
    ] {
        let list = arr(spec, list_ptr);
        if list.is_empty() {
            continue;
        }
        let pad = " ".repeat(indent);
        let _ = writeln!(out, "{pad}{title}:");
        for c in list {
            let name = s(c, "/name");
            let _ = writeln!(out, "{pad}  {name}:");
            let i = indent + 4;
            field(out, i, "Image", s(c, "/image"));
            let ports: Vec<String> = arr(c, "/ports")
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        scalar(p.get("containerPort")),
                        p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                    )
                })
                .collect();
            field(out, i, "Port", or_none(&ports.join(", ")));
            for (label, ptr) in [("Command", "/command"), ("Args", "/args")] {
                let xs: Vec<&str> = arr(c, ptr).iter().filter_map(Value::as_str).collect();
                if !xs.is_empty() {
                    field(out, i, label, &xs.join(" "));
                }
            }
            if let Some(st) = status
                .and_then(|st| st.pointer(status_ptr))
                .and_then(Value::as_array)
                .and_then(|l| l.iter().find(|x| s(x, "/name") == name))
            {
                let (state, detail) = if let Some(r) = st.pointer("/state/running") {
                    ("Running", format!("Started: {}", s(r, "/startedAt")))
                } else if let Some(w) = st.pointer("/state/waiting") {
                    ("Waiting", format!("Reason: {}", s(w, "/reason")))
                } else if let Some(t) = st.pointer("/state/terminated") {
                    (
                        "Terminated",
                        format!(
                            "Reason: {}  Exit Code: {}",
                            s(t, "/reason"),
                            scalar(t.get("exitCode"))
                        ),
                    )
                } else {
                    ("Unknown", String::new())
                };
                field(out, i, "State", state);
                if !detail.is_empty() {
                    let _ = writeln!(out, "{}  {detail}", " ".repeat(i));
                }
                field(out, i, "Ready", &scalar(st.get("ready")));
                field(
                    out,
                    i,
                    "Restart Count",
                    &scalar(st.get("restartCount")).replace("<none>", "0"),
                );
            }
            for (label, ptr) in [
                ("Limits", "/resources/limits"),
                ("Requests", "/resources/requests"),
            ] {
                if let Some(m) = c.pointer(ptr).and_then(Value::as_object) {
                    let _ = writeln!(out, "{}{label}:", " ".repeat(i));
                    for (k, v) in m {
                        let _ = writeln!(out, "{}  {k}: {}", " ".repeat(i), scalar(Some(v)));
                    }
                }
            }
            let env = arr(c, "/env");
            if env.is_empty() {
                field(out, i, "Environment", "<none>");
            } else {
                let _ = writeln!(out, "{}Environment:", " ".repeat(i));
                for e in env {
                    let val = if let Some(v) = e.get("value").and_then(Value::as_str) {
                        v.to_string()
                    } else if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
                        format!(
                            "<set to the key '{}' in secret '{}'>",
                            s(r, "/key"),
                            s(r, "/name")
                        )
                    } else if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
                        format!(
                            "<set to the key '{}' of config map '{}'>",
                            s(r, "/key"),
                            s(r, "/name")
                        )
                    } else if let Some(r) = e.pointer("/valueFrom/fieldRef") {
                        format!("({})", s(r, "/fieldPath"))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(out, "{}  {}:  {val}", " ".repeat(i), s(e, "/name"));
                }
            }
            let mounts: Vec<String> = arr(c, "/volumeMounts")
                .iter()
                .map(|m| format!("{} from {}", s(m, "/mountPath"), s(m, "/name")))
                .collect();
            field(out, i, "Mounts", or_none(&mounts.join(", ")));
        }
    }
}

/// Renders an object and the events that name it.
pub fn describe(kind: Kind, v: &Value, events: &[Value]) -> String {
    let mut out = String::new();
    field(&mut out, 0, "Name", s(v, "/metadata/name"));
    if kind.namespaced() {
        field(&mut out, 0, "Namespace", s(v, "/metadata/namespace"));
    }
    map_lines(&mut out, "Labels", v.pointer("/metadata/labels"), 0);
    map_lines(
        &mut out,
        "Annotations",
        v.pointer("/metadata/annotations"),
        0,
    );
    field(
        &mut out,
        0,
        "CreationTimestamp",
        s(v, "/metadata/creationTimestamp"),
    );
    match kind {
        Kind::Pod => {
            field(&mut out, 0, "Node", or_none(s(v, "/spec/nodeName")));
            field(
                &mut out,
                0,
                "Start Time",
                or_none(s(v, "/status/startTime")),
            );
            field(&mut out, 0, "Status", &crate::print::pod_status(v));
            field(&mut out, 0, "IP", or_none(s(v, "/status/podIP")));
            containers(
                &mut out,
                v.get("spec").unwrap_or(&Value::Null),
                v.get("status"),
                0,
            );
            let conds = arr(v, "/status/conditions");
            if !conds.is_empty() {
                out.push_str("Conditions:\n");
                let rows: Vec<Vec<String>> = conds
                    .iter()
                    .map(|c| vec![s(c, "/type").into(), s(c, "/status").into()])
                    .collect();
                for l in table(&["Type".into(), "Status".into()], &rows).lines() {
                    let _ = writeln!(out, "  {l}");
                }
            }
            let vols = arr(v, "/spec/volumes");
            if !vols.is_empty() {
                out.push_str("Volumes:\n");
                for vol in vols {
                    let kind = vol
                        .as_object()
                        .and_then(|m| m.keys().find(|k| *k != "name").cloned())
                        .unwrap_or_default();
                    let _ = writeln!(out, "  {}:\n    Type: {kind}", s(vol, "/name"));
                }
            }
            field(&mut out, 0, "Restart Policy", s(v, "/spec/restartPolicy"));
            map_lines(
                &mut out,
                "Node-Selectors",
                v.pointer("/spec/nodeSelector"),
                0,
            );
        }
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet | Kind::Job => {
            let sel = v
                .pointer("/spec/selector")
                .and_then(|x| {
                    serde_json::from_value::<skiff_api::selector::LabelSelector>(x.clone()).ok()
                })
                .and_then(|l| l.to_selector().ok())
                .map(|x| x.to_string())
                .unwrap_or_default();
            field(&mut out, 0, "Selector", or_none(&sel));
            let g = |p: &str| scalar(v.pointer(p)).replace("<none>", "0");
            match kind {
                Kind::Deployment => {
                    field(
                        &mut out,
                        0,
                        "Replicas",
                        &format!(
                            "{} desired | {} updated | {} total | {} available | {} unavailable",
                            g("/spec/replicas"),
                            g("/status/updatedReplicas"),
                            g("/status/replicas"),
                            g("/status/availableReplicas"),
                            g("/status/unavailableReplicas")
                        ),
                    );
                    field(&mut out, 0, "StrategyType", s(v, "/spec/strategy/type"));
                    if let Some(ru) = v.pointer("/spec/strategy/rollingUpdate") {
                        field(
                            &mut out,
                            0,
                            "RollingUpdateStrategy",
                            &format!(
                                "{} max unavailable, {} max surge",
                                scalar(ru.get("maxUnavailable")),
                                scalar(ru.get("maxSurge"))
                            ),
                        );
                    }
                }
                Kind::ReplicaSet | Kind::StatefulSet => {
                    field(
                        &mut out,
                        0,
                        "Replicas",
                        &format!(
                            "{} current / {} desired",
                            g("/status/replicas"),
                            g("/spec/replicas")
                        ),
                    );
                }
                Kind::DaemonSet => {
                    field(
                        &mut out,
                        0,
                        "Desired Number of Nodes Scheduled",
                        &g("/status/desiredNumberScheduled"),
                    );
                    field(
                        &mut out,
                        0,
                        "Current Number of Nodes Scheduled",
                        &g("/status/currentNumberScheduled"),
                    );
                }
                Kind::Job => {
                    field(&mut out, 0, "Parallelism", &g("/spec/parallelism"));
                    field(&mut out, 0, "Completions", &g("/spec/completions"));
                    field(
                        &mut out,
                        0,
                        "Pods Statuses",
                        &format!(
                            "{} Active / {} Succeeded / {} Failed",
                            g("/status/active"),
                            g("/status/succeeded"),
                            g("/status/failed")
                        ),
                    );
                }
                _ => {}
            }
            out.push_str("Pod Template:\n");
            map_lines(
                &mut out,
                "Labels",
                v.pointer("/spec/template/metadata/labels"),
                2,
            );
            containers(
                &mut out,
                v.pointer("/spec/template/spec").unwrap_or(&Value::Null),
                None,
                2,
            );
        }
        Kind::Service => {
            map_lines(&mut out, "Selector", v.pointer("/spec/selector"), 0);
            field(&mut out, 0, "Type", s(v, "/spec/type"));
            field(&mut out, 0, "IP", or_none(s(v, "/spec/clusterIP")));
            for p in arr(v, "/spec/ports") {
                let name = p.get("name").and_then(Value::as_str).unwrap_or("<unset>");
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                field(
                    &mut out,
                    0,
                    "Port",
                    &format!("{name}  {}/{proto}", scalar(p.get("port"))),
                );
                field(
                    &mut out,
                    0,
                    "TargetPort",
                    &format!("{}/{proto}", scalar(p.get("targetPort"))),
                );
                if let Some(np) = p.get("nodePort") {
                    field(&mut out, 0, "NodePort", &format!("{name}  {np}/{proto}"));
                }
            }
            field(
                &mut out,
                0,
                "Session Affinity",
                s(v, "/spec/sessionAffinity"),
            );
        }
        Kind::Endpoints => {
            out.push_str("Subsets:\n");
            for sub in arr(v, "/subsets") {
                let ips = |ptr: &str| {
                    let l: Vec<&str> = arr(sub, ptr).iter().map(|a| s(a, "/ip")).collect();
                    if l.is_empty() {
                        "<none>".to_string()
                    } else {
                        l.join(",")
                    }
                };
                field(&mut out, 1, "Addresses", &ips("/addresses"));
                field(&mut out, 1, "NotReadyAddresses", &ips("/notReadyAddresses"));
                out.push_str("  Ports:\n");
                for p in arr(sub, "/ports") {
                    let _ = writeln!(
                        out,
                        "    {}\t{}\t{}",
                        p.get("name").and_then(Value::as_str).unwrap_or("<unset>"),
                        scalar(p.get("port")),
                        p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                    );
                }
            }
        }
        Kind::Ingress => {
            let addrs: Vec<&str> = arr(v, "/status/loadBalancer/ingress")
                .iter()
                .map(|a| s(a, "/ip"))
                .collect();
            field(&mut out, 0, "Address", &addrs.join(","));
            field(&mut out, 0, "Ingress Class", crate::print::ingress_class(v));
            let backend = |b: &Value| {
                let port = match b.pointer("/service/port/name").and_then(Value::as_str) {
                    Some(n) => n.to_string(),
                    None => scalar(b.pointer("/service/port/number")),
                };
                format!("{}:{port}", s(b, "/service/name"))
            };
            let default = v
                .pointer("/spec/defaultBackend")
                .map(backend)
                .unwrap_or_else(|| "<default>".into());
            field(&mut out, 0, "Default backend", &default);
            let tls = arr(v, "/spec/tls");
            if !tls.is_empty() {
                out.push_str("TLS:\n");
                for t in tls {
                    let hosts: Vec<&str> =
                        arr(t, "/hosts").iter().filter_map(Value::as_str).collect();
                    let _ = writeln!(
                        out,
                        "  {} terminates {}",
                        or_none(s(t, "/secretName")),
                        hosts.join(",")
                    );
                }
            }
            out.push_str("Rules:\n");
            let mut rows = Vec::new();
            for r in arr(v, "/spec/rules") {
                let host = match s(r, "/host") {
                    "" => "*",
                    h => h,
                };
                rows.push(vec![host.to_string(), String::new(), String::new()]);
                for p in arr(r, "/http/paths") {
                    rows.push(vec![
                        String::new(),
                        format!("{} ({})", or_none(s(p, "/path")), s(p, "/pathType")),
                        p.get("backend").map(backend).unwrap_or_default(),
                    ]);
                }
            }
            let head = ["Host".to_string(), "Path".into(), "Backends".into()];
            for l in table(&head, &rows).lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        Kind::ConfigMap => {
            out.push_str("\nData\n====\n");
            if let Some(m) = v.get("data").and_then(Value::as_object) {
                for (k, val) in m {
                    let _ = writeln!(out, "{k}:\n----\n{}\n", val.as_str().unwrap_or(""));
                }
            }
            out.push_str("\nBinaryData\n====\n");
            if let Some(m) = v.get("binaryData").and_then(Value::as_object) {
                for (k, val) in m {
                    let _ = writeln!(out, "{k}: {} bytes", secret_len(val.as_str().unwrap_or("")));
                }
            }
        }
        Kind::Secret => {
            let _ = writeln!(out, "\nType:  {}\n\nData\n====", s(v, "/type"));
            if let Some(m) = v.get("data").and_then(Value::as_object) {
                for (k, val) in m {
                    let _ = writeln!(
                        out,
                        "{k}:  {} bytes",
                        secret_len(val.as_str().unwrap_or(""))
                    );
                }
            }
        }
        Kind::Namespace => field(&mut out, 0, "Status", or_none(s(v, "/status/phase"))),
        Kind::Node => {
            let taints: Vec<String> = arr(v, "/spec/taints")
                .iter()
                .map(|t| format!("{}={}:{}", s(t, "/key"), s(t, "/value"), s(t, "/effect")))
                .collect();
            field(&mut out, 0, "Taints", or_none(&taints.join(", ")));
            field(
                &mut out,
                0,
                "Unschedulable",
                &scalar(v.pointer("/spec/unschedulable")).replace("<none>", "false"),
            );
            let conds = arr(v, "/status/conditions");
            out.push_str("Conditions:\n");
            let rows: Vec<Vec<String>> = conds
                .iter()
                .map(|c| {
                    vec![
                        s(c, "/type").into(),
                        s(c, "/status").into(),
                        s(c, "/lastHeartbeatTime").into(),
                        s(c, "/reason").into(),
                        s(c, "/message").into(),
                    ]
                })
                .collect();
            for l in table(
                &[
                    "Type".into(),
                    "Status".into(),
                    "LastHeartbeatTime".into(),
                    "Reason".into(),
                    "Message".into(),
                ],
                &rows,
            )
            .lines()
            {
                let _ = writeln!(out, "  {l}");
            }
            out.push_str("Addresses:\n");
            for a in arr(v, "/status/addresses") {
                let _ = writeln!(out, "  {}:  {}", s(a, "/type"), s(a, "/address"));
            }
            for (label, ptr) in [
                ("Capacity", "/status/capacity"),
                ("Allocatable", "/status/allocatable"),
            ] {
                let _ = writeln!(out, "{label}:");
                if let Some(m) = v.pointer(ptr).and_then(Value::as_object) {
                    for (k, val) in m {
                        let _ = writeln!(out, "  {k}:  {}", scalar(Some(val)));
                    }
                }
            }
            if let Some(info) = v.pointer("/status/nodeInfo").and_then(Value::as_object) {
                out.push_str("System Info:\n");
                for (k, val) in info {
                    let _ = writeln!(out, "  {k}:  {}", scalar(Some(val)));
                }
            }
        }
        Kind::Event => {
            field(&mut out, 0, "Type", s(v, "/type"));
            field(&mut out, 0, "Reason", s(v, "/reason"));
            field(&mut out, 0, "Message", s(v, "/message"));
            field(
                &mut out,
                0,
                "Involved Object",
                &format!(
                    "{}/{}",
                    s(v, "/involvedObject/kind"),
                    s(v, "/involvedObject/name")
                ),
            );
        }
    }
    if kind != Kind::Event {
        if events.is_empty() {
            out.push_str("Events:              <none>\n");
        } else {
            out.push_str("Events:\n");
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    let last = match s(e, "/lastTimestamp") {
                        "" => s(e, "/metadata/creationTimestamp"),
                        t => t,
                    };
                    let count = e.get("count").and_then(Value::as_i64).unwrap_or(1);
                    let when = if count > 1 {
                        format!("{} (x{count})", age(last))
                    } else {
                        age(last)
                    };
                    vec![
                        s(e, "/type").into(),
                        s(e, "/reason").into(),
                        when,
                        s(e, "/source/component").into(),
                        s(e, "/message").into(),
                    ]
                })
                .collect();
            for l in table(
                &[
                    "Type".into(),
                    "Reason".into(),
                    "Age".into(),
                    "From".into(),
                    "Message".into(),
                ],
                &rows,
            )
            .lines()
            {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ingress_shows_class_backends_tls_and_rules() {
        let v = json!({
            "metadata": {"name": "two-hosts", "namespace": "default"},
            "spec": {
                "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                "tls": [{"hosts": ["web.example"], "secretName": "web-tls"}],
                "rules": [
                    {"host": "web.example", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                    {"http": {"paths": [
                        {"path": "/api", "pathType": "Exact",
                         "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}
                ]
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "172.31.0.10"}, {"ip": "172.31.0.11"}]}}
        });
        let d = describe(Kind::Ingress, &v, &[]);
        for want in [
            "Address:",
            "172.31.0.10,172.31.0.11",
            "Ingress Class:",
            "<none>",
            "fallback:80",
            "  web-tls terminates web.example",
            "/ (Prefix)",
            "web:80",
            "/api (Exact)",
            "api:http",
        ] {
            assert!(d.contains(want), "{want:?} in:\n{d}");
        }
        let rules = d.split("Rules:\n").nth(1).unwrap();
        let hosts: Vec<&str> = rules
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| !w.starts_with('/'))
            .collect();
        assert_eq!(hosts, ["web.example", "*"], "{rules}");
    }
}
