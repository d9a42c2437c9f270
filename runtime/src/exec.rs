//! Processes run in a running container (`skiff exec`), with or without a terminal.

use super::*;

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

impl Runtime {
    /// Runs a process in a running container, as the container's user with its capabilities.
    pub fn exec(&self, id: &str, e: &ExecConfig) -> Result<ExecProcess, RuntimeError> {
        self.record(id)?;
        if e.args.is_empty() {
            return Err(RuntimeError::Invalid {
                what: "exec".into(),
                reason: "no command".into(),
            });
        }
        let bundle = self.bundle_dir(id);
        let spec = oci_spec::runtime::Spec::load(bundle.join("config.json"))
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
        // The process carries the container's environment: on the tmpfs.
        let process_json = self
            .cfg
            .run_dir
            .join("mem/exec")
            .join(format!("{tag}.json"));
        state::write_json(&process_json, &process).map_err(io_err("writing process.json"))?;
        let (status_r, status_w) = sys::pipe().map_err(io_err("pipe"))?;
        let seccomp_bpf = Some(bundle.join("seccomp.bpf")).filter(|p| p.exists());
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

/// Accepts libcontainer's connection on the console socket and takes the pty master.
pub(crate) fn receive_console(
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

/// Sets the size of an exec's terminal (its master side).
pub fn set_winsize(tty: &fs::File, cols: u16, rows: u16) -> Result<(), RuntimeError> {
    set_winsize_fd(tty.as_fd(), cols, rows)
}

/// Sets the size of a terminal by its master side's descriptor.
pub(crate) fn set_winsize_fd(
    tty: std::os::fd::BorrowedFd<'_>,
    cols: u16,
    rows: u16,
) -> Result<(), RuntimeError> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(tty, ws).map_err(errno("setting the terminal size"))
}
