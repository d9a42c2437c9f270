//! The redb store against a model: random interleavings of create/update/delete and
//! watches from any revision. Each watcher must see exactly the model's events.

use proptest::prelude::*;
use serde_json::json;
use skiff_api::selector::Selector;
use skiff_api::{Kind, ObjectKey};
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use skiff_coordinator::store::{EventType, Store, StoreError, WatchFilter, WatchStream, WriteOp};
use std::collections::BTreeMap;
use std::time::Duration;

const HISTORY: u64 = 20;

#[derive(Debug, Clone)]
enum Op {
    Create {
        name: u8,
        kind: u8,
        label: bool,
    },
    Update {
        name: u8,
        kind: u8,
        stale: bool,
        label: bool,
    },
    Delete {
        name: u8,
        kind: u8,
    },
    Watch {
        back: u64,
        kind: u8,
        selector: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4, 0u8..2, any::<bool>()).prop_map(|(name, kind, label)| Op::Create { name, kind, label }),
        3 => (0u8..4, 0u8..2, any::<bool>(), any::<bool>()).prop_map(|(name, kind, stale, label)| Op::Update { name, kind, stale, label }),
        2 => (0u8..4, 0u8..2).prop_map(|(name, kind)| Op::Delete { name, kind }),
        1 => (0u64..30, 0u8..2, any::<bool>()).prop_map(|(back, kind, selector)| Op::Watch { back, kind, selector }),
    ]
}

fn kind(k: u8) -> Kind {
    if k == 0 {
        Kind::ConfigMap
    } else {
        Kind::Secret
    }
}

fn object(name: u8, k: u8, label: bool, gen: u64) -> serde_json::Value {
    let labels = if label {
        json!({"tier": "web"})
    } else {
        json!({})
    };
    json!({"apiVersion": "v1", "kind": kind(k).name(),
           "metadata": {"name": format!("o{name}"), "namespace": "default", "labels": labels},
           "data": {"gen": gen.to_string()}})
}

type Seen = (u64, EventType, Kind, String);

struct ModelWatch {
    since: u64,
    kind: Kind,
    selector: bool,
    store: skiff_coordinator::store::redb_store::RedbWatch,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempdir();
    let rt = runtime();
    rt.block_on(async {
        let store = RedbStore::open(
            &dir,
            RedbOptions {
                history: HISTORY,
                // Checkpoints every few batches: the log is emptied between writes.
                wal_limit: 512,
                ..Default::default()
            },
        )
        .unwrap();
        // Model: key -> (revision, labelled); events in order.
        let mut objects: BTreeMap<(Kind, String), (u64, bool)> = BTreeMap::new();
        let mut events: Vec<(Seen, bool)> = Vec::new();
        let mut rev = 0u64;
        let mut compacted = 0u64;
        let mut watches: Vec<ModelWatch> = Vec::new();
        let mut counter = 0u64;
        for op in ops {
            counter += 1;
            match op {
                Op::Create {
                    name,
                    kind: k,
                    label,
                } => {
                    let key = (kind(k), format!("o{name}"));
                    let r = store
                        .write(WriteOp::create(object(name, k, label, counter)).unwrap())
                        .await;
                    if objects.contains_key(&key) {
                        prop_assert!(matches!(r, Err(StoreError::AlreadyExists(_))), "{r:?}");
                    } else {
                        let s = r.unwrap();
                        rev += 1;
                        prop_assert_eq!(s[0].revision, rev);
                        objects.insert(key.clone(), (rev, label));
                        events.push(((rev, EventType::Added, key.0, key.1), label));
                    }
                }
                Op::Update {
                    name,
                    kind: k,
                    stale,
                    label,
                } => {
                    let key = (kind(k), format!("o{name}"));
                    let cur = objects.get(&key).map(|x| x.0);
                    let expected = cur.map(|c| if stale { c.saturating_sub(1) } else { c });
                    let r = store
                        .write(WriteOp::update(object(name, k, label, counter), expected).unwrap())
                        .await;
                    match cur {
                        None => prop_assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}"),
                        Some(_) if stale => {
                            prop_assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}")
                        }
                        Some(_) => {
                            r.unwrap();
                            rev += 1;
                            objects.insert(key.clone(), (rev, label));
                            events.push(((rev, EventType::Modified, key.0, key.1), label));
                        }
                    }
                }
                Op::Delete { name, kind: k } => {
                    let key = (kind(k), format!("o{name}"));
                    let okey = ObjectKey {
                        kind: key.0,
                        namespace: "default".into(),
                        name: key.1.clone(),
                    };
                    let r = store
                        .write(WriteOp::Delete {
                            key: okey,
                            expected: None,
                        })
                        .await;
                    match objects.remove(&key) {
                        None => prop_assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}"),
                        Some((_, label)) => {
                            r.unwrap();
                            rev += 1;
                            events.push(((rev, EventType::Deleted, key.0, key.1), label));
                        }
                    }
                }
                Op::Watch {
                    back,
                    kind: k,
                    selector,
                } => {
                    let since = rev.saturating_sub(back);
                    let filter = WatchFilter {
                        kind: kind(k),
                        namespace: Some("default".into()),
                        selector: if selector {
                            Selector::parse("tier=web").unwrap()
                        } else {
                            Selector::default()
                        },
                    };
                    match store.watch(filter, since) {
                        Ok(w) => {
                            prop_assert!(
                                since >= compacted,
                                "watch from {since} should have expired (compacted {compacted})"
                            );
                            watches.push(ModelWatch {
                                since,
                                kind: kind(k),
                                selector,
                                store: w,
                            });
                        }
                        Err(StoreError::Expired { oldest, .. }) => {
                            prop_assert!(
                                since < compacted,
                                "unexpected Expired at {since} (compacted {compacted})"
                            );
                            prop_assert_eq!(oldest, compacted);
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                    }
                }
            }
            // The store compacts by the same rule after each commit.
            if rev > compacted + HISTORY + HISTORY / 10 {
                compacted = rev - HISTORY;
            }
        }
        prop_assert_eq!(store.revision(), rev);
        for w in &mut watches {
            let want: Vec<Seen> = events
                .iter()
                .filter(|((r, _, k, _), label)| {
                    *r > w.since && *k == w.kind && (!w.selector || *label)
                })
                .map(|(e, _)| e.clone())
                .collect();
            let mut got = Vec::new();
            while got.len() < want.len() {
                let e = tokio::time::timeout(Duration::from_secs(5), w.store.next())
                    .await
                    .map_err(|_| {
                        TestCaseError::fail(format!(
                            "watch from {} stalled after {got:?}; want {want:?}",
                            w.since
                        ))
                    })?
                    .unwrap();
                got.push((
                    e.revision,
                    e.kind,
                    e.object.key.kind,
                    e.object.key.name.clone(),
                ));
            }
            prop_assert_eq!(&got, &want);
            // And nothing more.
            prop_assert!(
                tokio::time::timeout(Duration::from_millis(5), w.store.next())
                    .await
                    .is_err()
            );
        }
        // Reopening keeps every object at its revision.
        drop(watches);
        drop(store);
        Ok(())
    })?;
    let reopened = RedbStore::open(
        &dir,
        RedbOptions {
            history: HISTORY,
            ..Default::default()
        },
    )
    .unwrap();
    prop_assert!(
        reopened.revision() > 0 || reopened.list(Kind::ConfigMap, None).unwrap().1.is_empty()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm".into()
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!(
        "skiff-model-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}

#[test]
fn secrets_are_not_plaintext_on_disk() {
    let dir = tempdir();
    let rt = runtime();
    rt.block_on(async {
        let store = RedbStore::open(&dir, RedbOptions::default()).unwrap();
        let v = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                       "data": {"password": "c3VwZXJzZWNyZXRwYXNzd29yZA=="}, "stringData": {"x": "plainsecretvalue"}});
        store.write(WriteOp::create(v).unwrap()).await.unwrap();
        let got = store.get(&ObjectKey { kind: Kind::Secret, namespace: "default".into(), name: "s".into() }).unwrap().unwrap();
        assert!(got.json.contains("c3VwZXJzZWNyZXRwYXNzd29yZA=="));
        // While the store is open the write is in its write-ahead log...
        assert!(std::fs::metadata(dir.join("store.wal")).unwrap().len() > 0);
        assert_no_plaintext(&dir);
    });
    // ...and after closing, in the checkpointed file.
    assert_eq!(std::fs::metadata(dir.join("store.wal")).unwrap().len(), 0);
    assert_no_plaintext(&dir);
    std::fs::remove_dir_all(&dir).ok();
}

/// No file of the store holds the test secret's value in plain text.
fn assert_no_plaintext(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for needle in [&b"c3VwZXJzZWNyZXRwYXNzd29yZA=="[..], b"plainsecretvalue"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "secret value found in plain text in {}",
                path.display()
            );
        }
    }
}

#[test]
fn namespace_deletion_removes_its_objects() {
    let dir = tempdir();
    let rt = runtime();
    rt.block_on(async {
        let store = RedbStore::open(&dir, RedbOptions::default()).unwrap();
        store.write(WriteOp::create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})).unwrap()).await.unwrap();
        for (ns, n) in [("team", "a"), ("team", "b"), ("default", "c")] {
            store.write(WriteOp::create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": ns}})).unwrap()).await.unwrap();
        }
        let deleted = store.write(WriteOp::DeleteNamespace("team".into())).await.unwrap();
        assert_eq!(deleted.len(), 3);
        let (_, left) = store.list(Kind::ConfigMap, None).unwrap();
        assert_eq!(left.iter().map(|s| s.key.name.as_str()).collect::<Vec<_>>(), vec!["c"]);
        assert!(store.list(Kind::Namespace, None).unwrap().1.is_empty());
    });
    std::fs::remove_dir_all(&dir).ok();
}
