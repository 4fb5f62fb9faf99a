//! The request rate limit (GitLab's `Rack::Attack` throttles): a fixed window of `max` requests,
//! `RateLimit-*` headers on every answer, and 429 `Retry later` with `Retry-After` beyond it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The limit and the window being counted.
#[derive(Debug)]
pub struct RateLimit {
    max: u64,
    period: Duration,
    /// When the current window began (`None`: the next request begins one), and its count.
    window: Option<(Instant, SystemTime)>,
    observed: u64,
}

/// What the limiter says of one request.
#[derive(Debug)]
pub struct Verdict {
    pub throttled: bool,
    pub headers: Vec<(String, String)>,
}

impl RateLimit {
    /// `max` requests per `period` (whole seconds, at least one).
    pub fn new(max: u64, period: Duration) -> Self {
        let secs = period.as_secs() + u64::from(period.subsec_nanos() > 0);
        Self {
            max,
            period: Duration::from_secs(secs.max(1)),
            window: None,
            observed: 0,
        }
    }

    /// Counts one request (throttled ones count too, as `Rack::Attack` counts them).
    pub fn observe(&mut self, authenticated: bool) -> Verdict {
        let now = Instant::now();
        let (started, started_at) = match self.window {
            Some((started, at)) if now < started + self.period => (started, at),
            _ => {
                self.observed = 0;
                let fresh = (now, SystemTime::now());
                self.window = Some(fresh);
                fresh
            }
        };
        self.observed += 1;
        let period = self.period.as_secs();
        let ends = started + self.period;
        let left = ends.saturating_duration_since(now);
        let retry_after = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
        let reset = (started_at + self.period)
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch");
        let reset = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
        let name = if authenticated {
            "throttle_authenticated_api"
        } else {
            "throttle_unauthenticated_api"
        };
        let mut headers = vec![
            ("RateLimit-Name".to_owned(), name.to_owned()),
            (
                "RateLimit-Limit".to_owned(),
                (self.max * 60).div_ceil(period).to_string(),
            ),
            ("RateLimit-Observed".to_owned(), self.observed.to_string()),
            (
                "RateLimit-Remaining".to_owned(),
                self.max.saturating_sub(self.observed).to_string(),
            ),
            ("RateLimit-Reset".to_owned(), reset.to_string()),
        ];
        let throttled = self.observed > self.max;
        if throttled {
            headers.push(("RateLimit-ResetTime".to_owned(), http_date(reset)));
            headers.push(("Retry-After".to_owned(), retry_after.to_string()));
        }
        Verdict { throttled, headers }
    }
}

/// RFC 2616 date (`Tue, 05 Jan 2021 11:00:00 GMT`) of a Unix time.
pub fn http_date(epoch: u64) -> String {
    chrono::DateTime::from_timestamp(epoch as i64, 0)
        .expect("a representable time")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}
