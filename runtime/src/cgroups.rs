//! cgroups. One library does all of it: libcgroups (which libcontainer brings) creates and
//! removes the container cgroups (through libcontainer), removes the pod-level cgroups, and
//! reads stats, on v1 and v2 alike. cgroups-rs is not linked: it would be a second cgroup
//! library in the binary for nothing libcgroups lacks. Two things are read here directly
//! from the kernel's files: the OOM-kill counter, which libcgroups does not expose, and the
//! few figures the agent reports every 15 s per container (CPU time, throttling, memory,
//! pids), which libcgroups would read among every other statistic of every controller
//! (blkio per device, hugetlb per page size, per-CPU usage). Where those files are not at
//! the usual places, libcgroups reads them.

use std::path::{Path, PathBuf};

use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager, CgroupSetup};

const ROOT: &str = "/sys/fs/cgroup";

/// Whether containers get cgroup v2 (a unified host). Hybrid hosts use v1, as runc does.
pub fn is_v2() -> bool {
    static V2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V2.get_or_init(|| {
        matches!(
            libcgroups::common::get_cgroup_setup(),
            Ok(CgroupSetup::Unified)
        )
    })
}

/// A cgroup's `file` of `controller` under `root`: in the controller's hierarchy on v1,
/// in the one directory on v2.
fn file(root: &Path, controller: &str, cgroup_path: &str, file: &str, v2: bool) -> PathBuf {
    let rel = cgroup_path.trim_start_matches('/');
    if v2 {
        root.join(rel).join(file)
    } else {
        root.join(controller).join(rel).join(file)
    }
}

/// OOM kills in a cgroup so far (0 when unknown).
pub fn oom_kills(cgroup_path: &str, v2: bool) -> u64 {
    let name = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let path = file(Path::new(ROOT), "memory", cgroup_path, name, v2);
    parse_oom_kill(&std::fs::read_to_string(path).unwrap_or_default())
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

/// The value of the `key N` line of a flat-keyed cgroup file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A cgroup's stats read straight from its files under `root` (`/sys/fs/cgroup`): on v1
/// from the cpuacct, cpu, memory and pids hierarchies, on v2 from the one directory.
/// None if a file is missing or unreadable.
pub fn stats_from(root: &Path, cgroup_path: &str, v2: bool) -> Option<Stats> {
    let read = |controller: &str, name: &str| {
        std::fs::read_to_string(file(root, controller, cgroup_path, name, v2)).ok()
    };
    let number = |text: String| text.trim().parse::<u64>().ok();
    let cpu_stat = read("cpu", "cpu.stat")?;
    let memory_stat = read("memory", "memory.stat")?;
    let (cpu_usage_ns, memory_usage, inactive) = if v2 {
        (
            keyed(&cpu_stat, "usage_usec")?.saturating_mul(1000),
            number(read("memory", "memory.current")?)?,
            keyed(&memory_stat, "inactive_file").unwrap_or(0),
        )
    } else {
        (
            number(read("cpuacct", "cpuacct.usage")?)?,
            number(read("memory", "memory.usage_in_bytes")?)?,
            keyed(&memory_stat, "total_inactive_file").unwrap_or(0),
        )
    };
    Some(Stats {
        cpu_usage_ns,
        memory_working_set: memory_usage.saturating_sub(inactive),
        memory_usage,
        pids: number(read("pids", "pids.current")?)?,
        cpu_throttled_periods: keyed(&cpu_stat, "nr_throttled").unwrap_or(0),
    })
}

/// Reads a cgroup's stats.
pub fn stats(cgroup_path: &str) -> Result<Stats, String> {
    if let Some(s) = stats_from(Path::new(ROOT), cgroup_path, is_v2()) {
        return Ok(s);
    }
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
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    #[test]
    fn stats_read_v1_and_v2_files() {
        let root = std::env::temp_dir().join(format!("skiff-cg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(
            &root.join("v1"),
            &[
                ("cpuacct/pod/c/cpuacct.usage", "123456789\n"),
                (
                    "cpu/pod/c/cpu.stat",
                    "nr_periods 10\nnr_throttled 4\nthrottled_time 9\n",
                ),
                ("memory/pod/c/memory.usage_in_bytes", "1000000\n"),
                (
                    "memory/pod/c/memory.stat",
                    "cache 5\ninactive_file 7\ntotal_inactive_file 250000\n",
                ),
                ("pids/pod/c/pids.current", "3\n"),
            ],
        );
        assert_eq!(
            stats_from(&root.join("v1"), "/pod/c", false),
            Some(Stats {
                cpu_usage_ns: 123456789,
                memory_working_set: 750000,
                memory_usage: 1000000,
                pids: 3,
                cpu_throttled_periods: 4,
            })
        );
        write(
            &root.join("v2"),
            &[
                (
                    "pod/c/cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nnr_throttled 2\n",
                ),
                ("pod/c/memory.current", "4096\n"),
                ("pod/c/memory.stat", "anon 1\ninactive_file 1024\n"),
                ("pod/c/pids.current", "1\n"),
            ],
        );
        assert_eq!(
            stats_from(&root.join("v2"), "/pod/c", true),
            Some(Stats {
                cpu_usage_ns: 1_500_000,
                memory_working_set: 3072,
                memory_usage: 4096,
                pids: 1,
                cpu_throttled_periods: 2,
            })
        );
        // A missing file: None (libcgroups reads it instead).
        std::fs::remove_file(root.join("v2/pod/c/pids.current")).unwrap();
        assert_eq!(stats_from(&root.join("v2"), "/pod/c", true), None);
        let _ = std::fs::remove_dir_all(&root);
    }

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
