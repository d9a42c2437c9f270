//! The test image the project builds itself: Debian's static busybox with every applet
//! linked, a static `probe` compiled from `fixtures/probe.rs`, and the usual /etc files. No
//! test needs the internet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use skiff_images::Digest;

/// The applets are symlinks to this.
const BUSYBOX: &str = "/bin/busybox";

fn musl_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// Compiles the probe once per test process (cached beside the test binaries).
pub fn probe_binary() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/probe.rs");
            let exe = std::env::current_exe().expect("exe");
            let dir = exe.parent().expect("dir").join("skiff-fixtures");
            std::fs::create_dir_all(&dir).expect("fixtures dir");
            let out = dir.join("probe");
            let fresh = |o: &Path| {
                let (Ok(a), Ok(b)) = (std::fs::metadata(o), std::fs::metadata(&src)) else {
                    return false;
                };
                a.modified().ok() >= b.modified().ok()
            };
            if !fresh(&out) {
                let tmp = dir.join(format!("probe.{}", std::process::id()));
                let status = Command::new("rustc")
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .args([
                        "--edition",
                        "2021",
                        "-O",
                        "--target",
                        musl_target(),
                        "-C",
                        "target-feature=+crt-static",
                        "-o",
                    ])
                    .arg(&tmp)
                    .arg(&src)
                    .status()
                    .expect("run rustc");
                assert!(
                    status.success(),
                    "building the probe for {} failed (scripts/deps installs the target)",
                    musl_target()
                );
                std::fs::rename(&tmp, &out).expect("install probe");
            }
            out
        })
        .clone()
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("path");
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h
}

fn append_file<W: std::io::Write>(b: &mut tar::Builder<W>, path: &str, mode: u32, data: &[u8]) {
    let h = header(path, tar::EntryType::Regular, mode, data.len() as u64);
    b.append(&h, data).expect(path);
}

/// The image's single layer, uncompressed.
pub fn layer() -> Vec<u8> {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: scripts/deps installs busybox-static"
    );
    let mut b = tar::Builder::new(Vec::new());
    for (d, mode) in [
        ("bin/", 0o755),
        ("etc/", 0o755),
        ("tmp/", 0o1777),
        ("root/", 0o700),
        ("home/", 0o755),
        ("home/app/", 0o755),
        ("data/", 0o755),
    ] {
        let mut h = header(d, tar::EntryType::Directory, mode, 0);
        if d == "home/app/" {
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_cksum();
        }
        b.append(&h, &[][..]).expect("dir");
    }
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    append_file(&mut b, "bin/busybox", 0o755, &busybox);
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let mut h = header(&format!("bin/{applet}"), tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name("busybox").expect("link");
        h.set_cksum();
        b.append(&h, &[][..]).expect("applet");
    }
    let probe = std::fs::read(probe_binary()).expect("read probe");
    append_file(&mut b, "bin/probe", 0o755, &probe);
    let passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
    let group = b"root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n";
    append_file(&mut b, "etc/passwd", 0o644, passwd);
    append_file(&mut b, "etc/group", 0o644, group);
    b.into_inner().expect("tar")
}

fn config(layer: &[u8]) -> Vec<u8> {
    config_with_cmd(layer, &["sh"])
}

fn config_with_cmd(layer: &[u8], cmd: &[&str]) -> Vec<u8> {
    let arch = skiff_images::Platform::host().architecture;
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin", "IMAGE_ENV=from-image"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(layer).to_string()]},
    }))
    .expect("config")
}

/// Writes the image as an OCI image-layout directory naming it `ref_name` (a tag, or a full
/// reference), and returns the directory.
pub fn oci_layout(dir: &Path, ref_name: &str) -> PathBuf {
    let layer = layer();
    let cfg = config(&layer);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&layer).expect("gzip");
        e.finish().expect("gzip")
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&cfg).to_string(), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::of(&gz).to_string(), "size": gz.len()}],
    }))
    .expect("manifest");
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout dir");
    for b in [&gz, &cfg, &manifest] {
        std::fs::write(blobs.join(Digest::of(b).hex()), b).expect("blob");
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(&manifest).to_string(), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index.json");
    dir.to_path_buf()
}

/// The name the Kubernetes documentation's StatefulSet example (`web`) runs. Tests import
/// a stand-in under it, as an air-gapped node has its images imported: the test image
/// whose command is busybox's `httpd` serving `/usr/share/nginx/html` on port 80, which is
/// what the example needs of nginx.
pub const NGINX_STANDIN: &str = "registry.k8s.io/nginx-slim:0.21";

/// Writes the nginx stand-in ([`NGINX_STANDIN`]) as a `docker save` archive.
pub fn nginx_standin(path: &Path) {
    save_with_cmd(
        path,
        NGINX_STANDIN,
        &["httpd", "-f", "-p", "80", "-h", "/usr/share/nginx/html"],
    );
}

/// Writes the image as a `docker save` archive tagged `tag`.
pub fn docker_save(path: &Path, tag: &str) {
    save_with_cmd(path, tag, &["sh"]);
}

fn save_with_cmd(path: &Path, tag: &str, cmd: &[&str]) {
    let layer = layer();
    let cfg = config_with_cmd(&layer, cmd);
    let cfg_name = format!("{}.json", Digest::of(&cfg).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["layer1/layer.tar"]}])).expect("manifest");
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create archive"));
    for (name, data) in [
        ("layer1/layer.tar", &layer[..]),
        (&cfg_name[..], &cfg[..]),
        ("manifest.json", &manifest[..]),
    ] {
        append_file(&mut b, name, 0o644, data);
    }
    b.finish().expect("finish archive");
}

/// A tar of an OCI layout directory (what `skopeo copy ... oci-archive:` writes).
pub fn oci_archive(layout: &Path, path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create archive"));
    b.append_dir_all(".", layout).expect("archive layout");
    b.finish().expect("finish archive");
}

/// An OCI layout whose `ref_name` is a multi-platform index: this host's platform and one
/// other, whose config sets `IMAGE_ENV=other-platform` so a test can tell which was chosen.
pub fn multi_platform_layout(dir: &Path, ref_name: &str) -> PathBuf {
    oci_layout(dir, "single");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let host_manifest = index["manifests"][0].clone();
    let blobs = dir.join("blobs/sha256");
    let read = |d: &str| std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(host_manifest["digest"].as_str().unwrap())).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&read(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let host = skiff_images::Platform::host().architecture;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    cfg["architecture"] = other.into();
    cfg["config"]["Env"] = serde_json::json!(["PATH=/bin", "IMAGE_ENV=other-platform"]);
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let mut other_manifest = manifest.clone();
    other_manifest["config"]["digest"] = Digest::of(&cfg).to_string().into();
    other_manifest["config"]["size"] = cfg.len().into();
    let other_manifest = serde_json::to_vec(&other_manifest).unwrap();
    for b in [&cfg, &other_manifest] {
        std::fs::write(blobs.join(Digest::of(b).hex()), b).unwrap();
    }
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&other_manifest).to_string(), "size": other_manifest.len(), "platform": {"architecture": other, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": host_manifest["digest"], "size": host_manifest["size"], "platform": {"architecture": host, "os": "linux"}},
        ],
    }))
    .unwrap();
    std::fs::write(blobs.join(Digest::of(&list).hex()), &list).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": Digest::of(&list).to_string(), "size": list.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    dir.to_path_buf()
}
