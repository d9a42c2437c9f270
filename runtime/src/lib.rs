//! skiff-runtime: pod sandboxes and containers on youki's libcontainer, without containerd,
//! runc or a daemon.
//!
//! - A pod **sandbox** is its network, IPC and UTS namespaces, created here and held by bind
//!   mounts under the run directory (no pause process), plus its `/etc/hosts`, `/etc/hostname`,
//!   `/etc/resolv.conf`, `/dev/shm` and volumes.
//! - Each **container** is a libcontainer container joining them, with its own mount and PID
//!   namespaces, in `<cgroup parent>/pod<sandbox>/<container>`.
//! - libcontainer only ever runs in the single-threaded [`helper`] process, never in the
//!   caller's (tokio) process. The helper forks a monitor per container that owns its logs
//!   and exit status, so containers and logs survive a restart of the caller, which then
//!   re-adopts them from the run directory ([`Runtime::list`]).
//!
//! The API is blocking; async callers use `spawn_blocking`, and [`Runtime::exit_fd`] gives a
//! descriptor that becomes readable when a container exits.

pub mod cgroups;
pub mod config;
pub mod helper;
pub mod logs;
pub mod protocol;
pub mod seccomp;
pub mod spec;
pub mod state;
mod sys;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use cgroups::Stats;
pub use config::*;
pub use state::ExitInfo;
pub use sys::{exited, shed_code_pages, single_malloc_arena, PageCache};

use protocol::{Request, Response};
use spec::{SandboxPaths, SpecInput};
use state::MonitorInfo;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("runtime helper: {0}")]
    Helper(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> RuntimeError {
    let context = context.into();
    move |source| RuntimeError::Io { context, source }
}

fn errno(context: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> RuntimeError {
    let context = context.into();
    move |e| RuntimeError::Io {
        context,
        source: e.into(),
    }
}

/// Where the runtime keeps its state and how it starts its helper.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Private to this runtime (one per agent): sandboxes, container state, libcontainer's
    /// state.
    pub run_dir: PathBuf,
    /// Absolute cgroup path all pods go under, e.g. `/skiff/node-1`.
    pub cgroup_parent: String,
    /// Program and arguments that run [`helper::helper_main`] with the control socket on
    /// descriptor 3 (the agent re-executes itself: `skiff-agent runtime-helper`).
    pub helper: Vec<OsString>,
}

/// A container's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    Running,
    Exited(ExitInfo),
    /// The monitor is gone without recording an exit (it was killed).
    Unknown,
}

/// What [`Runtime::list`] and [`Runtime::status`] say about a container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub id: String,
    pub sandbox: String,
    pub name: String,
    pub state: ContainerState,
    /// The init process, while running.
    pub pid: Option<i32>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
}

/// What the runtime records per container.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ContainerRecord {
    id: String,
    sandbox: String,
    name: String,
    cgroup_path: String,
    log_path: PathBuf,
    created_at: String,
    labels: BTreeMap<String, String>,
    stop_signal: Option<String>,
}

/// What the runtime records per sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SandboxRecord {
    id: String,
    hostname: String,
    host_network: bool,
    /// Volume names → directories, and which of them are tmpfs mounts.
    volumes: BTreeMap<String, (PathBuf, bool)>,
    created_at: String,
}

/// A running exec.
pub struct ExecProcess {
    /// Write end of the process's stdin (absent with a tty: use `tty`).
    pub stdin: Option<fs::File>,
    pub stdout: Option<fs::File>,
    pub stderr: Option<fs::File>,
    /// The pseudo-terminal's master side, for a tty exec.
    pub tty: Option<fs::File>,
    status: BufReader<fs::File>,
    /// The process id, in the host's PID namespace.
    pub pid: i32,
}

impl ExecProcess {
    /// Waits for the exit code.
    pub fn wait(&mut self) -> Result<i32, RuntimeError> {
        let mut line = String::new();
        loop {
            line.clear();
            if self
                .status
                .read_line(&mut line)
                .map_err(io_err("reading exec status"))?
                == 0
            {
                return Err(RuntimeError::Helper(
                    "exec process ended without a status".into(),
                ));
            }
            if let Some(code) = line.trim().strip_prefix("exit ") {
                return code
                    .parse()
                    .map_err(|_| RuntimeError::Helper(format!("bad exec status {line:?}")));
            }
        }
    }
}

struct Helper {
    sock: OwnedFd,
    child: Child,
    /// When it last answered a request.
    last_used: std::time::Instant,
}

impl Helper {
    /// Closing our end of the socket tells the helper to exit; containers keep running
    /// (their monitors are sessions of their own). A helper whose socket broke may be
    /// stuck: `kill` ends it first.
    fn stop(mut self, kill: bool) {
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
        if kill {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The node's container runtime.
pub struct Runtime {
    cfg: RuntimeConfig,
    cgroup_v2: bool,
    /// The helper, while it runs: started with the runtime, stopped when idle if the
    /// caller asks ([`Runtime::release_idle_helper`]), started again by the next request.
    helper: Mutex<Option<Helper>>,
    /// pidfds of the monitors this runtime knows, by container.
    monitors: Mutex<HashMap<String, OwnedFd>>,
    /// Compiled seccomp programs by profile (a handful: one per capability set).
    seccomp_cache: Mutex<HashMap<String, std::sync::Arc<Vec<u8>>>>,
    /// What containers may be given at most: this process's capability bounding set and
    /// open-file limit (read once; they do not change).
    bounding: u64,
    nofile: u64,
}

fn valid_id(what: &str, id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::Invalid {
            what: format!("{what} id {id:?}"),
            reason: "use letters, digits, '-', '_' and '.' (at most 128)".into(),
        })
    }
}

fn now() -> String {
    logs::timestamp(SystemTime::now())
}

impl Runtime {
    /// Starts the helper and re-adopts the containers in the run directory.
    pub fn new(cfg: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        if !cfg.cgroup_parent.starts_with('/') {
            return Err(RuntimeError::Invalid {
                what: "cgroup parent".into(),
                reason: "must be an absolute path".into(),
            });
        }
        for d in ["containers", "sandboxes", "lc", "exec"] {
            fs::create_dir_all(cfg.run_dir.join(d))
                .map_err(io_err(format!("creating {}", cfg.run_dir.display())))?;
        }
        let helper = spawn_helper(&cfg.helper)?;
        let rt = Runtime {
            cgroup_v2: cgroups::is_v2(),
            helper: Mutex::new(Some(helper)),
            monitors: Mutex::new(HashMap::new()),
            seccomp_cache: Mutex::new(HashMap::new()),
            bounding: spec::own_bounding_set(),
            nofile: rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .maximum
                .unwrap_or(1 << 20)
                .min(1 << 20),
            cfg,
        };
        rt.readopt()?;
        Ok(rt)
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// The helper's process id (for its memory figure), while it runs.
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper.lock().unwrap().as_ref().map(|h| h.child.id())
    }

    /// Stops the helper if no request reached it for `idle`: between pod starts and
    /// execs a node needs none (monitors own the running containers), and the helper's
    /// memory is returned. The next request starts it again (a few milliseconds).
    /// Returns whether it stopped it.
    pub fn release_idle_helper(&self, idle: Duration) -> bool {
        let idle_one = self
            .helper
            .lock()
            .unwrap()
            .take_if(|h| h.last_used.elapsed() >= idle);
        idle_one.map(|h| h.stop(false)).is_some()
    }

    fn lc_root(&self) -> PathBuf {
        self.cfg.run_dir.join("lc")
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.run_dir.join("containers").join(id)
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.cfg.run_dir.join("sandboxes").join(id)
    }

    fn call(
        &self,
        req: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(Response, Vec<OwnedFd>), RuntimeError> {
        let mut guard = self.helper.lock().unwrap();
        let helper = match guard.as_mut() {
            Some(h) => h,
            None => guard.insert(spawn_helper(&self.cfg.helper)?),
        };
        let r = match protocol::send(helper.sock.as_fd(), req, fds) {
            Err(e) => Err(RuntimeError::Helper(format!("sending: {e}"))),
            Ok(()) => match protocol::recv::<Response>(helper.sock.as_fd()) {
                Ok(Some(r)) => {
                    helper.last_used = std::time::Instant::now();
                    return match r {
                        (Response::Error(e), _) => Err(RuntimeError::Helper(e)),
                        r => Ok(r),
                    };
                }
                Ok(None) => Err(RuntimeError::Helper("helper exited".into())),
                Err(e) => Err(RuntimeError::Helper(format!("receiving: {e}"))),
            },
        };
        // The helper is gone or its socket broke: the next request starts a new one.
        if let Some(h) = guard.take() {
            h.stop(true);
        }
        r
    }

    /// Finds the monitors of containers that are still running after a restart.
    fn readopt(&self) -> Result<(), RuntimeError> {
        let mut monitors = self.monitors.lock().unwrap();
        for id in self.container_ids()? {
            let dir = self.container_dir(&id);
            if dir.join("exit.json").exists() {
                continue;
            }
            let Ok(Some(info)) = state::read_json::<MonitorInfo>(&dir.join("monitor.json")) else {
                continue;
            };
            if let Some(fd) = open_verified(info.monitor_pid, info.monitor_start) {
                monitors.insert(id, fd);
            }
        }
        Ok(())
    }

    fn container_ids(&self) -> Result<Vec<String>, RuntimeError> {
        let mut ids = Vec::new();
        for e in fs::read_dir(self.cfg.run_dir.join("containers"))
            .map_err(io_err("listing containers"))?
        {
            let e = e.map_err(io_err("listing containers"))?;
            ids.push(e.file_name().to_string_lossy().into_owned());
        }
        ids.sort();
        Ok(ids)
    }

    // ---- sandboxes ----

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
        // Everything mounted below the sandbox: namespaces, shm, tmpfs volumes.
        let mounts = mounts_below(&dir);
        for m in mounts.iter().rev() {
            match rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(errno(format!("unmounting {}", m.display()))(e)),
            }
        }
        fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))
    }

    fn sandbox_paths(&self, id: &str) -> Result<(SandboxRecord, SandboxPaths), RuntimeError> {
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

    // ---- containers ----

    /// Creates a container in a sandbox from a prepared root filesystem. It does not run until
    /// [`Runtime::start_container`].
    pub fn create_container(
        &self,
        sandbox: &str,
        id: &str,
        c: &ContainerConfig,
        image: &ImageDefaults,
        rootfs: &Path,
    ) -> Result<(), RuntimeError> {
        valid_id("container", id)?;
        let (srec, paths) = self.sandbox_paths(sandbox)?;
        let dir = self.container_dir(id);
        if dir.exists() {
            return Err(RuntimeError::AlreadyExists(format!("container {id}")));
        }
        let user = spec::resolve_user(rootfs, image.user.as_deref(), &c.security)?;
        let cgroup_path = format!("{}/pod{sandbox}/{id}", self.cfg.cgroup_parent);
        let scfg = SandboxConfig {
            id: sandbox.to_string(),
            hostname: srec.hostname.clone(),
            host_network: srec.host_network,
            ..Default::default()
        };
        let mut spec = spec::build(&SpecInput {
            sandbox: &scfg,
            paths: &paths,
            container: c,
            image,
            rootfs,
            cgroups_path: &cgroup_path,
            user: &user,
            cgroup_v2: self.cgroup_v2,
            bounding: self.bounding,
            nofile: self.nofile,
        })?;
        let bundle = dir.join("bundle");
        fs::create_dir_all(&bundle).map_err(io_err("creating bundle"))?;
        let result = (|| {
            // With no_new_privs, the seccomp program is compiled once per profile here and
            // only loaded in the container (libcontainer would compile it in every init).
            let nnp = spec.process().as_ref().and_then(|p| p.no_new_privileges()) == Some(true);
            let profile = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
            if let (true, Some(profile)) = (nnp, profile) {
                let bpf = self.compiled_seccomp(&profile)?;
                fs::write(bundle.join("seccomp.bpf"), &*bpf)
                    .map_err(io_err("writing seccomp.bpf"))?;
                let mut linux = spec.linux().clone().expect("profile came from linux");
                linux.set_seccomp(None);
                spec.set_linux(Some(linux));
            }
            spec.save(bundle.join("config.json"))
                .map_err(|e| RuntimeError::Helper(format!("writing config.json: {e}")))?;
            let record = ContainerRecord {
                id: id.to_string(),
                sandbox: sandbox.to_string(),
                name: c.name.clone(),
                cgroup_path: cgroup_path.clone(),
                log_path: c.log_path.clone(),
                created_at: now(),
                labels: c.labels.clone(),
                stop_signal: image.stop_signal.clone(),
            };
            state::write_json(&dir.join("record.json"), &record)
                .map_err(io_err("writing container record"))?;
            let (_, fds) = self.call(
                &Request::CreateContainer(protocol::ContainerJob {
                    id: id.to_string(),
                    lc_root: self.lc_root(),
                    bundle: bundle.clone(),
                    state_dir: dir.clone(),
                    log_path: c.log_path.clone(),
                    log_max_size: c.log_max_size,
                    log_max_files: c.log_max_files,
                    cgroup_path: cgroup_path.clone(),
                    cgroup_v2: self.cgroup_v2,
                }),
                &[],
            )?;
            if let Some(fd) = fds.into_iter().next() {
                self.monitors.lock().unwrap().insert(id.to_string(), fd);
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn compiled_seccomp(
        &self,
        profile: &oci_spec::runtime::LinuxSeccomp,
    ) -> Result<std::sync::Arc<Vec<u8>>, RuntimeError> {
        let key =
            serde_json::to_string(profile).map_err(|e| RuntimeError::Helper(e.to_string()))?;
        let mut cache = self.seccomp_cache.lock().unwrap();
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        let bpf = std::sync::Arc::new(
            seccomp::compile(profile)
                .map_err(|e| RuntimeError::Helper(format!("compiling seccomp: {e}")))?,
        );
        cache.insert(key, bpf.clone());
        Ok(bpf)
    }

    /// Lets a created container run.
    pub fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        valid_id("container", id)?;
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound(format!("container {id}")));
        }
        self.call(
            &Request::Start {
                id: id.to_string(),
                lc_root: self.lc_root(),
            },
            &[],
        )?;
        fs::write(dir.join("started"), now()).map_err(io_err("recording start"))?;
        Ok(())
    }

    fn record(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        valid_id("container", id)?;
        state::read_json(&self.container_dir(id).join("record.json"))
            .map_err(io_err("reading container record"))?
            .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))
    }

    /// A container's state.
    pub fn status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let rec = self.record(id)?;
        let dir = self.container_dir(id);
        let exit: Option<ExitInfo> =
            state::read_json(&dir.join("exit.json")).map_err(io_err("reading exit"))?;
        let info: Option<MonitorInfo> =
            state::read_json(&dir.join("monitor.json")).map_err(io_err("reading monitor"))?;
        let started_at = fs::read_to_string(dir.join("started")).ok();
        let monitor_alive = self
            .monitors
            .lock()
            .unwrap()
            .get(id)
            .is_some_and(|fd| !readable(fd));
        let (state, pid) = match (exit, &info) {
            (Some(e), _) => (ContainerState::Exited(e), None),
            (None, Some(i)) if monitor_alive => {
                if started_at.is_some() {
                    (ContainerState::Running, Some(i.init_pid))
                } else {
                    (ContainerState::Created, Some(i.init_pid))
                }
            }
            // The monitor may have just written its exit: read again before calling it lost.
            (None, Some(_)) => match state::read_json::<ExitInfo>(&dir.join("exit.json"))
                .map_err(io_err("reading exit"))?
            {
                Some(e) => (ContainerState::Exited(e), None),
                None => (ContainerState::Unknown, None),
            },
            (None, None) => (ContainerState::Unknown, None),
        };
        Ok(ContainerStatus {
            id: rec.id,
            sandbox: rec.sandbox,
            name: rec.name,
            state,
            pid,
            created_at: rec.created_at,
            started_at,
            log_path: rec.log_path,
            labels: rec.labels,
        })
    }

    /// Every container in the run directory, with its state.
    pub fn list(&self) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let mut out = Vec::new();
        for id in self.container_ids()? {
            match self.status(&id) {
                Ok(s) => out.push(s),
                // A record half-written by a crash mid-create: not a container.
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Sends a signal to the container's init. A container that already exited is left alone.
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.record(id)?;
        let dir = self.container_dir(id);
        if dir.join("exit.json").exists() {
            return Ok(());
        }
        let Some(info) = state::read_json::<MonitorInfo>(&dir.join("monitor.json"))
            .map_err(io_err("reading monitor"))?
        else {
            return Err(RuntimeError::NotFound(format!("process of container {id}")));
        };
        // A pidfd checked against the recorded start time names exactly the container's init,
        // never a later process that reused its pid.
        let Some(fd) = open_verified(info.init_pid, info.init_start) else {
            return Ok(());
        };
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            RuntimeError::Invalid {
                what: "signal".into(),
                reason: format!("{signal}"),
            }
        })?;
        match rustix::process::pidfd_send_signal(&fd, sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(errno(format!("signalling container {id}"))(e)),
        }
    }

    /// A descriptor that becomes readable when the container has exited (its monitor's
    /// pidfd), for async callers.
    pub fn exit_fd(&self, id: &str) -> Result<OwnedFd, RuntimeError> {
        let monitors = self.monitors.lock().unwrap();
        let fd = monitors
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("monitor of container {id}")))?;
        fd.try_clone().map_err(io_err("dup pidfd"))
    }

    /// Waits for the container to exit, up to `timeout` (forever with `None`).
    pub fn wait(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<ExitInfo>, RuntimeError> {
        self.record(id)?;
        let exit_path = self.container_dir(id).join("exit.json");
        let deadline = timeout.map(|t| Instant::now() + t);
        let fd = self
            .monitors
            .lock()
            .unwrap()
            .get(id)
            .and_then(|f| f.try_clone().ok());
        loop {
            if let Some(e) =
                state::read_json::<ExitInfo>(&exit_path).map_err(io_err("reading exit"))?
            {
                return Ok(Some(e));
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            match &fd {
                Some(fd) => {
                    let slice = left
                        .unwrap_or(Duration::from_secs(1))
                        .min(Duration::from_secs(1));
                    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                    let _ = rustix::event::poll(
                        &mut fds,
                        Some(&rustix::event::Timespec {
                            tv_sec: slice.as_secs() as i64,
                            tv_nsec: slice.subsec_nanos() as i64,
                        }),
                    );
                    if readable(fd) && !exit_path.exists() {
                        // The monitor is gone and wrote nothing: it was killed.
                        return Ok(Some(ExitInfo {
                            exit_code: 255,
                            signal: None,
                            oom_killed: false,
                            finished_at: now(),
                        }));
                    }
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Stops a container: its stop signal (SIGTERM by default), then SIGKILL after `grace`.
    pub fn stop(&self, id: &str, grace: Duration) -> Result<ExitInfo, RuntimeError> {
        let rec = self.record(id)?;
        let sig = rec
            .stop_signal
            .as_deref()
            .and_then(signal_number)
            .unwrap_or(libc::SIGTERM);
        self.kill(id, sig)?;
        if let Some(e) = self.wait(id, Some(grace))? {
            return Ok(e);
        }
        self.kill(id, libc::SIGKILL)?;
        self.wait(id, Some(Duration::from_secs(30)))?
            .ok_or_else(|| {
                RuntimeError::Helper(format!("container {id} did not die after SIGKILL"))
            })
    }

    /// Removes a container (killing it if it still runs): its process, cgroup and state. The
    /// log file stays (it belongs to the caller).
    pub fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        valid_id("container", id)?;
        let dir = self.container_dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound(format!("container {id}")));
        }
        if self.record(id).is_ok()
            && !dir.join("exit.json").exists()
            && dir.join("monitor.json").exists()
        {
            self.kill(id, libc::SIGKILL)?;
            self.wait(id, Some(Duration::from_secs(30)))?;
        }
        self.call(
            &Request::Delete {
                id: id.to_string(),
                lc_root: self.lc_root(),
            },
            &[],
        )?;
        self.monitors.lock().unwrap().remove(id);
        fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))
    }

    /// CPU, memory and process figures from the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<Stats, RuntimeError> {
        let rec = self.record(id)?;
        cgroups::stats(&rec.cgroup_path).map_err(RuntimeError::Helper)
    }

    /// Runs a process in a running container, as the container's user with its capabilities.
    pub fn exec(&self, id: &str, e: &ExecConfig) -> Result<ExecProcess, RuntimeError> {
        let dir = self.container_dir(id);
        self.record(id)?;
        if e.args.is_empty() {
            return Err(RuntimeError::Invalid {
                what: "exec".into(),
                reason: "no command".into(),
            });
        }
        let spec = oci_spec::runtime::Spec::load(dir.join("bundle/config.json"))
            .map_err(|err| RuntimeError::Helper(format!("reading spec: {err}")))?;
        let mut process = spec
            .process()
            .clone()
            .ok_or_else(|| RuntimeError::Helper("spec has no process".into()))?;
        let mut env: Vec<String> = process.env().clone().unwrap_or_default();
        for (k, v) in &e.env {
            env.retain(|x| x.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        if e.tty && !env.iter().any(|x| x.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        process.set_args(Some(e.args.clone()));
        process.set_env(Some(env));
        process.set_terminal(Some(e.tty));
        if let Some(wd) = &e.working_dir {
            process.set_cwd(PathBuf::from(wd));
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let process_json = self.cfg.run_dir.join("exec").join(format!("{tag}.json"));
        state::write_json(&process_json, &process).map_err(io_err("writing process.json"))?;
        let (status_r, status_w) = sys::pipe().map_err(io_err("pipe"))?;
        let seccomp_bpf = Some(dir.join("bundle/seccomp.bpf")).filter(|p| p.exists());
        let request = |console_socket| Request::Exec {
            id: id.to_string(),
            lc_root: self.lc_root(),
            process_json: process_json.clone(),
            console_socket,
            seccomp_bpf: seccomp_bpf.clone(),
        };
        let cleanup = |p: &Path| {
            let _ = fs::remove_file(p);
        };
        let result = if e.tty {
            let sock_path = self.cfg.run_dir.join("exec").join(format!("{tag}.sock"));
            let listener = std::os::unix::net::UnixListener::bind(&sock_path)
                .map_err(io_err("console socket"))?;
            let r = self.call(&request(Some(sock_path.clone())), &[status_w.as_fd()]);
            drop(status_w);
            let master = r.and_then(|_| receive_console(&listener, Duration::from_secs(10)));
            cleanup(&sock_path);
            master.map(|m| (None, None, None, Some(m)))
        } else {
            let (in_r, in_w) = sys::pipe().map_err(io_err("pipe"))?;
            let (out_r, out_w) = sys::pipe().map_err(io_err("pipe"))?;
            let (err_r, err_w) = sys::pipe().map_err(io_err("pipe"))?;
            let r = self.call(
                &request(None),
                &[in_r.as_fd(), out_w.as_fd(), err_w.as_fd(), status_w.as_fd()],
            );
            drop((in_r, out_w, err_w, status_w));
            r.map(|_| {
                (
                    Some(fs::File::from(in_w)),
                    Some(fs::File::from(out_r)),
                    Some(fs::File::from(err_r)),
                    None,
                )
            })
        };
        let (stdin, stdout, stderr, tty) = match result {
            Ok(v) => v,
            Err(err) => {
                cleanup(&process_json);
                return Err(err);
            }
        };
        let mut status = BufReader::new(fs::File::from(status_r));
        let mut line = String::new();
        status
            .read_line(&mut line)
            .map_err(io_err("reading exec status"))?;
        cleanup(&process_json);
        if let Some(msg) = line.trim().strip_prefix("error ") {
            return Err(RuntimeError::Helper(msg.to_string()));
        }
        let pid = line
            .trim()
            .strip_prefix("started ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| {
                RuntimeError::Helper(format!("exec failed to start ({:?})", line.trim()))
            })?;
        Ok(ExecProcess {
            stdin,
            stdout,
            stderr,
            tty,
            status,
            pid,
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(h) = self.helper.get_mut().ok().and_then(Option::take) {
            h.stop(false);
        }
    }
}

fn spawn_helper(cmd: &[OsString]) -> Result<Helper, RuntimeError> {
    let (program, args) = cmd.split_first().ok_or_else(|| RuntimeError::Invalid {
        what: "helper command".into(),
        reason: "empty".into(),
    })?;
    let (ours, theirs) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(errno("socketpair"))?;
    let mut command = std::process::Command::new(program);
    command.args(args).stdin(std::process::Stdio::null());
    use std::os::fd::AsRawFd;
    let child = sys::spawn_with_fd3(&mut command, theirs.as_raw_fd())
        .map_err(io_err(format!("starting helper {program:?}")))?;
    drop(theirs);
    Ok(Helper {
        sock: ours,
        child,
        last_used: std::time::Instant::now(),
    })
}

/// Opens a pidfd for `pid` and keeps it only if the process is the one that started at
/// `start` (not a later one that reused the pid).
fn open_verified(pid: i32, start: u64) -> Option<OwnedFd> {
    let p = rustix::process::Pid::from_raw(pid)?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()?;
    (state::start_time(pid).ok()? == start).then_some(fd)
}

/// Whether a pidfd says its process exited.
fn readable(fd: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    matches!(rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
}

/// Accepts libcontainer's connection on the console socket and takes the pty master.
fn receive_console(
    listener: &std::os::unix::net::UnixListener,
    timeout: Duration,
) -> Result<fs::File, RuntimeError> {
    listener
        .set_nonblocking(true)
        .map_err(io_err("console socket"))?;
    let mut fds = [rustix::event::PollFd::new(
        listener,
        rustix::event::PollFlags::IN,
    )];
    let wait = rustix::event::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    loop {
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Err(rustix::io::Errno::INTR) => continue,
            r => {
                r.map_err(errno("waiting for the exec's terminal"))?;
                break;
            }
        }
    }
    let (stream, _) = listener
        .accept()
        .map_err(io_err("waiting for the exec's terminal"))?;
    stream
        .set_nonblocking(false)
        .map_err(io_err("console socket"))?;
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = rustix::net::RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        &stream,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut anc,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(errno("receiving the terminal"))?;
    for m in anc.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = m {
            if let Some(fd) = fds.next() {
                return Ok(fs::File::from(fd));
            }
        }
    }
    Err(RuntimeError::Helper("no terminal received".into()))
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
    if cfg.host_network {
        return fs::read_to_string("/etc/hosts").unwrap_or_default();
    }
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = cfg.pod_ip {
        s.push_str(&format!("{ip}\t{}\n", cfg.hostname));
    }
    for (ip, names) in &cfg.host_aliases {
        s.push_str(&format!("{ip}\t{}\n", names.join("\t")));
    }
    s
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

/// Sets the size of an exec's terminal (its master side).
pub fn set_winsize(tty: &fs::File, cols: u16, rows: u16) -> Result<(), RuntimeError> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(tty, ws).map_err(errno("setting the terminal size"))
}

/// `SIGTERM`, `TERM` or `15` → 15.
pub fn signal_number(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return Some(n);
    }
    let n = name.trim().to_ascii_uppercase();
    let n = n.strip_prefix("SIG").unwrap_or(&n);
    Some(match n {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        _ => return None,
    })
}
