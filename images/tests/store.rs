//! The image store end to end on real files: imports of both archive formats, platform
//! selection, overlay and copied root filesystems, garbage collection. Needs root.

mod common;

use std::fs;
use std::os::unix::fs::FileTypeExt;

use common::{archive, config, gzip, manifest, require_root, sha, tar, zstd, Raw};
use skiff_images::oci::Platform;
use skiff_images::{ImageError, ImageStore, RootfsKind};

fn amd64() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    }
}

/// Two layers: the second deletes a file, hides a directory's old contents and adds one.
fn layers() -> (Vec<u8>, Vec<u8>) {
    let base = tar(&[
        Raw::dir("etc/"),
        Raw::file("etc/keep", b"keep"),
        Raw::file("etc/gone", b"gone"),
        Raw::dir("opt/"),
        Raw::file("opt/old", b"old"),
        Raw::symlink("bin", "usr/bin"),
    ]);
    let top = tar(&[
        Raw::file("etc/.wh.gone", b""),
        Raw::dir("opt/"),
        Raw::file("opt/.wh..wh..opq", b""),
        Raw::file("opt/new", b"new"),
        Raw::file("etc/added", b"added"),
    ]);
    (base, top)
}

fn oci_layout(name_annotation: &str, arch_variants: &[&str]) -> Vec<u8> {
    let (base, top) = layers();
    let gz = gzip(&base);
    let zs = zstd(&top);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (format!("blobs/sha256/{}", &sha(&gz)[7..]), gz.clone()),
        (format!("blobs/sha256/{}", &sha(&zs)[7..]), zs.clone()),
    ];
    let mut entries = Vec::new();
    for arch in arch_variants {
        let cfg = config(arch, &[&base, &top], &["sh", "-c", arch]);
        let man = manifest(
            &cfg,
            &[
                (&gz, "application/vnd.oci.image.layer.v1.tar+gzip"),
                (&zs, "application/vnd.oci.image.layer.v1.tar+zstd"),
            ],
        );
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&man), "size": man.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
        files.push((format!("blobs/sha256/{}", &sha(&cfg)[7..]), cfg));
        files.push((format!("blobs/sha256/{}", &sha(&man)[7..]), man));
    }
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries,
    }))
    .unwrap();
    files.push((format!("blobs/sha256/{}", &sha(&list)[7..]), list.clone()));
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha(&list), "size": list.len(),
            "annotations": {"org.opencontainers.image.ref.name": name_annotation},
        }],
    }))
    .unwrap();
    files.push(("index.json".into(), index));
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    archive(&refs)
}

fn docker_save() -> Vec<u8> {
    let (base, top) = layers();
    let cfg = config("amd64", &[&base, &top], &["echo", "docker"]);
    let cfg_name = format!("{}.json", &sha(&cfg)[7..]);
    let man = serde_json::to_vec(&serde_json::json!([{
        "Config": cfg_name,
        "RepoTags": ["busybox:1.36", "localhost:5000/tools/bb:v1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]))
    .unwrap();
    archive(&[
        ("aaa/VERSION", b"1.0"),
        ("aaa/layer.tar", &base),
        ("bbb/layer.tar", &top),
        (&cfg_name, &cfg),
        ("manifest.json", &man),
        ("repositories", b"{}"),
    ])
}

#[test]
fn docker_save_import_names_and_defaults() {
    require_root("needs root (overlay mounts, whiteouts); CI runs as root");
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open_for(dir.path(), amd64()).unwrap();
    let file = dir.path().join("img.tar");
    fs::write(&file, docker_save()).unwrap();
    let recs = store.import(&file, None).unwrap();
    assert_eq!(recs.len(), 2);
    for name in [
        "busybox:1.36",
        "docker.io/library/busybox:1.36",
        "localhost:5000/tools/bb:v1",
    ] {
        let rec = store
            .get(name)
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(rec.layers.len(), 2);
    }
    let rec = store.get("busybox:1.36").unwrap();
    assert_eq!(rec.familiar_name(), "busybox:1.36");
    assert!(
        store.get(&rec.id().hex()[..12]).is_some(),
        "found by short id"
    );
    let cfg = store.config(&rec).unwrap();
    assert_eq!(
        cfg.config.cmd.as_deref(),
        Some(&["echo".to_string(), "docker".to_string()][..])
    );
    assert_eq!(cfg.config.working_dir.as_deref(), Some("/w"));
    assert_eq!(cfg.config.user.as_deref(), Some("1000"));
    // Reopening keeps the names.
    drop(store);
    let store = ImageStore::open_for(dir.path(), amd64()).unwrap();
    assert_eq!(store.list().len(), 2);
}

#[test]
fn oci_archive_import_picks_the_platform() {
    require_root("needs root (overlay mounts, whiteouts); CI runs as root");
    let layout = oci_layout("busybox:1.36", &["arm64", "amd64"]);
    for (platform, want) in [
        (amd64(), "amd64"),
        (
            Platform {
                architecture: "arm64".into(),
                os: "linux".into(),
                variant: Some("v8".into()),
            },
            "arm64",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open_for(dir.path(), platform).unwrap();
        let recs = store.import_archive(&layout[..], None).unwrap();
        assert_eq!(recs.len(), 1);
        let cfg = store.config(&recs[0]).unwrap();
        assert_eq!(cfg.architecture, want);
        assert_eq!(cfg.config.cmd.unwrap()[2], want);
        assert!(store.get("docker.io/library/busybox:1.36").is_some());
    }
    // A platform the archive lacks is refused, naming both.
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open_for(
        dir.path(),
        Platform {
            architecture: "riscv64".into(),
            os: "linux".into(),
            variant: None,
        },
    )
    .unwrap();
    let err = store.import_archive(&layout[..], None).unwrap_err();
    assert!(matches!(err, ImageError::Platform { .. }), "{err}");
    assert!(err.to_string().contains("linux/riscv64"), "{err}");
    // Gzipped archive, and an OCI layout directory.
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open_for(dir.path(), amd64()).unwrap();
    store.import_archive(&gzip(&layout)[..], Some("x")).unwrap();
    let unpacked = dir.path().join("layout");
    fs::create_dir(&unpacked).unwrap();
    tar::Archive::new(&layout[..]).unpack(&unpacked).unwrap();
    let store2 = ImageStore::open_for(&dir.path().join("s2"), amd64()).unwrap();
    let recs = store2.import(&unpacked, None).unwrap();
    assert_eq!(recs[0].name, "docker.io/library/busybox:1.36");
}

#[test]
fn bad_archives_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open_for(dir.path(), amd64()).unwrap();
    let err = store
        .import_archive(&archive(&[("hello.txt", b"hi")])[..], None)
        .unwrap_err();
    assert!(
        err.to_string().contains("neither a docker save archive"),
        "{err}"
    );
    // A blob whose content does not match its name.
    let bad = archive(&[
        (&format!("blobs/sha256/{}", &sha(b"a")[7..]), b"b"),
        ("index.json", b"{}"),
    ]);
    let err = store.import_archive(&bad[..], None).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(store.content().list().unwrap().is_empty(), "nothing stored");
}

#[test]
fn rootfs_overlay_and_copy_agree_and_gc_keeps_what_is_used() {
    require_root("needs root (overlay mounts, whiteouts); CI runs as root");
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open_for(dir.path(), amd64()).unwrap();
    let rec = store
        .import_archive(&oci_layout("busybox:1.36", &["amd64"])[..], None)
        .unwrap()
        .remove(0);
    let copy_store = ImageStore::open_for(dir.path(), amd64())
        .unwrap()
        .force_copy_rootfs(true);
    let a = store.prepare_rootfs("c1", &rec).unwrap();
    let b = copy_store.prepare_rootfs("c2", &rec).unwrap();
    assert_eq!(a.kind, RootfsKind::Overlay);
    assert_eq!(b.kind, RootfsKind::Copy);
    for fs_root in [&a.path, &b.path] {
        assert_eq!(fs::read(fs_root.join("etc/keep")).unwrap(), b"keep");
        assert_eq!(fs::read(fs_root.join("etc/added")).unwrap(), b"added");
        assert!(
            !fs_root.join("etc/gone").exists(),
            "whiteout hides the file"
        );
        assert!(
            !fs_root.join("opt/old").exists(),
            "opaque dir hides old contents"
        );
        assert_eq!(fs::read(fs_root.join("opt/new")).unwrap(), b"new");
        assert_eq!(
            fs::read_link(fs_root.join("bin")).unwrap().to_str(),
            Some("usr/bin")
        );
        // Writable, and private to the container.
        fs::write(fs_root.join("etc/keep"), b"changed").unwrap();
    }
    let snap_etc = dir.path().join("snapshots");
    let mut saw_whiteout = false;
    for e in fs::read_dir(&snap_etc).unwrap() {
        let p = e.unwrap().path().join("fs/etc");
        if let Ok(m) = fs::symlink_metadata(p.join("gone")) {
            saw_whiteout |= m.file_type().is_char_device();
        }
        if p.join("keep").exists() {
            assert_eq!(
                fs::read(p.join("keep")).unwrap(),
                b"keep",
                "snapshots stay untouched"
            );
        }
    }
    assert!(saw_whiteout);
    // The snapshot is shared: a second container unpacks nothing new.
    let before = fs::read_dir(&snap_etc).unwrap().count();
    let c3 = store.prepare_rootfs("c3", &rec).unwrap();
    assert_eq!(fs::read(c3.path.join("etc/keep")).unwrap(), b"keep");
    assert_eq!(fs::read_dir(&snap_etc).unwrap().count(), before);
    // Untagged but in use: blobs go, snapshots stay.
    store.remove("busybox:1.36").unwrap();
    let report = store.gc().unwrap();
    assert!(report.blobs >= 4, "{report:?}");
    assert_eq!(report.snapshots, 0, "{report:?}");
    for key in ["c1", "c2", "c3"] {
        store.remove_rootfs(key).unwrap();
    }
    let report = store.gc().unwrap();
    assert_eq!(report.snapshots, 2, "{report:?}");
    assert!(store.content().list().unwrap().is_empty());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.path().display().to_string()),
        "no mount left"
    );
}

#[test]
fn airgap_directory_imports_once() {
    require_root("needs root (overlay mounts, whiteouts); CI runs as root");
    let dir = tempfile::tempdir().unwrap();
    let airgap = dir.path().join("images");
    fs::create_dir(&airgap).unwrap();
    fs::write(airgap.join("a.tar"), docker_save()).unwrap();
    fs::write(
        airgap.join("b.tar.gz"),
        gzip(&oci_layout("localhost:5000/b:1", &["amd64"])),
    )
    .unwrap();
    fs::write(airgap.join("junk.tar"), b"not a tar").unwrap();
    let store = ImageStore::open_for(&dir.path().join("content"), amd64()).unwrap();
    let results = store.import_airgap(&airgap);
    assert_eq!(results.len(), 3);
    assert!(results[0].1.is_ok() && results[1].1.is_ok());
    assert!(results[2].1.is_err());
    assert!(store.get("localhost:5000/b:1").is_some());
    // Second start: only the broken archive is tried again.
    let again = store.import_airgap(&airgap);
    assert_eq!(again.len(), 1);
}
