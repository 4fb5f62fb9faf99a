//! Time: a second-resolution clock that never repeats a stamp, and ISO 8601 / RFC 3339 text.

use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out Unix seconds for `created_at`/`updated_at`: now, or one past the last stamp when
/// two writes fall in the same second, so every write moves `updated_at` forward.
#[derive(Debug, Default)]
pub struct Clock {
    last: i64,
}

impl Clock {
    pub fn stamp(&mut self) -> i64 {
        self.last = now().max(self.last + 1);
        self.last
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `2026-12-07T03:04:05Z`, as GitHub writes times.
pub fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
