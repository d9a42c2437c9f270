//! What the agent knows of the whole cluster, for the network: every Node (its address and
//! pod CIDR, for routes), every Service and every Endpoints object (for the Service proxy
//! and DNS), every Ingress and the certificates of the TLS Secrets they name (for the
//! ingress server). Listed and then watched over the agent's connection; each change publishes a
//! new [`ClusterView`] that the network parts read. Cut off from the coordinator, the last
//! view stays: Services keep working on what was known.

use crate::network::overlay::Peer;
use base64::Engine;
use skiff_api::core::{Endpoints, Node, Secret, Service};
use skiff_api::networking::Ingress;
use skiff_api::Kind;
use std::collections::{BTreeMap, BTreeSet};

/// (namespace, name).
pub type Name = (String, String);

/// The cluster as the network sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    /// Nodes that have a pod CIDR and an InternalIP, by name: all routing needs of a Node.
    pub nodes: BTreeMap<String, Peer>,
    pub services: BTreeMap<Name, Service>,
    pub endpoints: BTreeMap<Name, Endpoints>,
    pub ingresses: BTreeMap<Name, Ingress>,
    /// The TLS Secrets Ingresses name, that exist: their PEM certificate chain and key.
    pub tls: BTreeMap<Name, TlsPair>,
}

/// A `kubernetes.io/tls` Secret's `tls.crt` and `tls.key`, decoded from base64 (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPair {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl TlsPair {
    fn of(s: &Secret) -> Option<TlsPair> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let field = |k: &str| b64.decode(s.data.get(k)?).ok();
        Some(TlsPair {
            cert: field("tls.crt")?,
            key: field("tls.key")?,
        })
    }
}

impl ClusterView {
    /// The nodes other than `me` that have a pod CIDR and an InternalIP.
    pub fn peers(&self, me: &str) -> Vec<Peer> {
        self.nodes
            .values()
            .filter(|p| p.name != me)
            .cloned()
            .collect()
    }

    /// The Secrets the Ingresses name for TLS.
    pub fn tls_wanted(&self) -> BTreeSet<Name> {
        self.ingresses
            .iter()
            .flat_map(|((ns, _), i)| {
                i.tls_secret_names()
                    .into_iter()
                    .map(move |n| (ns.clone(), n))
            })
            .collect()
    }
}

fn name_of(m: &skiff_api::meta::ObjectMeta) -> Name {
    (m.namespace().to_string(), m.name().to_string())
}

/// Puts `v` under `k`, or removes `k` when the object was deleted (or, for a Node, has
/// nothing routing needs yet). Whether the map changed.
fn set<K: Ord, V: PartialEq>(map: &mut BTreeMap<K, V>, k: K, v: Option<V>) -> bool {
    match v {
        Some(v) if map.get(&k) == Some(&v) => false,
        Some(v) => {
            map.insert(k, v);
            true
        }
        None => map.remove(&k).is_some(),
    }
}

/// Applies one listed or watched object to the view; whether the view changed.
pub fn put(view: &mut ClusterView, kind: Kind, json: &str, deleted: bool) -> bool {
    match kind {
        Kind::Node => serde_json::from_str::<Node>(json).is_ok_and(|n| {
            let peer = if deleted { None } else { Peer::of(&n) };
            set(&mut view.nodes, n.metadata.name().to_string(), peer)
        }),
        Kind::Service => serde_json::from_str::<Service>(json).is_ok_and(|s| {
            let k = name_of(&s.metadata);
            set(&mut view.services, k, (!deleted).then_some(s))
        }),
        Kind::Endpoints => serde_json::from_str::<Endpoints>(json).is_ok_and(|e| {
            let k = name_of(&e.metadata);
            set(&mut view.endpoints, k, (!deleted).then_some(e))
        }),
        Kind::Ingress => serde_json::from_str::<Ingress>(json).is_ok_and(|i| {
            let k = name_of(&i.metadata);
            let mut changed = set(&mut view.ingresses, k, (!deleted).then_some(i));
            // Certificates no Ingress names any more are dropped.
            let wanted = view.tls_wanted();
            let before = view.tls.len();
            view.tls.retain(|k, _| wanted.contains(k));
            changed |= view.tls.len() != before;
            changed
        }),
        // Only the Secrets Ingresses name (the agent also sees its pods' Secrets).
        Kind::Secret => serde_json::from_str::<Secret>(json).is_ok_and(|s| {
            let k = name_of(&s.metadata);
            if !view.tls_wanted().contains(&k) {
                return false;
            }
            let pair = if deleted { None } else { TlsPair::of(&s) };
            set(&mut view.tls, k, pair)
        }),
        _ => false,
    }
}
