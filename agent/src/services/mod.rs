//! What makes Services work on the node: the agent's view of the cluster's Services,
//! Endpoints, Ingresses and Nodes ([`cluster`]), the Service proxy ([`proxy`]), cluster DNS
//! ([`dns`]) and the Ingress server ([`ingress`]).

pub mod cluster;
pub mod dns;
pub mod ingress;
pub mod proxy;
