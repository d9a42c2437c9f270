//! A node's runtime for tests: a data directory with the test image imported, the
//! `skiff-agent` operator commands, and the runtime library driving the real helper.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use skiff_images::ImageStore;
use skiff_runtime::{ContainerConfig, ImageDefaults, Runtime, RuntimeConfig, SandboxConfig};

use crate::{binary, TempDir};

/// The test image's name.
pub const IMAGE: &str = "skiff-test/busybox:1";

/// Panics unless running as root: runtime tests need namespaces, mounts and cgroups, and in
/// CI (root) they must run, never skip.
pub fn require_root() {
    assert!(
        is_root(),
        "runtime tests need root (namespaces, mounts, cgroups); CI runs them as root"
    );
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A `docker save` archive of the test image, built once per test process.
pub fn image_archive() -> PathBuf {
    static ARCHIVE: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            let dir = TempDir::new("image");
            let path = dir.path().join("busybox.tar");
            crate::image::docker_save(&path, IMAGE);
            (dir, path)
        })
        .1
        .clone()
}

/// One node's data directory.
pub struct Node {
    pub dir: TempDir,
    pub name: String,
}

impl Node {
    /// A fresh data directory with the test image imported.
    pub fn new(tag: &str) -> Node {
        require_root();
        let dir = TempDir::new(tag);
        let name = format!("t-{tag}-{}", std::process::id());
        let node = Node { dir, name };
        let out = node.agent(&["image", "import", image_archive().to_str().unwrap()]);
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        node
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `skiff-agent --data-dir D --name N ARGS`.
    pub fn agent(&self, args: &[&str]) -> Output {
        Command::new(binary("skiff-agent"))
            .arg("--data-dir")
            .arg(self.data())
            .arg("--name")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run skiff-agent")
    }

    /// `skiff-agent run --rm [flags] IMAGE -- sh -c SCRIPT`: exit code, stdout, stderr.
    pub fn run(&self, flags: &[&str], script: &str) -> (i32, String, String) {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "--", "sh", "-c", script]);
        let out = self.agent(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The runtime library on this node, with the real helper process.
    pub fn runtime(&self) -> Runtime {
        Runtime::new(self.runtime_config()).expect("runtime")
    }

    fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            run_dir: self.data().join("run"),
            cgroup_parent: self.cgroup_parent(),
            helper: vec![
                binary("skiff-agent").into_os_string(),
                "runtime-helper".into(),
            ],
        }
    }

    pub fn cgroup_parent(&self) -> String {
        format!("/skiff/{}", self.name)
    }

    pub fn store(&self) -> ImageStore {
        ImageStore::open(&self.data().join("content")).expect("image store")
    }

    /// Creates a sandbox `pod` (if new) and a started container `id` running `script`.
    pub fn start(
        &self,
        rt: &Runtime,
        pod: &str,
        id: &str,
        script: &str,
        tweak: impl FnOnce(&mut ContainerConfig),
    ) {
        if !rt.sandboxes().unwrap().iter().any(|s| s == pod) {
            rt.create_sandbox(&SandboxConfig {
                id: pod.into(),
                hostname: pod.into(),
                ..Default::default()
            })
            .expect("sandbox");
        }
        let store = self.store();
        let rec = store.get(IMAGE).expect("test image");
        let rootfs = store.prepare_rootfs(id, &rec).expect("rootfs");
        let mut c = ContainerConfig {
            name: id.into(),
            command: Some(vec!["sh".into(), "-c".into(), script.into()]),
            log_path: self.log_path(id),
            ..Default::default()
        };
        tweak(&mut c);
        let cfg = store.config(&rec).unwrap().config;
        let image = ImageDefaults {
            env: cfg.env.unwrap_or_default(),
            cmd: cfg.cmd,
            working_dir: cfg.working_dir,
            ..Default::default()
        };
        rt.create_container(pod, id, &c, &image, &rootfs.path)
            .expect("create");
        rt.start_container(id).expect("start");
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.data().join("logs").join(format!("{id}.log"))
    }

    /// The container's stdout+stderr lines so far.
    pub fn log(&self, id: &str) -> String {
        skiff_runtime::logs::read_all(&self.log_path(id))
            .unwrap_or_default()
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e.content).into_owned() + "\n")
            .collect()
    }

    /// Waits (bounded) until the log contains `text`.
    pub fn wait_log(&self, id: &str, text: &str) -> String {
        for _ in 0..600 {
            let l = self.log(id);
            if l.contains(text) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{id}: {text:?} never appeared; log:\n{}", self.log(id));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Leave nothing running or mounted behind, whatever the test did.
        if let Ok(rt) = Runtime::new(self.runtime_config()) {
            for s in rt.sandboxes().unwrap_or_default() {
                let _ = rt.remove_sandbox(&s);
            }
        }
        if let Ok(store) = ImageStore::open(&self.data().join("content")) {
            for k in store.rootfs_keys().unwrap_or_default() {
                let _ = store.remove_rootfs(&k);
            }
        }
        let _ = skiff_runtime::cgroups::remove(&self.cgroup_parent());
    }
}

/// A `skiff-agent` daemon on a [`Node`]'s data dir, joined to a coordinator.
pub struct AgentProc {
    pub data_dir: PathBuf,
    pub name: String,
    server: String,
    token: String,
    extra: Vec<String>,
    netns: Option<String>,
    /// Extra environment for the next start (e.g. libfaketime's, to move its wall clock).
    pub env: Vec<(String, String)>,
    child: Option<std::process::Child>,
    /// How many times it was started (each run logs to `agent-<n>.log`).
    pub runs: u32,
}

impl AgentProc {
    /// Starts an agent for `node` against the coordinator at `server` with `token`, in the
    /// network namespace `netns` (agents run pods with pod networking: tests give them a
    /// namespace of their own with no route off the machine).
    pub fn start(
        node: &Node,
        server: &str,
        token: &str,
        extra: &[&str],
        netns: Option<&str>,
    ) -> AgentProc {
        let mut a = AgentProc {
            data_dir: node.data().to_path_buf(),
            name: node.name.clone(),
            server: server.to_string(),
            token: token.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            netns: netns.map(String::from),
            env: Vec::new(),
            child: None,
            runs: 0,
        };
        a.restart();
        a
    }

    /// Starts it again (after [`AgentProc::kill`] or [`AgentProc::stop`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "agent already running");
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).expect("agent log");
        // SKIFF_AGENT_BIN: another build of the agent (the benchmark's board profile).
        let bin = crate::binary_or_env("skiff-agent", "SKIFF_AGENT_BIN");
        let child = crate::command_in(self.netns.as_deref(), bin)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--name")
            .arg(&self.name)
            .arg("--server")
            .arg(&self.server)
            .arg("--token")
            .arg(&self.token)
            .args(&self.extra)
            .env("SKIFF_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff-agent");
        self.child = Some(child);
    }

    /// The join token the next start passes (`--token`).
    pub fn set_token(&mut self, token: &str) {
        self.token = token.to_string();
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.data_dir.join(format!("agent-{run}.log"))
    }

    /// The log of the current (or last) run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.runs)).unwrap_or_default()
    }

    /// Every run's log.
    pub fn all_logs(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.log_path(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::send_signal(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds; panics with
/// `what` and the last value it saw otherwise.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        match f() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not within {secs}s; last seen: {last}");
}

/// Simulates a power cut of `node`, whose agent runs in `netns` (as the tests' clusters do;
/// the agent is killed first, and anything else sharing the namespace goes with it): every
/// process of the node is killed (those in the namespace: agent, runtime helper, monitors;
/// those in the node's cgroups: the containers), everything mounted under its data
/// directory is unmounted, its network namespace (links, routes, nftables rules) is
/// replaced by an empty one and its cgroups are removed. The data directory's files stay,
/// as a reboot leaves them.
pub fn power_cut(node: &Node, netns: &crate::NetNs) {
    use std::os::unix::fs::MetadataExt;
    let ns_ino = std::fs::metadata(netns.path()).expect("netns").ino();
    let cgroup_dirs = || -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let mut stack = vec![h.path().join("skiff").join(&node.name)];
            while let Some(d) = stack.pop() {
                if !d.is_dir() {
                    continue;
                }
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
                dirs.push(d);
            }
        }
        dirs
    };
    // Kill until nothing is left (a process may fork while the others die).
    for _ in 0..100 {
        let mut pids: Vec<i32> = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // Zombies wait for their parent to reap them: nothing left to kill.
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
                .unwrap_or(true);
            if pid != std::process::id() as i32
                && !zombie
                && std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == ns_ino)
            {
                pids.push(pid);
            }
        }
        for d in cgroup_dirs() {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            crate::send_signal(pid as u32, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    crate::unmount_under(node.data());
    netns.renew();
    // Cgroups, deepest first (their processes may take a moment to be reaped).
    for _ in 0..100 {
        let mut dirs = cgroup_dirs();
        if dirs.is_empty() {
            break;
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
