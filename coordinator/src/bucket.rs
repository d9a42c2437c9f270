//! A token bucket, pure: the front door's handshakes per source and the event spam filter
//! both limit with one.

use std::time::Instant;

/// `tokens` left at `at`; refills at a rate a second up to a burst (the caller's).
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub tokens: f64,
    pub at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    /// Its tokens at `now`, refilled at `rate` a second since `at` (at most `burst`).
    pub fn tokens_at(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + dt * rate).min(burst)
    }

    /// Takes one token at `now` if it has one.
    pub fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        self.tokens = self.tokens_at(now, rate, burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
