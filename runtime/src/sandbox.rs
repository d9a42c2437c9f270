//! Pod sandboxes: namespaces held by bind mounts, `/etc/hosts`, `/etc/resolv.conf`,
//! `/dev/shm`, volumes (emptyDir, hostPath, projected ConfigMaps and Secrets).

use super::*;

impl Runtime {
    /// Creates a pod sandbox: namespaces, hosts/hostname/resolv.conf, `/dev/shm`, volumes.
    pub fn create_sandbox(&self, cfg: &SandboxConfig) -> Result<(), RuntimeError> {
        valid_id("sandbox", &cfg.id)?;
        let dir = self.sandbox_dir(&cfg.id);
        if dir.exists() {
            return Err(RuntimeError::AlreadyExists(format!("sandbox {}", cfg.id)));
        }
        let result = self.create_sandbox_inner(cfg, &dir);
        if result.is_err() {
            let _ = self.teardown_sandbox_dir(&cfg.id);
        }
        result
    }

    fn create_sandbox_inner(&self, cfg: &SandboxConfig, dir: &Path) -> Result<(), RuntimeError> {
        let ns = dir.join("ns");
        fs::create_dir_all(&ns).map_err(io_err("creating sandbox"))?;
        let kinds: &[&str] = if cfg.host_network {
            &["ipc"]
        } else {
            &["ipc", "net", "uts"]
        };
        for k in kinds {
            fs::File::create(ns.join(k)).map_err(io_err("creating namespace mount point"))?;
        }
        let hostname = if cfg.host_network {
            fs::read_to_string("/etc/hostname")
                .unwrap_or_default()
                .trim()
                .to_string()
        } else {
            cfg.hostname.clone()
        };
        fs::write(dir.join("hostname"), format!("{hostname}\n"))
            .map_err(io_err("writing hostname"))?;
        fs::write(dir.join("hosts"), hosts_file(cfg)).map_err(io_err("writing hosts"))?;
        fs::write(dir.join("resolv.conf"), resolv_conf(cfg))
            .map_err(io_err("writing resolv.conf"))?;
        let shm = dir.join("shm");
        fs::create_dir_all(&shm).map_err(io_err("creating shm"))?;
        mount_tmpfs(&shm, cfg.shm_size.unwrap_or(64 << 20), 0o1777)?;
        let mut volumes = BTreeMap::new();
        for v in &cfg.volumes {
            valid_id("volume", &v.name)?;
            let vdir = dir.join("volumes").join(&v.name);
            let entry = match &v.source {
                VolumeSource::EmptyDir { memory, size_limit } => {
                    fs::create_dir_all(&vdir).map_err(io_err("creating emptyDir"))?;
                    fs::set_permissions(&vdir, fs::Permissions::from_mode(0o777))
                        .map_err(io_err("chmod emptyDir"))?;
                    if *memory {
                        // Kubernetes: a memory emptyDir without sizeLimit is bounded by the node.
                        mount_tmpfs(&vdir, size_limit.unwrap_or(0), 0o777)?;
                    }
                    (vdir, *memory)
                }
                VolumeSource::HostPath { path, kind } => {
                    host_path(path, *kind)?;
                    (path.clone(), false)
                }
                VolumeSource::Files {
                    files,
                    default_mode,
                    tmpfs,
                } => {
                    fs::create_dir_all(&vdir).map_err(io_err("creating projected volume"))?;
                    if *tmpfs {
                        mount_tmpfs(&vdir, 0, 0o755)?;
                    }
                    write_generation(&vdir, files, *default_mode)?;
                    (vdir, *tmpfs)
                }
            };
            volumes.insert(v.name.clone(), entry);
        }
        let record = SandboxRecord {
            id: cfg.id.clone(),
            hostname,
            host_network: cfg.host_network,
            volumes,
            created_at: now(),
        };
        state::write_json(&dir.join("record.json"), &record)
            .map_err(io_err("writing sandbox record"))?;
        self.call(
            &Request::CreateSandbox {
                ns_dir: ns,
                hostname: cfg.hostname.clone(),
                host_network: cfg.host_network,
            },
            &[],
        )?;
        Ok(())
    }

    /// Why a sandbox is not whole, if it is not: a namespace no longer held by its bind
    /// mount (after a boot, every one), or its `/dev/shm` or a memory volume no longer
    /// mounted. `Ok(None)`: whole. `Err(NotFound)`: there is no such sandbox.
    pub fn sandbox_problem(&self, id: &str) -> Result<Option<String>, RuntimeError> {
        valid_id("sandbox", id)?;
        let (rec, paths) = match self.sandbox_paths(id) {
            Ok(r) => r,
            // Garbled: made anew like any other broken sandbox.
            Err(e) if e.garbled().is_some() => {
                return Ok(Some(format!("its record is unreadable ({e})")));
            }
            Err(e) => return Err(e),
        };
        let kinds: &[&str] = if rec.host_network {
            &["ipc"]
        } else {
            &["ipc", "net", "uts"]
        };
        for k in kinds {
            if let Some(why) = not_mounted(&paths.ns_dir.join(k), NSFS_MAGIC) {
                return Ok(Some(format!("its {k} namespace {why}")));
            }
        }
        if let Some(why) = not_mounted(&paths.shm, TMPFS_MAGIC) {
            return Ok(Some(format!("its /dev/shm {why}")));
        }
        for (name, (dir, tmpfs)) in &rec.volumes {
            if *tmpfs {
                if let Some(why) = not_mounted(dir, TMPFS_MAGIC) {
                    return Ok(Some(format!("its volume {name} {why}")));
                }
            }
        }
        Ok(None)
    }

    /// Makes a broken sandbox anew in place: new namespaces, `/dev/shm`, hosts files,
    /// projected and memory volumes. Its containers must be stopped first. What
    /// Kubernetes keeps across a new sandbox of the same pod stays: emptyDir volumes on
    /// disk (and the containers' records and logs, which are not the sandbox's).
    pub fn recreate_sandbox(&self, cfg: &SandboxConfig) -> Result<(), RuntimeError> {
        valid_id("sandbox", &cfg.id)?;
        let dir = self.sandbox_dir(&cfg.id);
        let volumes = dir.join("volumes");
        let keep: Vec<PathBuf> = cfg
            .volumes
            .iter()
            .filter(|v| matches!(v.source, VolumeSource::EmptyDir { memory: false, .. }))
            .map(|v| volumes.join(&v.name))
            .collect();
        unmount_below(&dir)?;
        if dir.exists() {
            for e in fs::read_dir(&dir).map_err(io_err("listing the sandbox"))? {
                let path = e.map_err(io_err("listing the sandbox"))?.path();
                if path == volumes {
                    for v in fs::read_dir(&volumes).map_err(io_err("listing volumes"))? {
                        let v = v.map_err(io_err("listing volumes"))?.path();
                        if !keep.contains(&v) {
                            remove_path(&v)?;
                        }
                    }
                } else {
                    remove_path(&path)?;
                }
            }
        }
        self.create_sandbox_inner(cfg, &dir)
    }

    /// Replaces the files of a sandbox's projected (ConfigMap/Secret) volume while its
    /// containers run: they see the old set or the new one, never a mix (as Kubernetes'
    /// atomic writer: a new generation directory, then one rename of the `..data` link).
    pub fn update_files(
        &self,
        sandbox: &str,
        volume: &str,
        files: &[ProjectedFile],
        default_mode: u32,
    ) -> Result<(), RuntimeError> {
        let (rec, _) = self.sandbox_paths(sandbox)?;
        let (dir, _) = rec
            .volumes
            .get(volume)
            .ok_or_else(|| RuntimeError::NotFound(format!("volume {volume} of {sandbox}")))?;
        write_generation(dir, files, default_mode)
    }

    /// The network namespace file of a sandbox (for the caller's network setup).
    pub fn sandbox_netns(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("ns/net")
    }

    /// Ids of the sandboxes on disk.
    pub fn sandboxes(&self) -> Result<Vec<String>, RuntimeError> {
        let mut out = Vec::new();
        for e in
            fs::read_dir(self.cfg.run_dir.join("sandboxes")).map_err(io_err("listing sandboxes"))?
        {
            out.push(
                e.map_err(io_err("listing sandboxes"))?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        out.sort();
        Ok(out)
    }

    /// Removes a sandbox and every container in it (killing those still running).
    pub fn remove_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        valid_id("sandbox", id)?;
        for c in self.container_ids()? {
            if self.record(&c).is_ok_and(|r| r.sandbox == id) {
                self.remove_container(&c)?;
            }
        }
        self.teardown_sandbox_dir(id)?;
        cgroups::remove(&format!("{}/pod{id}", self.cfg.cgroup_parent))
            .map_err(RuntimeError::Helper)?;
        Ok(())
    }

    fn teardown_sandbox_dir(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.sandbox_dir(id);
        if !dir.exists() {
            return Ok(());
        }
        unmount_below(&dir)?;
        fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))
    }

    pub(crate) fn sandbox_paths(
        &self,
        id: &str,
    ) -> Result<(SandboxRecord, SandboxPaths), RuntimeError> {
        let dir = self.sandbox_dir(id);
        let rec: SandboxRecord = state::read_json(&dir.join("record.json"))
            .map_err(io_err("reading sandbox record"))?
            .ok_or_else(|| RuntimeError::NotFound(format!("sandbox {id}")))?;
        let paths = SandboxPaths {
            ns_dir: dir.join("ns"),
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
            shm: dir.join("shm"),
            volumes: rec
                .volumes
                .iter()
                .map(|(k, (p, _))| (k.clone(), p.clone()))
                .collect(),
        };
        Ok((rec, paths))
    }
}

fn mount_tmpfs(dir: &Path, size: u64, mode: u32) -> Result<(), RuntimeError> {
    let mut data = format!("mode={mode:o}");
    if size > 0 {
        data.push_str(&format!(",size={size}"));
    }
    let data = std::ffi::CString::new(data).expect("no NUL");
    rustix::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(errno(format!("mounting tmpfs on {}", dir.display())))
}

/// `statfs` magic numbers: a namespace file (held by a bind mount) and tmpfs.
const NSFS_MAGIC: u32 = 0x6e73_6673;
const TMPFS_MAGIC: u32 = 0x0102_1994;

/// Why `path` is not a mount of the file system with `magic`, if it is not.
fn not_mounted(path: &Path, magic: u32) -> Option<String> {
    match rustix::fs::statfs(path) {
        // f_type's width differs between targets; the magic numbers fit in 32 bits.
        Ok(s) if s.f_type as u32 == magic => None,
        Ok(_) => Some("is no longer mounted".into()),
        Err(e) => Some(format!("cannot be checked: {e}")),
    }
}

/// Unmounts everything mounted at or below `dir` (namespaces, shm, tmpfs volumes), deepest
/// first.
fn unmount_below(dir: &Path) -> Result<(), RuntimeError> {
    for m in mounts_below(dir).iter().rev() {
        match rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(errno(format!("unmounting {}", m.display()))(e)),
        }
    }
    Ok(())
}

fn remove_path(path: &Path) -> Result<(), RuntimeError> {
    let r = if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    r.map_err(io_err(format!("removing {}", path.display())))
}

/// Mount points at or below `dir`, shallowest first (from /proc/self/mountinfo).
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    out.sort_by_key(|p| p.components().count());
    out.dedup();
    out
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn hosts_file(cfg: &SandboxConfig) -> String {
    let aliases = || -> String {
        let mut s = String::new();
        if !cfg.host_aliases.is_empty() {
            // As the kubelet writes them.
            s.push_str("\n# Entries added by HostAliases.\n");
        }
        for (ip, names) in &cfg.host_aliases {
            s.push_str(&format!("{ip}\t{}\n", names.join("\t")));
        }
        s
    };
    if cfg.host_network {
        return fs::read_to_string("/etc/hosts").unwrap_or_default() + &aliases();
    }
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = cfg.pod_ip {
        s.push_str(&format!("{ip}\t{}\n", cfg.hostname));
    }
    s + &aliases()
}

fn resolv_conf(cfg: &SandboxConfig) -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if cfg.host_network && cfg.dns.nameservers.is_empty() {
        return host;
    }
    let mut s = String::new();
    let servers: Vec<IpAddr> = if cfg.dns.nameservers.is_empty() {
        // The host's, minus loopback resolvers a pod's network namespace cannot reach.
        host.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .filter(|a| !a.is_loopback())
            .collect()
    } else {
        cfg.dns.nameservers.clone()
    };
    for ns in servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !cfg.dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", cfg.dns.searches.join(" ")));
    }
    if !cfg.dns.options.is_empty() {
        s.push_str(&format!("options {}\n", cfg.dns.options.join(" ")));
    }
    s
}

fn host_path(path: &Path, kind: HostPathKind) -> Result<(), RuntimeError> {
    let bad = |reason: &str| RuntimeError::Invalid {
        what: format!("hostPath {}", path.display()),
        reason: reason.into(),
    };
    if !path.is_absolute() {
        return Err(bad("must be absolute"));
    }
    let meta = fs::metadata(path);
    use std::os::unix::fs::FileTypeExt;
    match kind {
        HostPathKind::Unchecked => Ok(()),
        HostPathKind::DirectoryOrCreate => {
            if meta.is_err() {
                fs::create_dir_all(path).map_err(io_err(format!("creating {}", path.display())))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod"))?;
            }
            Ok(())
        }
        HostPathKind::VolumeDirectory => {
            if meta.is_err() {
                fs::create_dir_all(path).map_err(io_err(format!("creating {}", path.display())))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o777))
                    .map_err(io_err("chmod"))?;
            }
            Ok(())
        }
        HostPathKind::Directory if meta.as_ref().is_ok_and(|m| m.is_dir()) => Ok(()),
        HostPathKind::Directory => Err(bad("is not a directory")),
        HostPathKind::FileOrCreate => {
            if meta.is_err() {
                if let Some(p) = path.parent() {
                    fs::create_dir_all(p).map_err(io_err("creating parent"))?;
                }
                fs::File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
            }
            Ok(())
        }
        HostPathKind::File if meta.as_ref().is_ok_and(|m| m.is_file()) => Ok(()),
        HostPathKind::File => Err(bad("is not a file")),
        HostPathKind::Socket if meta.as_ref().is_ok_and(|m| m.file_type().is_socket()) => Ok(()),
        HostPathKind::Socket => Err(bad("is not a socket")),
    }
}

/// Writes a projected volume's files into a new generation directory `..<n>`, points
/// `..data` at it with one rename, links each top-level name to `..data/<name>`, and removes
/// older generations and names no longer present.
fn write_generation(
    dir: &Path,
    files: &[ProjectedFile],
    default_mode: u32,
) -> Result<(), RuntimeError> {
    let stamp = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let gen_name = format!("..{stamp}");
    let gen = dir.join(&gen_name);
    fs::create_dir(&gen).map_err(io_err("creating projected generation"))?;
    fs::set_permissions(&gen, fs::Permissions::from_mode(0o755))
        .map_err(io_err("chmod projected generation"))?;
    let mut top = std::collections::BTreeSet::new();
    for f in files {
        write_projected(&gen, f, default_mode)?;
        if let Some(first) = Path::new(&f.path).components().next() {
            top.insert(first.as_os_str().to_os_string());
        }
    }
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&gen_name, &tmp).map_err(io_err("linking projected data"))?;
    fs::rename(&tmp, dir.join("..data")).map_err(io_err("switching projected data"))?;
    for name in &top {
        let link = dir.join(name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link)
                .map_err(io_err("linking projected file"))?;
        }
    }
    for e in fs::read_dir(dir).map_err(io_err("listing projected volume"))? {
        let e = e.map_err(io_err("listing projected volume"))?;
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == "..data" || n == gen_name {
            continue;
        }
        if n.starts_with("..") {
            let _ = fs::remove_dir_all(e.path());
        } else if !top.contains(&name) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(())
}

fn write_projected(dir: &Path, f: &ProjectedFile, default_mode: u32) -> Result<(), RuntimeError> {
    spec::check_sub_path(&f.path).map_err(|r| RuntimeError::Invalid {
        what: format!("projected file {:?}", f.path),
        reason: r,
    })?;
    if f.path.is_empty() {
        return Err(RuntimeError::Invalid {
            what: "projected file".into(),
            reason: "empty path".into(),
        });
    }
    let target = dir.join(&f.path);
    if let Some(p) = target.parent() {
        fs::create_dir_all(p).map_err(io_err("creating projected directory"))?;
    }
    fs::write(&target, &f.data).map_err(io_err(format!("writing {}", target.display())))?;
    fs::set_permissions(
        &target,
        fs::Permissions::from_mode(f.mode.unwrap_or(default_mode) & 0o7777),
    )
    .map_err(io_err("chmod projected file"))
}
