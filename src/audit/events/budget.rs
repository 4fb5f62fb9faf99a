//! The Events API source's request budget: at most so many requests a minute and an hour for
//! its token (the API's published limits, less a margin), so opsync stays under them by design
//! instead of learning them from 429s. Two `governor` rate limiters, one per window.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::telemetry::names;

/// The budget of one token.
#[derive(Debug)]
pub struct Budget {
    minute: DefaultDirectRateLimiter,
    hour: DefaultDirectRateLimiter,
}

impl Budget {
    /// At most `per_minute` requests in any minute and `per_hour` in any hour (each at least 1).
    pub fn new(per_minute: u32, per_hour: u32) -> Self {
        let n = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        Self {
            minute: RateLimiter::direct(Quota::per_minute(n(per_minute))),
            hour: RateLimiter::direct(Quota::per_hour(n(per_hour))),
        }
    }

    /// Waits until one more request fits in both windows, and takes it.
    pub async fn take(&self) {
        let started = Instant::now();
        self.hour.until_ready().await;
        self.minute.until_ready().await;
        let waited = started.elapsed();
        if waited > Duration::from_millis(1) {
            metrics::counter!(names::AUDIT_EVENTS_WAITS_TOTAL, "reason" => "budget").increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_within_the_budget_does_not_wait() {
        let budget = Budget::new(600, 30_000);
        let started = Instant::now();
        for _ in 0..50 {
            budget.take().await;
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
