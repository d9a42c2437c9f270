//! The Node object the agent registers: capacity and allocatable, system info, addresses,
//! labels, and the Ready condition.

use crate::link::usage;
use crate::state::Agent;
use skiff_api::core::{Node, NodeAddress, NodeStatus, NodeSystemInfo};
use skiff_api::meta::Condition;
use skiff_api::quantity::Quantity;
use std::collections::BTreeMap;

/// Kubernetes' name for the machine's architecture.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn q(s: String) -> Quantity {
    Quantity::parse(&s).expect("well-formed quantity")
}

/// The node's capacity and allocatable (the kubelet's default hard eviction thresholds
/// off capacity), without the extended resources an admin advertised.
pub fn resources(
    cfg: &crate::state::Config,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let cpus = usage::cpus();
    let (mem, _) = usage::meminfo();
    let disk = nix_statvfs(&cfg.data_dir);
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), q(cpus.to_string()));
    capacity.insert("memory".to_string(), q(format!("{}Ki", mem / 1024)));
    capacity.insert("pods".to_string(), q(cfg.max_pods.to_string()));
    capacity.insert(
        "ephemeral-storage".to_string(),
        q(format!("{}Ki", disk / 1024)),
    );
    let mut allocatable = capacity.clone();
    allocatable.insert(
        "memory".to_string(),
        q(format!("{}Ki", mem.saturating_sub(100 << 20) / 1024)),
    );
    allocatable.insert(
        "ephemeral-storage".to_string(),
        q(format!("{}Ki", disk / 10 * 9 / 1024)),
    );
    (capacity, allocatable)
}

/// The node as the agent reports it; `current` keeps what others own (spec, their labels,
/// transition times).
pub fn desired(agent: &Agent, current: Option<&Node>) -> Node {
    let mut node = current.cloned().unwrap_or_default();
    node.api_version = "v1".into();
    node.kind = "Node".into();
    node.metadata.name = Some(agent.cfg.name.clone());
    node.metadata.resource_version = None;
    let labels = &mut node.metadata.labels;
    labels.insert("kubernetes.io/arch".into(), arch().into());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/hostname".into(), agent.cfg.name.clone());
    for (k, v) in &agent.cfg.labels {
        labels.insert(k.clone(), v.clone());
    }
    // The Ingress class the node serves, for the Ingresses' status.
    let annotations = &mut node.metadata.annotations;
    if (agent.cfg.ingress_http_port, agent.cfg.ingress_https_port) == (0, 0) {
        annotations.remove(skiff_api::networking::NODE_INGRESS_CLASS);
    } else {
        annotations.insert(
            skiff_api::networking::NODE_INGRESS_CLASS.into(),
            agent.cfg.ingress_class.clone(),
        );
    }
    // Where the local-path provisioner puts this node's volumes.
    annotations.insert(
        skiff_api::storage::NODE_LOCAL_PATH_DIR.into(),
        agent.cfg.local_path_dir.display().to_string(),
    );
    // How peers reach this node's pods (overlay.rs).
    annotations.insert(
        crate::network::overlay::ANNOTATION.into(),
        agent.cfg.pod_network.as_str().into(),
    );
    let (mut capacity, mut allocatable) = resources(&agent.cfg);
    let advertised = advertised(current);
    capacity.extend(advertised.clone());
    allocatable.extend(advertised);
    let prev_ready = current
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.clone());
    let host_ip = agent.host_ip.lock().unwrap().clone();
    node.status = Some(NodeStatus {
        capacity,
        allocatable,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: Some("skiff-agent is posting ready status".into()),
            last_transition_time: Some(
                prev_ready.unwrap_or_else(|| skiff_api::util::rfc3339(crate::util::now_secs())),
            ),
            ..Default::default()
        }],
        addresses: vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: host_ip,
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: agent.cfg.name.clone(),
            },
        ],
        node_info: Some(NodeSystemInfo {
            machine_id: read_trim("/etc/machine-id"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            kernel_version: read_trim("/proc/sys/kernel/osrelease"),
            os_image: Some(os_image()),
            operating_system: Some("linux".into()),
            architecture: Some(arch().into()),
            container_runtime_version: Some(format!("skiff://{}", skiff_api::VERSION)),
            kubelet_version: Some(format!("skiff-agent/{}", skiff_api::VERSION)),
        }),
    });
    node
}

/// Extended resources an admin advertised in the node's capacity (a status patch adding
/// `example.com/dongle`, as Kubernetes documents it): the agent keeps them and makes
/// them allocatable, as the kubelet does, so the scheduler counts them.
fn advertised(current: Option<&Node>) -> BTreeMap<String, Quantity> {
    current
        .and_then(|n| n.status.as_ref())
        .map(|s| {
            s.capacity
                .iter()
                .filter(|(k, _)| skiff_api::pod::is_extended_resource(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Total bytes of the filesystem holding `path`.
// The field types differ between targets (u32 on armv7, u64 on 64-bit): cast both.
#[allow(clippy::unnecessary_cast)]
fn nix_statvfs(path: &std::path::Path) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks() as u64 * s.fragment_size() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_extended_resources_are_kept_and_the_agents_own_are_not() {
        let mut n = Node::default();
        let st = n.status.get_or_insert_with(Default::default);
        for (k, v) in [
            ("example.com/dongle", "4"),
            ("cpu", "64"),
            ("hugepages-2Mi", "0"),
        ] {
            st.capacity.insert(k.into(), Quantity::parse(v).unwrap());
        }
        let kept = advertised(Some(&n));
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["example.com/dongle"]);
        assert_eq!(kept["example.com/dongle"].value(), 4);
        assert!(advertised(None).is_empty());
    }
}
