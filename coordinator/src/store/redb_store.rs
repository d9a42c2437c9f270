//! The embedded default backend: one redb file, written by one thread that commits in
//! groups (every write waiting when a commit starts shares its fsync).
//!
//! Durability comes from a write-ahead log ([`super::wal`]): each group is appended to
//! `store.wal` and synced before redb commits it without a sync of its own; a checkpoint
//! (a durable redb commit) empties the log once it holds
//! [`RedbOptions::wal_limit`] bytes or has held anything for
//! [`RedbOptions::checkpoint_every`], and when the store closes.

use super::backend;
use super::crypt::{CryptError, SecretBox};
use super::wal::{self, Wal};
use super::{
    labels_of, precondition, EventType, Page, Store, StoreError, StoreEvent, Stored, WatchFilter,
    WatchStream, WriteOp,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde::{Deserialize, Serialize};
use skiff_api::{Kind, ObjectKey};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Tuning of the redb backend.
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// How many revisions of history watches may resume from.
    pub history: u64,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
    /// The most writes one commit takes.
    pub max_batch: usize,
    /// A checkpoint is taken once the write-ahead log holds this many bytes...
    pub wal_limit: u64,
    /// ...or has held anything for this long.
    pub checkpoint_every: Duration,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            history: 10_000,
            cache_bytes: 32 << 20,
            max_batch: 4096,
            wal_limit: 32 << 20,
            checkpoint_every: Duration::from_secs(30),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LogRecord {
    kind: EventType,
    key: String,
    value: Vec<u8>,
}

struct Inner {
    db: Database,
    crypt: SecretBox,
    revision: AtomicU64,
    compacted: AtomicU64,
    events: broadcast::Sender<Arc<StoreEvent>>,
    opts: RedbOptions,
}

/// What one group commit produced: a result per write, the events, the new revision.
struct Committed {
    results: Vec<Result<Vec<Stored>, StoreError>>,
    events: Vec<Arc<StoreEvent>>,
    revision: u64,
}

struct Pending {
    op: WriteOp,
    reply: oneshot::Sender<Result<Vec<Stored>, StoreError>>,
}

/// The redb store.
pub struct RedbStore {
    inner: Arc<Inner>,
    tx: Option<mpsc::Sender<Pending>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RedbStore {
    /// Closes the queue and waits for the writer: every acknowledged write is committed,
    /// and the database file is released once the last watch is gone.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn key_string(k: &ObjectKey) -> String {
    format!("{}/{}/{}", k.kind.name(), k.namespace, k.name)
}

fn parse_key(s: &str) -> Option<ObjectKey> {
    let mut it = s.splitn(3, '/');
    let kind = it.next()?;
    let kind = Kind::ALL.iter().copied().find(|k| k.name() == kind)?;
    Some(ObjectKey {
        kind,
        namespace: it.next()?.to_string(),
        name: it.next()?.to_string(),
    })
}

/// The upper bound of a prefix range: the prefix with its last byte ('/') bumped.
fn prefix_end(prefix: &str) -> String {
    let mut s = prefix.to_string();
    s.pop();
    s.push('0');
    s
}

impl Inner {
    /// A stored value: the revision (8 bytes, big-endian), then the JSON (sealed for
    /// Secrets).
    fn encode(&self, key: &str, kind: Kind, revision: u64, json: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + json.len() + 32);
        out.extend_from_slice(&revision.to_be_bytes());
        if kind == Kind::Secret {
            out.extend_from_slice(&self.crypt.seal(key.as_bytes(), json.as_bytes()));
        } else {
            out.extend_from_slice(json.as_bytes());
        }
        out
    }

    fn stored(&self, key_str: &str, bytes: &[u8]) -> Result<Stored, StoreError> {
        let key = parse_key(key_str).ok_or_else(|| backend(format!("bad key {key_str:?}")))?;
        let revision = stored_revision(bytes)?;
        let payload = &bytes[8..];
        let json: Arc<str> = if key.kind == Kind::Secret {
            let plain = self
                .crypt
                .open_sealed(key_str.as_bytes(), payload)
                .map_err(|e: CryptError| backend(e))?;
            String::from_utf8(plain).map_err(backend)?.into()
        } else {
            // One copy, straight from the page into the shared text.
            std::str::from_utf8(payload).map_err(backend)?.into()
        };
        Ok(Stored {
            key,
            revision,
            json,
        })
    }

    fn read_log(&self, after: u64) -> Result<VecDeque<Arc<StoreEvent>>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let compacted = read_meta(&txn, "compacted")?;
        if after < compacted {
            return Err(StoreError::Expired {
                requested: after,
                oldest: compacted,
            });
        }
        let log = txn.open_table(LOG).map_err(backend)?;
        let mut out = VecDeque::new();
        for entry in log.range(after + 1..).map_err(backend)? {
            let (rev, bytes) = entry.map_err(backend)?;
            out.push_back(Arc::new(self.event_from_log(rev.value(), bytes.value())?));
        }
        Ok(out)
    }

    fn event_from_log(&self, revision: u64, bytes: &[u8]) -> Result<StoreEvent, StoreError> {
        let rec: LogRecord = postcard::from_bytes(bytes).map_err(backend)?;
        let mut object = self.stored(&rec.key, &rec.value)?;
        object.revision = revision;
        let labels = labels_of(&object.value());
        Ok(StoreEvent {
            revision,
            kind: rec.kind,
            object,
            labels,
            memo: Default::default(),
        })
    }

    /// Applies one op inside the open write transaction.
    fn apply_op(
        &self,
        objects: &mut Table<&str, &[u8]>,
        log: &mut Table<u64, &[u8]>,
        op: &WriteOp,
        rev: &mut u64,
        events: &mut Vec<Arc<StoreEvent>>,
        records: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<Vec<Stored>, StoreError> {
        let (key, put, expected) = match op {
            WriteOp::Create(p) => (p.key.clone(), Some(p), None),
            WriteOp::Update { put, expected } => (put.key.clone(), Some(put), *expected),
            WriteOp::Delete { key, expected } => (key.clone(), None, *expected),
            WriteOp::DeleteNamespace(ns) => {
                let mut keys = Vec::new();
                for kind in Kind::ALL.iter().filter(|k| k.namespaced()) {
                    let prefix = format!("{}/{ns}/", kind.name());
                    for entry in objects
                        .range(prefix.as_str()..prefix_end(&prefix).as_str())
                        .map_err(backend)?
                    {
                        let (k, _) = entry.map_err(backend)?;
                        keys.push(k.value().to_string());
                    }
                }
                keys.push(format!("Namespace//{ns}"));
                let mut out = Vec::new();
                for k in keys {
                    let key = parse_key(&k).ok_or_else(|| backend("bad key"))?;
                    let del = WriteOp::Delete {
                        key,
                        expected: None,
                    };
                    match self.apply_op(objects, log, &del, rev, events, records) {
                        Ok(mut s) => out.append(&mut s),
                        Err(StoreError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                if out.is_empty() {
                    return Err(StoreError::NotFound(ObjectKey {
                        kind: Kind::Namespace,
                        namespace: String::new(),
                        name: ns.clone(),
                    }));
                }
                return Ok(out);
            }
        };
        let create = matches!(op, WriteOp::Create(_));
        let ks = key_string(&key);
        let (current_rev, current) = match objects.get(ks.as_str()).map_err(backend)? {
            Some(g) => {
                let bytes = g.value();
                let r = stored_revision(bytes)?;
                // A delete carries the object's last state into the log.
                (Some(r), put.is_none().then(|| bytes.to_vec()))
            }
            None => (None, None),
        };
        let etype = precondition(&key, current_rev, create, put.is_none(), expected)?;
        *rev += 1;
        let (bytes, stored, labels) = match put {
            Some(p) => {
                let json = p.render(*rev);
                let bytes = self.encode(&ks, key.kind, *rev, &json);
                objects
                    .insert(ks.as_str(), bytes.as_slice())
                    .map_err(backend)?;
                let stored = Stored {
                    key: key.clone(),
                    revision: *rev,
                    json: Arc::from(json),
                };
                (bytes, stored, p.labels.clone())
            }
            None => {
                objects.remove(ks.as_str()).map_err(backend)?;
                let last = current.expect("a delete found its object");
                let mut stored = self.stored(&ks, &last)?;
                stored.revision = *rev;
                let labels = labels_of(&stored.value());
                (last, stored, labels)
            }
        };
        let rec = postcard::to_allocvec(&LogRecord {
            kind: etype,
            key: ks,
            value: bytes,
        })
        .map_err(backend)?;
        log.insert(*rev, rec.as_slice()).map_err(backend)?;
        records.push((*rev, rec));
        events.push(Arc::new(StoreEvent {
            revision: *rev,
            kind: etype,
            labels,
            object: stored.clone(),
            memo: Default::default(),
        }));
        Ok(vec![stored])
    }

    /// Applies a batch in one redb transaction, logs it durably, then commits it (durably
    /// only at a checkpoint). Nothing of the batch is visible to readers before its frame
    /// is on disk.
    fn commit_batch(&self, batch: &[Pending], wal: &mut Wal) -> Result<Committed, StoreError> {
        wal.check()?;
        let mut txn = self.db.begin_write().map_err(backend)?;
        let checkpoint = wal.due(self.opts.wal_limit, self.opts.checkpoint_every);
        txn.set_durability(if checkpoint {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(backend)?;
        let mut rev = self.revision.load(Ordering::Acquire);
        let mut results = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let mut records = Vec::new();
        let mut compacted = self.compacted.load(Ordering::Acquire);
        {
            let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
            let mut log = txn.open_table(LOG).map_err(backend)?;
            for p in batch {
                results.push(self.apply_op(
                    &mut objects,
                    &mut log,
                    &p.op,
                    &mut rev,
                    &mut events,
                    &mut records,
                ));
            }
            // Compact the history in steps of a tenth of its length.
            let keep = self.opts.history.max(1);
            if rev > compacted + keep + keep / 10 {
                compacted = drop_history(&mut log, compacted, rev - keep)?;
            }
            write_position(&txn, rev, compacted)?;
        }
        if records.is_empty() && !checkpoint {
            // Every write of the batch was refused: nothing to log or commit.
            txn.abort().map_err(backend)?;
            return Ok(Committed {
                results,
                events,
                revision: rev,
            });
        }
        if !records.is_empty() {
            wal.append(&wal::Frame { compacted, records })?;
        }
        // From here the log holds the batch: a failure leaves redb behind it, so the log
        // takes no further writes (the next start replays it).
        if let Err(e) = txn.commit().map_err(backend) {
            wal.fail(&e);
            return Err(e);
        }
        if checkpoint {
            wal.truncate()?;
        }
        self.compacted.store(compacted, Ordering::Release);
        Ok(Committed {
            results,
            events,
            revision: rev,
        })
    }
}

/// A counter from the `meta` table of a read transaction (0 when never written).
fn read_meta(txn: &redb::ReadTransaction, name: &str) -> Result<u64, StoreError> {
    meta_value(&txn.open_table(META).map_err(backend)?, name)
}

/// A counter from an open `meta` table (0 when never written).
fn meta_value(meta: &impl ReadableTable<&'static str, u64>, name: &str) -> Result<u64, StoreError> {
    let value = meta.get(name).map_err(backend)?.map(|g| g.value());
    Ok(value.unwrap_or(0))
}

/// Records the latest revision and the history floor.
fn write_position(
    txn: &redb::WriteTransaction,
    revision: u64,
    compacted: u64,
) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(backend)?;
    meta.insert("revision", revision).map_err(backend)?;
    meta.insert("compacted", compacted).map_err(backend)?;
    Ok(())
}

/// Drops the history after `from` up to `to` and returns the new floor.
fn drop_history(log: &mut Table<u64, &[u8]>, from: u64, to: u64) -> Result<u64, StoreError> {
    for r in from + 1..=to {
        log.remove(r).map_err(backend)?;
    }
    Ok(from.max(to))
}

fn stored_revision(bytes: &[u8]) -> Result<u64, StoreError> {
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| backend("stored value is too short"))?;
    Ok(u64::from_be_bytes(head))
}

fn writer(inner: Arc<Inner>, rx: mpsc::Receiver<Pending>, mut wal: Wal) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < inner.opts.max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        match inner.commit_batch(&batch, &mut wal) {
            Ok(Committed {
                results,
                events,
                revision: rev,
            }) => {
                inner.revision.store(rev, Ordering::Release);
                for e in events {
                    // No receiver is fine: nobody is watching.
                    let _ = inner.events.send(e);
                }
                for (p, r) in batch.into_iter().zip(results) {
                    let _ = p.reply.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "store commit failed; writes not acknowledged");
                for p in batch {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
    // Closing: a last checkpoint leaves the log empty, so the next start replays nothing.
    if wal.check().is_ok() && !wal.is_empty() {
        let done = inner
            .db
            .begin_write()
            .map_err(backend)
            .and_then(|t| t.commit().map_err(backend))
            .and_then(|()| wal.truncate());
        if let Err(e) = done {
            tracing::warn!(error = %e, "closing checkpoint failed; the next start replays the log");
        }
    }
}

/// Replays the log's frames that follow the checkpoint's revision into `txn`, as the
/// writer applied them, and returns the revision and history floor reached.
fn replay(txn: &redb::WriteTransaction, frames: Vec<wal::Frame>) -> Result<(u64, u64), StoreError> {
    let (mut revision, mut compacted) = {
        let meta = txn.open_table(META).map_err(backend)?;
        (
            meta_value(&meta, "revision")?,
            meta_value(&meta, "compacted")?,
        )
    };
    let frames = wal::to_replay(frames, revision);
    if frames.is_empty() {
        return Ok((revision, compacted));
    }
    let mut objects = txn.open_table(OBJECTS).map_err(backend)?;
    let mut log = txn.open_table(LOG).map_err(backend)?;
    for f in frames {
        for (rev, bytes) in &f.records {
            let rec: LogRecord = postcard::from_bytes(bytes).map_err(backend)?;
            match rec.kind {
                EventType::Added | EventType::Modified => {
                    objects
                        .insert(rec.key.as_str(), rec.value.as_slice())
                        .map_err(backend)?;
                }
                EventType::Deleted => {
                    objects.remove(rec.key.as_str()).map_err(backend)?;
                }
            }
            log.insert(*rev, bytes.as_slice()).map_err(backend)?;
            revision = *rev;
        }
        compacted = drop_history(&mut log, compacted, f.compacted)?;
    }
    write_position(txn, revision, compacted)?;
    Ok((revision, compacted))
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`: `dir/store.redb`, its write-ahead log
    /// `dir/store.wal` (replayed here) and `dir/secrets.key`.
    pub fn open(dir: &Path, opts: RedbOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let crypt = SecretBox::open(&dir.join("secrets.key")).map_err(backend)?;
        let db = Database::builder()
            .set_cache_size(opts.cache_bytes)
            .create(dir.join("store.redb"))
            .map_err(backend)?;
        let (mut wal, frames) = Wal::open(&dir.join("store.wal"))?;
        let (revision, compacted) = {
            let txn = db.begin_write().map_err(backend)?;
            txn.open_table(OBJECTS).map_err(backend)?;
            txn.open_table(LOG).map_err(backend)?;
            // What the log holds beyond the last checkpoint joins it, durably.
            let position = replay(&txn, frames)?;
            txn.commit().map_err(backend)?;
            position
        };
        wal.truncate()?;
        // Watchers that fall further behind than this catch up from the log.
        let (events, _) = broadcast::channel(2048);
        let inner = Arc::new(Inner {
            db,
            crypt,
            revision: AtomicU64::new(revision),
            compacted: AtomicU64::new(compacted),
            events,
            opts,
        });
        let (tx, rx) = mpsc::channel();
        let w = inner.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(w, rx, wal))
            .map_err(backend)?;
        Ok(RedbStore {
            inner,
            tx: Some(tx),
            writer: Some(handle),
        })
    }

    /// Reads one object's stored bytes (with its key string) into `read`.
    fn read_object<T>(
        &self,
        key: &ObjectKey,
        read: impl FnOnce(&str, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.inner.db.begin_read().map_err(backend)?;
        let t = txn.open_table(OBJECTS).map_err(backend)?;
        let ks = key_string(key);
        let found = t.get(ks.as_str()).map_err(backend)?;
        found.map(|g| read(&ks, g.value())).transpose()
    }

    /// The oldest revision a watch may start after.
    pub fn compacted(&self) -> u64 {
        self.inner.compacted.load(Ordering::Acquire)
    }
}

/// A watch on the redb store.
pub struct RedbWatch {
    inner: Arc<Inner>,
    filter: WatchFilter,
    rx: broadcast::Receiver<Arc<StoreEvent>>,
    backlog: VecDeque<Arc<StoreEvent>>,
    last: u64,
}

impl WatchStream for RedbWatch {
    async fn next(&mut self) -> Result<Arc<StoreEvent>, StoreError> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                if e.revision > self.last {
                    self.last = e.revision;
                    if self.filter.matches(&e) {
                        return Ok(e);
                    }
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(e) => {
                    if e.revision <= self.last {
                        continue;
                    }
                    self.last = e.revision;
                    if self.filter.matches(&e) {
                        return Ok(e);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the in-memory fan-out: catch up from the log.
                    self.backlog = self.inner.read_log(self.last)?;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }
}

impl Store for RedbStore {
    type Watch = RedbWatch;

    async fn write(&self, op: WriteOp) -> Result<Vec<Stored>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(Pending { op, reply })
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn get(&self, key: &ObjectKey) -> Result<Option<Stored>, StoreError> {
        self.read_object(key, |ks, value| self.inner.stored(ks, value))
    }

    fn contains(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        self.read_object(key, |_, _| Ok(()))
            .map(|found| found.is_some())
    }

    fn list_page(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        use std::ops::Bound;
        let txn = self.inner.db.begin_read().map_err(backend)?;
        let revision = read_meta(&txn, "revision")?;
        let t = txn.open_table(OBJECTS).map_err(backend)?;
        let prefix = match namespace {
            Some(ns) if kind.namespaced() => format!("{}/{ns}/", kind.name()),
            _ => format!("{}/", kind.name()),
        };
        let end = prefix_end(&prefix);
        let after_key = after.map(|a| format!("{}/{a}", kind.name()));
        let start = match &after_key {
            Some(a) if a.as_str() >= prefix.as_str() => Bound::Excluded(a.as_str()),
            _ => Bound::Included(prefix.as_str()),
        };
        let mut items = Vec::new();
        let mut more = false;
        for entry in t
            .range::<&str>((start, Bound::Excluded(end.as_str())))
            .map_err(backend)?
        {
            if items.len() == limit {
                more = true;
                break;
            }
            let (k, v) = entry.map_err(backend)?;
            items.push(self.inner.stored(k.value(), v.value())?);
        }
        Ok(Page {
            revision,
            items,
            more,
        })
    }

    fn watch(&self, filter: WatchFilter, since: u64) -> Result<RedbWatch, StoreError> {
        let rx = self.inner.events.subscribe();
        let backlog = if since < self.inner.revision.load(Ordering::Acquire) {
            self.inner.read_log(since)?
        } else {
            let compacted = self.compacted();
            if since < compacted {
                return Err(StoreError::Expired {
                    requested: since,
                    oldest: compacted,
                });
            }
            VecDeque::new()
        };
        Ok(RedbWatch {
            inner: self.inner.clone(),
            filter,
            rx,
            backlog,
            last: since,
        })
    }

    fn history(
        &self,
        filter: &WatchFilter,
        since: u64,
        until: u64,
    ) -> Result<Vec<Arc<StoreEvent>>, StoreError> {
        if since >= until {
            return Ok(Vec::new());
        }
        Ok(self
            .inner
            .read_log(since)?
            .into_iter()
            .filter(|e| e.revision <= until && filter.matches(e))
            .collect())
    }

    fn revision(&self) -> u64 {
        self.inner.revision.load(Ordering::Acquire)
    }
}
