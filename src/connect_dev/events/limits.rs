//! Throttling of the Events routes: a share of requests answered 429 (storms), and an optional per-token request budget.
//!
//! The published limits of the real API are 600 requests per minute and 30,000 per hour
//! ([`RateLimit::PUBLISHED`]). The budget here counts the requests a token had accepted in
//! fixed windows that start at its first request; a refused request does not count, and its
//! `Retry-After` is the time left in the window that ran out.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand::Rng as _;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Tokens whose budget is tracked; past this the table starts over.
const MAX_TRACKED: usize = 10_000;

/// Requests allowed per token per minute and per hour (either may be unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
}

impl RateLimit {
    /// The limits the real Events API publishes.
    pub const PUBLISHED: RateLimit = RateLimit {
        per_minute: Some(600),
        per_hour: Some(30_000),
    };
}

/// A rate limit that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate limit '{0}': expected N/min, N/hour or both (e.g. 600/min,30000/hour), or 'published'"
)]
pub struct RateLimitParseError(String);

impl FromStr for RateLimit {
    type Err = RateLimitParseError;

    /// `600/min`, `30000/hour`, `600/min,30000/hour`, or `published` for those two.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || RateLimitParseError(s.chars().take(40).collect());
        if s.trim() == "published" {
            return Ok(RateLimit::PUBLISHED);
        }
        let mut limit = RateLimit {
            per_minute: None,
            per_hour: None,
        };
        for part in s.split(',') {
            let (count, unit) = part.trim().split_once('/').ok_or_else(invalid)?;
            let count: u32 = count.trim().parse().map_err(|_| invalid())?;
            if count == 0 {
                return Err(invalid());
            }
            let slot = match unit.trim() {
                "m" | "min" | "minute" => &mut limit.per_minute,
                "h" | "hour" => &mut limit.per_hour,
                _ => return Err(invalid()),
            };
            if slot.replace(count).is_some() {
                return Err(invalid());
            }
        }
        Ok(limit)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [(self.per_minute, "min"), (self.per_hour, "hour")]
            .into_iter()
            .filter_map(|(n, unit)| n.map(|n| format!("{n}/{unit}")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One token's windows.
struct Budget {
    minute: (Instant, u32),
    hour: (Instant, u32),
}

/// The throttling settings, changeable at run time, and the budgets spent.
pub struct Throttle {
    too_many_bits: AtomicU64,
    retry_after_secs: AtomicU64,
    limit: RwLock<Option<RateLimit>>,
    budgets: Mutex<HashMap<Box<str>, Budget>>,
}

impl Throttle {
    pub fn new(too_many_rate: f64, retry_after: Duration, limit: Option<RateLimit>) -> Self {
        let throttle = Self {
            too_many_bits: AtomicU64::new(0),
            retry_after_secs: AtomicU64::new(1),
            limit: RwLock::new(None),
            budgets: Mutex::new(HashMap::new()),
        };
        throttle.set_storm(too_many_rate, retry_after);
        throttle.set_limit(limit);
        throttle
    }

    /// `rate` is clamped to 0..=1 (NaN counts as 0); `retry_after` is rounded up to whole
    /// seconds, at least 1.
    pub fn set_storm(&self, rate: f64, retry_after: Duration) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        let secs = retry_after
            .as_secs()
            .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
            .max(1);
        self.too_many_bits.store(rate.to_bits(), Ordering::Relaxed);
        self.retry_after_secs.store(secs, Ordering::Relaxed);
    }

    /// Replaces the budget; budgets already spent start over.
    pub fn set_limit(&self, limit: Option<RateLimit>) {
        *self.limit.write().unwrap_or_else(PoisonError::into_inner) = limit;
        self.budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub fn too_many_rate(&self) -> f64 {
        f64::from_bits(self.too_many_bits.load(Ordering::Relaxed))
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> Option<RateLimit> {
        *self.limit.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Some(retry after seconds)` when this request falls in the storm.
    pub fn storm(&self) -> Option<u64> {
        let rate = self.too_many_rate();
        (rate > 0.0 && rand::thread_rng().r#gen::<f64>() < rate).then(|| self.retry_after_secs())
    }

    /// Spends one request of `token`'s budget, or says how many seconds until it can.
    pub fn charge(&self, token: &str, now: Instant) -> Result<(), u64> {
        let Some(limit) = self.limit() else {
            return Ok(());
        };
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        if budgets.len() >= MAX_TRACKED && !budgets.contains_key(token) {
            budgets.clear();
        }
        let budget = budgets.entry(token.into()).or_insert(Budget {
            minute: (now, 0),
            hour: (now, 0),
        });
        let windows = [
            (&mut budget.minute, limit.per_minute, MINUTE),
            (&mut budget.hour, limit.per_hour, HOUR),
        ];
        let mut wait: Option<Duration> = None;
        for (window, allowed, length) in &windows {
            let elapsed = now.saturating_duration_since(window.0);
            let spent = if elapsed >= *length { 0 } else { window.1 };
            if allowed.is_some_and(|allowed| spent >= allowed) {
                let left = length.saturating_sub(elapsed);
                wait = Some(wait.map_or(left, |w| w.max(left)));
            }
        }
        if let Some(wait) = wait {
            let secs = wait
                .as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0));
            return Err(secs.max(1));
        }
        for (window, _, length) in windows {
            if now.saturating_duration_since(window.0) >= length {
                *window = (now, 0);
            }
            window.1 = window.1.saturating_add(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_print() {
        assert_eq!("published".parse(), Ok(RateLimit::PUBLISHED));
        assert_eq!(
            "600/min, 30000/hour".parse::<RateLimit>(),
            Ok(RateLimit::PUBLISHED)
        );
        assert_eq!(
            "5/m".parse(),
            Ok(RateLimit {
                per_minute: Some(5),
                per_hour: None
            })
        );
        assert_eq!(RateLimit::PUBLISHED.to_string(), "600/min,30000/hour");
        for bad in ["", "5", "5/day", "0/min", "x/min", "5/min,6/min"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn budgets_per_token_and_window() {
        let throttle = Throttle::new(0.0, Duration::from_secs(1), "2/min,3/hour".parse().ok());
        let t0 = Instant::now();
        assert_eq!(throttle.charge("a", t0), Ok(()));
        assert_eq!(throttle.charge("a", t0), Ok(()));
        assert_eq!(throttle.charge("a", t0 + Duration::from_secs(10)), Err(50));
        assert_eq!(throttle.charge("b", t0), Ok(()), "another token");
        // A new minute, but the hour has one left.
        assert_eq!(throttle.charge("a", t0 + Duration::from_secs(61)), Ok(()));
        assert_eq!(
            throttle.charge("a", t0 + Duration::from_secs(62)),
            Err(3600 - 62)
        );
        throttle.set_limit(None);
        assert_eq!(throttle.charge("a", t0 + Duration::from_secs(63)), Ok(()));
    }

    #[test]
    fn storms_follow_their_rate() {
        let throttle = Throttle::new(1.0, Duration::from_millis(1500), None);
        assert_eq!(throttle.storm(), Some(2));
        throttle.set_storm(0.0, Duration::ZERO);
        assert_eq!(throttle.storm(), None);
        assert_eq!(throttle.retry_after_secs(), 1);
        throttle.set_storm(f64::NAN, Duration::from_secs(3));
        assert_eq!(throttle.too_many_rate(), 0.0);
    }
}
