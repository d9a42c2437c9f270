//! Helper for the crash test: opens the store in `DIR` and writes with many concurrent
//! clients until killed, printing each write once it is acknowledged (durable):
//! `c NAME` for a create, `u NAME GEN` for an update that set data.gen to GEN.
//! `WAL_LIMIT` (bytes) sets how full the write-ahead log gets before a checkpoint.

use serde_json::json;
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use skiff_coordinator::store::{Store, WriteOp};
use std::io::Write;
use std::sync::Arc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: skiff-store-crasher DIR RUN CLIENTS [WAL_LIMIT]");
    let run = args.next().expect("RUN");
    let clients: usize = args.next().and_then(|c| c.parse().ok()).unwrap_or(64);
    let defaults = RedbOptions::default();
    let wal_limit = args
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(defaults.wal_limit);
    let store = Arc::new(
        RedbStore::open(
            std::path::Path::new(&dir),
            RedbOptions {
                history: 1000,
                wal_limit,
                ..defaults
            },
        )
        .expect("open store"),
    );
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let store = store.clone();
        let out = out.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let name = format!("r{run}-c{c}-{i}");
                let obj = |gen: u64| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"gen": gen.to_string(), "pad": "x".repeat(200)}});
                store.write(WriteOp::create(obj(0)).expect("create op")).await.expect("create");
                writeln!(out.lock().unwrap(), "c {name}").unwrap();
                for gen in 1..=2 {
                    store.write(WriteOp::update(obj(gen), None).expect("update op")).await.expect("update");
                    writeln!(out.lock().unwrap(), "u {name} {gen}").unwrap();
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
