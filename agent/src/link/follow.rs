//! Follows the cluster over the agent's connection: lists and watches the Nodes, Services,
//! Endpoints, Ingresses and TLS Secrets the node's network needs (and the volumes waiting
//! for its cleanup, [`crate::volumes`]), and publishes each change
//! as a new [`ClusterView`].

use crate::services::cluster::{put, ClusterView, Name};
use crate::state::Agent;
use skiff_api::wire::{Request, Response, WatchEvent};
use skiff_api::Kind;
use skiff_transport::{Client, ClientError};
use std::sync::Arc;

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
const KINDS: [Kind; 6] = [
    Kind::Node,
    Kind::Service,
    Kind::Endpoints,
    Kind::Ingress,
    Kind::Secret,
    Kind::PersistentVolume,
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
