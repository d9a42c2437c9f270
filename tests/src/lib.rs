//! Harness for skiff's end-to-end tests and benchmarks: real binaries, real processes.
//!
//! The binaries are the ones `cargo test --workspace` (or `cargo build --workspace`)
//! builds next to the test executables.

pub mod bench;
pub mod cluster;
pub mod flood;
pub mod image;
pub mod lan;
pub mod node;
pub mod pty;
pub mod registry;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary `var` names if it is set (another build, or a wrapper such as a profiler
/// around one), else the workspace's `name` ([`binary`]).
pub fn binary_or_env(name: &str, var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| binary(name))
}

/// Path of a workspace binary built beside the running test or bench executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace's binaries first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// A port free for UDP and TCP on 127.0.0.1 (QUIC and HTTPS share the number).
pub fn free_port() -> u16 {
    // Free for UDP (QUIC) and for TCP (the Kubernetes API over HTTPS on the same port).
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// CPU time a process has used (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th field.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux architecture skiff targets.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time the whole machine has spent busy (everything but idle and iowait), in
/// seconds summed over its CPUs.
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // user nice system idle iowait irq softirq steal ...; guest time is inside user.
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = f.get(3).unwrap_or(&0.0) + f.get(4).unwrap_or(&0.0);
    (f.iter().sum::<f64>() - idle) / 100.0
}

/// Resident memory of a process in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// A fresh directory under the system temp dir, removed on drop (unless `SKIFF_KEEP_TMP`
/// is set).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `skiff-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "skiff-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // SKIFF_KEEP_TMP=1 keeps logs and state of a failed run to look at.
        if std::env::var_os("SKIFF_KEEP_TMP").is_some() {
            return;
        }
        // An agent's data dir holds mounts (its Secrets' tmpfs, rootfs overlays).
        unmount_under(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unmounts (lazily) everything mounted under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|m| m.replace("\\040", " ")))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
    for m in mounts {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A network namespace of its own for a test or benchmark that runs agents with pod
/// networking: loopback only, no route off the machine (a wrong address fails with
/// "network unreachable" instead of leaving). Removed on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        let name = format!("skiff-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = |o: std::io::Result<Output>| o.is_ok_and(|o| o.status.success());
        assert!(
            ok(Command::new("ip").args(["netns", "add", &name]).output()),
            "ip netns add {name}"
        );
        assert!(
            ok(Command::new("ip")
                .args(["-n", &name, "link", "set", "lo", "up"])
                .output()),
            "lo up in {name}"
        );
        NetNs { name }
    }

    /// Replaces the namespace by an empty one of the same name (only `lo`, up): every
    /// link, route and nftables rule of the old one is gone once nothing holds it (a power
    /// cut, for what ran in it).
    pub fn renew(&self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let ok = |o: std::io::Result<Output>| o.is_ok_and(|o| o.status.success());
        assert!(
            ok(Command::new("ip")
                .args(["netns", "add", &self.name])
                .output()),
            "ip netns add {}",
            self.name
        );
        assert!(
            ok(Command::new("ip")
                .args(["-n", &self.name, "link", "set", "lo", "up"])
                .output()),
            "lo up in {}",
            self.name
        );
    }

    /// The namespace's file, for setns.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Moves the calling thread into the namespace (sockets it opens then belong there).
    pub fn enter_this_thread(&self) {
        enter_netns(&self.path());
    }
}

/// Moves the calling thread into the network namespace at `path` (`/run/netns/<name>`).
pub fn enter_netns(path: &std::path::Path) {
    let f = std::fs::File::open(path).expect("open netns");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A command for `program`, run in the network namespace `netns` if given (only the
/// network namespace changes: `nsenter --net`, not `ip netns exec`, which also gives the
/// process a mount namespace of its own).
pub fn command_in(netns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{ns}"))
                .arg("--")
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A coordinator process.
pub struct Coordinator {
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    /// The network namespace it runs in (and the CLI with it), if not the machine's.
    pub netns: Option<String>,
    child: Option<Child>,
}

impl Coordinator {
    /// Starts `skiff-coordinator` on `data_dir` and waits until it answers.
    pub fn start(data_dir: &Path) -> Coordinator {
        Self::start_on(data_dir, free_port())
    }

    /// Starts it on a given port.
    pub fn start_on(data_dir: &Path, port: u16) -> Coordinator {
        Self::start_in(data_dir, port, None)
    }

    /// Starts it on a given port inside a network namespace.
    pub fn start_in(data_dir: &Path, port: u16, netns: Option<&str>) -> Coordinator {
        Self::start_with(data_dir, port, netns, &[])
    }

    /// Starts it with extra flags.
    pub fn start_with(
        data_dir: &Path,
        port: u16,
        netns: Option<&str>,
        extra: &[&str],
    ) -> Coordinator {
        Self::start_listening(data_dir, &format!("127.0.0.1:{port}"), netns, extra)
    }

    /// Starts one listening on `listen` (`ADDR:PORT`).
    pub fn start_listening(
        data_dir: &Path,
        listen: &str,
        netns: Option<&str>,
        extra: &[&str],
    ) -> Coordinator {
        let port: u16 = listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("listen ADDR:PORT");
        let log = std::fs::File::create(data_dir.join(format!("coordinator-{port}.log")))
            .expect("log file");
        let bin = binary_or_env("skiff-coordinator", "SKIFF_COORDINATOR_BIN");
        let child = command_in(netns, bin)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(listen)
            .args(extra)
            .env("SKIFF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff-coordinator");
        let c = Coordinator {
            data_dir: data_dir.to_path_buf(),
            port,
            netns: netns.map(String::from),
            child: Some(child),
        };
        c.wait_ready();
        c
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.config().exists() && self.skiff(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("coordinator did not become ready; log:\n{}", self.log());
    }

    /// The admin client config it wrote.
    pub fn config(&self) -> PathBuf {
        self.data_dir.join("admin.config")
    }

    /// The node join token it wrote.
    pub fn node_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("node-token"))
            .expect("node-token")
            .trim()
            .to_string()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join(format!("coordinator-{}.log", self.port)))
            .unwrap_or_default()
    }

    /// Runs the CLI as admin.
    /// Applies a manifest (written beside its data) and asserts it succeeded.
    pub fn apply(&self, yaml: &str) {
        let path = self.data_dir.join(format!("m-{}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        ok(self.skiff(&["apply", "-f", path.to_str().unwrap()]));
    }

    /// `skiff ARGS -o json`, parsed (`null` when it fails).
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&out(&self.skiff(&a))).unwrap_or(serde_json::Value::Null)
    }

    pub fn skiff(&self, args: &[&str]) -> Output {
        command_in(self.netns.as_deref(), binary("skiff"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .expect("run skiff")
    }

    /// `skiff ARGS` with `input` on its standard input (then its end).
    pub fn skiff_input(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = command_in(self.netns.as_deref(), binary("skiff"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run skiff");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input)
            .expect("skiff's input");
        child.wait_with_output().expect("skiff's output")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Stops it with SIGTERM and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_signal(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Kills it with SIGKILL and waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a signal to a process.
pub fn send_signal(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// stdout as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        out(&o),
        err(&o)
    );
    out(&o)
}

/// Asserts failure and returns stderr.
#[track_caller]
pub fn fails(o: Output) -> String {
    assert!(
        !o.status.success(),
        "command should have failed:\nstdout: {}\nstderr: {}",
        out(&o),
        err(&o)
    );
    err(&o)
}
