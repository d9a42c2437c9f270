//! What the agent knows of the whole cluster, for the network: every Node (its address and
//! pod CIDR, for routes), every Service and every Endpoints object (for the Service proxy
//! and DNS), every Ingress and the certificates of the TLS Secrets they name (for the
//! ingress server). Listed and then watched over the agent's connection; each change publishes a
//! new [`ClusterView`] that the network parts read. Cut off from the coordinator, the last
//! view stays: Services keep working on what was known. It is also kept on disk
//! (`<data-dir>/state/cluster.json`, [`keep`]), so that an agent started while cut off (after
//! a power cut) routes to other nodes and serves Services and DNS as before; the TLS
//! Secrets' keys are not written there (an HTTPS Ingress waits for the coordinator).

use crate::network::overlay::Peer;
use base64::Engine;
use skiff_api::core::{Endpoints, Node, Secret, Service};
use skiff_api::networking::Ingress;
use skiff_api::storage::PersistentVolume;
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
    /// Provisioned volumes being deleted, waiting for their node's cleanup (by name).
    pub volumes: BTreeMap<String, PersistentVolume>,
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

/// What `cluster.json` holds: the view without the TLS keys.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    nodes: Vec<Peer>,
    services: Vec<Service>,
    endpoints: Vec<Endpoints>,
    ingresses: Vec<Ingress>,
}

fn stored_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("state/cluster.json")
}

/// The view last kept on disk (empty if none; an unreadable file is set aside).
pub fn load(data_dir: &std::path::Path) -> ClusterView {
    let path = stored_path(data_dir);
    let Some(s) = crate::local::read_or_set_aside::<Stored>(&path) else {
        return ClusterView::default();
    };
    let key = |m: &skiff_api::meta::ObjectMeta| name_of(m);
    ClusterView {
        nodes: s.nodes.into_iter().map(|p| (p.name.clone(), p)).collect(),
        services: s
            .services
            .into_iter()
            .map(|x| (key(&x.metadata), x))
            .collect(),
        endpoints: s
            .endpoints
            .into_iter()
            .map(|x| (key(&x.metadata), x))
            .collect(),
        ingresses: s
            .ingresses
            .into_iter()
            .map(|x| (key(&x.metadata), x))
            .collect(),
        tls: BTreeMap::new(),
        volumes: BTreeMap::new(),
    }
}

/// Keeps the view on disk as it changes: a change is written at once, but at most one
/// write every 2 s (a burst of Endpoints changes makes one or two writes). A failed write (a
/// full disk) is logged and tried again with the next change.
pub async fn keep(
    mut rx: tokio::sync::watch::Receiver<std::sync::Arc<ClusterView>>,
    data_dir: std::path::PathBuf,
) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
    let path = stored_path(&data_dir);
    let mut last: Vec<u8> = std::fs::read(&path).unwrap_or_default();
    let mut written: Option<tokio::time::Instant> = None;
    while rx.changed().await.is_ok() {
        if let Some(t) = written {
            tokio::time::sleep_until(t + EVERY).await;
        }
        let bytes = {
            let v = rx.borrow_and_update();
            let s = Stored {
                nodes: v.nodes.values().cloned().collect(),
                services: v.services.values().cloned().collect(),
                endpoints: v.endpoints.values().cloned().collect(),
                ingresses: v.ingresses.values().cloned().collect(),
            };
            serde_json::to_vec(&s).unwrap_or_default()
        };
        if bytes == last {
            continue;
        }
        let (p, b) = (path.clone(), bytes.clone());
        let write =
            move || skiff_transport::files::write_private(&p, &b).map_err(|e| e.to_string());
        match crate::util::blocking(write).await {
            Ok(()) => last = bytes,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot keep the cluster view on disk")
            }
        }
        written = Some(tokio::time::Instant::now());
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
        Kind::PersistentVolume => serde_json::from_str::<PersistentVolume>(json).is_ok_and(|pv| {
            let keep = !deleted && skiff_api::storage::awaits_cleanup(&pv);
            set(
                &mut view.volumes,
                pv.metadata.name().to_string(),
                keep.then_some(pv),
            )
        }),
        _ => false,
    }
}
