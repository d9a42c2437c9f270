//! Namespaces, Nodes, Services, Endpoints, ConfigMaps, Secrets and Events.

use super::{age, map_str, or_none, secret_len, Page, Print};
use crate::core::{ConfigMap, Endpoints, Event, Namespace, Node, Secret, Service};
use serde_json::Value;

fn unset_or(x: &Option<String>, default: &str) -> String {
    x.clone().unwrap_or_else(|| default.to_string())
}

impl Print for Service {
    fn columns(wide: bool) -> Vec<&'static str> {
        let mut h = vec![
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ];
        if wide {
            h.push("SELECTOR");
        }
        h
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let ports: Vec<String> = self
            .spec
            .ports
            .iter()
            .map(|p| {
                let proto = p.protocol.as_deref().unwrap_or("TCP");
                let port = p.port.unwrap_or(0);
                match p.node_port {
                    Some(np) => format!("{port}:{np}/{proto}"),
                    None => format!("{port}/{proto}"),
                }
            })
            .collect();
        let mut r = vec![
            self.metadata.name().to_string(),
            self.spec.type_.clone().unwrap_or_default(),
            match self.spec.cluster_ip.as_deref().unwrap_or("") {
                "" => "<pending>".into(),
                ip => ip.into(),
            },
            "<none>".into(),
            or_none(&ports.join(",")).into(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        if wide {
            r.push(map_str(&self.spec.selector));
        }
        r
    }

    fn describe(&self, page: &mut Page) {
        page.map(0, "Selector", &self.spec.selector);
        page.field(0, "Type", self.spec.type_.as_deref().unwrap_or(""));
        page.field(
            0,
            "IP",
            or_none(self.spec.cluster_ip.as_deref().unwrap_or("")),
        );
        for p in &self.spec.ports {
            let name = unset_or(&p.name, "<unset>");
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let port = p.port.map_or_else(|| "<none>".into(), |x| x.to_string());
            let target = p
                .target_port
                .as_ref()
                .map_or_else(|| "<none>".into(), |x| x.to_string());
            page.field(0, "Port", &format!("{name}  {port}/{proto}"));
            page.field(0, "TargetPort", &format!("{target}/{proto}"));
            if let Some(np) = p.node_port {
                page.field(0, "NodePort", &format!("{name}  {np}/{proto}"));
            }
        }
        page.field(
            0,
            "Session Affinity",
            self.spec.session_affinity.as_deref().unwrap_or(""),
        );
    }
}

impl Print for Endpoints {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "ENDPOINTS", "AGE"]
    }

    /// kubectl's ENDPOINTS column: `ip:port` of ready addresses, the first three and a count.
    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let mut all = Vec::new();
        for sub in &self.subsets {
            for a in &sub.addresses {
                if sub.ports.is_empty() {
                    all.push(a.ip.clone());
                }
                for p in &sub.ports {
                    all.push(format!("{}:{}", a.ip, p.port.unwrap_or(0)));
                }
            }
        }
        let cell = match all.len() {
            0 => "<none>".into(),
            1..=3 => all.join(","),
            k => format!("{} + {} more...", all[..3].join(","), k - 3),
        };
        vec![
            self.metadata.name().to_string(),
            cell,
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.line("Subsets:");
        for sub in &self.subsets {
            let ips = |l: &[crate::core::EndpointAddress]| {
                let l: Vec<&str> = l.iter().map(|a| a.ip.as_str()).collect();
                or_none(&l.join(",")).to_string()
            };
            page.field(1, "Addresses", &ips(&sub.addresses));
            page.field(1, "NotReadyAddresses", &ips(&sub.not_ready_addresses));
            page.line("  Ports:");
            for p in &sub.ports {
                page.line(&format!(
                    "    {}\t{}\t{}",
                    unset_or(&p.name, "<unset>"),
                    p.port.map_or_else(|| "<none>".into(), |x| x.to_string()),
                    p.protocol.as_deref().unwrap_or("TCP")
                ));
            }
        }
    }
}

impl Print for ConfigMap {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "DATA", "AGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        vec![
            self.metadata.name().to_string(),
            (self.data.len() + self.binary_data.len()).to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.line("\nData\n====");
        for (k, v) in &self.data {
            page.line(&format!("{k}:\n----\n{v}\n"));
        }
        page.line("\nBinaryData\n====");
        for (k, v) in &self.binary_data {
            page.line(&format!("{k}: {} bytes", secret_len(v)));
        }
    }
}

impl Print for Secret {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "TYPE", "DATA", "AGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        vec![
            self.metadata.name().to_string(),
            self.type_.clone().unwrap_or_default(),
            self.data.len().to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.line(&format!(
            "\nType:  {}\n\nData\n====",
            self.type_.as_deref().unwrap_or("")
        ));
        for (k, v) in &self.data {
            page.line(&format!("{k}:  {} bytes", secret_len(v)));
        }
    }
}

impl Print for Namespace {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "STATUS", "AGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let phase = self.status.as_ref().and_then(|s| s.phase.clone());
        vec![
            self.metadata.name().to_string(),
            phase.unwrap_or_else(|| "Active".into()),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        let phase = self.status.as_ref().and_then(|s| s.phase.as_deref());
        page.field(0, "Status", or_none(phase.unwrap_or("")));
    }
}

/// A node's STATUS column: its Ready condition, and whether it is cordoned.
fn node_ready(node: &Node) -> String {
    let conds = node.status.as_ref().map(|s| s.conditions.as_slice());
    let mut st = match conds
        .unwrap_or(&[])
        .iter()
        .rfind(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
    {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".into(),
        _ => "Unknown".into(),
    };
    if node.spec.unschedulable == Some(true) {
        st.push_str(",SchedulingDisabled");
    }
    st
}

impl Print for Node {
    fn columns(wide: bool) -> Vec<&'static str> {
        let mut h = vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"];
        if wide {
            h.extend([
                "INTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ]);
        }
        h
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let roles: Vec<&str> = self
            .metadata
            .labels
            .keys()
            .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
            .collect();
        let st = self.status.clone().unwrap_or_default();
        let info = st.node_info.clone().unwrap_or_default();
        let mut r = vec![
            self.metadata.name().to_string(),
            node_ready(self),
            or_none(&roles.join(",")).into(),
            age(self.metadata.creation_timestamp.as_deref(), now),
            info.kubelet_version.clone().unwrap_or_default(),
        ];
        if wide {
            let ip = st
                .addresses
                .iter()
                .find(|a| a.type_ == "InternalIP")
                .map_or_else(|| "<none>".to_string(), |a| a.address.clone());
            r.extend([
                ip,
                info.os_image.unwrap_or_default(),
                info.kernel_version.unwrap_or_default(),
                info.container_runtime_version.unwrap_or_default(),
            ]);
        }
        r
    }

    fn describe(&self, page: &mut Page) {
        let taints: Vec<String> = self
            .spec
            .taints
            .iter()
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key,
                    t.value.as_deref().unwrap_or(""),
                    t.effect
                )
            })
            .collect();
        page.field(0, "Taints", or_none(&taints.join(", ")));
        page.field(
            0,
            "Unschedulable",
            &self.spec.unschedulable.unwrap_or(false).to_string(),
        );
        let st = self.status.clone().unwrap_or_default();
        page.line("Conditions:");
        let rows: Vec<Vec<String>> = st
            .conditions
            .iter()
            .map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.last_heartbeat_time.clone().unwrap_or_default(),
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                ]
            })
            .collect();
        page.table(
            &["Type", "Status", "LastHeartbeatTime", "Reason", "Message"],
            &rows,
        );
        page.line("Addresses:");
        for a in &st.addresses {
            page.line(&format!("  {}:  {}", a.type_, a.address));
        }
        for (label, m) in [("Capacity", &st.capacity), ("Allocatable", &st.allocatable)] {
            page.line(&format!("{label}:"));
            for (k, v) in m {
                page.line(&format!("  {k}:  {v}"));
            }
        }
        if let Some(info) = &st.node_info {
            // Field by field under the names Kubernetes gives them (`machineID`, ...).
            if let Ok(Value::Object(m)) = serde_json::to_value(info) {
                page.line("System Info:");
                for (k, v) in m {
                    page.line(&format!("  {k}:  {}", v.as_str().unwrap_or_default()));
                }
            }
        }
    }
}

impl Print for Event {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let last = self
            .last_timestamp
            .as_deref()
            .or(self.metadata.creation_timestamp.as_deref());
        let o = &self.involved_object;
        vec![
            age(last, now),
            self.type_.clone().unwrap_or_default(),
            self.reason.clone().unwrap_or_default(),
            format!(
                "{}/{}",
                o.kind.as_deref().unwrap_or("").to_ascii_lowercase(),
                o.name.as_deref().unwrap_or("")
            ),
            self.message.clone().unwrap_or_default(),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.field(0, "Type", self.type_.as_deref().unwrap_or(""));
        page.field(0, "Reason", self.reason.as_deref().unwrap_or(""));
        page.field(0, "Message", self.message.as_deref().unwrap_or(""));
        let o = &self.involved_object;
        page.field(
            0,
            "Involved Object",
            &format!(
                "{}/{}",
                o.kind.as_deref().unwrap_or(""),
                o.name.as_deref().unwrap_or("")
            ),
        );
    }
}
