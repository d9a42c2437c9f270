//! What the coordinator knows of its nodes only in memory: their leases (renewed by
//! heartbeats, never written to disk), their usage reports (for `top`), and the QUIC
//! connection each one keeps open, through which logs and exec reach the node.

use skiff_api::wire::{NodeUsageReport, PodUsage, Usage};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Live state of connected nodes.
#[derive(Default)]
pub struct Nodes {
    links: Mutex<HashMap<String, quinn::Connection>>,
    leases: Mutex<HashMap<String, Instant>>,
    usage: Mutex<HashMap<String, NodeUsageReport>>,
}

impl Nodes {
    /// A node connected: its newest connection is the one requests go through.
    /// An older connection of the same node is closed: the node restarted or moved, and
    /// requests must not wait on a peer that is gone.
    pub fn link_up(&self, node: &str, conn: quinn::Connection) {
        let old = self
            .links
            .lock()
            .unwrap()
            .insert(node.to_string(), conn.clone());
        if let Some(old) = old.filter(|o| o.stable_id() != conn.stable_id()) {
            old.close(0u32.into(), b"replaced by a newer connection of the node");
        }
        self.renew(node);
    }

    /// A node's connection closed (unless a newer one replaced it already).
    pub fn link_down(&self, node: &str, conn: &quinn::Connection) {
        let mut links = self.links.lock().unwrap();
        if links
            .get(node)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            links.remove(node);
        }
    }

    /// The connection to a node, if it is connected.
    pub fn link(&self, node: &str) -> Option<quinn::Connection> {
        self.links.lock().unwrap().get(node).cloned()
    }

    /// Renews a node's lease.
    pub fn renew(&self, node: &str) {
        self.leases
            .lock()
            .unwrap()
            .insert(node.to_string(), Instant::now());
    }

    /// When the node last renewed its lease.
    pub fn last_renewal(&self, node: &str) -> Option<Instant> {
        self.leases.lock().unwrap().get(node).copied()
    }

    /// Keeps a node's usage report.
    pub fn report(&self, node: &str, usage: Usage, pods: Vec<PodUsage>) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.usage.lock().unwrap().insert(
            node.to_string(),
            NodeUsageReport {
                node: node.to_string(),
                usage,
                pods,
                at,
            },
        );
    }

    /// Every node's last report, by node name.
    pub fn reports(&self) -> Vec<NodeUsageReport> {
        let mut v: Vec<_> = self.usage.lock().unwrap().values().cloned().collect();
        v.sort_by(|a, b| a.node.cmp(&b.node));
        v
    }
}
