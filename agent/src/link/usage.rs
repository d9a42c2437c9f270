//! CPU and memory use of the node and its pods, reported to the coordinator for `top`.

use skiff_api::wire::{ContainerUsage, PodUsage, Usage};
use std::collections::HashMap;
use std::time::Instant;

/// Cumulative counters from the previous sample, to turn into rates.
#[derive(Default)]
pub struct Sampler {
    node: Option<(Instant, u64, u64)>,
    containers: HashMap<String, (Instant, u64)>,
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

    /// A pod's usage from each container's cumulative CPU time and working set
    /// (`(name, cpu_ns, memory)`): a container's CPU is its rate since its previous
    /// sample (none yet, or a restarted container whose counter went back: 0), the pod's
    /// the sum of its containers'.
    pub fn pod(
        &mut self,
        namespace: &str,
        name: &str,
        containers: &[(String, u64, u64)],
    ) -> PodUsage {
        let now = Instant::now();
        let mut total = Usage::default();
        let containers = containers
            .iter()
            .map(|(c, cpu_ns, memory)| {
                let key = format!("{namespace}/{name}/{c}");
                let cpu_millis = match self.containers.get(&key) {
                    Some((t, prev)) => {
                        let dt = now.duration_since(*t).as_nanos() as u64;
                        (cpu_ns.saturating_sub(*prev) * 1000)
                            .checked_div(dt)
                            .unwrap_or(0)
                    }
                    None => 0,
                };
                self.containers.insert(key, (now, *cpu_ns));
                total.cpu_millis += cpu_millis;
                total.memory_bytes += memory;
                ContainerUsage {
                    name: c.clone(),
                    usage: Usage {
                        cpu_millis,
                        memory_bytes: *memory,
                    },
                }
            })
            .collect();
        PodUsage {
            namespace: namespace.into(),
            name: name.into(),
            usage: total,
            containers,
        }
    }

    /// Drops the counters of containers that no longer report (`live`:
    /// `namespace/pod/container`).
    pub fn retain(&mut self, live: &[String]) {
        self.containers.retain(|k, _| live.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_the_sum_of_its_containers_and_rates_need_two_samples() {
        let mut s = Sampler::default();
        let first = s.pod(
            "ns",
            "p",
            &[("a".into(), 1_000, 10), ("b".into(), 5_000, 20)],
        );
        assert_eq!(
            first.usage,
            Usage {
                cpu_millis: 0,
                memory_bytes: 30
            }
        );
        assert_eq!(first.containers.len(), 2);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // a: 0.5 s of CPU in ~20 ms is far above a core; b restarted (counter went back).
        let second = s.pod(
            "ns",
            "p",
            &[("a".into(), 500_001_000, 11), ("b".into(), 10, 21)],
        );
        let (a, b) = (&second.containers[0], &second.containers[1]);
        assert!(a.usage.cpu_millis > 1000, "{a:?}");
        assert_eq!(b.usage.cpu_millis, 0);
        assert_eq!(second.usage.cpu_millis, a.usage.cpu_millis);
        assert_eq!(second.usage.memory_bytes, 32);
        s.retain(&["ns/p/a".to_string()]);
        assert_eq!(s.containers.len(), 1);
    }
}
