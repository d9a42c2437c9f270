//! The Ingress status: every agent serves the Ingresses of the class it names in its
//! Node's `skiff.dev/ingress-class` annotation (and those without a class) on its own
//! ports, so an Ingress's addresses are the InternalIPs of the Ready nodes serving it,
//! as k3s lists its nodes for its bundled controller.

use super::Action;
use skiff_api::core::Node;
use skiff_api::networking::{
    Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus,
    NODE_INGRESS_CLASS,
};
use skiff_api::Object;

/// A Ready node serving Ingresses: its class and InternalIP.
pub fn server(n: &Node) -> Option<(&str, &str)> {
    let class = n.metadata.annotations.get(NODE_INGRESS_CLASS)?;
    if skiff_api::conditions::node_ready_status(n) != Some("True") {
        return None;
    }
    let ip = n
        .status
        .as_ref()?
        .addresses
        .iter()
        .find(|a| a.type_ == "InternalIP")?;
    Some((class.as_str(), ip.address.as_str()))
}

/// The status update an Ingress needs, given the serving nodes (class, address).
pub fn reconcile(ing: &Ingress, servers: &[(&str, &str)]) -> Option<Action> {
    if ing.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let mut ips: Vec<&str> = servers
        .iter()
        .filter(|(class, _)| ing.class().is_none_or(|c| c == *class))
        .map(|(_, ip)| *ip)
        .collect();
    ips.sort();
    ips.dedup();
    let want = IngressLoadBalancerStatus {
        ingress: ips
            .into_iter()
            .map(|ip| IngressLoadBalancerIngress {
                ip: Some(ip.to_string()),
                hostname: None,
            })
            .collect(),
    };
    let current = ing
        .status
        .as_ref()
        .map(|s| &s.load_balancer)
        .cloned()
        .unwrap_or_default();
    if current == want {
        return None;
    }
    let mut next = ing.clone();
    next.status = Some(IngressStatus {
        load_balancer: want,
    });
    Some(Action::Status(Object::Ingress(next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::core::{NodeAddress, NodeStatus};
    use skiff_api::meta::Condition;

    fn node(class: Option<&str>, ready: bool, ip: &str) -> Node {
        let mut n = Node::default();
        if let Some(c) = class {
            n.metadata
                .annotations
                .insert(NODE_INGRESS_CLASS.into(), c.into());
        }
        n.status = Some(NodeStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }],
            addresses: vec![NodeAddress {
                type_: "InternalIP".into(),
                address: ip.into(),
            }],
            ..Default::default()
        });
        n
    }

    fn ips(a: Option<Action>) -> Option<Vec<String>> {
        a.map(|a| match a {
            Action::Status(Object::Ingress(i)) => i
                .status
                .unwrap()
                .load_balancer
                .ingress
                .into_iter()
                .map(|x| x.ip.unwrap())
                .collect(),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn ready_serving_nodes_of_the_class_are_the_address() {
        let nodes = [
            node(Some("skiff"), true, "10.0.0.2"),
            node(Some("skiff"), true, "10.0.0.1"),
            node(Some("skiff"), false, "10.0.0.3"),
            node(None, true, "10.0.0.4"),
            node(Some("edge"), true, "10.0.0.5"),
        ];
        let servers: Vec<_> = nodes.iter().filter_map(server).collect();
        let mut ing = Ingress::default();
        assert_eq!(
            ips(reconcile(&ing, &servers)),
            Some(vec![
                "10.0.0.1".into(),
                "10.0.0.2".into(),
                "10.0.0.5".into()
            ]),
            "an Ingress without a class is served by every serving node"
        );
        ing.spec.ingress_class_name = Some("edge".into());
        let Some(Action::Status(Object::Ingress(done))) = reconcile(&ing, &servers) else {
            panic!("no status")
        };
        assert_eq!(done.status.as_ref().unwrap().load_balancer.ingress.len(), 1);
        assert_eq!(reconcile(&done, &servers), None, "nothing to do once set");
        ing.spec.ingress_class_name = Some("nginx".into());
        assert_eq!(ips(reconcile(&ing, &servers)), None, "no node serves nginx");
    }
}
