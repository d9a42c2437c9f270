//! Harness for skiff's end-to-end tests and benchmarks: real binaries, real processes.
//!
//! The binaries are the ones `cargo test --workspace` (or `cargo build --workspace`)
//! builds next to the test executables.

pub mod bench;
pub mod image;
pub mod node;
pub mod registry;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
        "{} is missing: build the workspace first (cargo build --workspace, or run cargo test --workspace)",
        p.display()
    );
    p
}

/// A free UDP port on 127.0.0.1.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
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

/// A fresh directory under the system temp dir, removed on drop.
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
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A coordinator process.
pub struct Coordinator {
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl Coordinator {
    /// Starts `skiff-coordinator` on `data_dir` and waits until it answers.
    pub fn start(data_dir: &Path) -> Coordinator {
        Self::start_on(data_dir, free_port())
    }

    /// Starts it on a given port.
    pub fn start_on(data_dir: &Path, port: u16) -> Coordinator {
        let log = std::fs::File::create(data_dir.join(format!("coordinator-{port}.log")))
            .expect("log file");
        let child = Command::new(binary("skiff-coordinator"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("SKIFF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff-coordinator");
        let c = Coordinator {
            data_dir: data_dir.to_path_buf(),
            port,
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
    pub fn skiff(&self, args: &[&str]) -> Output {
        Command::new(binary("skiff"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .expect("run skiff")
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
