//! What the agent knows of the whole cluster, for the network: every Node (its address and
//! pod CIDR, for routes), every Service and every Endpoints object (for the Service proxy
//! and DNS). Listed and then watched over the agent's connection; each change publishes a
//! new [`ClusterView`] that the network parts read. Cut off from the coordinator, the last
//! view stays: Services keep working on what was known.

use crate::state::Agent;
use skiff_api::core::{Endpoints, Node, Service};
use skiff_api::wire::{Request, WatchEvent};
use skiff_api::Kind;
use skiff_client::{Client, ClientError};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// (namespace, name).
pub type Name = (String, String);

/// The cluster as the network sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    pub nodes: BTreeMap<String, Node>,
    pub services: BTreeMap<Name, Service>,
    pub endpoints: BTreeMap<Name, Endpoints>,
}

/// A peer node for routing: its pod CIDR and its address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub name: String,
    pub cidr: (Ipv4Addr, u8),
    pub ip: Ipv4Addr,
}

impl ClusterView {
    /// The nodes other than `me` that have a pod CIDR and an InternalIP.
    pub fn peers(&self, me: &str) -> Vec<Peer> {
        self.nodes
            .values()
            .filter(|n| n.metadata.name() != me)
            .filter_map(|n| {
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
                })
            })
            .collect()
    }
}

fn name_of(m: &skiff_api::meta::ObjectMeta) -> Name {
    (m.namespace().to_string(), m.name().to_string())
}

fn put(view: &mut ClusterView, kind: Kind, json: &str, deleted: bool) {
    match kind {
        Kind::Node => {
            if let Ok(n) = serde_json::from_str::<Node>(json) {
                let k = n.metadata.name().to_string();
                if deleted {
                    view.nodes.remove(&k);
                } else {
                    view.nodes.insert(k, n);
                }
            }
        }
        Kind::Service => {
            if let Ok(s) = serde_json::from_str::<Service>(json) {
                let k = name_of(&s.metadata);
                if deleted {
                    view.services.remove(&k);
                } else {
                    view.services.insert(k, s);
                }
            }
        }
        Kind::Endpoints => {
            if let Ok(e) = serde_json::from_str::<Endpoints>(json) {
                let k = name_of(&e.metadata);
                if deleted {
                    view.endpoints.remove(&k);
                } else {
                    view.endpoints.insert(k, e);
                }
            }
        }
        _ => {}
    }
}

const KINDS: [Kind; 3] = [Kind::Node, Kind::Service, Kind::Endpoints];

/// Lists the three kinds, publishes the view, then follows their watches; a watch whose
/// history is gone lists again. Returns only with the connection's error.
pub async fn follow(agent: &Arc<Agent>, client: &Client) -> Result<(), ClientError> {
    loop {
        let mut view = ClusterView::default();
        let mut since = [0u64; 3];
        for (i, kind) in KINDS.into_iter().enumerate() {
            let (rev, items) = client.list_all(kind, None, None).await?;
            since[i] = rev;
            for json in items {
                put(&mut view, kind, &json, false);
            }
        }
        agent.cluster.send_if_modified(|v| {
            let changed = **v != view;
            *v = Arc::new(view.clone());
            changed
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<(Kind, String, bool)>>(256);
        let watches = KINDS.into_iter().zip(since).map(|(kind, rev)| {
            let tx = tx.clone();
            async move {
                let mut w = client
                    .watch(&Request::Watch {
                        kind,
                        namespace: None,
                        selector: None,
                        since: Some(rev),
                    })
                    .await?;
                loop {
                    match w.next().await? {
                        Some(WatchEvent::Added { object, .. })
                        | Some(WatchEvent::Modified { object, .. }) => {
                            let _ = tx.send(Some((kind, object, false))).await;
                        }
                        Some(WatchEvent::Deleted { object, .. }) => {
                            let _ = tx.send(Some((kind, object, true))).await;
                        }
                        // The history is gone (or the watch ended): list again.
                        Some(WatchEvent::Expired { .. }) | None => {
                            let _ = tx.send(None).await;
                            return Ok::<(), ClientError>(());
                        }
                        Some(WatchEvent::Error(e)) => return Err(ClientError::Api(e)),
                    }
                }
            }
        });
        let all = futures_join(watches.collect());
        tokio::pin!(all);
        loop {
            tokio::select! {
                r = &mut all => { r?; break; }
                ev = rx.recv() => {
                    let Some(Some((kind, json, deleted))) = ev else { break };
                    put(&mut view, kind, &json, deleted);
                    // Apply everything already queued before publishing once.
                    while let Ok(Some((k, j, d))) = rx.try_recv() {
                        put(&mut view, k, &j, d);
                    }
                    agent.cluster.send_replace(Arc::new(view.clone()));
                }
            }
        }
    }
}

/// Runs the futures together; the first error ends them all, the first to finish well
/// ends them too (its kind is listed again).
async fn futures_join<F>(futs: Vec<F>) -> Result<(), ClientError>
where
    F: std::future::Future<Output = Result<(), ClientError>>,
{
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        for f in set.iter_mut() {
            if let std::task::Poll::Ready(r) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(r);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
