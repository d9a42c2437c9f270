//! The pod hub: a node's subscription gets the events of its own pods after the hub's
//! position, and the store's history covers what came before.

use skiff_coordinator::hub::{pods, PodHub};
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use skiff_coordinator::store::{Store, WriteOp};
use std::time::Duration;

fn pod(name: &str, node: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"nodeName": "n1"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}
    });
    if let Some(n) = node {
        v["spec"]["nodeName"] = n.into();
    }
    v
}

#[tokio::test]
async fn routes_each_nodes_pods_and_history_fills_the_gap() {
    let dir = std::env::temp_dir().join(format!("skiff-hub-{}", std::process::id()));
    let store = RedbStore::open(&dir, RedbOptions::default()).unwrap();
    // Before any subscription: one pod on n1, one on n2.
    store
        .write(WriteOp::create(pod("early-1", Some("n1"))).unwrap())
        .await
        .unwrap();
    store
        .write(WriteOp::create(pod("early-2", Some("n2"))).unwrap())
        .await
        .unwrap();
    let hub = PodHub::default();
    let current = store.revision();
    let mut sub = hub
        .subscribe("n1", current, |from| store.watch(pods(), from))
        .unwrap();
    assert_eq!(sub.position, current);
    // History up to the position: only n1's pod matters to n1 (the caller filters by node).
    let before: Vec<_> = store
        .history(&pods(), 0, sub.position)
        .unwrap()
        .into_iter()
        .filter(|e| e.node_name() == Some("n1"))
        .collect();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].object.key.name, "early-1");
    // After it: n1 gets its own pods only, not n2's, not unbound ones (a label named
    // nodeName does not fool it).
    store
        .write(WriteOp::create(pod("late-2", Some("n2"))).unwrap())
        .await
        .unwrap();
    store
        .write(WriteOp::create(pod("pending", None)).unwrap())
        .await
        .unwrap();
    store
        .write(WriteOp::create(pod("late-1", Some("n1"))).unwrap())
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), sub.events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.object.key.name, "late-1");
    assert!(e.revision > sub.position);
    assert!(sub.events.try_recv().is_err(), "nothing else for n1");
    assert_eq!(hub.subscribers(), 1);
    // A second node subscribing later starts from the hub's newer position.
    let sub2 = hub
        .subscribe("n2", store.revision(), |from| store.watch(pods(), from))
        .unwrap();
    assert!(sub2.position >= e.revision);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
