//! The controllers' CPU budget: a token bucket of CPU time that paces their writes.
//!
//! A Deployment scaled to thousands of replicas makes the controllers write as fast as
//! the store commits, and every write brings work after it (the pod's delivery to its
//! node, the scheduler's next pass). On a board whose other cores run the workloads, the
//! coordinator should not take them all for that. Kubernetes bounds the same burst with
//! fixed client rate limits (`--kube-api-qps`); skiff bounds what it costs instead: the
//! process's own CPU time, read before each write, refills at `cores` CPU-seconds per
//! second and a write waits while more was spent than that allowed. A small change
//! never waits: the bucket holds [`BURST`] of CPU time.
//!
//! Sans-I/O: [`CpuBudget::observe`] takes the time and the CPU time; the runner reads
//! the clocks and sleeps.

use std::time::{Duration, Instant};

/// CPU time the coordinator may spend at once before writes wait.
pub const BURST: Duration = Duration::from_millis(100);

/// A token bucket of CPU time.
#[derive(Debug, Clone)]
pub struct CpuBudget {
    /// CPU-seconds per second; `None`: unlimited.
    cores: Option<f64>,
    /// Seconds of CPU time that may still be spent; negative: spent ahead of the budget.
    tokens: f64,
    /// When, and at what CPU time, the last observation was.
    last: Option<(Instant, Duration)>,
}

impl CpuBudget {
    /// A budget of `cores` (CPU-seconds per second); zero, negative or not finite means
    /// no limit.
    pub fn new(cores: f64) -> CpuBudget {
        CpuBudget {
            cores: (cores.is_finite() && cores > 0.0).then_some(cores),
            tokens: BURST.as_secs_f64(),
            last: None,
        }
    }

    /// The process used `cpu` of CPU time in all by `now`: how long the next write should
    /// wait (zero when within the budget).
    pub fn observe(&mut self, now: Instant, cpu: Duration) -> Duration {
        let Some(cores) = self.cores else {
            return Duration::ZERO;
        };
        if let Some((t0, c0)) = self.last {
            let wall = now.saturating_duration_since(t0).as_secs_f64();
            let spent = cpu.saturating_sub(c0).as_secs_f64();
            self.tokens = (self.tokens + wall * cores - spent).min(BURST.as_secs_f64());
        }
        self.last = Some((now, cpu));
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / cores)
        }
    }
}

/// This process's CPU time (user and system, every thread).
pub fn process_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn within_the_budget_nothing_waits() {
        let mut b = CpuBudget::new(1.0);
        let t = Instant::now();
        assert_eq!(b.observe(t, Duration::ZERO), Duration::ZERO);
        // Half a core for a second.
        for i in 1..=10 {
            assert_eq!(b.observe(t + 100 * MS * i, 50 * MS * i), Duration::ZERO);
        }
    }

    #[test]
    fn a_burst_is_allowed_then_spending_waits_for_the_refill() {
        let mut b = CpuBudget::new(0.5);
        let t = Instant::now();
        b.observe(t, Duration::ZERO);
        // The burst: 100 ms of CPU at once is allowed.
        assert_eq!(b.observe(t, 100 * MS), Duration::ZERO);
        // 50 ms more is 50 ms beyond: at half a core that takes 100 ms to earn back.
        let wait = b.observe(t, 150 * MS);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // After waiting it out without spending, writes go on.
        assert_eq!(b.observe(t + 100 * MS, 150 * MS), Duration::ZERO);
    }

    #[test]
    fn idle_time_refills_no_more_than_the_burst() {
        let mut b = CpuBudget::new(1.0);
        let t = Instant::now();
        b.observe(t, Duration::ZERO);
        // A minute idle, then 300 ms of CPU at once: only 100 ms of it was saved up.
        assert_eq!(b.observe(t + 60_000 * MS, Duration::ZERO), Duration::ZERO);
        let wait = b.observe(t + 60_000 * MS, 300 * MS);
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn sustained_use_settles_at_the_budget() {
        // A process that would spend 1.8 cores if never made to wait, observed every 5 ms:
        // over ten seconds it gets the budget and the burst, no more.
        let mut b = CpuBudget::new(0.8);
        let t0 = Instant::now();
        let (mut now, mut cpu) = (t0, Duration::ZERO);
        b.observe(now, cpu);
        while now < t0 + 10_000 * MS {
            let wait = b.observe(now, cpu);
            if wait.is_zero() {
                now += 5 * MS;
                cpu += 9 * MS;
            } else {
                now += wait;
            }
        }
        let cores = cpu.as_secs_f64() / (now - t0).as_secs_f64();
        assert!((0.79..=0.82).contains(&cores), "{cores}");
    }

    #[test]
    fn no_budget_never_waits() {
        for cores in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let mut b = CpuBudget::new(cores);
            let t = Instant::now();
            b.observe(t, Duration::ZERO);
            assert_eq!(b.observe(t, Duration::from_secs(100)), Duration::ZERO);
        }
    }

    #[test]
    fn the_process_clock_advances_with_work() {
        let (a, t) = (process_cpu_time(), Instant::now());
        let mut x = 0u64;
        while t.elapsed() < 50 * MS {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        assert!(process_cpu_time() > a);
    }
}
