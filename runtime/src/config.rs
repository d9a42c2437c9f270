//! What callers ask the runtime for: pod sandboxes and containers, in the runtime's own terms
//! (the agent translates Pod specs into these; this crate knows nothing of the API server).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A pod's shared environment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SandboxConfig {
    /// Unique on the node; names the run-dir entry and the pod cgroup (`pod<id>`).
    pub id: String,
    /// The pod's hostname (its name, as Kubernetes does).
    pub hostname: String,
    /// Share the host's network and UTS namespaces.
    pub host_network: bool,
    /// DNS for `/etc/resolv.conf`; empty nameservers copy the host's (minus loopback ones).
    pub dns: DnsConfig,
    /// Extra `/etc/hosts` lines: address and names.
    pub host_aliases: Vec<(IpAddr, Vec<String>)>,
    /// The pod's address, written to `/etc/hosts` against the hostname.
    pub pod_ip: Option<IpAddr>,
    /// Volumes the containers may mount.
    pub volumes: Vec<Volume>,
    /// Size of the pod's `/dev/shm` in bytes (default 64 MiB).
    pub shm_size: Option<u64>,
}

/// resolv.conf contents.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DnsConfig {
    pub nameservers: Vec<IpAddr>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// A pod volume.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

/// Where a volume's files come from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum VolumeSource {
    /// A fresh directory for the pod's lifetime; `memory` makes it a tmpfs of `size_limit`.
    EmptyDir {
        memory: bool,
        size_limit: Option<u64>,
    },
    /// A path on the node.
    HostPath { path: PathBuf, kind: HostPathKind },
    /// Files handed in by the caller (ConfigMap or Secret data). Secrets (`tmpfs`) never touch
    /// the disk.
    Files {
        files: Vec<ProjectedFile>,
        default_mode: u32,
        tmpfs: bool,
    },
}

/// Kubernetes' hostPath `type`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum HostPathKind {
    /// No check.
    #[default]
    Unchecked,
    DirectoryOrCreate,
    Directory,
    FileOrCreate,
    File,
    Socket,
    /// A persistent volume's directory: created when missing, writable by every user
    /// (mode 0777, as k3s's local-path provisioner makes it), since the pods that use it
    /// may run as any user.
    VolumeDirectory,
}

/// One projected file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProjectedFile {
    /// Relative path inside the volume (`key`, or `items[].path`).
    pub path: String,
    pub data: Vec<u8>,
    pub mode: Option<u32>,
}

/// Defaults a container takes from its image config.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageDefaults {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
}

/// A container of a sandbox.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerConfig {
    /// The container's name in its pod.
    pub name: String,
    /// Kubernetes `command` (replaces the image entrypoint).
    pub command: Option<Vec<String>>,
    /// Kubernetes `args` (replaces the image cmd).
    pub args: Option<Vec<String>>,
    /// Environment, after the image's (later entries win).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<MountConfig>,
    pub resources: Resources,
    pub security: Security,
    /// CRI log file; rotated into `<path>.1`, `<path>.2`... .
    pub log_path: PathBuf,
    /// Rotate the log past this size (default 10 MiB).
    pub log_max_size: Option<u64>,
    /// Keep at most this many files, the live one included (default 5).
    pub log_max_files: Option<u32>,
    /// Labels kept with the container's state, for the caller's own bookkeeping.
    pub labels: BTreeMap<String, String>,
    /// Keep standard input open for attach (Kubernetes `stdin`); otherwise `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
    /// Close standard input when the first attach that used it ends (`stdinOnce`).
    #[serde(default)]
    pub stdin_once: bool,
    /// Run the process on a terminal (Kubernetes `tty`).
    #[serde(default)]
    pub tty: bool,
}

/// A volume mount into a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MountConfig {
    pub volume: String,
    pub container_path: String,
    pub read_only: bool,
    /// A path inside the volume to mount instead of its root.
    pub sub_path: Option<String>,
}

/// Resource requests and limits.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// cpu request in millicores → cpu shares.
    pub cpu_request_millis: Option<u64>,
    /// cpu limit in millicores → CFS quota.
    pub cpu_limit_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
}

/// The container's securityContext.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Security {
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub run_as_non_root: bool,
    pub privileged: bool,
    /// Capabilities to add or drop, with or without `CAP_`; `ALL` drops everything.
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub read_only_root_filesystem: bool,
    /// `Some(true)` lets setuid binaries gain privileges (no `no_new_privs`).
    pub allow_privilege_escalation: Option<bool>,
    pub supplemental_groups: Vec<u32>,
}

/// A process to run in a running container.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExecConfig {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub tty: bool,
}
