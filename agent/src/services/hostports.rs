//! Pods' `hostPort`s, the job of the kubelet's portmap plugin: a packet to a port of the
//! node goes to the pod that claimed it ([`rules`], pure), written into the node's
//! nftables table (`network::nft::hostports_batch`) by the Service proxy's loop whenever
//! the node's pods or their addresses change. Pods on the host network need nothing:
//! their ports are the node's. The scheduler keeps two pods from claiming one port.

use crate::network::nft::HostPortRule;
use skiff_api::pod::PodSpec;
use std::net::Ipv4Addr;

/// The forwarding rules for pods on the pod network, each with its address.
pub fn rules<'a>(pods: impl IntoIterator<Item = (&'a PodSpec, Ipv4Addr)>) -> Vec<HostPortRule> {
    let mut out = Vec::new();
    for (spec, pod_ip) in pods {
        if spec.host_network == Some(true) {
            continue;
        }
        for p in spec.containers.iter().flat_map(|c| &c.ports) {
            let (Some(port), Some(pod_port)) = (
                p.host_port
                    .and_then(|h| u16::try_from(h).ok())
                    .filter(|h| *h > 0),
                p.container_port.and_then(|c| u16::try_from(c).ok()),
            ) else {
                continue;
            };
            let proto = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => 6,
                "UDP" => 17,
                "SCTP" => 132,
                _ => continue,
            };
            let host_ip = match p.host_ip.as_deref().unwrap_or("") {
                "" | "0.0.0.0" => None,
                ip => match ip.parse::<Ipv4Addr>() {
                    Ok(ip) => Some(ip),
                    // An IPv6 host address: this node forwards IPv4 only.
                    Err(_) => continue,
                },
            };
            out.push(HostPortRule {
                host_ip,
                port,
                proto,
                pod_ip,
                pod_port,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The node's pods with an address on the pod network.
pub fn node_pods(
    agent: &crate::state::Agent,
) -> Vec<(std::sync::Arc<skiff_api::pod::Pod>, Ipv4Addr)> {
    let Some(net) = agent.net() else {
        return Vec::new();
    };
    let pods = agent.pods.lock().unwrap();
    pods.iter()
        .filter_map(|(uid, e)| Some((e.desired.borrow().pod.clone(), net.ip_of(uid)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_become_rules_as_portmap_forwards_them() {
        let spec = |yaml: &str| -> PodSpec {
            let m = skiff_api::manifest::parse_manifests(&format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{yaml}"
            ))
            .unwrap()
            .remove(0);
            match m.object {
                skiff_api::Object::Pod(p) => p.spec,
                _ => panic!("not a pod"),
            }
        };
        let a = spec("  containers:\n  - name: c\n    image: x\n    ports:\n    - {containerPort: 80, hostPort: 8080}\n    - {containerPort: 53, hostPort: 5353, protocol: UDP, hostIP: 192.168.1.5}\n    - {containerPort: 81}\n    - {containerPort: 82, hostPort: 8082, hostIP: 'fd00::1'}\n");
        let host = spec("  hostNetwork: true\n  containers:\n  - name: c\n    image: x\n    ports: [{containerPort: 9000, hostPort: 9000}]\n");
        let ip = Ipv4Addr::new(10, 42, 0, 5);
        let r = rules([(&a, ip), (&host, Ipv4Addr::new(10, 42, 0, 6))]);
        assert_eq!(
            r,
            [
                HostPortRule {
                    host_ip: None,
                    port: 8080,
                    proto: 6,
                    pod_ip: ip,
                    pod_port: 80
                },
                HostPortRule {
                    host_ip: Some(Ipv4Addr::new(192, 168, 1, 5)),
                    port: 5353,
                    proto: 17,
                    pod_ip: ip,
                    pod_port: 53
                },
            ],
            "no hostPort, an IPv6 host address and host networking give no rule"
        );
    }
}
