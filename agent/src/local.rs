//! The agent's own copy of what it runs: the pods bound to the node and the ConfigMaps
//! and Secrets they use, under `<data-dir>/state/`. Written only when they change (status
//! and resourceVersion are left out, so a status update writes nothing); read at start, so
//! a node cut off from its coordinator brings its pods back after a restart.

use serde_json::Value;
use skiff_api::pod::Pod;
use skiff_api::Kind;
use skiff_transport::files::write_private;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Reads a JSON state file; `None` when it is absent or unreadable. A file that is empty,
/// truncated or garbage (a crash or a power cut mid-write on a file system that lost the
/// write, a bad SD card) never stops the agent: it is set aside as `<name>.corrupt` with a
/// warning naming it, and what it described is rebuilt from the rest and the coordinator.
pub fn read_or_set_aside<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read agent state");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".corrupt");
            let moved = fs::rename(path, &aside);
            tracing::warn!(
                file = %path.display(),
                error = %e,
                set_aside = moved.is_ok(),
                "unreadable agent state: set aside as {}; rebuilding what it held",
                PathBuf::from(&aside).display()
            );
            None
        }
    }
}

/// The on-disk state.
pub struct Local {
    pods: PathBuf,
    configs: PathBuf,
    /// Secrets: on a tmpfs the agent mounts ([`Local::secrets_in_memory`]), never on the
    /// disk (an SD card pulled from a board must not reveal them). They outlive the
    /// agent's restarts, not the machine's: after a power cut or reboot, a pod that
    /// needs a Secret waits for the coordinator (docs/threat-model.md).
    secrets: PathBuf,
    /// Writes that failed (a full disk), newest content by file: [`Local::retry`] makes
    /// them once space is back. The file on disk keeps its previous content meanwhile.
    unwritten: std::sync::Mutex<std::collections::BTreeMap<PathBuf, Vec<u8>>>,
}

/// What a pod is stored as: its identity and spec, without the parts that change
/// without a change in what should run.
fn stored_pod(pod: &Pod) -> Vec<u8> {
    let mut p = pod.clone();
    p.status = None;
    p.metadata.resource_version = None;
    serde_json::to_vec(&p).unwrap_or_default()
}

fn stored_config(v: &Value) -> Vec<u8> {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Writes `bytes` unless the file already holds them; true when it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_private(path, bytes)?;
    Ok(true)
}

/// The `.json` files of `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    out
}

impl Local {
    /// Opens (creating) `<data-dir>/state`.
    pub fn open(data_dir: &Path) -> io::Result<Local> {
        let root = data_dir.join("state");
        let l = Local {
            pods: root.join("pods"),
            configs: root.join("configs"),
            secrets: root.join("secrets"),
            unwritten: Default::default(),
        };
        for d in [&root, &l.pods, &l.configs, &l.secrets] {
            fs::create_dir_all(d)?;
            fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        }
        Ok(l)
    }

    fn pod_path(&self, uid: &str) -> PathBuf {
        self.pods.join(format!("{uid}.json"))
    }

    /// Keeps a pod; true when its stored form changed.
    pub fn save_pod(&self, pod: &Pod) -> io::Result<bool> {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        if uid.is_empty() || uid.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pod without a uid",
            ));
        }
        self.write(self.pod_path(uid), stored_pod(pod))
    }

    /// Writes a state file unless it holds `bytes` already; a failed write is kept to be
    /// made again by [`Local::retry`] (and a newer one replaces it).
    fn write(&self, path: PathBuf, bytes: Vec<u8>) -> io::Result<bool> {
        let r = write_if_changed(&path, &bytes);
        let mut unwritten = self.unwritten.lock().unwrap();
        match r {
            Ok(_) => {
                unwritten.remove(&path);
            }
            Err(_) => {
                unwritten.insert(path, bytes);
            }
        }
        r
    }

    /// Whether writes that failed wait to be made again.
    pub fn has_unwritten(&self) -> bool {
        !self.unwritten.lock().unwrap().is_empty()
    }

    /// Makes the writes that failed (those that fail again wait for the next try).
    pub fn retry(&self) {
        let mut unwritten = self.unwritten.lock().unwrap();
        unwritten.retain(|path, bytes| match write_if_changed(path, bytes) {
            Ok(_) => {
                tracing::info!(file = %path.display(), "agent state written after an earlier failure");
                false
            }
            Err(_) => true,
        });
    }

    fn forget_unwritten(&self, path: &Path) {
        self.unwritten.lock().unwrap().remove(path);
    }

    /// Forgets a pod.
    pub fn remove_pod(&self, uid: &str) -> io::Result<()> {
        self.forget_unwritten(&self.pod_path(uid));
        match fs::remove_file(self.pod_path(uid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every kept pod, and the uids of those whose files were unreadable (set aside: the
    /// coordinator hands those pods back, and what they run is kept for them until it has).
    pub fn pods(&self) -> (Vec<Pod>, Vec<String>) {
        let mut lost = Vec::new();
        let mut pods = Vec::new();
        for p in json_files(&self.pods) {
            match read_or_set_aside(&p) {
                Some(pod) => pods.push(pod),
                None => lost.extend(p.file_stem().and_then(|s| s.to_str()).map(String::from)),
            }
        }
        (pods, lost)
    }

    fn config_path(&self, kind: Kind, ns: &str, name: &str) -> PathBuf {
        let dir = if kind == Kind::Secret {
            &self.secrets
        } else {
            &self.configs
        };
        dir.join(format!("{}.{ns}.{name}.json", kind.info().name))
    }

    /// Mounts a tmpfs for Secrets (unless one is there: the agent restarted, the machine
    /// did not) and moves there any Secret an earlier version kept on the disk.
    pub fn secrets_in_memory(&self) -> io::Result<()> {
        use nix::mount::{mount, MsFlags};
        use std::os::unix::fs::MetadataExt;
        let parent = self.secrets.parent().unwrap_or(&self.secrets);
        if fs::metadata(&self.secrets)?.dev() == fs::metadata(parent)?.dev() {
            mount(
                Some("tmpfs"),
                &self.secrets,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=0700,size=16m"),
            )
            .map_err(|e| {
                io::Error::other(format!(
                    "mounting a tmpfs for Secrets at {}: {e} (the agent runs as root)",
                    self.secrets.display()
                ))
            })?;
        }
        for p in json_files(&self.configs) {
            let Some(file) = p.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            if file.starts_with("Secret.") {
                if let Ok(bytes) = fs::read(&p) {
                    write_private(&self.secrets.join(file), &bytes)?;
                }
                fs::remove_file(&p)?;
                tracing::info!(file, "moved a Secret off the disk");
            }
        }
        Ok(())
    }

    /// Keeps a ConfigMap or Secret (JSON); true when it changed.
    pub fn save_config(&self, kind: Kind, ns: &str, name: &str, v: &Value) -> io::Result<bool> {
        self.write(self.config_path(kind, ns, name), stored_config(v))
    }

    /// Forgets a ConfigMap or Secret.
    pub fn remove_config(&self, kind: Kind, ns: &str, name: &str) -> io::Result<()> {
        self.forget_unwritten(&self.config_path(kind, ns, name));
        match fs::remove_file(self.config_path(kind, ns, name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every kept ConfigMap and Secret: (kind, namespace, name, JSON).
    pub fn configs(&self) -> Vec<(Kind, String, String, Value)> {
        json_files(&self.configs)
            .into_iter()
            .chain(json_files(&self.secrets))
            .filter_map(|p| {
                let v: Value = read_or_set_aside(&p)?;
                let kind = match p.file_name()?.to_str()?.split('.').next()? {
                    "ConfigMap" => Kind::ConfigMap,
                    "Secret" => Kind::Secret,
                    _ => return None,
                };
                let ns = v.pointer("/metadata/namespace")?.as_str()?.to_string();
                let name = v.pointer("/metadata/name")?.as_str()?.to_string();
                Some((kind, ns, name, v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_changes() {
        let dir = std::env::temp_dir().join(format!("skiff-local-{}", std::process::id()));
        let l = Local::open(&dir).unwrap();
        let mut pod: Pod = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","uid":"u1","resourceVersion":"5"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#,
        )
        .unwrap();
        assert!(l.save_pod(&pod).unwrap());
        pod.metadata.resource_version = Some("6".into());
        pod.status = Some(Default::default());
        assert!(!l.save_pod(&pod).unwrap(), "a status change writes nothing");
        pod.metadata.labels.insert("x".into(), "y".into());
        assert!(l.save_pod(&pod).unwrap());
        assert_eq!(l.pods().0.len(), 1);
        assert_eq!(
            l.pods().0[0].metadata.labels.get("x").map(String::as_str),
            Some("y")
        );
        l.remove_pod("u1").unwrap();
        assert!(l.pods().0.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
