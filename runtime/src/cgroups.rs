//! cgroups. One library does all of it: libcgroups (which libcontainer brings) creates and
//! removes the container cgroups (through libcontainer), removes the pod-level cgroups, and
//! reads stats, on v1 and v2 alike. cgroups-rs is not linked: it would be a second cgroup
//! library in the binary for nothing libcgroups lacks. Only the OOM-kill counter, which
//! libcgroups does not expose, is read here directly from the kernel's files.

use std::path::{Path, PathBuf};

use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager, CgroupSetup};

const ROOT: &str = "/sys/fs/cgroup";

/// Whether containers get cgroup v2 (a unified host). Hybrid hosts use v1, as runc does.
pub fn is_v2() -> bool {
    matches!(
        libcgroups::common::get_cgroup_setup(),
        Ok(CgroupSetup::Unified)
    )
}

/// OOM kills in a cgroup so far (0 when unknown).
pub fn oom_kills(cgroup_path: &str, v2: bool) -> u64 {
    let rel = cgroup_path.trim_start_matches('/');
    let file: PathBuf = if v2 {
        Path::new(ROOT).join(rel).join("memory.events")
    } else {
        Path::new(ROOT)
            .join("memory")
            .join(rel)
            .join("memory.oom_control")
    };
    parse_oom_kill(&std::fs::read_to_string(file).unwrap_or_default())
}

/// The `oom_kill N` line of `memory.events` (v2) or `memory.oom_control` (v1).
pub fn parse_oom_kill(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A container's resource use.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Total CPU time used, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory in use minus inactive file cache (what the OOM killer and kubelet look at).
    pub memory_working_set: u64,
    pub memory_usage: u64,
    pub pids: u64,
    /// CFS periods in which the cpu limit held the container back.
    pub cpu_throttled_periods: u64,
}

fn manager(cgroup_path: &str) -> Result<libcgroups::common::AnyCgroupManager, String> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: PathBuf::from(cgroup_path),
        systemd_cgroup: false,
        container_name: String::new(),
    })
    .map_err(|e| format!("cgroup {cgroup_path}: {e}"))
}

/// Reads a cgroup's stats.
pub fn stats(cgroup_path: &str) -> Result<Stats, String> {
    let s = manager(cgroup_path)?
        .stats()
        .map_err(|e| format!("stats of {cgroup_path}: {e}"))?;
    let usage = s.memory.memory.usage;
    let inactive = s
        .memory
        .stats
        .get("total_inactive_file")
        .or_else(|| s.memory.stats.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    Ok(Stats {
        cpu_usage_ns: s.cpu.usage.usage_total,
        memory_working_set: usage.saturating_sub(inactive),
        memory_usage: usage,
        pids: s.pids.current,
        cpu_throttled_periods: s.cpu.throttling.throttled_periods,
    })
}

/// Removes a (pod-level) cgroup in every hierarchy. Absent is fine.
pub fn remove(cgroup_path: &str) -> Result<(), String> {
    manager(cgroup_path)?
        .remove()
        .map_err(|e| format!("removing cgroup {cgroup_path}: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn oom_counter_parses_v1_and_v2() {
        assert_eq!(
            super::parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            3
        );
        assert_eq!(
            super::parse_oom_kill("low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n"),
            1
        );
        assert_eq!(super::parse_oom_kill(""), 0);
    }
}
