//! What the agent knows of the whole cluster, for the network: every Node (its address and
//! pod CIDR, for routes), every Service and every Endpoints object (for the Service proxy
//! and DNS), every Ingress and the certificates of the TLS Secrets they name (for the
//! ingress server). Listed and then watched over the agent's connection; each change publishes a
//! new [`ClusterView`] that the network parts read. Cut off from the coordinator, the last
//! view stays: Services keep working on what was known.

use crate::state::Agent;
use base64::Engine;
use skiff_api::core::{Endpoints, Node, Secret, Service};
use skiff_api::networking::Ingress;
use skiff_api::wire::{Request, Response, WatchEvent};
use skiff_api::Kind;
use skiff_client::{Client, ClientError};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

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

/// A peer node for routing: its pod CIDR and its address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub name: String,
    pub cidr: (Ipv4Addr, u8),
    pub ip: Ipv4Addr,
    /// The pod network backend its agent runs (see `overlay.rs`).
    pub backend: crate::overlay::Backend,
}

impl Peer {
    /// What routing needs of a Node, if it has it yet.
    fn of(n: &Node) -> Option<Peer> {
        let cidr = crate::net::parse_cidr(n.spec.pod_cidr.as_deref()?).ok()?;
        let ip = n
            .status
            .as_ref()?
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")?
            .address
            .parse()
            .ok()?;
        Some(Peer {
            name: n.metadata.name().to_string(),
            cidr,
            ip,
            backend: crate::overlay::Backend::of_annotation(
                n.metadata
                    .annotations
                    .get(crate::overlay::ANNOTATION)
                    .map(String::as_str),
            ),
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
fn put(view: &mut ClusterView, kind: Kind, json: &str, deleted: bool) -> bool {
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

/// Gets the named TLS Secrets the view lacks: one named by an Ingress after the Secret
/// was written never comes through the Secret watch (the node could not see it then).
async fn fetch_tls(agent: &Arc<Agent>, client: &Client) -> Result<(), ClientError> {
    let missing: Vec<Name> = {
        let v = agent.cluster.borrow();
        v.tls_wanted()
            .into_iter()
            .filter(|k| !v.tls.contains_key(k))
            .collect()
    };
    for (ns, name) in missing {
        let key = skiff_api::ObjectKey {
            kind: Kind::Secret,
            namespace: ns,
            name,
        };
        let json = match client.call(&Request::Get { key }).await {
            Ok(Response::Object { object }) => object,
            Ok(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            Err(ClientError::Api(e)) => {
                // Not there (yet): the Secret watch brings it when it is written.
                tracing::debug!("ingress certificate: {}", e.message);
                continue;
            }
            Err(e) => return Err(e),
        };
        agent
            .cluster
            .send_if_modified(|v| put(Arc::make_mut(v), Kind::Secret, &json, false));
    }
    Ok(())
}

type Change = (Kind, String, bool);

/// Follows one kind's watch from `rev`, sending its changes; ends (Ok) when the history
/// is gone or the watch ended, so the kinds are listed again.
async fn watch_kind(
    client: Client,
    kind: Kind,
    rev: u64,
    tx: tokio::sync::mpsc::Sender<Change>,
) -> Result<(), ClientError> {
    let mut w = client
        .watch(&Request::Watch {
            kind,
            namespace: None,
            selector: None,
            since: Some(rev),
        })
        .await?;
    loop {
        let change = match w.next().await? {
            Some(WatchEvent::Added { object, .. }) | Some(WatchEvent::Modified { object, .. }) => {
                (kind, object, false)
            }
            Some(WatchEvent::Deleted { object, .. }) => (kind, object, true),
            Some(WatchEvent::Expired { .. }) | None => return Ok(()),
            Some(WatchEvent::Error(e)) => return Err(ClientError::Api(e)),
        };
        let _ = tx.send(change).await;
    }
}

/// The kinds the view follows. Ingresses come before Secrets: a Secret is kept only
/// when an Ingress names it.
const KINDS: [Kind; 5] = [
    Kind::Node,
    Kind::Service,
    Kind::Endpoints,
    Kind::Ingress,
    Kind::Secret,
];

/// Lists Nodes, Services, Endpoints, Ingresses and their Secrets, publishes the view,
/// then follows their watches, changing the published view in place; a watch whose
/// history is gone lists again. Returns only with the connection's error.
pub async fn follow(agent: &Arc<Agent>, client: &Client) -> Result<(), ClientError> {
    loop {
        let mut view = ClusterView::default();
        let mut since = [0u64; KINDS.len()];
        for (i, kind) in KINDS.into_iter().enumerate() {
            let (rev, items) = client.list_all(kind, None, None).await?;
            since[i] = rev;
            for json in items {
                put(&mut view, kind, &json, false);
            }
        }
        agent.cluster.send_if_modified(|v| {
            let changed = **v != view;
            if changed {
                *v = Arc::new(view);
            }
            changed
        });
        fetch_tls(agent, client).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Change>(256);
        // Dropped (listing again or returning), the set stops the watches left.
        let mut watches = tokio::task::JoinSet::new();
        for (kind, rev) in KINDS.into_iter().zip(since) {
            watches.spawn(watch_kind(client.clone(), kind, rev, tx.clone()));
        }
        drop(tx);
        loop {
            tokio::select! {
                // A watch that ends (well or not) ends them all: list again, or return
                // the error.
                r = watches.join_next() => {
                    if let Some(Ok(Err(e))) = r {
                        return Err(e);
                    }
                    break;
                }
                c = rx.recv() => {
                    let Some(c) = c else { break };
                    // Everything already queued goes into one published change, and
                    // readers hear of it only if something they use changed (a Node's
                    // status alone does not). Readers rarely hold the view, so it is
                    // changed in place, not copied.
                    let mut ingress = c.0 == Kind::Ingress;
                    agent.cluster.send_if_modified(|v| {
                        let v = Arc::make_mut(v);
                        let mut changed = put(v, c.0, &c.1, c.2);
                        while let Ok((k, j, d)) = rx.try_recv() {
                            ingress |= k == Kind::Ingress;
                            changed |= put(v, k, &j, d);
                        }
                        changed
                    });
                    if ingress {
                        fetch_tls(agent, client).await?;
                    }
                }
            }
        }
    }
}
