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

pub mod attach;
pub mod cgroups;
pub mod config;
mod exec;
mod exits;
pub mod helper;
pub mod logs;
pub mod protocol;
mod sandbox;
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
pub use exec::{set_winsize, ExecProcess};
pub use state::ExitInfo;
pub use sys::{exited, shed_code_pages, single_malloc_arena, PageCache};

use exits::{open_verified, readable};
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

impl RuntimeError {
    /// A state file that reads but does not parse (garbled by a power cut on a file system
    /// that lost the write): what it described is made anew rather than failing on.
    pub fn garbled(&self) -> Option<&io::Error> {
        match self {
            RuntimeError::Io { source, .. } if source.kind() == io::ErrorKind::InvalidData => {
                Some(source)
            }
            _ => None,
        }
    }
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
    /// When its init started, while running, in clock ticks since boot (see
    /// [`ContainerStatus::running_for`]).
    pub init_start: Option<u64>,
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
}

impl ContainerStatus {
    /// How long its init has run, while running, by the kernel's clock since boot: unlike
    /// `started_at`, unmoved when the wall clock jumps (a board without a real-time clock
    /// that boots in 1970 until NTP answers). Reads `/proc/uptime`: asked only when needed.
    pub fn running_for(&self) -> Option<Duration> {
        state::running_for(self.init_start?)
    }
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
    /// The kernel booted since this run directory was last used (its recorded boot id
    /// differs): no container or sandbox namespace of before survived.
    booted: bool,
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

/// Compares the kernel's boot id with the one `run_dir` recorded, and records the current
/// one; true when they differ (a boot since the last run).
fn note_boot(run_dir: &Path) -> Result<bool, RuntimeError> {
    let current = fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_err(io_err("reading the kernel's boot id"))?;
    let current = current.trim();
    let path = run_dir.join("boot_id");
    let recorded = fs::read_to_string(&path).ok();
    let booted = recorded
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty() && r.trim() != current);
    if recorded.as_deref().map(str::trim) != Some(current) {
        state::write_atomic(&path, current.as_bytes()).map_err(io_err("recording the boot id"))?;
    }
    Ok(booted)
}

/// Mounts a tmpfs at `dir` unless one is there (the runtime ran before since the boot):
/// what holds a container's environment (its bundle's `config.json`, an exec's process
/// spec) lives there, so a Secret given as an environment variable never reaches the disk.
/// After a boot its containers are gone, and so are their bundles.
fn in_memory(dir: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(dir);
    let dev = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.dev())
            .map_err(io_err(format!("reading {}", p.display())))
    };
    if dev(dir)? != dev(parent)? {
        return Ok(());
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0700,size=64m"),
    )
    .map_err(|e| RuntimeError::Helper(format!("mounting a tmpfs at {}: {e}", dir.display())))
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
        for d in ["containers", "sandboxes", "lc", "exec", "mem"] {
            fs::create_dir_all(cfg.run_dir.join(d))
                .map_err(io_err(format!("creating {}", cfg.run_dir.display())))?;
        }
        in_memory(&cfg.run_dir.join("mem"))?;
        for d in ["mem/bundles", "mem/exec"] {
            fs::create_dir_all(cfg.run_dir.join(d))
                .map_err(io_err(format!("creating {}", cfg.run_dir.display())))?;
        }
        let booted = note_boot(&cfg.run_dir)?;
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
            booted,
        };
        rt.readopt()?;
        Ok(rt)
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// Whether the kernel booted since this run directory was last used (the kernel's boot
    /// id differs from the one recorded there): every sandbox of before is gone, and a
    /// caller rebuilds them. A directory used for the first time counts as no boot.
    pub fn booted(&self) -> bool {
        self.booted
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

    /// A container's bundle, on the runtime's tmpfs ([`in_memory`]); one made by an
    /// earlier version, in the container's directory on the disk, while it lasts.
    fn bundle_dir(&self, id: &str) -> PathBuf {
        let old = self.container_dir(id).join("bundle");
        if old.exists() {
            return old;
        }
        self.cfg.run_dir.join("mem/bundles").join(id)
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
        let bundle = self.cfg.run_dir.join("mem/bundles").join(id);
        fs::create_dir_all(&dir).map_err(io_err("creating the container's directory"))?;
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
                    attach_socket: (c.stdin || c.tty)
                        .then(|| attach::socket_path(&self.cfg.run_dir, id)),
                    stdin: c.stdin,
                    stdin_once: c.stdin_once,
                    tty: c.tty,
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
            let _ = fs::remove_dir_all(&bundle);
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
        let init_start = match (&state, &info) {
            (ContainerState::Running, Some(i)) => Some(i.init_start),
            _ => None,
        };
        Ok(ContainerStatus {
            id: rec.id,
            sandbox: rec.sandbox,
            name: rec.name,
            state,
            pid,
            created_at: rec.created_at,
            started_at,
            init_start,
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
                // Garbled: the container is let go, so its pod's worker makes a new one.
                Err(e) if e.garbled().is_some() => self.let_go(&id, &e),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
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
        let _ = fs::remove_file(attach::socket_path(&self.cfg.run_dir, id));
        let bundle = self.bundle_dir(id);
        if let Err(e) = fs::remove_dir_all(&bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io_err(format!("removing {}", bundle.display()))(e));
            }
        }
        fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))
    }

    /// A session with the process of container `id`, which was created with `stdin` or
    /// `tty` and is running; `stdin` says whether input follows.
    pub fn attach(&self, id: &str, stdin: bool) -> Result<attach::Attached, RuntimeError> {
        valid_id("container", id)?;
        self.record(id)?;
        attach::Attached::connect(&self.cfg.run_dir, id, stdin).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                RuntimeError::NotFound(format!(
                    "container {id} has no attach socket: it was not created with stdin or tty, or it has ended"
                ))
            }
            _ => io_err("connecting to the container's monitor")(e),
        })
    }

    /// CPU, memory and process figures from the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<Stats, RuntimeError> {
        let rec = self.record(id)?;
        cgroups::stats(&rec.cgroup_path).map_err(RuntimeError::Helper)
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
