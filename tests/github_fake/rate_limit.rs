//! Primary and secondary rate limits, and the `x-ratelimit-*` headers every answer carries.
//!
//! One budget for the whole fake (GitHub keeps one per user or installation). The primary limit
//! is 5,000 requests an hour; [`Limits::set_primary`] lowers it, and once a window's budget is
//! spent its reset moves to [`EXHAUSTED_RESET`] seconds ahead, so a test can wait for it. The
//! secondary limit refuses more than `max` requests per sliding `window`, then everything for
//! `retry_after` seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::clock;
use super::reply::{RATE_LIMIT_DOCS, Reply};

/// GitHub's primary budget for a personal access token, per hour.
pub const DEFAULT_PRIMARY: u32 = 5000;

const HOUR: i64 = 3600;

/// Seconds from the request that spends a window's budget to that window's reset.
pub const EXHAUSTED_RESET: i64 = 3;

const SECONDARY_DOCS: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

#[derive(Debug)]
struct Secondary {
    max: u32,
    window: Duration,
    retry_after: u64,
    /// When the admitted requests of the current window arrived.
    recent: VecDeque<Instant>,
    /// Everything is refused until then.
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Limits {
    limit: u32,
    used: u32,
    /// Unix seconds.
    reset_at: i64,
    secondary: Option<Secondary>,
    /// 403 (GitHub's usual answer) or 429.
    status: u16,
}

impl Limits {
    pub fn new() -> Self {
        Self {
            limit: DEFAULT_PRIMARY,
            used: 0,
            reset_at: clock::now() + HOUR,
            secondary: None,
            status: 403,
        }
    }

    /// A fresh window of `limit` requests.
    pub fn set_primary(&mut self, limit: u32) {
        self.limit = limit;
        self.used = 0;
        self.reset_at = clock::now() + if limit == 0 { EXHAUSTED_RESET } else { HOUR };
    }

    pub fn set_secondary(&mut self, max: u32, window: Duration, retry_after: u64) {
        self.secondary = Some(Secondary {
            max,
            window,
            retry_after,
            recent: VecDeque::new(),
            blocked_until: None,
        });
    }

    /// Back to 5,000 an hour, no secondary limit, 403 answers.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    pub fn set_status(&mut self, status: u16) {
        assert!(
            status == 403 || status == 429,
            "GitHub answers a rate limit with 403 or 429"
        );
        self.status = status;
    }

    fn roll(&mut self) {
        let now = clock::now();
        if now >= self.reset_at {
            self.used = 0;
            self.reset_at = now + HOUR;
        }
    }

    /// Counts one request of `subject` (`user ID 1`, `installation ID 7`), or refuses it.
    pub fn admit(&mut self, subject: &str, request_id: &str) -> Result<(), Reply> {
        let status = self.status;
        if let Some(secondary) = self.secondary.as_mut() {
            let now = Instant::now();
            if let Some(until) = secondary.blocked_until {
                if now < until {
                    let wait = (until - now).as_secs_f64().ceil() as u64;
                    return Err(secondary_reply(status, wait.max(1), request_id));
                }
                secondary.blocked_until = None;
                secondary.recent.clear();
            }
            while secondary
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= secondary.window)
            {
                secondary.recent.pop_front();
            }
            if secondary.recent.len() >= secondary.max as usize {
                secondary.blocked_until = Some(now + Duration::from_secs(secondary.retry_after));
                return Err(secondary_reply(status, secondary.retry_after, request_id));
            }
            secondary.recent.push_back(now);
        }
        self.roll();
        if self.used >= self.limit {
            let message = format!(
                "API rate limit exceeded for {subject}. If you reach out to GitHub Support for \
                 help, please include the request ID {request_id} and timestamp {}.",
                clock::iso(clock::now())
                    .replace('T', " ")
                    .replace('Z', " UTC")
            );
            return Err(Reply::error(status, &message, RATE_LIMIT_DOCS));
        }
        self.used += 1;
        if self.used >= self.limit {
            self.reset_at = self.reset_at.min(clock::now() + EXHAUSTED_RESET);
        }
        Ok(())
    }

    /// `x-ratelimit-*` as they stand after the request.
    pub fn headers(&mut self) -> Vec<(String, String)> {
        self.roll();
        [
            ("x-ratelimit-limit", self.limit.to_string()),
            (
                "x-ratelimit-remaining",
                self.limit.saturating_sub(self.used).to_string(),
            ),
            ("x-ratelimit-reset", self.reset_at.to_string()),
            ("x-ratelimit-used", self.used.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// The `core` entry of `GET /rate_limit`.
    pub fn core(&mut self) -> serde_json::Value {
        self.roll();
        serde_json::json!({
            "limit": self.limit,
            "remaining": self.limit.saturating_sub(self.used),
            "reset": self.reset_at,
            "used": self.used,
            "resource": "core",
        })
    }
}

fn secondary_reply(status: u16, retry_after: u64, request_id: &str) -> Reply {
    let message = format!(
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try \
         again. If you reach out to GitHub Support for help, please include the request ID \
         {request_id}."
    );
    Reply::error(status, &message, SECONDARY_DOCS)
        .with_header("retry-after", retry_after.to_string())
}
