//! What the coordinator knows of its nodes only in memory: their leases (renewed by
//! heartbeats, never written to disk), their usage reports (for `top`), and the QUIC
//! connection each one keeps open, through which logs and exec reach the node.

use crate::HashMap;
use skiff_api::wire::{NodeUsageReport, PodUsage, Usage};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Live state of connected nodes.
pub struct Nodes {
    links: Mutex<HashMap<String, quinn::Connection>>,
    leases: Mutex<HashMap<String, Instant>>,
    usage: Mutex<HashMap<String, (Duration, NodeUsageReport)>>,
    /// The cluster's pod addresses; each node gets a /24 of it.
    pub cluster_cidr: (Ipv4Addr, u8),
    /// Held while a new node's pod CIDR is chosen and stored, so two nodes never get one;
    /// it holds the CIDRs nodes have (read from the store when first needed).
    pub cidr_lock: tokio::sync::Mutex<Option<std::collections::HashSet<String>>>,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes::new((Ipv4Addr::new(10, 42, 0, 0), 16))
    }
}

/// `10.42.0.0/16`.
pub fn parse_cluster_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    // Nodes get a /24 each: the cluster's prefix is at most 23.
    skiff_api::util::parse_ipv4_cidr("cluster CIDR", s, 8..=23)
}

/// The first /24 of the cluster CIDR that no node in `taken` holds.
pub fn free_node_cidr(
    cluster: (Ipv4Addr, u8),
    taken: &std::collections::HashSet<String>,
) -> Option<String> {
    let (base, len) = cluster;
    let count = 1u32 << (24 - len);
    (0..count)
        .map(|i| format!("{}/24", Ipv4Addr::from(u32::from(base) + (i << 8))))
        .find(|c| !taken.contains(c))
}

impl Nodes {
    /// Node state for a cluster whose pods take addresses from `cluster_cidr`.
    pub fn new(cluster_cidr: (Ipv4Addr, u8)) -> Nodes {
        Nodes {
            links: Mutex::default(),
            leases: Mutex::default(),
            usage: Mutex::default(),
            cluster_cidr,
            cidr_lock: tokio::sync::Mutex::new(None),
        }
    }

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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut reports = self.usage.lock().unwrap();
        let window_ms = reports
            .get(node)
            .map_or(0, |(prev, _)| now.saturating_sub(*prev).as_millis() as u64);
        reports.insert(
            node.to_string(),
            (
                now,
                NodeUsageReport {
                    node: node.to_string(),
                    usage,
                    pods,
                    at: now.as_secs(),
                    window_ms,
                },
            ),
        );
    }

    /// Every node's last report, by node name.
    pub fn reports(&self) -> Vec<NodeUsageReport> {
        let mut v: Vec<_> = self
            .usage
            .lock()
            .unwrap()
            .values()
            .map(|(_, r)| r.clone())
            .collect();
        v.sort_by(|a, b| a.node.cmp(&b.node));
        v
    }
}

/// Is a usage report recent enough to use (the metrics API, autoscalers)? Within three of
/// the node's report intervals, at least a minute: a node that stopped reporting has no
/// current figures.
pub fn fresh(r: &NodeUsageReport, now_secs: u64) -> bool {
    let limit = (3 * r.window_ms / 1000).max(60);
    now_secs.saturating_sub(r.at) <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_cidrs_are_handed_out_once() {
        let c = parse_cluster_cidr("10.42.0.0/16").unwrap();
        assert_eq!(
            free_node_cidr(c, &Default::default()).as_deref(),
            Some("10.42.0.0/24")
        );
        let taken = ["10.42.0.0/24".to_string(), "10.42.2.0/24".to_string()].into();
        assert_eq!(free_node_cidr(c, &taken).as_deref(), Some("10.42.1.0/24"));
        let small = parse_cluster_cidr("10.9.8.0/23").unwrap();
        let full = ["10.9.8.0/24".to_string(), "10.9.9.0/24".to_string()].into();
        assert_eq!(free_node_cidr(small, &full), None);
        assert!(parse_cluster_cidr("10.42.0.0/25").is_err());
    }
}
