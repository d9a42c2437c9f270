//! The image store: named images over the content store, layer snapshots keyed by chain ID,
//! per-container writable root filesystems, and garbage collection.
//!
//! Layout under the store's root:
//! - `blobs/sha256/<hex>`, `ingest/`: the content store.
//! - `images.json`: names → manifest, config, layers (written atomically).
//! - `snapshots/<first 16 hex of chain ID>/fs`: one unpacked layer in overlayfs format, with
//!   `chainid` beside it. Created in `snapshots/.tmp-*` and renamed into place after syncfs.
//! - `rootfs/<key>/{upper,work,merged}`: a container's writable layer and its mount point,
//!   with `chain` listing the snapshots it stacks (what GC must keep).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::content::{write_atomic, ContentError, ContentStore};
use crate::digest::Digest;
use crate::oci::{self, Descriptor, ImageConfig, Manifest, Platform};
use crate::reference::{InvalidReference, Reference};
use crate::unpack::{self, UnpackError};

/// What can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Reference(#[from] InvalidReference),
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("{0}")]
    Format(String),
    #[error("image is for {image}, this node is {node}")]
    Platform { image: String, node: String },
    #[error("{0}")]
    Registry(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}

/// A named image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// Normalized reference (`docker.io/library/busybox:1.36`), or `sha256:<config>` for an
    /// image imported without a name.
    pub name: String,
    /// The platform manifest.
    pub manifest: Digest,
    /// The config blob; its digest is the image ID.
    pub config: Digest,
    /// Layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Sum of the layer and config blob sizes.
    pub size: u64,
}

impl ImageRecord {
    /// The image ID (`sha256:` of the config), as Docker shows it.
    pub fn id(&self) -> &Digest {
        &self.config
    }

    /// Snapshot chain IDs, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        oci::chain_ids(&self.diff_ids)
    }

    /// The short name users typed (`busybox:1.36`).
    pub fn familiar_name(&self) -> String {
        Reference::parse(&self.name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| self.name.clone())
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    images: BTreeMap<String, ImageRecord>,
    /// Archives imported from the airgap directory, by path, with size and mtime, so an
    /// unchanged archive is not imported again on every start.
    #[serde(default)]
    imported: BTreeMap<String, (u64, i64)>,
}

/// How a container's root filesystem was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootfsKind {
    /// overlayfs over the shared snapshots.
    Overlay,
    /// A private copy (overlayfs was unavailable).
    Copy,
}

/// A prepared container root filesystem.
#[derive(Clone, Debug)]
pub struct Rootfs {
    /// The directory to use as the container's root.
    pub path: PathBuf,
    pub kind: RootfsKind,
}

/// What a garbage collection removed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GcReport {
    pub blobs: usize,
    pub snapshots: usize,
    pub bytes: u64,
}

/// The node's images.
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    platform: Platform,
    index: Mutex<Index>,
    /// Held while creating snapshots and while collecting garbage.
    snapshots: Mutex<()>,
    force_copy: bool,
}

impl ImageStore {
    /// Opens (creating) the store at `root` for this host's platform.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        ImageStore::open_for(root, Platform::host())
    }

    /// Opens the store for a given platform (tests pick images of other platforms).
    pub fn open_for(root: &Path, platform: Platform) -> Result<ImageStore, ImageError> {
        let content = ContentStore::open(root)?;
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(io_err("creating snapshots"))?;
        fs::create_dir_all(root.join("rootfs")).map_err(io_err("creating rootfs"))?;
        // Unpacks a crash interrupted.
        for e in fs::read_dir(&snapshots).map_err(io_err("listing snapshots"))? {
            let e = e.map_err(io_err("listing snapshots"))?;
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                remove_dir_all_nofollow(&e.path())?;
            }
        }
        let index_path = root.join("images.json");
        let index = match fs::read(&index_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::Format(format!("{}: {e}", index_path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(io_err("reading images.json")(e)),
        };
        Ok(ImageStore {
            root: root.to_path_buf(),
            content,
            platform,
            index: Mutex::new(index),
            snapshots: Mutex::new(()),
            force_copy: false,
        })
    }

    /// Makes root filesystems by copying even where overlayfs works (tests of the fallback).
    pub fn force_copy_rootfs(mut self, yes: bool) -> Self {
        self.force_copy = yes;
        self
    }

    /// The platform images are chosen for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The blob store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn save(&self, index: &Index) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(index).expect("index serializes");
        write_atomic(&self.root.join("images.json"), &bytes)?;
        Ok(())
    }

    /// Finds an image by reference (`busybox:1.36` finds `docker.io/library/busybox:1.36`),
    /// by stored name, or by image ID or a prefix of it (at least 12 hex digits).
    pub fn get(&self, name: &str) -> Option<ImageRecord> {
        let index = self.index.lock().unwrap();
        if let Some(r) = index.images.get(name) {
            return Some(r.clone());
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(rec) = index.images.get(&r.to_string()) {
                return Some(rec.clone());
            }
            // name@digest: any name of that repository with that manifest.
            if let Some(d) = &r.digest {
                if let Some(rec) = index
                    .images
                    .values()
                    .find(|rec| rec.manifest == *d && rec.name.starts_with(&r.name()))
                {
                    return Some(rec.clone());
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return index
                .images
                .values()
                .find(|rec| rec.config.hex().starts_with(hex))
                .cloned();
        }
        None
    }

    /// Every named image.
    pub fn list(&self) -> Vec<ImageRecord> {
        self.index
            .lock()
            .unwrap()
            .images
            .values()
            .cloned()
            .collect()
    }

    /// Names an image whose manifest (and everything it references) is in the content store.
    /// `name` is a reference, or `None` to name the image by its ID.
    pub fn register(
        &self,
        name: Option<&Reference>,
        manifest: &Digest,
    ) -> Result<ImageRecord, ImageError> {
        let m = self.read_manifest(manifest)?;
        let config = self.read_config(&m.config.digest)?;
        let node = &self.platform;
        let image_platform = Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
        };
        if !config.architecture.is_empty() && !node.runs(&image_platform) {
            return Err(ImageError::Platform {
                image: image_platform.to_string(),
                node: node.to_string(),
            });
        }
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(ImageError::Format(format!(
                "manifest {manifest} has {} layers but its config lists {} diff IDs",
                m.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        for l in &m.layers {
            if !self.content.has(&l.digest) {
                return Err(ImageError::Content(ContentError::Missing(l.digest.clone())));
            }
        }
        let record = ImageRecord {
            name: name
                .map(|r| r.to_string())
                .unwrap_or_else(|| m.config.digest.to_string()),
            manifest: manifest.clone(),
            config: m.config.digest.clone(),
            size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
            layers: m.layers,
            diff_ids: config.rootfs.diff_ids,
        };
        let mut index = self.index.lock().unwrap();
        index.images.insert(record.name.clone(), record.clone());
        self.save(&index)?;
        Ok(record)
    }

    /// Removes a name. The blobs and snapshots stay until [`ImageStore::gc`].
    pub fn remove(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let rec = self
            .get(name)
            .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        let mut index = self.index.lock().unwrap();
        index.images.remove(&rec.name);
        self.save(&index)?;
        Ok(rec)
    }

    /// Reads a manifest blob.
    pub fn read_manifest(&self, digest: &Digest) -> Result<Manifest, ImageError> {
        let bytes = self.content.read(digest)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Format(format!("manifest {digest}: {e}")))
    }

    /// Reads an index (or manifest list) blob and picks this node's platform from it.
    pub(crate) fn select_platform(&self, index: &Digest) -> Result<Descriptor, ImageError> {
        let body = self.content.read(index)?;
        let idx: oci::Index = serde_json::from_slice(&body)
            .map_err(|e| ImageError::Format(format!("index {index}: {e}")))?;
        idx.select(&self.platform).cloned().ok_or_else(|| {
            let have: Vec<String> = idx
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect();
            ImageError::Platform {
                image: if have.is_empty() {
                    "no platform".into()
                } else {
                    have.join(", ")
                },
                node: self.platform.to_string(),
            }
        })
    }

    /// Reads an image config blob.
    pub fn read_config(&self, digest: &Digest) -> Result<ImageConfig, ImageError> {
        let bytes = self.content.read(digest)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Format(format!("image config {digest}: {e}")))
    }

    /// The image's config.
    pub fn config(&self, rec: &ImageRecord) -> Result<ImageConfig, ImageError> {
        self.read_config(&rec.config)
    }

    fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(&chain.hex()[..16])
    }

    /// Whether the snapshot for `chain` is complete.
    fn has_snapshot(&self, chain: &Digest) -> bool {
        fs::read_to_string(self.snapshot_dir(chain).join("chainid"))
            .is_ok_and(|s| s.trim() == chain.to_string())
    }

    /// Unpacks every layer of the image that is not unpacked yet. Returns the snapshot
    /// directories, bottom first.
    pub fn unpack(&self, rec: &ImageRecord) -> Result<Vec<PathBuf>, ImageError> {
        self.unpack_chains(rec, &rec.chain_ids())
    }

    fn unpack_chains(
        &self,
        rec: &ImageRecord,
        chains: &[Digest],
    ) -> Result<Vec<PathBuf>, ImageError> {
        let _guard = self.snapshots.lock().unwrap();
        let mut dirs = Vec::with_capacity(chains.len());
        for (i, chain) in chains.iter().enumerate() {
            let dir = self.snapshot_dir(chain);
            if !self.has_snapshot(chain) {
                if dir.exists() {
                    // Same 16-digit prefix, different chain: refuse rather than mix layers.
                    return Err(ImageError::Format(format!(
                        "snapshot directory {} belongs to another chain",
                        dir.display()
                    )));
                }
                let tmp = self
                    .root
                    .join("snapshots")
                    .join(format!(".tmp-{}", chain.hex()));
                if tmp.exists() {
                    remove_dir_all_nofollow(&tmp)?;
                }
                fs::create_dir_all(tmp.join("fs")).map_err(io_err("creating snapshot"))?;
                let blob = self.content.open_blob(&rec.layers[i].digest)?;
                let applied = unpack::apply_layer(
                    io::BufReader::with_capacity(256 * 1024, blob),
                    &tmp.join("fs"),
                    Some(&rec.diff_ids[i]),
                );
                if let Err(e) = applied {
                    let _ = remove_dir_all_nofollow(&tmp);
                    return Err(e.into());
                }
                fs::write(tmp.join("chainid"), chain.to_string())
                    .map_err(io_err("writing chainid"))?;
                syncfs(&tmp)?;
                fs::rename(&tmp, &dir).map_err(io_err("renaming snapshot into place"))?;
                crate::content::sync_dir(&self.root.join("snapshots"))?;
            }
            dirs.push(dir.join("fs"));
        }
        Ok(dirs)
    }

    fn rootfs_dir(&self, key: &str) -> Result<PathBuf, ImageError> {
        if key.is_empty()
            || key.len() > 128
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            || key.starts_with('.')
        {
            return Err(ImageError::Format(format!("invalid rootfs key {key:?}")));
        }
        Ok(self.root.join("rootfs").join(key))
    }

    /// Makes a writable root filesystem for a container from the image: an overlay mount of
    /// the image's snapshots under a private upper directory, or, where overlayfs is
    /// unavailable, a private copy (with a warning). `key` names it (the container's ID).
    pub fn prepare_rootfs(&self, key: &str, rec: &ImageRecord) -> Result<Rootfs, ImageError> {
        let dir = self.rootfs_dir(key)?;
        if dir.exists() {
            return Err(ImageError::Format(format!("rootfs {key} already exists")));
        }
        let chains = rec.chain_ids();
        let layers = self.unpack_chains(rec, &chains)?;
        let merged = dir.join("merged");
        fs::create_dir_all(&merged).map_err(io_err("creating rootfs"))?;
        let chain: String = chains.iter().map(|c| format!("{c}\n")).collect();
        fs::write(dir.join("chain"), chain).map_err(io_err("writing rootfs chain"))?;
        let result = if self.force_copy {
            Err("copy requested".to_string())
        } else {
            self.mount_overlay(&dir, &layers)
        };
        match result {
            Ok(()) => Ok(Rootfs {
                path: merged,
                kind: RootfsKind::Overlay,
            }),
            Err(why) => {
                if !self.force_copy {
                    tracing::warn!(key, "overlayfs unavailable ({why}); copying the image instead, which costs disk and time");
                }
                copy_layers(&layers, &merged)?;
                fs::write(dir.join("copy"), b"").map_err(io_err("marking copy"))?;
                Ok(Rootfs {
                    path: merged,
                    kind: RootfsKind::Copy,
                })
            }
        }
    }

    fn mount_overlay(&self, dir: &Path, layers: &[PathBuf]) -> Result<(), String> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        for d in [&upper, &work] {
            fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        let empty;
        let mut lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        if lower.is_empty() {
            empty = dir.join("empty");
            fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
            lower.push(empty.display().to_string());
        }
        let all = [
            lower.join(":"),
            upper.display().to_string(),
            work.display().to_string(),
        ];
        if all.iter().any(|p| p.contains(',')) || [&all[1], &all[2]].iter().any(|p| p.contains(':'))
        {
            return Err("store path contains ',' or ':'".into());
        }
        let data = format!("lowerdir={},upperdir={},workdir={}", all[0], all[1], all[2]);
        if data.len() >= 4096 {
            return Err(format!(
                "{} layers make the mount options longer than a page",
                layers.len()
            ));
        }
        let data = CString::new(data).map_err(|e| e.to_string())?;
        rustix::mount::mount(
            "overlay",
            dir.join("merged"),
            "overlay",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .map_err(|e| format!("mount overlay: {e}"))
    }

    /// Unmounts and deletes a container's root filesystem. Absent is fine.
    pub fn remove_rootfs(&self, key: &str) -> Result<(), ImageError> {
        let dir = self.rootfs_dir(key)?;
        if !dir.exists() {
            return Ok(());
        }
        let merged = dir.join("merged");
        if !dir.join("copy").exists() {
            match rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
                Err(rustix::io::Errno::BUSY) => {
                    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).map_err(
                        |e| io_err(format!("unmounting {}", merged.display()))(e.into()),
                    )?;
                }
                Err(e) => return Err(io_err(format!("unmounting {}", merged.display()))(e.into())),
            }
        }
        remove_dir_all_nofollow(&dir)
    }

    /// Keys of the root filesystems that exist.
    pub fn rootfs_keys(&self) -> Result<Vec<String>, ImageError> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("rootfs")).map_err(io_err("listing rootfs"))? {
            let e = e.map_err(io_err("listing rootfs"))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }

    /// Removes blobs no named image references and snapshots neither a named image nor a
    /// container root filesystem uses.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        let _guard = self.snapshots.lock().unwrap();
        let mut keep_blobs = BTreeSet::new();
        let mut keep_chains = BTreeSet::new();
        for rec in self.list() {
            keep_blobs.insert(rec.manifest.clone());
            keep_blobs.insert(rec.config.clone());
            keep_blobs.extend(rec.layers.iter().map(|l| l.digest.clone()));
            keep_chains.extend(rec.chain_ids());
        }
        for key in self.rootfs_keys()? {
            if let Ok(s) = fs::read_to_string(self.root.join("rootfs").join(&key).join("chain")) {
                keep_chains.extend(s.lines().filter_map(|l| Digest::parse(l).ok()));
            }
        }
        let mut report = GcReport::default();
        for d in self.content.list()? {
            if !keep_blobs.contains(&d) {
                report.bytes += self.content.size(&d).unwrap_or(0);
                self.content.delete(&d)?;
                report.blobs += 1;
            }
        }
        let keep_dirs: BTreeSet<String> = keep_chains
            .iter()
            .map(|c| c.hex()[..16].to_string())
            .collect();
        for e in fs::read_dir(self.root.join("snapshots")).map_err(io_err("listing snapshots"))? {
            let e = e.map_err(io_err("listing snapshots"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep_dirs.contains(&name) {
                remove_dir_all_nofollow(&e.path())?;
                report.snapshots += 1;
            }
        }
        Ok(report)
    }

    /// Records an airgap archive as imported (size, mtime) and says whether it was already.
    pub(crate) fn archive_seen(&self, path: &Path, meta: &fs::Metadata) -> bool {
        let index = self.index.lock().unwrap();
        index.imported.get(&path.display().to_string()) == Some(&(meta.len(), meta.mtime()))
    }

    pub(crate) fn mark_archive(&self, path: &Path, meta: &fs::Metadata) -> Result<(), ImageError> {
        let mut index = self.index.lock().unwrap();
        index
            .imported
            .insert(path.display().to_string(), (meta.len(), meta.mtime()));
        self.save(&index)
    }
}

fn syncfs(dir: &Path) -> Result<(), ImageError> {
    let f = fs::File::open(dir).map_err(io_err(format!("opening {}", dir.display())))?;
    rustix::fs::syncfs(&f).map_err(|e| io_err("syncfs")(e.into()))
}

/// `rm -rf` that never follows a symlink out of the tree.
pub(crate) fn remove_dir_all_nofollow(path: &Path) -> Result<(), ImageError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| ImageError::Format(format!("cannot remove {}", path.display())))?;
    let pfd = fs::File::open(parent).map_err(io_err(format!("opening {}", parent.display())))?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("stat {}", path.display()))(e)),
        Ok(m) if m.is_dir() => Ok(unpack::remove_tree(&pfd, name)?),
        Ok(_) => fs::remove_file(path).map_err(io_err(format!("removing {}", path.display()))),
    }
}

/// Stacks overlay-format layer directories (bottom first) into `dest` by copying, honouring
/// whiteouts and opaque directories. Hard links within a layer become copies.
fn copy_layers(layers: &[PathBuf], dest: &Path) -> Result<(), ImageError> {
    for layer in layers {
        copy_tree(layer, dest)?;
    }
    Ok(())
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device() && m.rdev() == 0
}

fn copy_tree(src: &Path, dest: &Path) -> Result<(), ImageError> {
    for e in fs::read_dir(src).map_err(io_err(format!("reading {}", src.display())))? {
        let e = e.map_err(io_err("reading layer"))?;
        let from = e.path();
        let to = dest.join(e.file_name());
        let m = fs::symlink_metadata(&from).map_err(io_err(format!("stat {}", from.display())))?;
        let existing = fs::symlink_metadata(&to).ok();
        if is_whiteout(&m) {
            if existing.is_some() {
                remove_dir_all_nofollow(&to)?;
            }
            continue;
        }
        if m.is_dir() {
            let opaque = rustix::fs::getxattr(&from, "trusted.overlay.opaque", &mut [0u8; 4])
                .is_ok_and(|n| n == 1);
            match &existing {
                Some(x) if x.is_dir() && !opaque => {}
                Some(_) => {
                    remove_dir_all_nofollow(&to)?;
                    fs::create_dir(&to).map_err(io_err(format!("mkdir {}", to.display())))?;
                }
                None => fs::create_dir(&to).map_err(io_err(format!("mkdir {}", to.display())))?,
            }
            copy_tree(&from, &to)?;
            copy_meta(&to, &m)?;
            continue;
        }
        if existing.is_some() {
            remove_dir_all_nofollow(&to)?;
        }
        if m.file_type().is_symlink() {
            let target = fs::read_link(&from).map_err(io_err("readlink"))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(io_err(format!("symlink {}", to.display())))?;
            std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))
                .map_err(io_err("lchown"))?;
        } else if m.is_file() {
            fs::copy(&from, &to).map_err(io_err(format!("copying {}", from.display())))?;
            copy_meta(&to, &m)?;
        } else {
            // Devices and FIFOs.
            let ft = rustix::fs::FileType::from_raw_mode(m.mode());
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &to,
                ft,
                rustix::fs::Mode::from_raw_mode(m.mode() & 0o7777),
                m.rdev(),
            )
            .map_err(|e| io_err(format!("mknod {}", to.display()))(e.into()))?;
            copy_meta(&to, &m)?;
        }
    }
    Ok(())
}

fn copy_meta(to: &Path, m: &fs::Metadata) -> Result<(), ImageError> {
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid())).map_err(io_err("chown"))?;
    fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(io_err("chmod"))?;
    Ok(())
}
