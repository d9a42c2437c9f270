//! The redb backend's write-ahead log: what makes a write durable.
//!
//! Each group commit appends one frame, `[length u32][crc32 u32][payload]` (little-endian),
//! and `fdatasync`s it before the batch is committed to redb (without an fsync of its
//! own) and acknowledged. The payload is the batch's log records, each tagged with its
//! revision, and the history floor after the batch. A checkpoint commits redb durably and
//! empties the log. So a durable write costs one append of the bytes written and one
//! `fdatasync` per batch, as etcd's WAL does, instead of rewriting and syncing every B-tree
//! page a batch touched.
//!
//! Opening replays the frames that follow redb's last durable revision, in order, and
//! stops at the first frame that is torn (short, or its checksum fails) or does not
//! continue the revisions: such a frame was never acknowledged, since a batch is answered
//! only after its frame is synced.

use super::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The largest frame the log accepts on replay: one batch of the largest objects is far
/// below it. A longer length field is a torn or foreign frame, refused before allocating.
pub const MAX_FRAME: usize = 256 << 20;

/// One batch as logged: its records (revision, postcard log record) and the history floor
/// after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    /// The oldest revision a watch may resume from after this batch.
    pub compacted: u64,
    /// The batch's changes, in revision order.
    pub records: Vec<(u64, Vec<u8>)>,
}

impl Frame {
    /// The revisions it spans, `None` when empty.
    pub fn revisions(&self) -> Option<(u64, u64)> {
        Some((self.records.first()?.0, self.records.last()?.0))
    }
}

/// Encodes a frame for the log: the payload is serialized behind room for its header,
/// so the batch is not copied again.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, StoreError> {
    let mut out = postcard::to_extend(frame, vec![0u8; 8]).map_err(super::backend)?;
    let payload = &out[8..];
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| StoreError::Backend(format!("batch of {} bytes", payload.len())))?;
    let crc = crc32fast::hash(payload);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads the frames of a log in order, stopping at the first torn or corrupt one.
pub fn read_frames(mut r: impl Read, file_len: u64) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut left = file_len;
    loop {
        let mut head = [0u8; 8];
        if left < 8 || r.read_exact(&mut head).is_err() {
            return out;
        }
        left -= 8;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_FRAME || len as u64 > left {
            return out;
        }
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            return out;
        }
        left -= len as u64;
        match postcard::from_bytes::<Frame>(&payload) {
            Ok(f) => out.push(f),
            Err(_) => return out,
        }
    }
}

/// The frames that continue a store at revision `durable`: those wholly after it, as
/// long as each starts right after the last. Frames at or below `durable` (already in
/// the checkpoint) are skipped; the first gap ends the log.
pub fn to_replay(frames: Vec<Frame>, durable: u64) -> Vec<Frame> {
    let mut at = durable;
    let mut out = Vec::new();
    for f in frames {
        let Some((first, last)) = f.revisions() else {
            continue;
        };
        if last <= at {
            continue;
        }
        if first != at + 1 {
            break;
        }
        at = last;
        out.push(f);
    }
    out
}

/// The open log file, owned by the store's writer thread.
pub struct Wal {
    file: File,
    len: u64,
    since_checkpoint: Instant,
    /// A failed append or sync leaves the log's state unknown: no write is taken after it.
    failed: Option<String>,
}

impl Wal {
    /// Opens (creating) the log at `path` and returns it with the frames it holds.
    pub fn open(path: &Path) -> Result<(Wal, Vec<Frame>), StoreError> {
        let be = super::backend;
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(be)?;
        if !existed {
            // The file's name must survive a crash as much as what is written to it.
            if let Some(dir) = path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(be)?;
            }
        }
        let len = file.metadata().map_err(be)?.len();
        let frames = read_frames(std::io::BufReader::new(&mut file), len);
        Ok((
            Wal {
                file,
                len,
                since_checkpoint: Instant::now(),
                failed: None,
            },
            frames,
        ))
    }

    /// Refuses when an earlier append failed.
    pub fn check(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(e) => Err(StoreError::Backend(format!(
                "the store's write-ahead log failed earlier ({e}); restart the coordinator"
            ))),
            None => Ok(()),
        }
    }

    /// Marks the log unusable.
    pub fn fail(&mut self, e: &StoreError) {
        self.failed.get_or_insert_with(|| e.to_string());
    }

    /// An I/O failure of the log: reported, and the log takes nothing more.
    fn io(&mut self, r: std::io::Result<()>) -> Result<(), StoreError> {
        r.map_err(|e| {
            let e = StoreError::Backend(format!("write-ahead log: {e}"));
            self.fail(&e);
            e
        })
    }

    /// Appends a frame and waits until it is on disk.
    pub fn append(&mut self, frame: &Frame) -> Result<(), StoreError> {
        self.check()?;
        let bytes = encode(frame)?;
        let r = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        self.io(r)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Is a checkpoint due: the log holds `limit` bytes, or anything older than `every`?
    pub fn due(&self, limit: u64, every: Duration) -> bool {
        self.len >= limit || (self.len > 0 && self.since_checkpoint.elapsed() >= every)
    }

    /// Empties the log once its frames are in a durable checkpoint (an empty log is left
    /// alone: no sync at every start).
    pub fn truncate(&mut self) -> Result<(), StoreError> {
        if self.len == 0 {
            return Ok(());
        }
        let r = self.file.set_len(0).and_then(|()| self.file.sync_all());
        self.io(r)?;
        self.len = 0;
        self.since_checkpoint = Instant::now();
        Ok(())
    }

    /// Does the log hold nothing since the last checkpoint?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(revs: std::ops::RangeInclusive<u64>) -> Frame {
        Frame {
            compacted: 0,
            records: revs.map(|r| (r, vec![r as u8; 3])).collect(),
        }
    }

    fn log(frames: &[Frame]) -> Vec<u8> {
        frames.iter().flat_map(|f| encode(f).unwrap()).collect()
    }

    #[test]
    fn frames_round_trip() {
        let fs = [frame(1..=3), frame(4..=4), frame(5..=9)];
        let bytes = log(&fs);
        assert_eq!(read_frames(&bytes[..], bytes.len() as u64), fs.to_vec());
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_log() {
        let fs = [frame(1..=3), frame(4..=6)];
        let bytes = log(&fs);
        // Every cut inside the second frame keeps exactly the first.
        let first_len = encode(&fs[0]).unwrap().len();
        for cut in first_len..bytes.len() {
            assert_eq!(
                read_frames(&bytes[..cut], cut as u64),
                vec![fs[0].clone()],
                "cut at {cut}"
            );
        }
        // A flipped bit in the second frame's payload fails its checksum.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(read_frames(&bad[..], bad.len() as u64), vec![fs[0].clone()]);
        // A length beyond the file (or the limit) is refused before allocating.
        let mut huge = bytes[..first_len].to_vec();
        huge.extend_from_slice(&(u32::MAX).to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert_eq!(
            read_frames(&huge[..], huge.len() as u64),
            vec![fs[0].clone()]
        );
        // Zeros (a preallocated or half-written tail) end the log too.
        let mut zeros = bytes[..first_len].to_vec();
        zeros.extend_from_slice(&[0; 64]);
        assert_eq!(
            read_frames(&zeros[..], zeros.len() as u64),
            vec![fs[0].clone()]
        );
    }

    #[test]
    fn replay_continues_the_durable_revision_and_stops_at_a_gap() {
        let fs = vec![frame(1..=3), frame(4..=6), frame(7..=7), frame(9..=9)];
        let revs = |v: Vec<Frame>| v.iter().map(|f| f.revisions().unwrap()).collect::<Vec<_>>();
        assert_eq!(revs(to_replay(fs.clone(), 0)), vec![(1, 3), (4, 6), (7, 7)]);
        // Frames already in the checkpoint are skipped.
        assert_eq!(revs(to_replay(fs.clone(), 6)), vec![(7, 7)]);
        // A log that does not start right after the checkpoint replays nothing.
        assert_eq!(revs(to_replay(fs.clone()[1..].to_vec(), 2)), vec![]);
        // Stale frames from before a truncation that did not reach the disk are skipped,
        // and the new frames after them still apply.
        let stale_then_new = vec![frame(1..=3), frame(4..=6), frame(7..=8)];
        assert_eq!(revs(to_replay(stale_then_new, 6)), vec![(7, 8)]);
    }

    #[test]
    fn appends_survive_reopening_and_truncation_empties() {
        let dir = std::env::temp_dir().join(format!("skiff-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.wal");
        let _ = std::fs::remove_file(&path);
        let (mut w, frames) = Wal::open(&path).unwrap();
        assert!(frames.is_empty());
        w.append(&frame(1..=2)).unwrap();
        w.append(&frame(3..=3)).unwrap();
        assert!(w.due(1, Duration::from_secs(3600)));
        assert!(!w.due(u64::MAX, Duration::from_secs(3600)));
        drop(w);
        let (mut w, frames) = Wal::open(&path).unwrap();
        assert_eq!(frames, vec![frame(1..=2), frame(3..=3)]);
        w.truncate().unwrap();
        assert!(w.is_empty());
        drop(w);
        let (_, frames) = Wal::open(&path).unwrap();
        assert!(frames.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
