//! Crash safety: a process writing with many concurrent clients is SIGKILLed at random
//! moments; after each kill the store opens and holds every write it acknowledged.

use skiff_api::{Kind, ObjectKey};
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use skiff_coordinator::store::{Store, WatchFilter};
use skiff_tests::{binary, TempDir};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KILLS: usize = 25;

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let dir = TempDir::new("crash");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut total_acks = 0;
    for run in 0..KILLS {
        let mut child = Command::new(binary("skiff-store-crasher"))
            .arg(dir.path())
            .arg(run.to_string())
            .arg("64")
            // Odd runs checkpoint every few batches, so kills land before, during and
            // after checkpoints; even runs keep everything in the write-ahead log.
            .arg(if run % 2 == 1 { "65536" } else { "33554432" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start crasher");
        let stdout = child.stdout.take().unwrap();
        let acks: Arc<Mutex<Vec<String>>> = Arc::default();
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(l) => acks.lock().unwrap().push(l),
                        Err(_) => break,
                    }
                }
            })
        };
        // Let it get going (open, first commits), then kill it at a random moment.
        let start = std::time::Instant::now();
        while acks.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(next() % 300));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acks = acks.lock().unwrap().clone();
        assert!(
            !acks.is_empty(),
            "run {run}: the crasher acknowledged nothing"
        );
        total_acks += acks.len();

        // The highest acknowledged generation of each object.
        let mut want: HashMap<String, u64> = HashMap::new();
        for a in &acks {
            let parts: Vec<&str> = a.split(' ').collect();
            let (name, gen) = match parts.as_slice() {
                ["c", n] => (n.to_string(), 0),
                ["u", n, g] => (n.to_string(), g.parse().unwrap()),
                _ => panic!("bad ack line {a:?}"),
            };
            let e = want.entry(name).or_insert(0);
            *e = (*e).max(gen);
        }
        let store = RedbStore::open(
            dir.path(),
            RedbOptions {
                history: 1000,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("run {run}: the store does not open after SIGKILL: {e}"));
        for (name, gen) in &want {
            let key = ObjectKey {
                kind: Kind::ConfigMap,
                namespace: "default".into(),
                name: name.clone(),
            };
            let got = store
                .get(&key)
                .unwrap()
                .unwrap_or_else(|| panic!("run {run}: acknowledged {name} is missing"));
            let stored_gen: u64 = got.value()["data"]["gen"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                stored_gen >= *gen,
                "run {run}: {name} has gen {stored_gen}, acknowledged {gen}"
            );
        }
        // Revisions stay consistent: the log's latest revision matches the objects, and
        // the retained history has every revision up to it, once, in order.
        let (rev, items) = store.list(Kind::ConfigMap, None).unwrap();
        assert!(items.iter().all(|s| s.revision <= rev));
        assert_eq!(rev, store.revision());
        let all = WatchFilter {
            kind: Kind::ConfigMap,
            namespace: None,
            selector: Default::default(),
        };
        let history = store.history(&all, store.compacted(), rev).unwrap();
        let revisions: Vec<u64> = history.iter().map(|e| e.revision).collect();
        let expected: Vec<u64> = (store.compacted() + 1..=rev).collect();
        assert_eq!(revisions, expected, "run {run}: the history has gaps");
    }
    println!("{KILLS} kills, {total_acks} acknowledged writes, all present");
}
