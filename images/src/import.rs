//! Offline import: `docker save` archives, OCI image-layout archives (plain, gzip or zstd) and
//! OCI image-layout directories. The archive is read once, front to back: blobs go straight
//! into the content store (verified against their names where the names are digests), the
//! small index documents are kept in memory, and the images are named at the end.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::digest::Digest;
use crate::oci::{self, Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::store::{io_err, ImageError, ImageRecord, ImageStore};

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

const SMALL_FILES: [&str; 3] = ["manifest.json", "index.json", "oci-layout"];
const SMALL_LIMIT: u64 = 16 << 20;

/// Annotation containerd and nerdctl put the full image name in.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// OCI's reference-name annotation (a tag, or a full reference from some tools).
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

impl ImageStore {
    /// Imports an archive file or an OCI layout directory. `base_name` names images whose
    /// layout only carries a tag (`1.36` → `<base_name>:1.36`).
    pub fn import(
        &self,
        path: &Path,
        base_name: Option<&str>,
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let meta = fs::metadata(path).map_err(io_err(format!("{}", path.display())))?;
        if meta.is_dir() {
            return self.import_layout_dir(path, base_name);
        }
        let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        self.import_archive(file, base_name).map_err(|e| match e {
            ImageError::Format(m) => ImageError::Format(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    /// Imports every archive (and layout directory) in `dir` that was not imported before
    /// in its current size and mtime: the airgap directory read when the agent starts.
    /// Returns what each one gave.
    pub fn import_airgap(
        &self,
        dir: &Path,
    ) -> Vec<(std::path::PathBuf, Result<Vec<ImageRecord>, ImageError>)> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(dir) else {
            return out;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                || self.archive_seen(&path, &meta)
            {
                continue;
            }
            let result = self.import(&path, None);
            if result.is_ok() {
                if let Err(e) = self.mark_archive(&path, &meta) {
                    out.push((path, Err(e)));
                    continue;
                }
            }
            out.push((path, result));
        }
        out
    }

    /// Imports a tar stream (any compression).
    pub fn import_archive(
        &self,
        reader: impl Read,
        base_name: Option<&str>,
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let plain = crate::unpack::decompress(reader).map_err(io_err("reading archive"))?;
        let mut archive = tar::Archive::new(plain);
        let mut small: HashMap<String, Vec<u8>> = HashMap::new();
        let mut files: HashMap<String, Digest> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        for entry in archive.entries().map_err(io_err("reading archive"))? {
            let mut entry = entry.map_err(io_err("reading archive entry"))?;
            let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if kind.is_symlink() {
                        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        normalize(&format!("{dir}/{target}"))
                    } else {
                        normalize(&target)
                    };
                    links.insert(path, resolved);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            if SMALL_FILES.contains(&path.as_str()) {
                if entry.size() > SMALL_LIMIT {
                    return Err(ImageError::Format(format!("{path} is larger than 16 MiB")));
                }
                let mut buf = Vec::new();
                entry
                    .read_to_end(&mut buf)
                    .map_err(io_err(format!("reading {path}")))?;
                small.insert(path, buf);
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                let digest =
                    Digest::from_hex(hex).map_err(|e| ImageError::Format(e.to_string()))?;
                if !self.content().has(&digest) {
                    let size = entry.size();
                    self.content()
                        .write(&mut entry, Some((&digest, Some(size))))?;
                }
                files.insert(path, digest);
            } else if path.ends_with("/layer.tar")
                || (path.ends_with(".json") && !path.contains('/'))
            {
                // Legacy `docker save`: layers and configs named by IDs, not digests.
                let (digest, _) = self.content().write(&mut entry, None)?;
                files.insert(path, digest);
            }
        }
        let lookup = |p: &str| -> Result<Digest, ImageError> {
            let mut p = normalize(p);
            for _ in 0..16 {
                if let Some(d) = files.get(&p) {
                    return Ok(d.clone());
                }
                match links.get(&p) {
                    Some(t) => p = t.clone(),
                    None => break,
                }
            }
            Err(ImageError::Format(format!("archive lacks {p}")))
        };
        if let Some(manifest) = small.get("manifest.json") {
            let entries: Vec<DockerSaveEntry> = serde_json::from_slice(manifest)
                .map_err(|e| ImageError::Format(format!("manifest.json: {e}")))?;
            let mut out = Vec::new();
            for e in entries {
                let config = lookup(&e.config)?;
                let layers = e
                    .layers
                    .iter()
                    .map(|l| lookup(l))
                    .collect::<Result<Vec<_>, _>>()?;
                let manifest = self.write_manifest(&config, &layers)?;
                let tags = e.repo_tags.unwrap_or_default();
                if tags.is_empty() {
                    out.push(self.register(None, &manifest)?);
                }
                for tag in tags {
                    out.push(self.register(Some(&Reference::parse(&tag)?), &manifest)?);
                }
            }
            return Ok(out);
        }
        if let Some(index) = small.get("index.json") {
            return self.register_layout(index, base_name, &mut |d: &Descriptor| {
                if self.content().has(&d.digest) {
                    Ok(())
                } else {
                    Err(ImageError::Format(format!(
                        "archive lacks blob {}",
                        d.digest
                    )))
                }
            });
        }
        Err(ImageError::Format(
            "neither a docker save archive (manifest.json) nor an OCI image layout (index.json)"
                .into(),
        ))
    }

    fn import_layout_dir(
        &self,
        dir: &Path,
        base_name: Option<&str>,
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let index = fs::read(dir.join("index.json"))
            .map_err(io_err(format!("{}/index.json", dir.display())))?;
        self.register_layout(&index, base_name, &mut |d: &Descriptor| {
            if self.content().has(&d.digest) {
                return Ok(());
            }
            let path = dir.join("blobs/sha256").join(d.digest.hex());
            let mut f = File::open(&path).map_err(io_err(format!("{}", path.display())))?;
            self.content()
                .write(&mut f, Some((&d.digest, Some(d.size))))?;
            Ok(())
        })
    }

    /// Names the images of an OCI layout's `index.json`; `fetch` makes sure a blob is in
    /// the content store.
    fn register_layout(
        &self,
        index_json: &[u8],
        base_name: Option<&str>,
        fetch: &mut dyn FnMut(&Descriptor) -> Result<(), ImageError>,
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let index: Index = serde_json::from_slice(index_json)
            .map_err(|e| ImageError::Format(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let name = image_name(desc, base_name)?;
            let manifest = self.resolve_platform(desc, fetch)?;
            out.push(self.register(name.as_ref(), &manifest)?);
        }
        if out.is_empty() {
            return Err(ImageError::Format("index.json lists no images".into()));
        }
        Ok(out)
    }

    /// Follows an index (or manifest list) down to this platform's manifest, fetching the
    /// documents and the manifest's blobs.
    pub(crate) fn resolve_platform(
        &self,
        desc: &Descriptor,
        fetch: &mut dyn FnMut(&Descriptor) -> Result<(), ImageError>,
    ) -> Result<Digest, ImageError> {
        let mut desc = desc.clone();
        for _ in 0..4 {
            fetch(&desc)?;
            let body = self.content().read(&desc.digest)?;
            let media = if desc.media_type.is_empty() {
                oci::sniff_media_type(&body).unwrap_or_default()
            } else {
                desc.media_type.clone()
            };
            if oci::is_index(&media) {
                desc = self.select_platform(&desc.digest)?;
                continue;
            }
            let m = self.read_manifest(&desc.digest)?;
            fetch(&m.config)?;
            for l in &m.layers {
                fetch(l)?;
            }
            return Ok(desc.digest);
        }
        Err(ImageError::Format("indexes nested more than 4 deep".into()))
    }

    /// Writes an OCI manifest for a `docker save` image (whose archive has none).
    fn write_manifest(&self, config: &Digest, layers: &[Digest]) -> Result<Digest, ImageError> {
        let cfg_size = self.content().size(config).unwrap_or(0);
        let mut descs = Vec::new();
        for l in layers {
            let mut head = [0u8; 4];
            let n = self
                .content()
                .open_blob(l)?
                .read(&mut head)
                .map_err(io_err("reading layer"))?;
            let media_type = if n >= 2 && head[..2] == [0x1f, 0x8b] {
                oci::OCI_LAYER_GZIP
            } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
                oci::OCI_LAYER_ZSTD
            } else {
                oci::OCI_LAYER
            };
            descs.push(Descriptor {
                media_type: media_type.into(),
                digest: l.clone(),
                size: self.content().size(l).unwrap_or(0),
                platform: None,
                annotations: Default::default(),
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: oci::OCI_CONFIG.into(),
                digest: config.clone(),
                size: cfg_size,
                platform: None,
                annotations: Default::default(),
            },
            layers: descs,
            annotations: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        Ok(self.content().write_bytes(&bytes)?)
    }
}

/// The name an OCI layout gives an entry: containerd's full-name annotation, or the
/// ref-name annotation when it is a full reference, or `base_name:<tag>`.
fn image_name(desc: &Descriptor, base_name: Option<&str>) -> Result<Option<Reference>, ImageError> {
    if let Some(n) = desc.annotations.get(CONTAINERD_NAME) {
        return Ok(Some(Reference::parse(n)?));
    }
    let Some(r) = desc.annotations.get(OCI_REF_NAME) else {
        return Ok(match base_name {
            Some(b) => Some(Reference::parse(b)?),
            None => None,
        });
    };
    if r.contains('/') || r.contains(':') || r.contains('@') {
        return Ok(Some(Reference::parse(r)?));
    }
    match base_name {
        Some(b) => Ok(Some(Reference::parse(&format!(
            "{}:{r}",
            Reference::parse(b)?.name()
        ))?)),
        // A bare tag: Docker reads `busybox` as a name, so do the same.
        None => Ok(Some(Reference::parse(r)?)),
    }
}

/// `./a//b/../c` → `a/c` (archive-internal paths only; nothing here touches the filesystem).
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_normalize() {
        assert_eq!(normalize("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalize("../../x"), "x");
    }

    #[test]
    fn layout_names() {
        let mut d = Descriptor {
            media_type: oci::OCI_MANIFEST.into(),
            digest: Digest::of(b"x"),
            size: 1,
            platform: None,
            annotations: Default::default(),
        };
        assert_eq!(image_name(&d, None).unwrap(), None);
        d.annotations.insert(OCI_REF_NAME.into(), "1.36".into());
        assert_eq!(
            image_name(&d, Some("busybox"))
                .unwrap()
                .unwrap()
                .to_string(),
            "docker.io/library/busybox:1.36"
        );
        d.annotations
            .insert(OCI_REF_NAME.into(), "localhost:5000/app:v1".into());
        assert_eq!(
            image_name(&d, None).unwrap().unwrap().to_string(),
            "localhost:5000/app:v1"
        );
        d.annotations.insert(
            CONTAINERD_NAME.into(),
            "docker.io/library/busybox:1.36".into(),
        );
        assert_eq!(
            image_name(&d, None).unwrap().unwrap().familiar(),
            "busybox:1.36"
        );
    }
}
