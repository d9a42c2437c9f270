//! CPU and memory use of the node and its pods, reported to the coordinator for `top`.

use skiff_api::wire::{PodUsage, Usage};
use std::collections::HashMap;
use std::time::Instant;

/// Cumulative counters from the previous sample, to turn into rates.
#[derive(Default)]
pub struct Sampler {
    node: Option<(Instant, u64, u64)>,
    pods: HashMap<String, (Instant, u64)>,
}

fn proc_stat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// `MemTotal` and `MemAvailable` in bytes.
pub fn meminfo() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (get("MemTotal:"), get("MemAvailable:"))
}

/// Number of CPUs.
pub fn cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

impl Sampler {
    /// The node's usage since the last sample.
    pub fn node(&mut self) -> Usage {
        let (total, avail) = meminfo();
        let now = Instant::now();
        let mut cpu_millis = 0;
        if let Some((t, idle)) = proc_stat() {
            if let Some((_, pt, pidle)) = self.node {
                let dt = t.saturating_sub(pt);
                let busy = dt.saturating_sub(idle.saturating_sub(pidle));
                cpu_millis = (busy * cpus() * 1000).checked_div(dt).unwrap_or(0);
            }
            self.node = Some((now, t, idle));
        }
        Usage {
            cpu_millis,
            memory_bytes: total.saturating_sub(avail),
        }
    }

    /// A pod's usage from its containers' cumulative CPU time and working sets.
    pub fn pod(&mut self, namespace: &str, name: &str, cpu_ns: u64, memory: u64) -> PodUsage {
        let key = format!("{namespace}/{name}");
        let now = Instant::now();
        let cpu_millis = match self.pods.get(&key) {
            Some((t, prev)) => {
                let dt = now.duration_since(*t).as_nanos() as u64;
                (cpu_ns.saturating_sub(*prev) * 1000)
                    .checked_div(dt)
                    .unwrap_or(0)
            }
            None => 0,
        };
        self.pods.insert(key, (now, cpu_ns));
        PodUsage {
            namespace: namespace.into(),
            name: name.into(),
            usage: Usage {
                cpu_millis,
                memory_bytes: memory,
            },
        }
    }

    /// Drops pods that no longer report.
    pub fn retain(&mut self, live: &[String]) {
        self.pods.retain(|k, _| live.contains(k));
    }
}
