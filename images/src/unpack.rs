//! Applying a layer tar (plain, gzip or zstd) to a directory in overlayfs' format: whiteouts
//! become 0:0 character devices and opaque directories get `trusted.overlay.opaque=y`, so the
//! layer directories stack directly as overlay lower dirs.
//!
//! Every path is resolved one component at a time with `O_NOFOLLOW` from a descriptor of the
//! layer's root: an entry that names an absolute path, climbs with `..`, or reaches through a
//! symlink is refused, so no crafted layer can write outside its directory. Hard links may only
//! point at files inside the same layer. Symlink *targets* are data, never followed here.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::digest::{Digest, HashingReader};

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer tries to write outside its directory; nothing more of it is applied.
    #[error("refusing layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: &'static str },
    /// The tar stream is malformed or uses something skiff does not support.
    #[error("bad layer entry {entry:?}: {reason}")]
    Format { entry: String, reason: String },
    /// The uncompressed layer does not hash to the image's diff ID.
    #[error("layer content is {actual}, the image config says {expected}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// `Unsafe` for `entry`, given its reason.
fn refused(entry: &str) -> impl Fn(&'static str) -> UnpackError + Copy + '_ {
    move |reason| UnpackError::Unsafe {
        entry: entry.to_string(),
        reason,
    }
}

/// `Format` for `entry`, given its reason.
fn malformed(entry: &str) -> impl Fn(String) -> UnpackError + Copy + '_ {
    move |reason| UnpackError::Format {
        entry: entry.to_string(),
        reason,
    }
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> UnpackError {
    let context = context.into();
    move |source| UnpackError::Io { context, source }
}

fn errno_ctx(context: impl Into<String>) -> impl FnOnce(Errno) -> UnpackError {
    let context = context.into();
    move |e| UnpackError::Io {
        context,
        source: e.into(),
    }
}

/// What applying a layer did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar (the layer's diff ID).
    pub diff_id: Digest,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// Tar entries applied.
    pub entries: u64,
}

/// Wraps `reader` in the decompressor its first bytes call for.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, reader);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(Zstd {
            source: Some(br),
            frame: None,
        }))
    } else {
        Ok(Box::new(br))
    }
}

/// A zstd stream of one or more frames (skippable frames skipped).
struct Zstd<R: BufRead> {
    source: Option<R>,
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let frame = self.frame.take().expect("frame present");
                self.source = Some(frame.into_inner());
            }
            let mut src = self.source.take().expect("source present");
            if src.fill_buf()?.is_empty() {
                self.source = Some(src);
                return Ok(0);
            }
            // A skippable frame: magic 0x184D2A5? little-endian, then a u32 length.
            let head = src.fill_buf()?;
            if head.len() >= 4 && head[1..4] == [0x2a, 0x4d, 0x18] && head[0] & 0xf0 == 0x50 {
                let mut hdr = [0u8; 8];
                src.read_exact(&mut hdr)?;
                let len = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as u64;
                io::copy(&mut (&mut src).take(len), &mut io::sink())?;
                self.source = Some(src);
                continue;
            }
            let dec = ruzstd::decoding::StreamingDecoder::new(src)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.frame = Some(dec);
        }
    }
}

/// Applies the layer in `reader` (any compression) to `dest`, an existing directory.
/// With `expected`, the uncompressed stream must hash to it.
pub fn apply_layer(
    reader: impl Read,
    dest: &Path,
    expected: Option<&Digest>,
) -> Result<Applied, UnpackError> {
    let plain = decompress(reader).map_err(io_ctx("reading layer"))?;
    let mut hashing = HashingReader::new(plain);
    let root: OwnedFd = rfs::open(
        dest,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_ctx(format!("opening {}", dest.display())))?;
    let mut entries = 0u64;
    let mut dir_times: Vec<(Vec<OsString>, u64)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(io_ctx("reading tar"))? {
            let mut entry = entry.map_err(io_ctx("reading tar entry"))?;
            apply_entry(&root, &mut entry, &mut dir_times)?;
            entries += 1;
        }
    }
    // Directory times last: creating children changes them.
    for (comps, mtime) in dir_times.iter().rev() {
        let name = display(comps);
        let fd = walk(&root, comps, false, &name)?;
        rfs::futimens(&fd, &times(*mtime)).map_err(errno_ctx(format!("times of {name}")))?;
    }
    let (diff_id, size) = hashing.finish().map_err(io_ctx("reading layer tail"))?;
    if let Some(want) = expected {
        if *want != diff_id {
            return Err(UnpackError::DiffIdMismatch {
                expected: want.clone(),
                actual: diff_id,
            });
        }
    }
    Ok(Applied {
        diff_id,
        size,
        entries,
    })
}

fn display(comps: &[OsString]) -> String {
    let mut s = String::new();
    for c in comps {
        if !s.is_empty() {
            s.push('/');
        }
        s.push_str(&c.to_string_lossy());
    }
    s
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Splits an entry path into components, refusing absolute paths and `..`.
pub fn clean_path(raw: &[u8]) -> Result<Vec<OsString>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path climbs out of the layer with \"..\""),
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Opens the directory `comps` below `root` without following any symlink, creating missing
/// directories when `create`.
fn walk(
    root: &OwnedFd,
    comps: &[OsString],
    create: bool,
    entry: &str,
) -> Result<OwnedFd, UnpackError> {
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut cur =
        rfs::openat(root, ".", flags, Mode::empty()).map_err(errno_ctx("reopening layer root"))?;
    for c in comps {
        let next = match rfs::openat(&cur, c.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rfs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(errno_ctx(format!("creating parent of {entry}"))(e)),
                }
                rfs::openat(&cur, c.as_os_str(), flags, Mode::empty())
                    .map_err(|e| refuse_or_io(&cur, c, e, entry))?
            }
            Err(e) => return Err(refuse_or_io(&cur, c, e, entry)),
        };
        cur = next;
    }
    Ok(cur)
}

fn refuse_or_io(dir: &OwnedFd, name: &OsStr, e: Errno, entry: &str) -> UnpackError {
    if e == Errno::LOOP || e == Errno::NOTDIR {
        let is_link = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
            .unwrap_or(false);
        if is_link {
            return refused(entry)("path goes through a symlink");
        }
        return malformed(entry)(format!("{:?} is not a directory", name));
    }
    errno_ctx(format!("resolving {entry}"))(e)
}

/// Removes whatever is at `name` in `dir` (recursively for directories).
fn remove_existing(dir: &OwnedFd, name: &OsStr, keep_dir: bool) -> Result<(), UnpackError> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno_ctx("stat")(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if keep_dir {
            return Ok(());
        }
        remove_tree(dir, name)
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty()).map_err(errno_ctx("unlink"))
    }
}

/// Removes a directory tree below `dir` without following symlinks.
pub fn remove_tree(dir: &impl AsFd, name: &OsStr) -> Result<(), UnpackError> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_ctx("opening directory to remove"))?;
    let mut children = Vec::new();
    for e in rfs::Dir::read_from(&fd).map_err(errno_ctx("reading directory"))? {
        let e = e.map_err(errno_ctx("reading directory"))?;
        let n = e.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        children.push((OsStr::from_bytes(n).to_os_string(), e.file_type()));
    }
    for (n, t) in children {
        if t == FileType::Directory {
            remove_tree(&fd, &n)?;
        } else {
            rfs::unlinkat(&fd, n.as_os_str(), AtFlags::empty()).map_err(errno_ctx("unlink"))?;
        }
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(errno_ctx("rmdir"))
}

fn apply_entry<R: Read>(
    root: &OwnedFd,
    entry: &mut tar::Entry<'_, R>,
    dir_times: &mut Vec<(Vec<OsString>, u64)>,
) -> Result<(), UnpackError> {
    let raw = entry.path_bytes().into_owned();
    let name_str = String::from_utf8_lossy(&raw).into_owned();
    let refuse = refused(&name_str);
    let header = entry.header().clone();
    let kind = header.entry_type();
    if matches!(kind, tar::EntryType::XGlobalHeader) {
        return Ok(());
    }
    let comps = clean_path(&raw).map_err(refuse)?;
    let Some((name, parent_comps)) = comps.split_last() else {
        return Ok(()); // the layer root itself
    };
    let fmt = malformed(&name_str);
    let (mode, owner) = mode_and_owner(&header).map_err(fmt)?;
    let mtime = header.mtime().unwrap_or(0);
    let parent = walk(root, parent_comps, true, &name_str)?;
    let name_bytes = name.as_bytes();

    if whiteout(&parent, name_bytes, &name_str)? {
        return Ok(());
    }

    let xattrs = pax_xattrs(entry, &name_str)?;
    remove_existing(&parent, name, kind.is_dir())?;
    let set_xattrs = |fd: &OwnedFd| -> Result<(), UnpackError> {
        for (k, v) in &xattrs {
            rfs::fsetxattr(fd, k.as_str(), v, rfs::XattrFlags::empty())
                .map_err(errno_ctx(format!("xattr {k} on {name_str}")))?;
        }
        Ok(())
    };
    match kind {
        tar::EntryType::Directory => {
            match rfs::mkdirat(&parent, name.as_os_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_ctx(format!("mkdir {name_str}"))(e)),
            }
            let fd = walk(&parent, std::slice::from_ref(name), false, &name_str)?;
            rfs::fchown(&fd, owner.0, owner.1).map_err(errno_ctx(format!("chown {name_str}")))?;
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(errno_ctx(format!("chmod {name_str}")))?;
            set_xattrs(&fd)?;
            dir_times.push((comps.clone(), mtime));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let fd = rfs::openat(
                &parent,
                name.as_os_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(errno_ctx(format!("creating {name_str}")))?;
            let mut file = File::from(fd);
            io::copy(entry, &mut file).map_err(io_ctx(format!("writing {name_str}")))?;
            let fd = OwnedFd::from(file);
            rfs::fchown(&fd, owner.0, owner.1).map_err(errno_ctx(format!("chown {name_str}")))?;
            // After chown, which clears set-id bits.
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(errno_ctx(format!("chmod {name_str}")))?;
            set_xattrs(&fd)?;
            rfs::futimens(&fd, &times(mtime)).map_err(errno_ctx(format!("times of {name_str}")))?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| fmt("symlink without a target".into()))?
                .into_owned();
            rfs::symlinkat(OsStr::from_bytes(&target), &parent, name.as_os_str())
                .map_err(errno_ctx(format!("symlink {name_str}")))?;
            lchown(&parent, name, owner, &name_str)?;
            rfs::utimensat(
                &parent,
                name.as_os_str(),
                &times(mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(errno_ctx(format!("times of {name_str}")))?;
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| fmt("hard link without a target".into()))?
                .into_owned();
            hard_link(root, &parent, name, &target, &name_str)?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let (ft, dev) = match kind {
                tar::EntryType::Fifo => (FileType::Fifo, 0),
                tar::EntryType::Char => (FileType::CharacterDevice, device(&header)),
                _ => (FileType::BlockDevice, device(&header)),
            };
            rfs::mknodat(
                &parent,
                name.as_os_str(),
                ft,
                Mode::from_raw_mode(mode),
                dev,
            )
            .map_err(errno_ctx(format!("mknod {name_str}")))?;
            lchown(&parent, name, owner, &name_str)?;
        }
        other => return Err(fmt(format!("unsupported tar entry type {other:?}"))),
    }
    Ok(())
}

/// A whiteout entry: `.wh..wh..opq` marks its directory opaque, `.wh.NAME` hides NAME
/// from the layers below (a 0/0 character device, as overlayfs reads it). True if the
/// entry was one.
fn whiteout(parent: &OwnedFd, name_bytes: &[u8], name_str: &str) -> Result<bool, UnpackError> {
    if name_bytes == b".wh..wh..opq" {
        rfs::fsetxattr(
            parent,
            "trusted.overlay.opaque",
            b"y",
            rfs::XattrFlags::empty(),
        )
        .map_err(errno_ctx(format!("marking {name_str} opaque")))?;
        return Ok(true);
    }
    if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
        if hidden.is_empty() {
            return Err(malformed(name_str)("empty whiteout name".into()));
        }
        let hidden = OsStr::from_bytes(hidden);
        remove_existing(parent, hidden, false)?;
        rfs::mknodat(
            parent,
            hidden,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(errno_ctx(format!("whiteout {name_str}")))?;
        return Ok(true);
    }
    Ok(false)
}

/// A hard link to `target`, which an earlier entry of this layer made (never a directory,
/// never outside the root).
fn hard_link(
    root: &OwnedFd,
    parent: &OwnedFd,
    name: &OsStr,
    target: &[u8],
    name_str: &str,
) -> Result<(), UnpackError> {
    let (refuse, fmt) = (refused(name_str), malformed(name_str));
    let tcomps = clean_path(target).map_err(refuse)?;
    let Some((tname, tparent)) = tcomps.split_last() else {
        return Err(refuse("hard link to the layer root"));
    };
    let tdir = walk(root, tparent, false, name_str)?;
    let st = rfs::statat(&tdir, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
        if e == Errno::NOENT {
            fmt("hard link target is not in this layer".into())
        } else {
            errno_ctx(format!("hard link {name_str}"))(e)
        }
    })?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        return Err(refuse("hard link to a directory"));
    }
    rfs::linkat(&tdir, tname.as_os_str(), parent, name, AtFlags::empty())
        .map_err(errno_ctx(format!("hard link {name_str}")))?;
    Ok(())
}

/// A device entry's number (0:0 where the header has none).
fn device(header: &tar::Header) -> u64 {
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    rfs::makedev(major, minor)
}

/// An entry's permission bits and owner, as its header gives them.
fn mode_and_owner(header: &tar::Header) -> Result<(u32, Owner), String> {
    let mode = header.mode().map_err(|e| e.to_string())? & 0o7777;
    let uid = header.uid().map_err(|e| e.to_string())?;
    let gid = header.gid().map_err(|e| e.to_string())?;
    let uid = u32::try_from(uid).map_err(|_| "uid out of range".to_string())?;
    let gid = u32::try_from(gid).map_err(|_| "gid out of range".to_string())?;
    Ok((
        mode,
        (Some(rfs::Uid::from_raw(uid)), Some(rfs::Gid::from_raw(gid))),
    ))
}

/// Who an entry belongs to, as `fchown` takes it.
type Owner = (Option<rfs::Uid>, Option<rfs::Gid>);

fn lchown(
    parent: &OwnedFd,
    name: &OsStr,
    owner: (Option<rfs::Uid>, Option<rfs::Gid>),
    entry: &str,
) -> Result<(), UnpackError> {
    rfs::chownat(parent, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno_ctx(format!("chown {entry}")))
}

/// Extended attributes carried in PAX headers (`SCHILY.xattr.*`). overlayfs' own attributes
/// are refused: a layer must not forge whiteouts or opaque markers that way.
fn pax_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: &str,
) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let mut out = Vec::new();
    let Some(exts) = entry
        .pax_extensions()
        .map_err(io_ctx(format!("PAX header of {name}")))?
    else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext.map_err(io_ctx(format!("PAX header of {name}")))?;
        let Ok(key) = ext.key() else { continue };
        if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
            if attr.starts_with("trusted.overlay.") {
                return Err(refused(name)("layer sets an overlayfs attribute"));
            }
            out.push((attr.to_string(), ext.value_bytes().to_vec()));
        }
    }
    Ok(out)
}
