//! Containers' ends: signals, waiting for an exit, stopping with a grace period, and letting
//! go of one whose state cannot be read. A container's monitor (a child of the helper)
//! writes `exit.json` when the init exits; its pidfd tells a monitor that died without.

use super::*;

impl Runtime {
    /// Forgets a container whose state cannot be read: its init is killed if the monitor's
    /// file still names it, and its state directory is removed (the log stays).
    pub(crate) fn let_go(&self, id: &str, why: &RuntimeError) {
        let dir = self.container_dir(id);
        tracing::warn!(container = %id, dir = %dir.display(), error = %why,
            "unreadable container state: the container is let go and made anew");
        if let Ok(Some(info)) = state::read_json::<MonitorInfo>(&dir.join("monitor.json")) {
            if let Some(fd) = open_verified(info.init_pid, info.init_start) {
                let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
            }
        }
        self.monitors.lock().unwrap().remove(id);
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "removing unreadable container state");
        }
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
        let mut fd = self
            .monitors
            .lock()
            .unwrap()
            .get(id)
            .and_then(|f| f.try_clone().ok());
        if fd.is_none() && !exit_path.exists() {
            // Not one of this process's monitors (started before a restart or a reboot): a
            // monitor that no longer runs, and wrote no exit, is never going to.
            let info: Option<MonitorInfo> =
                state::read_json(&self.container_dir(id).join("monitor.json"))
                    .map_err(io_err("reading monitor"))?;
            if let Some(i) = info {
                fd = open_verified(i.monitor_pid, i.monitor_start);
                if fd.is_none() && !exit_path.exists() {
                    return Ok(Some(ExitInfo::monitor_lost()));
                }
            }
        }
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
                        return Ok(Some(ExitInfo::monitor_lost()));
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
}

/// Whether a pidfd says its process exited.
pub(crate) fn readable(fd: &OwnedFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    matches!(rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
}

/// Opens a pidfd for `pid` and keeps it only if the process is the one that started at
/// `start` (not a later one that reused the pid).
pub(crate) fn open_verified(pid: i32, start: u64) -> Option<OwnedFd> {
    let p = rustix::process::Pid::from_raw(pid)?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()?;
    (state::start_time(pid).ok()? == start).then_some(fd)
}
