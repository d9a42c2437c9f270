//! The event spam filter of Kubernetes' event recorder (client-go's `EventCorrelator`): a
//! source may record 25 Events about one object at once, then one more every 5 minutes.
//! A Deployment scaled up and down all day, or a Job whose pods keep failing, records 25
//! Events and then 12 an hour, not one per pass; objects are remembered in a bounded cache
//! (4,096, as client-go's LRU), and one forgotten starts again with a full allowance.

use crate::bucket::Bucket;
use crate::HashMap;
use std::time::{Duration, Instant};

/// Events an object may get at once.
pub const BURST: f64 = 25.0;
/// One more Event per this long.
pub const REFILL: Duration = Duration::from_secs(300);
/// Objects remembered.
pub const CAPACITY: usize = 4096;

/// Tokens a second.
fn rate() -> f64 {
    1.0 / REFILL.as_secs_f64()
}

/// Token buckets by source and object (`K`: whatever names both).
#[derive(Debug)]
pub struct SpamFilter<K> {
    buckets: HashMap<K, Bucket>,
}

impl<K> Default for SpamFilter<K> {
    fn default() -> Self {
        SpamFilter {
            buckets: HashMap::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> SpamFilter<K> {
    /// Whether an Event about `key` may be recorded at `now` (and takes its token if so).
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= CAPACITY {
            self.forget_oldest(now);
        }
        self.buckets
            .entry(key.clone())
            .or_insert(Bucket::full(BURST, now))
            .take(now, rate(), BURST)
    }

    /// Objects remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Drops the buckets that refilled (they would allow as much as a new one), then, if
    /// that freed less than a quarter, the least recently used ones down to three quarters.
    fn forget_oldest(&mut self, now: Instant) {
        self.buckets
            .retain(|_, b| b.tokens_at(now, rate(), BURST) < BURST);
        let keep = CAPACITY * 3 / 4;
        if self.buckets.len() > keep {
            let mut ages: Vec<Instant> = self.buckets.values().map(|b| b.at).collect();
            let cut = ages.len() - keep;
            let (_, oldest_kept, _) = ages.select_nth_unstable(cut);
            let oldest_kept = *oldest_kept;
            self.buckets.retain(|_, b| b.at >= oldest_kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_gets_25_events_then_one_per_five_minutes() {
        let mut f = SpamFilter::default();
        let t0 = Instant::now();
        let allowed = (0..1000).filter(|_| f.allow(&"rs/web", t0)).count();
        assert_eq!(allowed, 25);
        assert!(!f.allow(&"rs/web", t0 + Duration::from_secs(299)));
        assert!(f.allow(&"rs/web", t0 + Duration::from_secs(300)));
        assert!(!f.allow(&"rs/web", t0 + Duration::from_secs(301)));
        // Another object has its own allowance.
        assert!(f.allow(&"rs/api", t0));
        // Refilled over two hours: a burst again, and no more than one.
        let later = t0 + REFILL * 30;
        assert_eq!((0..100).filter(|_| f.allow(&"rs/web", later)).count(), 25);
    }

    #[test]
    fn memory_stays_bounded_and_the_recently_used_are_kept() {
        let mut f = SpamFilter::default();
        let t0 = Instant::now();
        for _ in 0..25 {
            assert!(f.allow(&0usize, t0));
        }
        for i in 1..20_000usize {
            f.allow(&i, t0 + Duration::from_millis(i as u64));
            // Keep object 0 among the recently used.
            f.allow(&0, t0 + Duration::from_millis(i as u64));
            assert!(f.len() <= CAPACITY);
        }
        // Object 0 was never forgotten: its allowance is still spent.
        assert!(!f.allow(&0, t0 + Duration::from_millis(20_000)));
    }
}
