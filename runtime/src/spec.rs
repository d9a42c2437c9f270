//! Building a container's OCI runtime spec (oci-spec types) from its config, its image's
//! defaults and its sandbox. Pure: everything it needs is passed in, so it is tested without
//! root; [`resolve_user`] is the one part that reads the image's `/etc/passwd`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::config::{ContainerConfig, ImageDefaults, Resources, SandboxConfig};
use crate::seccomp;

/// A spec that cannot be built, with the reason in the user's terms.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("no command: the image has no entrypoint or cmd and the container gives no command")]
    NoCommand,
    #[error("container has runAsNonRoot and image will run as root")]
    RunsAsRoot,
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("capability {0} is not in the node's bounding set, so no container can have it")]
    UnavailableCapability(String),
    #[error("user {0:?} not found in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} not found in the image's /etc/group")]
    UnknownGroup(String),
    #[error("volume mount {path:?}: {reason}")]
    BadMount { path: String, reason: String },
    #[error("building the OCI spec: {0}")]
    Oci(String),
}

fn oci(e: impl std::fmt::Display) -> SpecError {
    SpecError::Oci(e.to_string())
}

/// The capabilities Docker and containerd give a container by default.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, at the index of its bit number.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability bounding set of this process (what a container can be given at most).
pub fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("CapBnd:"))?.to_string();
            u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
        })
        .unwrap_or(u64::MAX)
}

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The user a container runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Where the sandbox keeps what containers share.
pub struct SandboxPaths {
    /// Bind-mounted namespace files: `net`, `ipc`, `uts`.
    pub ns_dir: PathBuf,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
    pub shm: PathBuf,
    /// Volume name → directory on the node.
    pub volumes: BTreeMap<String, PathBuf>,
}

/// Everything the spec depends on.
pub struct SpecInput<'a> {
    pub sandbox: &'a SandboxConfig,
    pub paths: &'a SandboxPaths,
    pub container: &'a ContainerConfig,
    pub image: &'a ImageDefaults,
    pub rootfs: &'a Path,
    pub cgroups_path: &'a str,
    pub user: &'a ResolvedUser,
    pub cgroup_v2: bool,
    /// Open-file limit (soft and hard): the node's hard limit, as containerd gives.
    pub nofile: u64,
    /// The capabilities the runtime itself may grant ([`own_bounding_set`]).
    pub bounding: u64,
}

/// Kubernetes' rule: `command` replaces the entrypoint and, when given, drops the image cmd;
/// `args` replaces the cmd.
pub fn argv(c: &ContainerConfig, image: &ImageDefaults) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::new();
    match &c.command {
        Some(cmd) if !cmd.is_empty() => {
            out.extend(cmd.iter().cloned());
            out.extend(c.args.iter().flatten().cloned());
        }
        _ => {
            out.extend(image.entrypoint.iter().flatten().cloned());
            match &c.args {
                Some(a) if !a.is_empty() => out.extend(a.iter().cloned()),
                _ => out.extend(image.cmd.iter().flatten().cloned()),
            }
        }
    }
    if out.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(out)
}

/// The environment: the image's, then the container's (later wins), with PATH and HOSTNAME.
pub fn environment(
    c_env: &[(String, String)],
    image_env: &[String],
    hostname: &str,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    set("PATH", DEFAULT_PATH);
    set("HOSTNAME", hostname);
    for e in image_env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v);
    }
    for (k, v) in c_env {
        set(k, v);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn cap_name(raw: &str) -> String {
    let up = raw.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") || up == "ALL" {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after `privileged`, `drop` and `add` (containerd's order: drop, then add;
/// `ALL` in either means every capability). `privileged` and `ALL` mean every capability the
/// node's bounding set `available` holds; naming one outside it is an error.
pub fn capabilities(
    sec: &crate::config::Security,
    available: u64,
) -> Result<Vec<String>, SpecError> {
    let bit = |name: &str| ALL_CAPABILITIES.iter().position(|c| *c == name);
    let usable: BTreeSet<String> = ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| available & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect();
    let mut caps: BTreeSet<String> = if sec.privileged {
        usable.clone()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| usable.contains(c))
            .collect()
    };
    for d in sec.drop_capabilities.iter().map(|c| cap_name(c)) {
        if d == "ALL" {
            caps.clear();
        } else if bit(&d).is_some() {
            caps.remove(&d);
        } else {
            return Err(SpecError::UnknownCapability(d));
        }
    }
    for a in sec.add_capabilities.iter().map(|c| cap_name(c)) {
        if a == "ALL" {
            caps.extend(usable.iter().cloned());
        } else if bit(&a).is_none() {
            return Err(SpecError::UnknownCapability(a));
        } else if !usable.contains(&a) {
            return Err(SpecError::UnavailableCapability(a));
        } else {
            caps.insert(a);
        }
    }
    Ok(caps.into_iter().collect())
}

fn to_caps(names: &[String]) -> Result<oci_spec::runtime::Capabilities, SpecError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| SpecError::UnknownCapability(n.clone()))
        })
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci)
}

fn bind(dest: &str, source: &Path, read_only: bool) -> Result<Mount, SpecError> {
    let mut opts = vec!["rbind", "rprivate", "nosuid", "nodev"];
    opts.push(if read_only { "ro" } else { "rw" });
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci)
}

/// A sub path inside a volume: relative, no `..`.
pub fn check_sub_path(sub: &str) -> Result<(), String> {
    if sub.starts_with('/') {
        return Err("subPath must be relative".into());
    }
    if sub.split('/').any(|c| c == "..") {
        return Err("subPath must not contain '..'".into());
    }
    Ok(())
}

/// The OCI spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let sec = &input.container.security;
    let (process, caps) = process(input)?;
    let mounts = mounts(input)?;
    let namespaces = namespaces(input)?;
    let resources = resources(&input.container.resources)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(PathBuf::from(input.cgroups_path));
    if sec.privileged {
        linux = linux
            .masked_paths(Vec::<String>::new())
            .readonly_paths(Vec::<String>::new());
    } else {
        linux = linux
            .masked_paths(
                MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .readonly_paths(
                READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .seccomp(seccomp::default_profile(&caps));
    }
    // The builders start from oci-spec's example spec; nothing of it may leak through.
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(sec.read_only_root_filesystem)
                .build()
                .map_err(oci)?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux.build().map_err(oci)?)
        .build()
        .map_err(oci)?;
    spec.set_hostname(None);
    spec.set_annotations(None);
    Ok(spec)
}

/// The container's process: argv, environment, working directory, user and groups,
/// capabilities (none effective for a non-root user), no_new_privs, the open-file limit;
/// with the capabilities granted, which the seccomp profile follows.
fn process(input: &SpecInput<'_>) -> Result<(Process, Vec<String>), SpecError> {
    let c = input.container;
    let sec = &c.security;
    let args = argv(c, input.image)?;
    let mut env = environment(&c.env, &input.image.env, &input.sandbox.hostname);
    // As containerd: a terminal says what it is unless the container said otherwise.
    if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| input.image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    if sec.run_as_non_root && input.user.uid == 0 {
        return Err(SpecError::RunsAsRoot);
    }
    let caps = capabilities(sec, input.bounding)?;
    let bounding = to_caps(&caps)?;
    // A non-root process starts with no effective capabilities, as with containerd.
    let effective = if input.user.uid == 0 {
        bounding.clone()
    } else {
        Default::default()
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(bounding)
        .permitted(effective.clone())
        .effective(effective)
        .inheritable(oci_spec::runtime::Capabilities::default())
        .ambient(oci_spec::runtime::Capabilities::default())
        .build()
        .map_err(oci)?;
    let mut gids = input.user.additional_gids.clone();
    gids.extend(sec.supplemental_groups.iter().copied());
    gids.sort_unstable();
    gids.dedup();
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(gids)
        .build()
        .map_err(oci)?;
    let no_new_privs = !(sec.privileged || sec.allow_privilege_escalation == Some(true));
    let process = ProcessBuilder::default()
        .terminal(c.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .no_new_privileges(no_new_privs)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(input.nofile)
            .hard(input.nofile)
            .build()
            .map_err(oci)?])
        .build()
        .map_err(oci)?;
    Ok((process, caps))
}

/// The container's mounts: /proc, /dev, /sys and the cgroup tree (read-only unless
/// privileged), the sandbox's shm, hosts, hostname and resolv.conf, then its volumes.
fn mounts(input: &SpecInput<'_>) -> Result<Vec<Mount>, SpecError> {
    let c = input.container;
    let sec = &c.security;
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &[
                "nosuid",
                "noexec",
                "nodev",
                if sec.privileged { "rw" } else { "ro" },
            ],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "relatime",
                if sec.privileged { "rw" } else { "ro" },
            ],
        )?,
        bind("/dev/shm", &input.paths.shm, false)?,
        bind("/etc/hosts", &input.paths.hosts, false)?,
        bind("/etc/hostname", &input.paths.hostname, false)?,
        bind("/etc/resolv.conf", &input.paths.resolv_conf, false)?,
    ];
    for m in &c.mounts {
        let bad = |reason: &str| SpecError::BadMount {
            path: m.container_path.clone(),
            reason: reason.to_string(),
        };
        if !m.container_path.starts_with('/') {
            return Err(bad("mountPath must be absolute"));
        }
        let base = input
            .paths
            .volumes
            .get(&m.volume)
            .ok_or_else(|| bad(&format!("no volume named {:?}", m.volume)))?;
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                check_sub_path(sub).map_err(|r| bad(&r))?;
                base.join(sub)
            }
            None => base.clone(),
        };
        mounts.push(bind(&m.container_path, &source, m.read_only)?);
    }
    Ok(mounts)
}

/// New PID and mount namespaces; the sandbox's IPC, network and UTS (the host's with
/// hostNetwork); a new cgroup namespace on v2.
fn namespaces(input: &SpecInput<'_>) -> Result<Vec<LinuxNamespace>, SpecError> {
    let ns = |typ, file: Option<&str>| {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(f) = file {
            b = b.path(input.paths.ns_dir.join(f));
        }
        b.build().map_err(oci)
    };
    let mut namespaces = vec![
        ns(LinuxNamespaceType::Pid, None)?,
        ns(LinuxNamespaceType::Mount, None)?,
        ns(LinuxNamespaceType::Ipc, Some("ipc"))?,
    ];
    if !input.sandbox.host_network {
        namespaces.push(ns(LinuxNamespaceType::Network, Some("net"))?);
        namespaces.push(ns(LinuxNamespaceType::Uts, Some("uts"))?);
    }
    if input.cgroup_v2 {
        namespaces.push(ns(LinuxNamespaceType::Cgroup, None)?);
    }
    Ok(namespaces)
}

/// The cgroup limits: no devices, CPU shares from the request and quota from the limit,
/// memory and pids limits.
fn resources(r: &Resources) -> Result<LinuxResources, SpecError> {
    let mut resources =
        LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(oci)?]);
    // Kubernetes: shares from the request (2 for none), quota from the limit.
    let shares = r
        .cpu_request_millis
        .map(|m| (m * 1024 / 1000).max(2))
        .unwrap_or(2);
    let mut cpu = LinuxCpuBuilder::default().shares(shares);
    if let Some(limit) = r.cpu_limit_millis {
        let period = 100_000u64;
        cpu = cpu
            .period(period)
            .quota(((limit * period) / 1000).max(1000) as i64);
    }
    resources = resources.cpu(cpu.build().map_err(oci)?);
    if let Some(mem) = r.memory_limit {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(mem as i64)
                .build()
                .map_err(oci)?,
        );
    }
    if let Some(p) = r.pids_limit {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build().map_err(oci)?);
    }
    resources.build().map_err(oci)
}

/// Looks the user up the way Docker does: `uid`, `uid:gid`, `name`, `name:group`; the
/// image's `/etc/passwd` and `/etc/group` name them and give the supplementary groups.
/// `runAsUser`/`runAsGroup` override.
pub fn resolve_user(
    rootfs: &Path,
    image_user: Option<&str>,
    sec: &crate::config::Security,
) -> Result<ResolvedUser, SpecError> {
    let passwd = read_in_root(rootfs, "etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "etc/group").unwrap_or_default();
    resolve_user_from(&passwd, &group, image_user, sec)
}

/// [`resolve_user`] on file contents.
pub fn resolve_user_from(
    passwd: &str,
    group: &str,
    image_user: Option<&str>,
    sec: &crate::config::Security,
) -> Result<ResolvedUser, SpecError> {
    let spec = image_user.unwrap_or("").trim();
    let (u, g) = spec
        .split_once(':')
        .map(|(u, g)| (u, Some(g)))
        .unwrap_or((spec, None));
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let (mut uid, mut gid, mut name) = (0u32, 0u32, Some("root".to_string()));
    if !u.is_empty() {
        if let Ok(n) = u.parse::<u32>() {
            uid = n;
            let entry = users.iter().find(|f| f[2].parse::<u32>().ok() == Some(n));
            gid = entry.and_then(|f| f[3].parse().ok()).unwrap_or(0);
            name = entry.map(|f| f[0].to_string());
        } else {
            let f = users
                .iter()
                .find(|f| f[0] == u)
                .ok_or_else(|| SpecError::UnknownUser(u.to_string()))?;
            uid = f[2]
                .parse()
                .map_err(|_| SpecError::UnknownUser(u.to_string()))?;
            gid = f[3]
                .parse()
                .map_err(|_| SpecError::UnknownUser(u.to_string()))?;
            name = Some(u.to_string());
        }
    }
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| SpecError::UnknownGroup(g.to_string()))?,
        };
    }
    if let Some(ru) = sec.run_as_user {
        if ru != uid {
            uid = ru;
            name = users
                .iter()
                .find(|f| f[2].parse::<u32>().ok() == Some(ru))
                .map(|f| f[0].to_string());
            if sec.run_as_group.is_none() {
                gid = users
                    .iter()
                    .find(|f| f[2].parse::<u32>().ok() == Some(ru))
                    .and_then(|f| f[3].parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    if let Some(rg) = sec.run_as_group {
        gid = rg;
    }
    let mut additional = Vec::new();
    if let Some(name) = &name {
        for f in &groups {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid {
                        additional.push(g);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// Reads a small file inside a root filesystem without following symlinks out of it (a
/// symlinked `/etc/passwd` reads as absent).
pub fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let mut fd = openat(
        CWD,
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in comps.iter().enumerate() {
        if *c == ".." {
            return None;
        }
        let last = i + 1 == comps.len();
        let flags = if last {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        } else {
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        fd = openat(&fd, *c, flags, Mode::empty()).ok()?;
    }
    let mut s = String::new();
    use std::io::Read;
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MountConfig, Resources, Security};

    fn paths() -> SandboxPaths {
        SandboxPaths {
            ns_dir: "/run/s/ns".into(),
            hosts: "/run/s/hosts".into(),
            hostname: "/run/s/hostname".into(),
            resolv_conf: "/run/s/resolv.conf".into(),
            shm: "/run/s/shm".into(),
            volumes: [("data".to_string(), PathBuf::from("/var/s/data"))].into(),
        }
    }

    fn spec_for(
        c: &ContainerConfig,
        image: &ImageDefaults,
        uid: u32,
        host_network: bool,
    ) -> Result<Spec, SpecError> {
        let sandbox = SandboxConfig {
            id: "p1".into(),
            hostname: "web-0".into(),
            host_network,
            ..Default::default()
        };
        let p = paths();
        build(&SpecInput {
            sandbox: &sandbox,
            paths: &p,
            container: c,
            image,
            rootfs: Path::new("/var/rootfs"),
            cgroups_path: "/skiff/n1/podp1/c1",
            user: &ResolvedUser {
                uid,
                gid: uid,
                additional_gids: vec![],
            },
            cgroup_v2: false,
            nofile: 1 << 20,
            bounding: u64::MAX,
        })
    }

    #[test]
    fn kubernetes_command_rules() {
        let image = ImageDefaults {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["--serve".into()]),
            ..Default::default()
        };
        let mut c = ContainerConfig::default();
        assert_eq!(argv(&c, &image).unwrap(), ["/entry", "--serve"]);
        c.args = Some(vec!["--debug".into()]);
        assert_eq!(argv(&c, &image).unwrap(), ["/entry", "--debug"]);
        c.command = Some(vec!["/bin/sh".into()]);
        assert_eq!(argv(&c, &image).unwrap(), ["/bin/sh", "--debug"]);
        c.args = None;
        assert_eq!(
            argv(&c, &image).unwrap(),
            ["/bin/sh"],
            "command drops the image cmd"
        );
        assert_eq!(
            argv(&ContainerConfig::default(), &ImageDefaults::default()),
            Err(SpecError::NoCommand)
        );
    }

    #[test]
    fn env_layers_and_defaults() {
        let env = environment(
            &[("A".into(), "container".into()), ("C".into(), "3".into())],
            &["A=image".into(), "B=2".into(), "PATH=/bin".into()],
            "web-0",
        );
        assert_eq!(
            env,
            ["PATH=/bin", "HOSTNAME=web-0", "A=container", "B=2", "C=3"]
        );
    }

    #[test]
    fn secure_defaults() {
        let c = ContainerConfig {
            command: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let spec = spec_for(&c, &ImageDefaults::default(), 0, false).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(
            caps.bounding().as_ref().unwrap().len(),
            DEFAULT_CAPABILITIES.len()
        );
        assert!(!caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.typ(), n.path().clone()))
            .collect();
        assert!(ns.contains(&(LinuxNamespaceType::Network, Some("/run/s/ns/net".into()))));
        assert!(
            ns.contains(&(LinuxNamespaceType::Pid, None)),
            "own PID namespace"
        );
        assert_eq!(
            spec.hostname(),
            &None,
            "the sandbox's UTS namespace holds the hostname"
        );
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(2));
        // Non-root: no effective capabilities.
        let spec = spec_for(&c, &ImageDefaults::default(), 1000, true).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .clone();
        assert!(caps.effective().as_ref().unwrap().is_empty());
        let ns = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .clone();
        assert!(
            !ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network),
            "hostNetwork shares the host's"
        );
    }

    #[test]
    fn security_context_changes_defaults() {
        let mut c = ContainerConfig {
            command: Some(vec!["sh".into()]),
            security: Security {
                add_capabilities: vec!["NET_ADMIN".into()],
                drop_capabilities: vec!["ALL".into()],
                read_only_root_filesystem: true,
                allow_privilege_escalation: Some(true),
                ..Default::default()
            },
            resources: Resources {
                cpu_request_millis: Some(250),
                cpu_limit_millis: Some(500),
                memory_limit: Some(64 << 20),
                pids_limit: Some(50),
            },
            mounts: vec![MountConfig {
                volume: "data".into(),
                container_path: "/data".into(),
                read_only: true,
                sub_path: Some("sub".into()),
            }],
            ..Default::default()
        };
        let spec = spec_for(&c, &ImageDefaults::default(), 0, false).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(false));
        let bounding = p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(
            bounding.into_iter().collect::<Vec<_>>(),
            vec![Capability::NetAdmin]
        );
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(256));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 50);
        let m = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        assert_eq!(m.source().as_deref(), Some(Path::new("/var/s/data/sub")));
        assert!(m.options().as_ref().unwrap().contains(&"ro".to_string()));

        c.security.privileged = true;
        let spec = spec_for(&c, &ImageDefaults::default(), 0, false).unwrap();
        assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
        // Privileged means what the node has: here everything but CAP_SYS_RESOURCE (24).
        let limited = capabilities(
            &Security {
                privileged: true,
                ..Default::default()
            },
            !(1u64 << 24) & ((1 << 41) - 1),
        )
        .unwrap();
        assert_eq!(limited.len(), 40);
        assert!(!limited.contains(&"CAP_SYS_RESOURCE".to_string()));
        assert_eq!(
            capabilities(
                &Security {
                    add_capabilities: vec!["SYS_RESOURCE".into()],
                    ..Default::default()
                },
                !(1u64 << 24)
            ),
            Err(SpecError::UnavailableCapability("CAP_SYS_RESOURCE".into()))
        );
        c.security = Security {
            add_capabilities: vec!["BOGUS".into()],
            ..Default::default()
        };
        assert_eq!(
            spec_for(&c, &ImageDefaults::default(), 0, false).unwrap_err(),
            SpecError::UnknownCapability("CAP_BOGUS".into())
        );
        c.security = Security {
            run_as_non_root: true,
            ..Default::default()
        };
        assert_eq!(
            spec_for(&c, &ImageDefaults::default(), 0, false).unwrap_err(),
            SpecError::RunsAsRoot
        );
        c.security = Security::default();
        c.mounts[0].sub_path = Some("../../etc".into());
        assert!(matches!(
            spec_for(&c, &ImageDefaults::default(), 0, false),
            Err(SpecError::BadMount { .. })
        ));
    }

    #[test]
    fn cgroup_v2_hosts_get_a_cgroup_namespace() {
        let sandbox = SandboxConfig {
            id: "p1".into(),
            hostname: "h".into(),
            ..Default::default()
        };
        let p = paths();
        let c = ContainerConfig {
            command: Some(vec!["sh".into()]),
            ..Default::default()
        };
        for v2 in [false, true] {
            let spec = build(&SpecInput {
                sandbox: &sandbox,
                paths: &p,
                container: &c,
                image: &ImageDefaults::default(),
                rootfs: Path::new("/r"),
                cgroups_path: "/skiff/n/podp1/c",
                user: &ResolvedUser {
                    uid: 0,
                    gid: 0,
                    additional_gids: vec![],
                },
                cgroup_v2: v2,
                nofile: 1024,
                bounding: u64::MAX,
            })
            .unwrap();
            let linux = spec.linux().as_ref().unwrap();
            let has_cgroupns = linux
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Cgroup);
            assert_eq!(has_cgroupns, v2);
            assert_eq!(
                linux.cgroups_path().as_deref(),
                Some(Path::new("/skiff/n/podp1/c")),
                "absolute path on both"
            );
        }
    }

    #[test]
    fn users_resolve_like_docker() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
        let group = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app,root\n";
        let none = Security::default();
        let r = |u: Option<&str>, s: &Security| resolve_user_from(passwd, group, u, s);
        assert_eq!(
            r(None, &none).unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![10]
            }
        );
        assert_eq!(
            r(Some("app"), &none).unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10]
            }
        );
        assert_eq!(r(Some("1000:wheel"), &none).unwrap().gid, 10);
        assert_eq!(
            r(Some("4242"), &none).unwrap(),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r(Some("ghost"), &none).unwrap_err(),
            SpecError::UnknownUser("ghost".into())
        );
        let s = Security {
            run_as_user: Some(65534),
            ..Default::default()
        };
        assert_eq!(r(Some("app"), &s).unwrap().gid, 65534);
        let s = Security {
            run_as_user: Some(1000),
            run_as_group: Some(5),
            ..Default::default()
        };
        assert_eq!(r(None, &s).unwrap().gid, 5);
    }
}
