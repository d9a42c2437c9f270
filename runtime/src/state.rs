//! What the runtime keeps on disk per container, so a restarted agent finds its containers.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Written by the helper once the monitor reported the container created.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MonitorInfo {
    pub monitor_pid: i32,
    /// `/proc/<pid>/stat` start time, to tell this process from a later one with the same pid.
    pub monitor_start: u64,
    pub init_pid: i32,
    pub init_start: u64,
}

/// Written by the monitor when the container's init exits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExitInfo {
    /// The exit code, or 128 + the signal number.
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// The cgroup's OOM killer killed a process of the container.
    pub oom_killed: bool,
    pub finished_at: String,
}

impl ExitInfo {
    /// The exit of a container whose monitor died without writing one (killed, or the node
    /// lost power): code 255, as Kubernetes reports a container whose runtime lost it.
    pub fn monitor_lost() -> ExitInfo {
        ExitInfo {
            exit_code: 255,
            signal: None,
            oom_killed: false,
            finished_at: crate::now(),
        }
    }
}

/// Writes a small file atomically (temp file, rename). No fsync: this is run-time state,
/// which must survive the agent's process (the page cache does) but not a reboot, after
/// which no container is left to describe.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` as [`write_json`] does.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Reads a JSON file; `None` if absent.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// How long ago a process that started `start` clock ticks after boot did, by the
/// kernel's boot-time clock (`/proc/uptime`), which wall-clock jumps do not move.
pub fn running_for(start: u64) -> Option<std::time::Duration> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second();
    if hz == 0 {
        return None;
    }
    let started = start as f64 / hz as f64;
    Some(std::time::Duration::from_secs_f64(
        (secs - started).max(0.0),
    ))
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: i32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    after
        .split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("cannot parse /proc/{pid}/stat")))
}
