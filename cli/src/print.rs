//! Output: kubectl's tables, ages and statuses; YAML, JSON and names.

use serde_json::Value;
pub use skiff_api::print::table;
use skiff_api::{Kind, Object};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, for ages.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One table row for an object the server sent, as its kind's printer writes it.
pub fn row(kind: Kind, v: &Value, wide: bool) -> Vec<String> {
    match Object::decode(kind, v, &mut |_| {}) {
        Ok(o) => o.row(wide, now()),
        Err(e) => {
            let name = v.pointer("/metadata/name").and_then(Value::as_str);
            vec![
                name.unwrap_or("<unknown>").to_string(),
                format!("<unreadable: {e}>"),
            ]
        }
    }
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
        let node = match c.get_json(key).await {
            Ok(v) => Object::decode(Kind::Node, &v, &mut |_| {}).ok(),
            Err(_) => None,
        };
        let allocatable = match &node {
            Some(Object::Node(n)) => n.status.as_ref().map(|s| s.allocatable.clone()),
            _ => None,
        };
        let alloc = |res: &str| allocatable.as_ref().and_then(|m| m.get(res)).cloned();
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
