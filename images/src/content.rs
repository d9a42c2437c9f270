//! The content-addressed blob store: `blobs/sha256/<hex>` under its root. Every write is
//! hashed on the way in and refused unless it matches the digest it claims; blobs land in
//! `ingest/` first and are renamed into place after fsync, so a crash mid-write leaves at
//! most a stray ingest file, which the next open removes.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, HashingWriter};

/// A blob that did not hash to what it claimed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("digest mismatch: expected {expected}, got {actual} ({size} bytes)")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ContentError {
    let context = context.into();
    move |source| ContentError::Io { context, source }
}

/// Blobs by digest.
pub struct ContentStore {
    root: PathBuf,
}

static INGEST_SEQ: AtomicU64 = AtomicU64::new(0);

impl ContentStore {
    /// Opens (creating) the store at `root` and drops leftovers of interrupted writes.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let store = ContentStore {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(store.blob_dir())
            .map_err(io_err(format!("creating {}", root.display())))?;
        let ingest = store.ingest_dir();
        if ingest.exists() {
            fs::remove_dir_all(&ingest).map_err(io_err("clearing ingest"))?;
        }
        fs::create_dir_all(&ingest).map_err(io_err("creating ingest"))?;
        Ok(store)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Where a blob lives (whether or not it is present).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// Whether a blob is present.
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// A blob's size, if present.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().map(|m| m.len())
    }

    /// A new ingest file for a writer that hashes as it goes.
    pub fn writer(&self) -> Result<Ingest, ContentError> {
        let name = format!(
            "{}-{}",
            std::process::id(),
            INGEST_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.ingest_dir().join(name);
        let file = File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
        Ok(Ingest {
            path,
            writer: Some(HashingWriter::new(io::BufWriter::with_capacity(
                128 * 1024,
                file,
            ))),
        })
    }

    /// Writes a blob from `reader`. With `expected`, the content must hash to it (and have
    /// that size when given) or nothing is stored.
    pub fn write(
        &self,
        reader: &mut dyn Read,
        expected: Option<(&Digest, Option<u64>)>,
    ) -> Result<(Digest, u64), ContentError> {
        let mut w = self.writer()?;
        io::copy(reader, &mut w).map_err(io_err("writing blob"))?;
        self.commit(w, expected)
    }

    /// Writes a blob from memory.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let digest = Digest::of(bytes);
        if self.has(&digest) {
            return Ok(digest);
        }
        self.write(&mut &bytes[..], Some((&digest, Some(bytes.len() as u64))))
            .map(|(d, _)| d)
    }

    /// Finishes an ingest: fsync, verify, rename into place, fsync the directory.
    pub fn commit(
        &self,
        mut ingest: Ingest,
        expected: Option<(&Digest, Option<u64>)>,
    ) -> Result<(Digest, u64), ContentError> {
        let w = ingest.writer.take().expect("ingest committed once");
        let (buf, digest, size) = w.finish();
        let file = buf.into_inner().map_err(|e| ContentError::Io {
            context: "flushing blob".into(),
            source: e.into_error(),
        })?;
        if let Some((want, want_size)) = expected {
            if *want != digest {
                return Err(ContentError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest,
                    size,
                });
            }
            if let Some(ws) = want_size {
                if ws != size {
                    return Err(ContentError::SizeMismatch {
                        digest,
                        expected: ws,
                        actual: size,
                    });
                }
            }
        }
        let target = self.path(&digest);
        if target.is_file() {
            return Ok((digest, size));
        }
        file.sync_all().map_err(io_err("fsync blob"))?;
        drop(file);
        fs::rename(&ingest.path, &target).map_err(io_err("renaming blob into place"))?;
        sync_dir(&self.blob_dir())?;
        Ok((digest, size))
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        File::open(self.path(digest)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::Missing(digest.clone())
            } else {
                io_err(format!("opening {digest}"))(e)
            }
        })
    }

    /// Reads a (small) blob whole, checking its digest again: manifests and configs are
    /// trusted only as far as their hash.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(io_err(format!("reading {digest}")))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(ContentError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Every blob present.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.blob_dir()).map_err(io_err("listing blobs"))? {
            let e = e.map_err(io_err("listing blobs"))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a blob; absent is fine.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("removing {digest}"))(e)),
        }
    }
}

/// A blob being written. Dropped without commit, its file is removed.
pub struct Ingest {
    path: PathBuf,
    writer: Option<HashingWriter<io::BufWriter<File>>>,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // After a commit the file was renamed away (or is a duplicate to drop).
        let _ = fs::remove_file(&self.path);
    }
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("fsync {}", dir.display())))
}

/// Writes a small file atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ContentError> {
    let dir = path.parent().expect("file in a directory");
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        INGEST_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(format!("writing {}", path.display()))(e)
    })?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_writes_and_leftover_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.write_bytes(b"hello").unwrap();
        assert!(store.has(&d));
        assert_eq!(store.read(&d).unwrap(), b"hello");
        // A write claiming the wrong digest stores nothing.
        let wrong = Digest::of(b"other");
        let err = store
            .write(&mut &b"hello!"[..], Some((&wrong, None)))
            .unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert!(!store.has(&wrong));
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        // Size is checked too.
        let d2 = Digest::of(b"abc");
        assert!(matches!(
            store
                .write(&mut &b"abc"[..], Some((&d2, Some(4))))
                .unwrap_err(),
            ContentError::SizeMismatch { .. }
        ));
        // A crash mid-write leaves an ingest file; reopening clears it.
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        std::mem::forget(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 1);
        let store = ContentStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        // A blob corrupted on disk is caught when read.
        fs::write(store.path(&d), b"jello").unwrap();
        assert!(matches!(
            store.read(&d).unwrap_err(),
            ContentError::DigestMismatch { .. }
        ));
    }
}
