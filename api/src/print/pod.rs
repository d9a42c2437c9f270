//! Pods: kubectl's STATUS column, READY and RESTARTS, and the containers section that
//! pod templates share.

use super::{age, or_none, Page, Print};
use crate::pod::{Container, ContainerStatus, Pod, PodSpec, PodStatus};
use std::fmt::Write;

/// A pod's STATUS column, as kubectl computes it.
pub fn pod_status(p: &Pod) -> String {
    if p.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let st = p.status.clone().unwrap_or_default();
    let mut reason = match st.reason.as_deref().unwrap_or("") {
        "" => st.phase.clone().unwrap_or_default(),
        r => r.to_string(),
    };
    if reason.is_empty() {
        reason = "Pending".into();
    }
    // As kubectl: a pod held by its scheduling gates says so.
    let gated = st
        .conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"));
    if gated && p.spec.node_name.is_none() {
        return "SchedulingGated".into();
    }
    if let Some(init) = initializing(p, &st) {
        return init;
    }
    let mut running = false;
    for c in st.container_statuses.iter().rev() {
        let state = c.state.clone().unwrap_or_default();
        if let Some(w) = state.waiting.as_ref().and_then(|w| w.reason.clone()) {
            reason = w;
        } else if let Some(t) = &state.terminated {
            reason = match (t.reason.as_deref().unwrap_or(""), t.signal.unwrap_or(0)) {
                ("", 0) => format!("ExitCode:{}", t.exit_code.unwrap_or(0)),
                ("", sig) => format!("Signal:{sig}"),
                (r, _) => r.to_string(),
            };
        } else if state.running.is_some() && c.ready == Some(true) {
            running = true;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    reason
}

/// The STATUS an unfinished init container gives (`Init:1/2`, `Init:Error`...), unless the
/// pod is initialized; a sidecar that has started does not hold it.
fn initializing(p: &Pod, st: &PodStatus) -> Option<String> {
    let init_total = p.spec.init_containers.len();
    let initialized = st
        .conditions
        .iter()
        .any(|c| c.type_ == "Initialized" && c.status == "True");
    for (i, c) in st.init_container_statuses.iter().enumerate() {
        if is_sidecar(p, &c.name) && c.started == Some(true) {
            continue;
        }
        let state = c.state.clone().unwrap_or_default();
        let t = state.terminated.as_ref();
        if t.is_some_and(|t| t.exit_code.unwrap_or(0) == 0) {
            continue;
        }
        if initialized {
            return None;
        }
        if let Some(t) = t {
            return Some(match t.reason.as_deref().unwrap_or("") {
                "" => format!("Init:ExitCode:{}", t.exit_code.unwrap_or(0)),
                r => format!("Init:{r}"),
            });
        }
        let w = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .unwrap_or("");
        if !w.is_empty() && w != "PodInitializing" {
            return Some(format!("Init:{w}"));
        }
        return Some(format!("Init:{i}/{init_total}"));
    }
    None
}

fn is_sidecar(p: &Pod, name: &str) -> bool {
    p.spec
        .init_containers
        .iter()
        .any(|c| c.name == name && c.is_sidecar())
}

impl Print for Pod {
    fn columns(wide: bool) -> Vec<&'static str> {
        let mut h = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
        if wide {
            h.extend(["IP", "NODE"]);
        }
        h
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        // As kubectl counts: sidecars are containers of the pod (ready once started and
        // ready), and every init container's restarts count.
        let sidecars = st
            .init_container_statuses
            .iter()
            .filter(|c| is_sidecar(self, &c.name) && c.started == Some(true));
        let ready = st
            .container_statuses
            .iter()
            .chain(sidecars)
            .filter(|c| c.ready == Some(true))
            .count();
        let total = self.spec.containers.len()
            + self
                .spec
                .init_containers
                .iter()
                .filter(|c| c.is_sidecar())
                .count();
        let restarts: i64 = st
            .container_statuses
            .iter()
            .chain(&st.init_container_statuses)
            .map(|c| i64::from(c.restart_count.unwrap_or(0)))
            .sum();
        let mut r = vec![
            self.metadata.name().to_string(),
            format!("{ready}/{total}"),
            pod_status(self),
            restarts.to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        if wide {
            r.push(or_none(st.pod_ip.as_deref().unwrap_or("")).into());
            r.push(or_none(self.spec.node_name.as_deref().unwrap_or("")).into());
        }
        r
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        let opt = |x: &Option<String>| or_none(x.as_deref().unwrap_or("")).to_string();
        page.field(0, "Node", &opt(&self.spec.node_name));
        page.field(0, "Start Time", &opt(&st.start_time));
        page.field(0, "Status", &pod_status(self));
        page.field(0, "IP", &opt(&st.pod_ip));
        containers(page, &self.spec, Some(&st), 0);
        if !st.conditions.is_empty() {
            page.line("Conditions:");
            let rows: Vec<Vec<String>> = st
                .conditions
                .iter()
                .map(|c| vec![c.type_.clone(), c.status.clone()])
                .collect();
            page.table(&["Type", "Status"], &rows);
        }
        if !self.spec.volumes.is_empty() {
            page.line("Volumes:");
            for vol in &self.spec.volumes {
                let kind = match vol {
                    v if v.empty_dir.is_some() => "emptyDir",
                    v if v.host_path.is_some() => "hostPath",
                    v if v.config_map.is_some() => "configMap",
                    v if v.secret.is_some() => "secret",
                    v if v.persistent_volume_claim.is_some() => "persistentVolumeClaim",
                    _ => "",
                };
                page.line(&format!("  {}:\n    Type: {kind}", vol.name));
            }
        }
        page.field(
            0,
            "Restart Policy",
            self.spec.restart_policy.as_deref().unwrap_or(""),
        );
        page.map(0, "Node-Selectors", &self.spec.node_selector);
    }
}

/// The containers (init containers first) of a pod or a pod template, with their
/// states when a pod's status is given.
pub(super) fn containers(
    page: &mut Page,
    spec: &PodSpec,
    status: Option<&PodStatus>,
    indent: usize,
) {
    type Listed<'a> = (&'a str, &'a [Container], Option<&'a [ContainerStatus]>);
    let lists: [Listed; 2] = [
        (
            "Init Containers",
            &spec.init_containers,
            status.map(|s| s.init_container_statuses.as_slice()),
        ),
        (
            "Containers",
            &spec.containers,
            status.map(|s| s.container_statuses.as_slice()),
        ),
    ];
    let pad = " ".repeat(indent);
    for (title, list, statuses) in lists {
        if list.is_empty() {
            continue;
        }
        page.line(&format!("{pad}{title}:"));
        for c in list {
            page.line(&format!("{pad}  {}:", c.name));
            let i = indent + 4;
            let pad_i = " ".repeat(i);
            page.field(i, "Image", c.image.as_deref().unwrap_or(""));
            let ports: Vec<String> = c
                .ports
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.container_port
                            .map_or_else(|| "<none>".to_string(), |x| x.to_string()),
                        p.protocol.as_deref().unwrap_or("TCP")
                    )
                })
                .collect();
            page.field(i, "Port", or_none(&ports.join(", ")));
            for (label, xs) in [("Command", &c.command), ("Args", &c.args)] {
                if !xs.is_empty() {
                    page.field(i, label, &xs.join(" "));
                }
            }
            if let Some(st) = statuses.and_then(|l| l.iter().find(|x| x.name == c.name)) {
                container_state(page, i, st);
            }
            if let Some(res) = &c.resources {
                for (label, m) in [("Limits", &res.limits), ("Requests", &res.requests)] {
                    if !m.is_empty() {
                        page.line(&format!("{pad_i}{label}:"));
                        for (k, v) in m {
                            page.line(&format!("{pad_i}  {k}: {v}"));
                        }
                    }
                }
            }
            if c.env.is_empty() {
                page.field(i, "Environment", "<none>");
            } else {
                page.line(&format!("{pad_i}Environment:"));
                for e in &c.env {
                    let from = e.value_from.as_ref();
                    let val = if let Some(v) = &e.value {
                        v.clone()
                    } else if let Some(r) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                        format!(
                            "<set to the key '{}' in secret '{}'>",
                            r.key,
                            r.name.as_deref().unwrap_or("")
                        )
                    } else if let Some(r) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                        format!(
                            "<set to the key '{}' of config map '{}'>",
                            r.key,
                            r.name.as_deref().unwrap_or("")
                        )
                    } else if let Some(r) = from.and_then(|f| f.field_ref.as_ref()) {
                        format!("({})", r.field_path)
                    } else {
                        String::new()
                    };
                    page.line(&format!("{pad_i}  {}:  {val}", e.name));
                }
            }
            let mounts: Vec<String> = c
                .volume_mounts
                .iter()
                .map(|m| format!("{} from {}", m.mount_path, m.name))
                .collect();
            page.field(i, "Mounts", or_none(&mounts.join(", ")));
        }
    }
}

fn container_state(page: &mut Page, i: usize, st: &ContainerStatus) {
    let state = st.state.clone().unwrap_or_default();
    let (name, detail) = if let Some(r) = &state.running {
        (
            "Running",
            format!("Started: {}", r.started_at.as_deref().unwrap_or("")),
        )
    } else if let Some(w) = &state.waiting {
        (
            "Waiting",
            format!("Reason: {}", w.reason.as_deref().unwrap_or("")),
        )
    } else if let Some(t) = &state.terminated {
        (
            "Terminated",
            format!(
                "Reason: {}  Exit Code: {}",
                t.reason.as_deref().unwrap_or(""),
                t.exit_code
                    .map_or_else(|| "<none>".to_string(), |x| x.to_string())
            ),
        )
    } else {
        ("Unknown", String::new())
    };
    page.field(i, "State", name);
    if !detail.is_empty() {
        let mut l = String::new();
        let _ = write!(l, "{}  {detail}", " ".repeat(i));
        page.line(&l);
    }
    page.field(
        i,
        "Ready",
        &st.ready
            .map_or_else(|| "<none>".to_string(), |x| x.to_string()),
    );
    page.field(
        i,
        "Restart Count",
        &st.restart_count.unwrap_or(0).to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pod_statuses() {
        let p = pod(
            json!({"status": {"phase": "Running", "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
        );
        assert_eq!(pod_status(&p), "CrashLoopBackOff");
        let p = pod(
            json!({"status": {"phase": "Failed", "containerStatuses": [{"name": "c", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}}),
        );
        assert_eq!(pod_status(&p), "OOMKilled");
        assert_eq!(pod_status(&pod(json!({}))), "Pending");
        assert_eq!(
            pod_status(&pod(json!({"metadata": {"deletionTimestamp": "x"}}))),
            "Terminating"
        );
        let p = pod(
            json!({"spec": {"initContainers": [{"name": "a"}, {"name": "b"}]}, "status": {"initContainerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0}}}, {"name": "b", "state": {"running": {}}}]}}),
        );
        assert_eq!(pod_status(&p), "Init:1/2");
        let p = pod(
            json!({"status": {"containerStatuses": [{"name": "c", "state": {"terminated": {"signal": 9}}}]}}),
        );
        assert_eq!(pod_status(&p), "Signal:9");
    }

    #[test]
    fn rows_follow_columns() {
        let p = pod(json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.42.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"running": {}}}]}
        }));
        let now = crate::util::parse_rfc3339("2026-01-01T00:00:45Z").unwrap();
        assert_eq!(p.row(false, now), ["web", "1/2", "Running", "3", "45s"]);
        let wide = p.row(true, now);
        assert_eq!(wide.len(), Pod::columns(true).len());
        assert_eq!(wide[5..], ["10.42.0.5", "n1"]);
    }

    #[test]
    fn sidecars_are_counted_as_kubectl_counts_them() {
        let p = |log: serde_json::Value, init: &str| {
            pod(json!({
                "metadata": {"name": "web"},
                "spec": {"initContainers": [{"name": "log", "restartPolicy": "Always"}, {"name": "i"}],
                         "containers": [{"name": "a"}]},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Initialized", "status": init}],
                    "initContainerStatuses": [log,
                        {"name": "i", "restartCount": 1, "state": {"terminated": {"exitCode": 0}}}],
                    "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}
            }))
        };
        let up = json!({"name": "log", "ready": true, "started": true, "restartCount": 2, "state": {"running": {}}});
        // READY counts the sidecar; RESTARTS every init container's too.
        assert_eq!(p(up, "True").row(false, 0)[1..4], ["2/2", "Running", "3"]);
        // Not started yet, it holds the pod in Init.
        let starting = json!({"name": "log", "started": false, "state": {"running": {}}});
        assert_eq!(pod_status(&p(starting.clone(), "False")), "Init:0/2");
        // Restarting once the pod is initialized, it does not.
        assert_eq!(pod_status(&p(starting, "True")), "Running");
    }
}
