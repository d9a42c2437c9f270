//! The endpoints controller: for every Service with a selector, an Endpoints object of the
//! same name listing the pods the selector matches, by address: Ready pods under
//! `addresses`, the others under `notReadyAddresses` (unless the Service publishes
//! not-ready addresses). A `targetPort` given by name is looked up in each pod's
//! containers, so pods that number a port differently land in different subsets.
//!
//! Pods without an address yet, pods being deleted and finished pods are left out. The
//! Endpoints are owned by their Service: deleting the Service collects them. Services
//! without a selector are left alone: their Endpoints are written by hand.

use super::{controller_ref, is_ready, Action};
use skiff_api::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service};
use skiff_api::meta::{ObjectMeta, ObjectReference};
use skiff_api::pod::Pod;
use skiff_api::{IntOrString, Kind, Object};
use std::collections::BTreeMap;

/// Does the Service's selector (a label map) match the pod?
pub fn selects(svc: &Service, p: &Pod) -> bool {
    !svc.spec.selector.is_empty()
        && svc
            .spec
            .selector
            .iter()
            .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
}

/// The port a pod serves a Service port on: the number, or the container port of that
/// name (none: the pod does not serve it).
pub fn target_port(p: &Pod, target: Option<&IntOrString>, port: Option<i32>) -> Option<i32> {
    match target {
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => p
            .spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter())
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| cp.container_port),
        None => port,
    }
}

fn address(p: &Pod, svc: &Service) -> Option<EndpointAddress> {
    let ip = p
        .status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())?;
    // A StatefulSet pod's DNS name `<hostname>.<service>` needs both to agree.
    let hostname = match (&p.spec.hostname, &p.spec.subdomain) {
        (Some(h), Some(sub)) if sub == svc.metadata.name() => Some(h.clone()),
        _ => None,
    };
    Some(EndpointAddress {
        ip,
        hostname,
        node_name: p.spec.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(p.metadata.namespace().to_string()),
            name: Some(p.metadata.name().to_string()),
            uid: p.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

/// The subsets a Service's pods make.
pub fn subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let publish = svc.spec.publish_not_ready_addresses == Some(true);
    let mut by_ports: BTreeMap<Vec<(Option<String>, i32, String)>, EndpointSubset> =
        BTreeMap::new();
    for p in pods {
        if !selects(svc, p) || p.metadata.deletion_timestamp.is_some() || super::is_finished(p) {
            continue;
        }
        let Some(addr) = address(p, svc) else {
            continue;
        };
        let ports: Vec<(Option<String>, i32, String)> = svc
            .spec
            .ports
            .iter()
            .filter_map(|sp| {
                let n = target_port(p, sp.target_port.as_ref(), sp.port)?;
                Some((
                    sp.name.clone(),
                    n,
                    sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        if ports.is_empty() && !svc.spec.ports.is_empty() {
            continue;
        }
        let sub = by_ports
            .entry(ports.clone())
            .or_insert_with(|| EndpointSubset {
                ports: ports
                    .iter()
                    .map(|(name, port, proto)| EndpointPort {
                        name: name.clone(),
                        port: Some(*port),
                        protocol: Some(proto.clone()),
                        app_protocol: None,
                    })
                    .collect(),
                ..Default::default()
            });
        if publish || is_ready(p) {
            sub.addresses.push(addr);
        } else {
            sub.not_ready_addresses.push(addr);
        }
    }
    let mut out: Vec<EndpointSubset> = by_ports.into_values().collect();
    for s in &mut out {
        s.addresses.sort_by(|a, b| a.ip.cmp(&b.ip));
        s.not_ready_addresses.sort_by(|a, b| a.ip.cmp(&b.ip));
    }
    out
}

/// What one Service needs: its Endpoints created or brought up to date.
/// `pods` are the pods of the Service's namespace.
pub fn reconcile(svc: &Service, current: Option<&Endpoints>, pods: &[&Pod]) -> Vec<Action> {
    if svc.spec.selector.is_empty()
        || svc.spec.type_.as_deref() == Some("ExternalName")
        || svc.metadata.deletion_timestamp.is_some()
    {
        return Vec::new();
    }
    let subsets = subsets(svc, pods);
    let labels = svc.metadata.labels.clone();
    match current {
        Some(ep) if ep.subsets == subsets && ep.metadata.labels == labels => Vec::new(),
        Some(ep) => {
            let mut next = ep.clone();
            next.subsets = subsets;
            next.metadata.labels = labels;
            vec![Action::Update(Object::Endpoints(next))]
        }
        None => vec![Action::Create(Object::Endpoints(Endpoints {
            api_version: "v1".into(),
            kind: "Endpoints".into(),
            metadata: ObjectMeta {
                name: Some(svc.metadata.name().to_string()),
                namespace: Some(svc.metadata.namespace().to_string()),
                labels,
                owner_references: vec![controller_ref(Kind::Service, &svc.metadata)],
                ..Default::default()
            },
            subsets,
        }))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::ServicePort;
    use skiff_api::meta::Condition;
    use skiff_api::pod::{Container, ContainerPort, PodStatus};

    fn svc(target: IntOrString) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                ..Default::default()
            },
            spec: skiff_api::core::ServiceSpec {
                selector: [("app".to_string(), "web".to_string())].into(),
                ports: vec![ServicePort {
                    name: Some("http".into()),
                    port: Some(80),
                    protocol: Some("TCP".into()),
                    target_port: Some(target),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn pod(name: &str, ip: &str, ready: bool, port: i32) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.labels = [("app".to_string(), "web".to_string())].into();
        p.spec.node_name = Some("n1".into());
        p.spec.containers = vec![Container {
            name: "c".into(),
            ports: vec![ContainerPort {
                name: Some("web".into()),
                container_port: Some(port),
                ..Default::default()
            }],
            ..Default::default()
        }];
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    #[test]
    fn ready_pods_are_addresses_and_the_others_not_ready() {
        let s = svc(IntOrString::Int(8080));
        let (a, b, c) = (
            pod("a", "10.42.0.3", true, 1),
            pod("b", "10.42.1.2", false, 1),
            pod("c", "", true, 1),
        );
        let mut other = pod("d", "10.42.0.9", true, 1);
        other.metadata.labels.clear();
        let subs = subsets(&s, &[&b, &a, &c, &other]);
        assert_eq!(subs.len(), 1);
        let ips = |l: &[EndpointAddress]| l.iter().map(|x| x.ip.clone()).collect::<Vec<_>>();
        assert_eq!(ips(&subs[0].addresses), ["10.42.0.3"]);
        assert_eq!(ips(&subs[0].not_ready_addresses), ["10.42.1.2"]);
        assert_eq!(subs[0].ports[0].port, Some(8080));
        assert_eq!(subs[0].ports[0].name.as_deref(), Some("http"));
        // A deleted pod leaves at once.
        let mut gone = a.clone();
        gone.metadata.deletion_timestamp = Some("2026-01-01T00:00:00Z".into());
        assert!(subsets(&s, &[&gone])[0..].is_empty());
    }

    #[test]
    fn named_target_ports_split_subsets() {
        let s = svc(IntOrString::String("web".into()));
        let (a, b) = (
            pod("a", "10.42.0.3", true, 8080),
            pod("b", "10.42.0.4", true, 9090),
        );
        let subs = subsets(&s, &[&a, &b]);
        let ports: Vec<i32> = subs.iter().map(|x| x.ports[0].port.unwrap()).collect();
        assert_eq!(ports, [8080, 9090]);
    }

    #[test]
    fn endpoints_are_created_owned_then_updated_only_on_change() {
        let s = svc(IntOrString::Int(80));
        let a = pod("a", "10.42.0.3", true, 80);
        let acts = reconcile(&s, None, &[&a]);
        let [Action::Create(Object::Endpoints(ep))] = acts.as_slice() else {
            panic!("{acts:?}")
        };
        assert_eq!(ep.metadata.owner_references[0].uid, "svc-uid");
        assert!(reconcile(&s, Some(ep), &[&a]).is_empty());
        let b = pod("b", "10.42.0.4", true, 80);
        assert!(matches!(
            reconcile(&s, Some(ep), &[&a, &b]).as_slice(),
            [Action::Update(_)]
        ));
        // Selector-less Services are left to their hand-written Endpoints.
        let mut manual = s.clone();
        manual.spec.selector.clear();
        assert!(reconcile(&manual, None, &[&a]).is_empty());
    }
}
