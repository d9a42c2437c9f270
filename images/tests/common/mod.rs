//! Tar building for tests, including entries the `tar` crate's builder would refuse.
#![allow(dead_code)]

/// Panics unless root: these tests chown, mknod, mount and set trusted.* xattrs, and CI
/// (root) must run them, never skip.
pub fn require_root(why: &str) {
    assert!(rustix::process::geteuid().is_root(), "{why}");
}

/// One raw ustar entry.
pub struct Raw<'a> {
    pub name: &'a str,
    pub kind: u8,
    pub data: &'a [u8],
    pub link: &'a str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub pax: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Raw<'a> {
    pub fn file(name: &'a str, data: &'a [u8]) -> Self {
        Raw {
            name,
            kind: b'0',
            data,
            link: "",
            mode: 0o644,
            uid: 0,
            gid: 0,
            pax: vec![],
        }
    }
    pub fn dir(name: &'a str) -> Self {
        Raw {
            name,
            kind: b'5',
            data: b"",
            link: "",
            mode: 0o755,
            uid: 0,
            gid: 0,
            pax: vec![],
        }
    }
    pub fn symlink(name: &'a str, target: &'a str) -> Self {
        Raw {
            name,
            kind: b'2',
            data: b"",
            link: target,
            mode: 0o777,
            uid: 0,
            gid: 0,
            pax: vec![],
        }
    }
    pub fn hardlink(name: &'a str, target: &'a str) -> Self {
        Raw {
            name,
            kind: b'1',
            data: b"",
            link: target,
            mode: 0o644,
            uid: 0,
            gid: 0,
            pax: vec![],
        }
    }
    pub fn mode(mut self, m: u32) -> Self {
        self.mode = m;
        self
    }
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn pax(mut self, k: &'a str, v: &'a [u8]) -> Self {
        self.pax.push((k, v));
        self
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

fn header(name: &str, kind: u8, size: u64, link: &str, mode: u32, uid: u32, gid: u32) -> [u8; 512] {
    let mut h = [0u8; 512];
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "test names fit ustar"
    );
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], uid as u64);
    octal(&mut h[116..124], gid as u64);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{:06o}\0 ", sum);
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
}

/// A tar stream of the entries, in order.
pub fn tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if !e.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &e.pax {
                // "<len> <key>=<value>\n", len counting itself.
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while format!("{len}").len() + rest != len {
                    len += 1;
                }
                body.extend_from_slice(format!("{len} {k}=").as_bytes());
                body.extend_from_slice(v);
                body.push(b'\n');
            }
            out.extend_from_slice(&header(
                "PaxHeader",
                b'x',
                body.len() as u64,
                "",
                0o644,
                0,
                0,
            ));
            out.extend_from_slice(&body);
            pad(&mut out);
        }
        out.extend_from_slice(&header(
            e.name,
            e.kind,
            e.data.len() as u64,
            e.link,
            e.mode,
            e.uid,
            e.gid,
        ));
        out.extend_from_slice(e.data);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// A tar of regular files `(path, bytes)`, built with the `tar` crate (well-formed archives).
pub fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn sha(bytes: &[u8]) -> String {
    skiff_images::Digest::of(bytes).to_string()
}

/// An image config for layers with these uncompressed tars.
pub fn config(arch: &str, layers: &[&[u8]], cmd: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/w", "User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// An OCI manifest for a config and (blob, media type) layers.
pub fn manifest(config: &[u8], layers: &[(&[u8], &str)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
        "layers": layers.iter().map(|(b, t)| serde_json::json!({"mediaType": t, "digest": sha(b), "size": b.len()})).collect::<Vec<_>>(),
    }))
    .unwrap()
}
