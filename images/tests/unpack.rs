//! Layer application: overlay-format whiteouts, metadata, compression, and crafted layers
//! that try to write outside their directory. Needs root (chown, mknod, trusted xattrs).

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{gzip, require_root, tar, zstd, Raw};
use skiff_images::digest::Digest;
use skiff_images::unpack::{apply_layer, UnpackError};

#[test]
fn applies_files_dirs_links_whiteouts_and_metadata() {
    require_root("these tests need root (chown, mknod, trusted.* xattrs); CI runs them as root");
    let dir = tempfile::tempdir().unwrap();
    let layer = tar(&[
        Raw::dir("etc/"),
        Raw::file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        Raw::file("./bin/tool", b"#!/bin/sh\n")
            .mode(0o4755)
            .owner(1000, 1000),
        Raw::symlink("bin/sh", "/bin/busybox"),
        Raw::hardlink("bin/tool2", "bin/tool"),
        Raw::dir("var/cache/").mode(0o700),
        Raw::file("var/.wh..wh..opq", b""),
        Raw::file("usr/.wh.gone", b""),
        Raw::file("data", b"x").pax("SCHILY.xattr.user.note", b"hello"),
    ]);
    let applied = apply_layer(&layer[..], dir.path(), None).unwrap();
    assert_eq!(applied.diff_id, Digest::of(&layer));
    assert_eq!(applied.entries, 9);
    let root = dir.path();
    assert_eq!(
        fs::read(root.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    let tool = fs::metadata(root.join("bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755, "set-uid survives chown");
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(tool.mtime(), 1_700_000_000);
    assert_eq!(
        fs::metadata(root.join("bin/tool2")).unwrap().ino(),
        tool.ino(),
        "hard link"
    );
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::metadata(root.join("var/cache")).unwrap().mode() & 0o7777,
        0o700
    );
    let opaque =
        rustix::fs::getxattr(root.join("var"), "trusted.overlay.opaque", &mut [0u8; 8]).unwrap();
    assert_eq!(opaque, 1);
    let wh = fs::symlink_metadata(root.join("usr/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert!(!root.join("usr/.wh.gone").exists());
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(root.join("data"), "user.note", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
}

#[test]
fn compressed_layers_and_diff_id_check() {
    require_root("these tests need root (chown, mknod, trusted.* xattrs); CI runs them as root");
    let layer = tar(&[Raw::file("a", b"alpha"), Raw::file("b", b"beta")]);
    let diff = Digest::of(&layer);
    for (what, bytes) in [("gzip", gzip(&layer)), ("zstd", zstd(&layer))] {
        let dir = tempfile::tempdir().unwrap();
        let applied = apply_layer(&bytes[..], dir.path(), Some(&diff)).unwrap();
        assert_eq!(applied.diff_id, diff, "{what}");
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"beta", "{what}");
    }
    let dir = tempfile::tempdir().unwrap();
    let err = apply_layer(&layer[..], dir.path(), Some(&Digest::of(b"other"))).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
}

/// Each crafted layer is refused, and nothing appears outside the layer directory.
#[test]
fn crafted_layers_cannot_escape() {
    require_root("these tests need root (chown, mknod, trusted.* xattrs); CI runs them as root");
    let names = [
        "dot-dot",
        "nested dot-dot",
        "absolute",
        "through absolute symlink",
        "through relative symlink",
        "symlink replaced dir chain",
        "hard link climbing",
        "hard link through symlink",
        "forged opaque marker",
    ];
    for (i, what) in names.iter().enumerate() {
        let base = tempfile::tempdir().unwrap();
        let outside = base.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"keep").unwrap();
        let snap = base.path().join("snap");
        fs::create_dir(&snap).unwrap();
        let out = outside.display().to_string();
        let layer = match i {
            0 => tar(&[Raw::file("../escaped", b"x")]),
            1 => tar(&[Raw::dir("a/"), Raw::file("a/../../escaped", b"x")]),
            2 => tar(&[Raw::file(&format!("{out}/escaped"), b"x")]),
            3 => tar(&[Raw::symlink("link", &out), Raw::file("link/escaped", b"x")]),
            4 => tar(&[
                Raw::symlink("up", ".."),
                Raw::file("up/outside/escaped", b"x"),
            ]),
            5 => tar(&[
                Raw::dir("d/"),
                Raw::symlink("d/e", "../.."),
                Raw::dir("d/e/outside/x/"),
            ]),
            6 => tar(&[Raw::hardlink("h", "../outside/secret")]),
            7 => tar(&[Raw::symlink("l", &out), Raw::hardlink("h", "l/secret")]),
            _ => tar(&[Raw::dir("x/").pax("SCHILY.xattr.trusted.overlay.opaque", b"y")]),
        };
        let err = apply_layer(&layer[..], &snap, None).expect_err(what);
        assert!(
            matches!(err, UnpackError::Unsafe { .. }),
            "{what}: expected a refusal, got {err}"
        );
        let listing: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            listing,
            vec![std::ffi::OsString::from("secret")],
            "{what}: wrote outside"
        );
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"keep", "{what}");
        assert!(!base.path().join("escaped").exists(), "{what}");
    }
}
