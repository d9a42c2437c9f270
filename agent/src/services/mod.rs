//! What makes Services work on the node: the agent's view of the cluster's Services,
//! Endpoints, Ingresses and Nodes ([`cluster`]), the Service proxy ([`proxy`]), cluster DNS
//! ([`dns`]), the Ingress server ([`ingress`]) and pods' host ports ([`hostports`]).

pub mod cluster;
pub mod dns;
pub mod hostports;
pub mod ingress;
pub mod proxy;
