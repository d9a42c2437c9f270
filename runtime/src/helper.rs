//! The runtime's helper process. libcontainer clones and allocates in the child it creates,
//! which deadlocks when other threads of the process hold allocator locks (with musl every
//! time), so it never runs in the agent: the agent starts this helper once (its own binary
//! re-executed with one thread), and the helper forks per container:
//!
//! - a **monitor** per container, which creates the container with libcontainer (its init
//!   becomes the monitor's child), writes its stdout/stderr to the CRI log, waits for it, and
//!   records the exit status and OOM kill. Monitors start their own session, so they and
//!   their containers keep running when the agent and the helper stop;
//! - an **exec** process per `exec`, which joins the container and reports the exit code;
//! - a short-lived **sandbox** process per pod, which creates the pod's namespaces and
//!   bind-mounts them so they outlive it.
//!
//! The helper reaps those children itself; it never calls `waitpid(-1)` while libcontainer
//! runs in the same process, because libcontainer waits for its own intermediate process.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rustix::event::{poll, PollFd, PollFlags};

use crate::attach::Console;
use crate::logs::{LogWriter, Stream};
use crate::protocol::{self, ContainerJob, Request, Response};
use crate::state::{self, ExitInfo, MonitorInfo};
use crate::sys::{self, Forked};

/// The descriptor the helper's control socket is passed on.
pub const CONTROL_FD: i32 = 3;

/// libpathrs' cached procfs handle, which forked children keep.
static PROCFS_FD: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Entry point of the helper process (`skiff-agent runtime-helper`). Returns only on error;
/// exits when the agent closes the socket.
pub fn helper_main() -> io::Result<()> {
    let threads = sys::thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "the runtime helper must be single-threaded (it forks and runs libcontainer), found {threads} threads"
        )));
    }
    let sock = sys::inherited_fd(CONTROL_FD)?;
    // libcontainer opens /proc through libpathrs, which mounts a private procfs instance and
    // caches it per process. Warm that cache here, once: every monitor and container process
    // forked from the helper inherits it instead of mounting (and tearing down) its own.
    match pathrs::procfs::ProcfsHandle::new() {
        Ok(h) => {
            use std::os::fd::AsFd;
            let _ = PROCFS_FD.set(h.as_fd().as_raw_fd());
        }
        Err(e) => tracing::debug!("no cached procfs handle: {e}"),
    }
    loop {
        let readable = {
            let mut fds = [PollFd::new(&sock, PollFlags::IN)];
            match poll(
                &mut fds,
                Some(&rustix::event::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                }),
            ) {
                Ok(n) => n > 0,
                Err(rustix::io::Errno::INTR) => false,
                Err(e) => return Err(e.into()),
            }
        };
        reap_children();
        if !readable {
            continue;
        }
        let Some((req, fds)) = protocol::recv::<Request>(sock.as_fd())? else {
            // The agent went away: stop. Monitors (their own sessions) keep their containers.
            return Ok(());
        };
        let (resp, out_fds) = match handle(req, fds) {
            Ok(r) => r,
            Err(e) => (Response::Error(e), Vec::new()),
        };
        protocol::send(sock.as_fd(), &resp, &protocol::borrow_all(&out_fds))?;
    }
}

/// Reaps exited monitors and exec processes (the helper's only children between requests).
fn reap_children() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if matches!(status, WaitStatus::StillAlive) {
            break;
        }
    }
}

fn handle(req: Request, fds: Vec<OwnedFd>) -> Result<(Response, Vec<OwnedFd>), String> {
    match req {
        Request::CreateSandbox {
            ns_dir,
            hostname,
            host_network,
        } => {
            create_sandbox(&ns_dir, &hostname, host_network)?;
            Ok((Response::Ok, vec![]))
        }
        Request::CreateContainer(job) => create_container(job),
        Request::Start { id, lc_root } => {
            let mut c = Container::load(lc_root.join(&id))
                .map_err(|e| format!("loading container {id}: {e}"))?;
            c.start()
                .map_err(|e| format!("starting container {id}: {e}"))?;
            Ok((Response::Ok, vec![]))
        }
        Request::Delete { id, lc_root } => {
            let dir = lc_root.join(&id);
            if dir.exists() {
                let mut c = Container::load(dir.clone())
                    .map_err(|e| format!("loading container {id}: {e}"))?;
                c.delete(true)
                    .map_err(|e| format!("deleting container {id}: {e}"))?;
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| format!("removing {}: {e}", dir.display()))?;
                }
            }
            Ok((Response::Ok, vec![]))
        }
        Request::Exec {
            id,
            lc_root,
            process_json,
            console_socket,
            seccomp_bpf,
        } => {
            exec(id, lc_root, process_json, console_socket, seccomp_bpf, fds)?;
            Ok((Response::Ok, vec![]))
        }
    }
}

/// Runs `f` in a forked child whose result comes back through a pipe; the child exits after.
fn in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (r, w) = sys::pipe().map_err(|e| e.to_string())?;
    match sys::fork().map_err(|e| format!("fork: {e}"))? {
        Forked::Child => {
            drop(r);
            let code = match f() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = File::from(w).write_all(e.as_bytes());
                    1
                }
            };
            std::process::exit(code);
        }
        Forked::Parent(pid) => {
            drop(w);
            let mut msg = String::new();
            let _ = File::from(r).read_to_string(&mut msg);
            let status = waitpid(Pid::from_raw(pid), None).map_err(|e| format!("waitpid: {e}"))?;
            match status {
                WaitStatus::Exited(_, 0) => Ok(()),
                _ if !msg.is_empty() => Err(msg),
                other => Err(format!("helper child ended with {other:?}")),
            }
        }
    }
}

fn create_sandbox(ns_dir: &Path, hostname: &str, host_network: bool) -> Result<(), String> {
    in_child(|| {
        use nix::sched::CloneFlags;
        let mut flags = CloneFlags::CLONE_NEWIPC;
        if !host_network {
            flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
        }
        nix::sched::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
        let mut kinds = vec!["ipc"];
        if !host_network {
            nix::unistd::sethostname(hostname)
                .map_err(|e| format!("sethostname {hostname:?}: {e}"))?;
            sys::loopback_up().map_err(|e| format!("bringing lo up: {e}"))?;
            kinds.extend(["net", "uts"]);
        }
        for kind in kinds {
            let target = ns_dir.join(kind);
            nix::mount::mount(
                Some(Path::new(&format!("/proc/self/ns/{kind}"))),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                format!(
                    "bind-mounting the {kind} namespace onto {}: {e}",
                    target.display()
                )
            })?;
        }
        Ok(())
    })
}

fn create_container(job: ContainerJob) -> Result<(Response, Vec<OwnedFd>), String> {
    let (r, w) = sys::pipe().map_err(|e| e.to_string())?;
    match sys::fork().map_err(|e| format!("fork: {e}"))? {
        Forked::Child => {
            drop(r);
            monitor(job, w)
        }
        Forked::Parent(pid) => {
            drop(w);
            // The monitor cannot be reaped before we read its start time: we reap only
            // between requests.
            let pidfd = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid).expect("fork returned a pid"),
                rustix::process::PidfdFlags::empty(),
            )
            .map_err(|e| format!("pidfd_open: {e}"))?;
            let monitor_start = state::start_time(pid).map_err(|e| e.to_string())?;
            // One line, not EOF: the container's init holds a copy of the pipe until it execs.
            let mut msg = String::new();
            let _ = io::BufRead::read_line(&mut io::BufReader::new(File::from(r)), &mut msg);
            let msg = msg.trim_end().to_string();
            if let Some(rest) = msg.strip_prefix("ok ") {
                let mut it = rest.split_whitespace().map(|s| s.parse::<u64>());
                let (Some(Ok(init_pid)), Some(Ok(init_start))) = (it.next(), it.next()) else {
                    return Err(format!("monitor sent {msg:?}"));
                };
                let info = MonitorInfo {
                    monitor_pid: pid,
                    monitor_start,
                    init_pid: init_pid as i32,
                    init_start,
                };
                state::write_json(&job.state_dir.join("monitor.json"), &info)
                    .map_err(|e| format!("writing monitor.json: {e}"))?;
                Ok((Response::Ok, vec![pidfd]))
            } else {
                let _ = waitpid(Pid::from_raw(pid), None);
                Err(msg.strip_prefix("error ").unwrap_or(&msg).to_string())
            }
        }
    }
}

/// Keeps only descriptors 0–2 and `keep` open, with 0–2 on /dev/null: a monitor must not hold
/// the helper's socket or the agent's output pipes.
fn isolate_descriptors(keep: &[i32]) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let procfs = PROCFS_FD.get().copied();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) && Some(fd) != procfs {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// The monitor: creates the container, reports, then logs and waits. Never returns.
fn monitor(job: ContainerJob, report: OwnedFd) -> ! {
    let _ = nix::unistd::setsid();
    isolate_descriptors(&[report.as_raw_fd()]);
    let mut report = File::from(report);
    let result = start_container(&job);
    let (init_pid, streams, console) = match result {
        Ok(v) => v,
        Err(e) => {
            // Leave nothing half-made behind.
            if let Ok(mut c) = Container::load(job.lc_root.join(&job.id)) {
                let _ = c.delete(true);
            }
            let _ = std::fs::remove_dir_all(job.lc_root.join(&job.id));
            let _ = report.write_all(format!("error {}\n", e.replace('\n', " ")).as_bytes());
            std::process::exit(1);
        }
    };
    let init_start = state::start_time(init_pid).unwrap_or(0);
    let _ = report.write_all(format!("ok {init_pid} {init_start}\n").as_bytes());
    drop(report);
    // From here on the monitor only copies output and waits: it needs little of the code
    // it inherited from the helper.
    // Its own mappings only (see `PageCache::Keep`).
    let _ = sys::shed_code_pages(sys::PageCache::Keep);
    let exit = supervise(&job, init_pid, streams, console);
    let _ = state::write_json(&job.state_dir.join("exit.json"), &exit);
    std::process::exit(0);
}

/// A created container: its init's pid, the output to copy, and its console (if attachable).
type Started = (i32, Vec<(OwnedFd, Stream)>, Option<Console>);

/// Creates the container (its init waits to be started): its output on pipes, or on a
/// terminal whose master libcontainer sends over a console socket; its input `/dev/null`,
/// or a pipe the monitor holds; and the attach socket, when it has input or a terminal.
fn start_container(job: &ContainerJob) -> Result<Started, String> {
    let bpf = Some(job.bundle.join("seccomp.bpf")).filter(|p| p.exists());
    let mut b = container_builder(&job.id, &job.lc_root, bpf.as_deref())?;
    let mut streams = Vec::new();
    let mut input = None;
    let console_socket = match (&job.attach_socket, job.tty) {
        (Some(p), true) => {
            let path = p.with_extension("console");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            let _ = std::fs::remove_file(&path);
            let l = std::os::unix::net::UnixListener::bind(&path)
                .map_err(|e| format!("console socket {}: {e}", path.display()))?;
            Some((l, path))
        }
        (None, true) => return Err("a container with a terminal needs an attach socket".into()),
        _ => None,
    };
    if let Some((_, path)) = &console_socket {
        b = b.with_console_socket(Some(path));
    } else {
        let (out_r, out_w) = sys::pipe().map_err(|e| e.to_string())?;
        let (err_r, err_w) = sys::pipe().map_err(|e| e.to_string())?;
        let stdin: OwnedFd = if job.stdin {
            let (r, w) = sys::pipe().map_err(|e| e.to_string())?;
            input = Some(w);
            r
        } else {
            File::open("/dev/null").map_err(|e| e.to_string())?.into()
        };
        b = b.with_stdin(stdin).with_stdout(out_w).with_stderr(err_w);
        streams = vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)];
    }
    let container = b
        .as_init(&job.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| format!("creating container: {}", error_chain(&e)))?;
    let pid = container.pid().ok_or("container has no pid")?.as_raw();
    let mut tty = None;
    if let Some((listener, path)) = console_socket {
        // The init sent the master before it reported ready: it waits in the socket.
        let master = crate::exec::receive_console(&listener, Duration::from_secs(10));
        let _ = std::fs::remove_file(&path);
        let master = OwnedFd::from(master.map_err(|e| e.to_string())?);
        let dup = |f: &OwnedFd| f.try_clone().map_err(|e| e.to_string());
        streams.push((dup(&master)?, Stream::Stdout));
        if job.stdin {
            input = Some(dup(&master)?);
        }
        tty = Some(master);
    }
    let console = match &job.attach_socket {
        Some(p) => Some(
            Console::listen(p, input, tty, job.stdin_once)
                .map_err(|e| format!("attach socket {}: {e}", p.display()))?,
        ),
        None => None,
    };
    Ok((pid, streams, console))
}

/// A libcontainer builder for container `id`, loading the precompiled seccomp program at
/// `seccomp_bpf` (if any) in the container's process just before exec.
fn container_builder(
    id: &str,
    lc_root: &Path,
    seccomp_bpf: Option<&Path>,
) -> Result<ContainerBuilder, String> {
    let mut b = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(lc_root)
        .map_err(|e| e.to_string())?;
    if let Some(p) = seccomp_bpf {
        let bpf = std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        b = b.with_executor(sys::BpfExecutor {
            bpf: std::sync::Arc::new(bpf),
        });
    }
    Ok(b)
}

/// Exit code (128 + signal for a signal) and signal of a reaped process.
fn exit_status(status: WaitStatus) -> (i32, Option<i32>) {
    match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        _ => (255, None),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Copies output to the log (and attached sessions) until the init exits and its output
/// ends; returns the exit.
fn supervise(
    job: &ContainerJob,
    init_pid: i32,
    mut streams: Vec<(OwnedFd, Stream)>,
    mut console: Option<Console>,
) -> ExitInfo {
    let mut log = LogWriter::open(&job.log_path, job.log_max_size, job.log_max_files).ok();
    let pidfd = rustix::process::Pid::from_raw(init_pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let mut status: Option<WaitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if status.is_none() {
            // Without a pidfd (old kernels), poll for the exit between reads.
            if let Ok(s) = waitpid(Pid::from_raw(init_pid), Some(WaitPidFlag::WNOHANG)) {
                if !matches!(s, WaitStatus::StillAlive) {
                    status = Some(s);
                    exited_at = Some(Instant::now());
                }
            }
        }
        if streams.is_empty() && status.is_some() {
            break;
        }
        // After the exit, give stray writers a moment, then stop.
        if exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = streams
            .iter()
            .map(|(fd, _)| PollFd::new(fd, PollFlags::IN))
            .collect();
        let pid_slot = match (&pidfd, status.is_none()) {
            (Some(p), true) => {
                fds.push(PollFd::new(p, PollFlags::IN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let console_at = fds.len();
        let slots = console
            .as_ref()
            .map(|c| c.poll_fds(&mut fds))
            .unwrap_or_default();
        let timeout = if pidfd.is_some() { 1000 } else { 100 };
        let _ = poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: timeout / 1000,
                tv_nsec: (timeout % 1000) * 1_000_000,
            }),
        );
        let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        let ready: Vec<bool> = revents.iter().map(|r| !r.is_empty()).collect();
        drop(fds);
        if let Some(c) = &mut console {
            c.serve(&slots, &revents[console_at..]);
        }
        if let Some(slot) = pid_slot {
            if ready[slot] {
                if let Ok(s) = waitpid(Pid::from_raw(init_pid), None) {
                    status = Some(s);
                    exited_at = Some(Instant::now());
                }
            }
        }
        let mut closed = Vec::new();
        for (i, (fd, stream)) in streams.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    if let Some(l) = &mut log {
                        let _ = l.write(*stream, &buf[..n]);
                    }
                    if let Some(c) = &mut console {
                        c.output(*stream == Stream::Stderr, &buf[..n]);
                    }
                }
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            streams.remove(i);
        }
    }
    if let Some(l) = &mut log {
        let _ = l.finish();
    }
    let (exit_code, signal) = status.map(exit_status).unwrap_or((255, None));
    if let Some(c) = console {
        c.finish(exit_code);
    }
    ExitInfo {
        exit_code,
        signal,
        oom_killed: crate::cgroups::oom_kills(&job.cgroup_path, job.cgroup_v2) > 0,
        finished_at: crate::logs::timestamp(SystemTime::now()),
    }
}

/// Forks the exec process. It reports on the status pipe; the helper does not wait.
fn exec(
    id: String,
    lc_root: PathBuf,
    process_json: PathBuf,
    console_socket: Option<PathBuf>,
    seccomp_bpf: Option<PathBuf>,
    fds: Vec<OwnedFd>,
) -> Result<(), String> {
    let tty = console_socket.is_some();
    let want = if tty { 1 } else { 4 };
    if fds.len() != want {
        return Err(format!("exec needs {want} descriptors, got {}", fds.len()));
    }
    match sys::fork().map_err(|e| format!("fork: {e}"))? {
        Forked::Parent(_) => Ok(()),
        Forked::Child => {
            let mut fds = fds.into_iter();
            let (stdio, status): (Option<(OwnedFd, OwnedFd, OwnedFd)>, OwnedFd) = if tty {
                (None, fds.next().expect("checked"))
            } else {
                let i = fds.next().expect("checked");
                let o = fds.next().expect("checked");
                let e = fds.next().expect("checked");
                (Some((i, o, e)), fds.next().expect("checked"))
            };
            let mut keep = vec![status.as_raw_fd()];
            if let Some((i, o, e)) = &stdio {
                keep.extend([i.as_raw_fd(), o.as_raw_fd(), e.as_raw_fd()]);
            }
            isolate_descriptors(&keep);
            let mut status = File::from(status);
            let built = (|| -> Result<i32, String> {
                let mut b = container_builder(&id, &lc_root, seccomp_bpf.as_deref())?
                    .with_console_socket(console_socket.as_ref());
                if let Some((i, o, e)) = stdio {
                    b = b.with_stdin(i).with_stdout(o).with_stderr(e);
                }
                let pid = b
                    .as_tenant()
                    .with_process(Some(&process_json))
                    .with_detach(tty)
                    .build()
                    .map_err(|e| format!("exec in {id}: {}", error_chain(&e)))?;
                Ok(pid.as_raw())
            })();
            let pid = match built {
                Ok(p) => p,
                Err(e) => {
                    let _ = writeln!(status, "error {e}");
                    std::process::exit(1);
                }
            };
            let _ = writeln!(status, "started {pid}");
            let code = waitpid(Pid::from_raw(pid), None)
                .map(|st| exit_status(st).0)
                .unwrap_or(255);
            let _ = writeln!(status, "exit {code}");
            std::process::exit(0);
        }
    }
}
