//! GitHub's rate limits: whether an answer hit one, and how long to wait before the next.

use std::time::Duration;

use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::http::{RETRY_AFTER_MAX, Response, retry_after};

/// The shortest wait after a rate limit.
pub(crate) const MIN_WAIT: Duration = Duration::from_secs(1);

/// The wait after a secondary rate limit that says nothing of when it ends: GitHub asks for at
/// least one minute.
pub(crate) const SECONDARY_WAIT: Duration = Duration::from_secs(60);

/// How long to wait when `response` says a rate limit was hit; `None` when it does not (a 403
/// that is not a rate limit is a missing permission). `message` is GitHub's `message` of the
/// answer. By GitHub's rules, a 403 or 429:
/// - with `retry-after`: that many seconds (or until that date);
/// - with `x-ratelimit-remaining: 0`: until `x-ratelimit-reset` (epoch seconds);
/// - a 429, or a 403 whose message speaks of a rate limit (a secondary limit without headers):
///   [`SECONDARY_WAIT`].
///
/// Never less than [`MIN_WAIT`], never more than the kit's [`RETRY_AFTER_MAX`].
pub(crate) fn delay(response: &Response, message: &str, now: Instant) -> Option<Duration> {
    if !matches!(response.status, 403 | 429) {
        return None;
    }
    let wait = if let Some(after) = response
        .header("retry-after")
        .and_then(|value| retry_after(&value, now))
    {
        after
    } else if response
        .header("x-ratelimit-remaining")
        .is_some_and(|v| v.trim() == "0")
    {
        match response
            .header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            Some(reset) => {
                Duration::from_secs(u64::try_from(reset.saturating_sub(now.unix())).unwrap_or(0))
            }
            None => SECONDARY_WAIT,
        }
    } else if response.status == 429 || message.to_ascii_lowercase().contains("rate limit") {
        SECONDARY_WAIT
    } else {
        return None;
    };
    Some(wait.clamp(MIN_WAIT, RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
        }
    }

    fn secs(status: u16, headers: &[(&str, &str)], message: &str) -> Option<u64> {
        delay(&response(status, headers), message, Instant::from_unix(NOW)).map(|d| d.as_secs())
    }

    #[test]
    fn retry_after_comes_first() {
        assert_eq!(secs(403, &[("Retry-After", "30")], ""), Some(30));
        assert_eq!(
            secs(
                429,
                &[
                    ("retry-after", "5"),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", &(NOW + 600).to_string())
                ],
                ""
            ),
            Some(5)
        );
        // At least a second, at most a day.
        assert_eq!(secs(429, &[("retry-after", "0")], ""), Some(1));
        assert_eq!(secs(429, &[("retry-after", "999999")], ""), Some(86_400));
    }

    #[test]
    fn an_exhausted_primary_limit_waits_for_its_reset() {
        let reset = (NOW + 1234).to_string();
        let exhausted = [
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", reset.as_str()),
        ];
        assert_eq!(
            secs(403, &exhausted, "API rate limit exceeded for user ID 1."),
            Some(1234)
        );
        assert_eq!(secs(429, &exhausted, ""), Some(1234));
        // A reset already past (clock skew): the shortest wait.
        let past = (NOW - 10).to_string();
        assert_eq!(
            secs(
                403,
                &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &past)],
                ""
            ),
            Some(1)
        );
        // No usable reset: a minute.
        assert_eq!(
            secs(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "soon")
                ],
                ""
            ),
            Some(60)
        );
    }

    #[test]
    fn secondary_limits_without_headers_wait_a_minute() {
        assert_eq!(secs(429, &[], ""), Some(60));
        assert_eq!(
            secs(
                403,
                &[("x-ratelimit-remaining", "4990")],
                "You have exceeded a secondary rate limit. Please wait a few minutes."
            ),
            Some(60)
        );
    }

    #[test]
    fn other_answers_are_not_rate_limits() {
        // A 403 with requests left is a missing permission.
        assert_eq!(
            secs(
                403,
                &[
                    ("x-ratelimit-remaining", "4990"),
                    ("x-ratelimit-reset", &(NOW + 60).to_string())
                ],
                "Resource not accessible by personal access token"
            ),
            None
        );
        assert_eq!(
            secs(401, &[("x-ratelimit-remaining", "0")], "Bad credentials"),
            None
        );
        assert_eq!(secs(503, &[("retry-after", "5")], ""), None);
        assert_eq!(secs(200, &[("x-ratelimit-remaining", "0")], ""), None);
    }
}
