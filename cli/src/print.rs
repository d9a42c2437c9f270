//! Output: kubectl's tables, ages and statuses; YAML, JSON and names.

use base64::Engine;
use serde_json::Value;
use skiff_api::util::parse_rfc3339;
use skiff_api::Kind;
use std::time::{SystemTime, UNIX_EPOCH};

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}
fn n(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}
fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// kubectl's human duration: `45s`, `3m20s`, `17m`, `5h3m`, `20h`, `3d4h`, `40d`, `2y30d`.
pub fn human_duration(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 2 * 86_400 => format!("{h}h"),
        s if s < 8 * 86_400 => format!("{d}d{}h", h % 24),
        s if s < 2 * 365 * 86_400 => format!("{d}d"),
        _ => format!("{}y{}d", d / 365, d % 365),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Age of a timestamp, `<unknown>` if absent.
pub fn age(ts: &str) -> String {
    match parse_rfc3339(ts) {
        Some(t) => human_duration(now().saturating_sub(t)),
        None => "<unknown>".into(),
    }
}

fn map_str(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr).and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn selector_str(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(sel) => {
            let parsed: Result<skiff_api::selector::LabelSelector, _> =
                serde_json::from_value(sel.clone());
            match parsed.ok().and_then(|l| l.to_selector().ok()) {
                Some(s) if !s.is_empty() => s.to_string(),
                _ => "<none>".into(),
            }
        }
        None => "<none>".into(),
    }
}

/// A pod's STATUS column, as kubectl computes it.
pub fn pod_status(p: &Value) -> String {
    if !s(p, "/metadata/deletionTimestamp").is_empty() {
        return "Terminating".into();
    }
    let mut reason = match s(p, "/status/reason") {
        "" => s(p, "/status/phase").to_string(),
        r => r.to_string(),
    };
    if reason.is_empty() {
        reason = "Pending".into();
    }
    let inits = arr(p, "/status/initContainerStatuses");
    let init_total = arr(p, "/spec/initContainers").len();
    for (i, c) in inits.iter().enumerate() {
        let t = c.pointer("/state/terminated");
        if t.is_some_and(|t| n(t, "/exitCode") == 0) {
            continue;
        }
        if let Some(t) = t {
            let r = s(t, "/reason");
            return if r.is_empty() {
                format!("Init:ExitCode:{}", n(t, "/exitCode"))
            } else {
                format!("Init:{r}")
            };
        }
        let w = s(c, "/state/waiting/reason");
        if !w.is_empty() && w != "PodInitializing" {
            return format!("Init:{w}");
        }
        return format!("Init:{i}/{init_total}");
    }
    let mut running = false;
    for c in arr(p, "/status/containerStatuses").iter().rev() {
        if let Some(w) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = w.to_string();
        } else if let Some(t) = c.pointer("/state/terminated") {
            let r = s(t, "/reason");
            reason = if !r.is_empty() {
                r.to_string()
            } else if n(t, "/signal") != 0 {
                format!("Signal:{}", n(t, "/signal"))
            } else {
                format!("ExitCode:{}", n(t, "/exitCode"))
            };
        } else if c.pointer("/state/running").is_some()
            && c.get("ready").and_then(Value::as_bool) == Some(true)
        {
            running = true;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    reason
}

fn ports(v: &Value) -> String {
    let ps: Vec<String> = arr(v, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) => format!("{}:{np}/{proto}", n(p, "/port")),
                None => format!("{}/{proto}", n(p, "/port")),
            }
        })
        .collect();
    if ps.is_empty() {
        "<none>".into()
    } else {
        ps.join(",")
    }
}

/// kubectl's ENDPOINTS column: `ip:port` of ready addresses, the first three and a count.
fn endpoints(v: &Value) -> String {
    let mut all = Vec::new();
    for sub in arr(v, "/subsets") {
        let ports = arr(sub, "/ports");
        for a in arr(sub, "/addresses") {
            if ports.is_empty() {
                all.push(s(a, "/ip").to_string());
            }
            for p in ports {
                all.push(format!("{}:{}", s(a, "/ip"), n(p, "/port")));
            }
        }
    }
    match all.len() {
        0 => "<none>".into(),
        1..=3 => all.join(","),
        k => format!("{} + {} more...", all[..3].join(","), k - 3),
    }
}

fn containers_images(v: &Value, base: &str) -> (String, String) {
    let cs = arr(v, base);
    let names: Vec<&str> = cs.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn node_ready(v: &Value) -> String {
    let mut st = "Unknown".to_string();
    for c in arr(v, "/status/conditions") {
        if s(c, "/type") == "Ready" {
            st = match s(c, "/status") {
                "True" => "Ready".into(),
                "False" => "NotReady".into(),
                _ => "Unknown".into(),
            };
        }
    }
    if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        st.push_str(",SchedulingDisabled");
    }
    st
}

/// An Ingress's class: `spec.ingressClassName`, else the older annotation, else `<none>`.
pub fn ingress_class(v: &Value) -> &str {
    match s(v, "/spec/ingressClassName") {
        "" => match s(v, "/metadata/annotations/kubernetes.io~1ingress.class") {
            "" => "<none>",
            c => c,
        },
        c => c,
    }
}

/// Column headers for a kind.
pub fn headers(kind: Kind, wide: bool) -> Vec<&'static str> {
    let mut h: Vec<&str> = match kind {
        Kind::Pod => vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        Kind::Deployment => vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        Kind::ReplicaSet => vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        Kind::DaemonSet => vec![
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE",
        ],
        Kind::StatefulSet => vec!["NAME", "READY", "AGE"],
        Kind::Job => vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        Kind::Service => vec![
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        Kind::Endpoints => vec!["NAME", "ENDPOINTS", "AGE"],
        Kind::ConfigMap => vec!["NAME", "DATA", "AGE"],
        Kind::Secret => vec!["NAME", "TYPE", "DATA", "AGE"],
        Kind::Namespace => vec!["NAME", "STATUS", "AGE"],
        Kind::Node => vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        Kind::Event => vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        Kind::Ingress => vec!["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
    };
    if wide {
        h.extend(match kind {
            Kind::Pod => vec!["IP", "NODE"],
            Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet => {
                vec!["CONTAINERS", "IMAGES", "SELECTOR"]
            }
            Kind::DaemonSet | Kind::Job => vec!["CONTAINERS", "IMAGES", "SELECTOR"],
            Kind::Service => vec!["SELECTOR"],
            Kind::Node => vec![
                "INTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ],
            _ => vec![],
        });
    }
    h
}

/// One table row for an object.
pub fn row(kind: Kind, v: &Value, wide: bool) -> Vec<String> {
    let name = s(v, "/metadata/name").to_string();
    let age_ = age(s(v, "/metadata/creationTimestamp"));
    let mut r: Vec<String> = match kind {
        Kind::Pod => {
            let total = arr(v, "/spec/containers").len();
            let statuses = arr(v, "/status/containerStatuses");
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses.iter().map(|c| n(c, "/restartCount")).sum();
            vec![
                name,
                format!("{ready}/{total}"),
                pod_status(v),
                restarts.to_string(),
                age_,
            ]
        }
        Kind::Deployment => vec![
            name,
            format!(
                "{}/{}",
                n(v, "/status/readyReplicas"),
                n(v, "/spec/replicas")
            ),
            n(v, "/status/updatedReplicas").to_string(),
            n(v, "/status/availableReplicas").to_string(),
            age_,
        ],
        Kind::ReplicaSet => vec![
            name,
            n(v, "/spec/replicas").to_string(),
            n(v, "/status/replicas").to_string(),
            n(v, "/status/readyReplicas").to_string(),
            age_,
        ],
        Kind::DaemonSet => vec![
            name,
            n(v, "/status/desiredNumberScheduled").to_string(),
            n(v, "/status/currentNumberScheduled").to_string(),
            n(v, "/status/numberReady").to_string(),
            n(v, "/status/updatedNumberScheduled").to_string(),
            n(v, "/status/numberAvailable").to_string(),
            map_str(v, "/spec/template/spec/nodeSelector"),
            age_,
        ],
        Kind::StatefulSet => vec![
            name,
            format!(
                "{}/{}",
                n(v, "/status/readyReplicas"),
                n(v, "/spec/replicas")
            ),
            age_,
        ],
        Kind::Job => {
            let conds = arr(v, "/status/conditions");
            let has = |t: &str| {
                conds
                    .iter()
                    .any(|c| s(c, "/type") == t && s(c, "/status") == "True")
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                "Suspended"
            } else {
                "Running"
            };
            let start = parse_rfc3339(s(v, "/status/startTime"));
            let end = parse_rfc3339(s(v, "/status/completionTime")).unwrap_or_else(now);
            let duration = start
                .map(|st| human_duration(end.saturating_sub(st)))
                .unwrap_or_default();
            let completions = v
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "1".into());
            vec![
                name,
                status.into(),
                format!("{}/{completions}", n(v, "/status/succeeded")),
                duration,
                age_,
            ]
        }
        Kind::Service => {
            let ip = match s(v, "/spec/clusterIP") {
                "" => "<pending>".to_string(),
                x => x.to_string(),
            };
            vec![
                name,
                s(v, "/spec/type").to_string(),
                ip,
                "<none>".into(),
                ports(v),
                age_,
            ]
        }
        Kind::Endpoints => vec![name, endpoints(v), age_],
        Kind::Ingress => {
            let class = ingress_class(v);
            let mut hosts: Vec<&str> = Vec::new();
            for r in arr(v, "/spec/rules") {
                let h = match s(r, "/host") {
                    "" => "*",
                    h => h,
                };
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
            if hosts.is_empty() {
                hosts.push("*");
            }
            let addrs: Vec<&str> = arr(v, "/status/loadBalancer/ingress")
                .iter()
                .map(|a| match s(a, "/ip") {
                    "" => s(a, "/hostname"),
                    ip => ip,
                })
                .collect();
            let ports = if arr(v, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                class.to_string(),
                hosts.join(","),
                addrs.join(","),
                ports.into(),
                age_,
            ]
        }
        Kind::ConfigMap => {
            let d = v
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + v.get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, d.to_string(), age_]
        }
        Kind::Secret => {
            let d = v
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, s(v, "/type").to_string(), d.to_string(), age_]
        }
        Kind::Namespace => vec![
            name,
            match s(v, "/status/phase") {
                "" => "Active".into(),
                p => p.to_string(),
            },
            age_,
        ],
        Kind::Node => {
            let roles: Vec<String> = v
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .filter_map(|k| {
                            k.strip_prefix("node-role.kubernetes.io/")
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                node_ready(v),
                if roles.is_empty() {
                    "<none>".into()
                } else {
                    roles.join(",")
                },
                age_,
                s(v, "/status/nodeInfo/kubeletVersion").to_string(),
            ]
        }
        Kind::Event => {
            let last = match s(v, "/lastTimestamp") {
                "" => s(v, "/metadata/creationTimestamp"),
                t => t,
            };
            let obj = format!(
                "{}/{}",
                s(v, "/involvedObject/kind").to_ascii_lowercase(),
                s(v, "/involvedObject/name")
            );
            vec![
                age(last),
                s(v, "/type").to_string(),
                s(v, "/reason").to_string(),
                obj,
                s(v, "/message").to_string(),
            ]
        }
    };
    if wide {
        match kind {
            Kind::Pod => {
                r.push(match s(v, "/status/podIP") {
                    "" => "<none>".into(),
                    x => x.into(),
                });
                r.push(match s(v, "/spec/nodeName") {
                    "" => "<none>".into(),
                    x => x.into(),
                });
            }
            Kind::Deployment
            | Kind::ReplicaSet
            | Kind::StatefulSet
            | Kind::DaemonSet
            | Kind::Job => {
                let (c, i) = containers_images(v, "/spec/template/spec/containers");
                r.extend([c, i, selector_str(v, "/spec/selector")]);
            }
            Kind::Service => r.push(map_str(v, "/spec/selector")),
            Kind::Node => {
                let ip = arr(v, "/status/addresses")
                    .iter()
                    .find(|a| s(a, "/type") == "InternalIP")
                    .map(|a| s(a, "/address").to_string())
                    .unwrap_or_else(|| "<none>".into());
                r.extend([
                    ip,
                    s(v, "/status/nodeInfo/osImage").into(),
                    s(v, "/status/nodeInfo/kernelVersion").into(),
                    s(v, "/status/nodeInfo/containerRuntimeVersion").into(),
                ]);
            }
            _ => {}
        }
    }
    r
}

/// Left-aligned columns separated by three spaces, as kubectl prints them.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(|r| r.as_slice())) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Decodes a Secret value for display lengths.
pub fn secret_len(b64: &str) -> usize {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(|b| b.len())
        .unwrap_or(0)
}

fn cores(millis: u64) -> String {
    format!("{millis}m")
}

fn mib(bytes: u64) -> String {
    format!("{}Mi", bytes >> 20)
}

/// `skiff top nodes`: usage against allocatable, as kubectl shows it.
pub async fn top_nodes(
    c: &skiff_transport::Client,
    reports: &[skiff_api::wire::NodeUsageReport],
) -> anyhow::Result<()> {
    let header: Vec<String> = ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
        .map(String::from)
        .to_vec();
    let mut rows = Vec::new();
    for r in reports {
        let key = skiff_api::ObjectKey {
            kind: Kind::Node,
            namespace: String::new(),
            name: r.node.clone(),
        };
        let node = c.get_json(key).await.unwrap_or(Value::Null);
        let alloc = |res: &str| {
            node.pointer(&format!("/status/allocatable/{res}"))
                .and_then(Value::as_str)
                .and_then(|q| skiff_api::quantity::Quantity::parse(q).ok())
        };
        let pct = |used: u64, total: Option<u64>| match total {
            Some(t) if t > 0 => format!("{}%", used * 100 / t),
            _ => "<unknown>".into(),
        };
        rows.push(vec![
            r.node.clone(),
            cores(r.usage.cpu_millis),
            pct(
                r.usage.cpu_millis,
                alloc("cpu").map(|q| q.millis().max(0) as u64),
            ),
            mib(r.usage.memory_bytes),
            pct(
                r.usage.memory_bytes,
                alloc("memory").map(|q| q.value().max(0) as u64),
            ),
        ]);
    }
    if rows.is_empty() {
        anyhow::bail!("metrics not available yet: no node has reported its usage");
    }
    print!("{}", table(&header, &rows));
    Ok(())
}

/// `skiff top pods`.
pub fn top_pods(
    reports: &[skiff_api::wire::NodeUsageReport],
    namespace: Option<&str>,
) -> anyhow::Result<()> {
    let mut header = vec!["NAME", "CPU(cores)", "MEMORY(bytes)"];
    if namespace.is_none() {
        header.insert(0, "NAMESPACE");
    }
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    let mut rows = Vec::new();
    for r in reports {
        for p in &r.pods {
            if namespace.is_some_and(|n| n != p.namespace) {
                continue;
            }
            let mut row = vec![
                p.name.clone(),
                cores(p.usage.cpu_millis),
                mib(p.usage.memory_bytes),
            ];
            if namespace.is_none() {
                row.insert(0, p.namespace.clone());
            }
            rows.push(row);
        }
    }
    rows.sort();
    if rows.is_empty() {
        anyhow::bail!("no pod usage reported yet");
    }
    print!("{}", table(&header, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(1020), "17m");
        assert_eq!(human_duration(5 * 3600 + 180), "5h3m");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d4h");
    }

    #[test]
    fn pod_statuses() {
        let p = json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&p), "CrashLoopBackOff");
        let p = json!({"status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}});
        assert_eq!(pod_status(&p), "OOMKilled");
        assert_eq!(pod_status(&json!({})), "Pending");
        assert_eq!(
            pod_status(&json!({"metadata": {"deletionTimestamp": "x"}})),
            "Terminating"
        );
        let p = json!({"spec": {"initContainers": [{}, {}]}, "status": {"initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}, {"state": {"running": {}}}]}});
        assert_eq!(pod_status(&p), "Init:1/2");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME".into(), "AGE".into()],
            &[vec!["a-long-name".into(), "5s".into()]],
        );
        assert_eq!(t, "NAME          AGE\na-long-name   5s\n");
    }
}
