//! When a call stops making requests: rate-limit delays, and refusals that hold for the call.
//!
//! After a 429, a 401, a 403 or a missing project or group, the changes of the call not yet done
//! fail with the same error and retry hint instead of asking again.

use std::cell::RefCell;
use std::time::Duration;

use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::http::{RETRY_AFTER_MAX, Response, retry_after};
use opsync_destination_kit::{PluginError, Retry, message, misconfigured, permanent};

/// The shortest delay passed on for a rate limit.
pub(crate) const MIN_DELAY: Duration = Duration::from_secs(1);
/// The delay when a 429 says nothing of when to come back: GitLab's windows are a minute.
pub(crate) const DEFAULT_DELAY: Duration = Duration::from_secs(60);
/// A `RateLimit-Reset` at or below this is a number of seconds, not a Unix time.
const RESET_DELTA_MAX: i64 = 1_000_000_000;

/// How long a 429 answer asks to wait, at `now`: its `Retry-After` (seconds or an HTTP date),
/// else its `RateLimit-Reset` (a Unix time; a small number is taken as seconds), else its
/// `RateLimit-ResetTime` (an HTTP date), else [`DEFAULT_DELAY`]; at least [`MIN_DELAY`], at most
/// the guest's cap on retry hints.
pub(crate) fn rate_limit_delay(response: &Response, now: Instant) -> Duration {
    let asked = response
        .header("retry-after")
        .and_then(|v| retry_after(&v, now))
        .or_else(|| {
            response
                .header("ratelimit-reset")
                .and_then(|v| reset_delay(&v, now))
        })
        .or_else(|| {
            response
                .header("ratelimit-resettime")
                .and_then(|v| retry_after(&v, now))
        })
        .unwrap_or(DEFAULT_DELAY);
    asked.clamp(MIN_DELAY, RETRY_AFTER_MAX)
}

/// A `RateLimit-Reset` value at `now`.
fn reset_delay(value: &str, now: Instant) -> Option<Duration> {
    let at: i64 = value.trim().parse().ok()?;
    let secs = if at <= RESET_DELTA_MAX {
        at
    } else {
        at.saturating_sub(now.unix())
    };
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// The stop of one call: once set, every request the call would make fails with it.
#[derive(Default)]
pub(crate) struct Halt(RefCell<Option<PluginError>>);

impl Halt {
    /// The error every later request fails with, if the call stopped.
    pub(crate) fn check(&self) -> Result<(), PluginError> {
        match &*self.0.borrow() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Stops the call because of `cause` (the first cause stays).
    pub(crate) fn stop(&self, cause: &PluginError) {
        let mut stopped = self.0.borrow_mut();
        if stopped.is_none() {
            *stopped = Some(not_attempted(cause));
        }
    }
}

/// The error of a change not attempted because of `cause`: the same kind and retry hint.
fn not_attempted(cause: &PluginError) -> PluginError {
    let text = format!(
        "not attempted: an earlier request of this call was refused for every change of the \
         call: {}",
        message(cause)
    );
    match cause {
        PluginError::Retryable(retry) => PluginError::Retryable(Retry {
            message: text,
            after_ms: retry.after_ms,
        }),
        PluginError::Permanent(_) => permanent(text),
        PluginError::Misconfigured(_) => misconfigured(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_destination_kit::{retryable, retryable_after};

    fn response(headers: &[(&str, &str)]) -> Response {
        Response {
            status: 429,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
        }
    }

    /// 2024-05-01T12:00:00Z.
    const NOW: i64 = 1_714_564_800;

    fn secs(headers: &[(&str, &str)]) -> u64 {
        rate_limit_delay(&response(headers), Instant::from_unix(NOW)).as_secs()
    }

    #[test]
    fn the_delay_comes_from_retry_after_then_ratelimit_reset() {
        assert_eq!(secs(&[("Retry-After", "30")]), 30);
        assert_eq!(
            secs(&[("Retry-After", "Wed, 01 May 2024 12:00:45 GMT")]),
            45
        );
        // Retry-After wins over RateLimit-Reset.
        let reset = (NOW + 20).to_string();
        assert_eq!(
            secs(&[("Retry-After", "5"), ("RateLimit-Reset", &reset)]),
            5
        );
        assert_eq!(secs(&[("RateLimit-Reset", &reset)]), 20);
        // Unparsable Retry-After: the reset time.
        assert_eq!(
            secs(&[("Retry-After", "soon"), ("ratelimit-reset", &reset)]),
            20
        );
        // A small number is seconds.
        assert_eq!(secs(&[("RateLimit-Reset", "42")]), 42);
        assert_eq!(
            secs(&[("RateLimit-ResetTime", "Wed, 01 May 2024 12:01:00 GMT")]),
            60
        );
    }

    #[test]
    fn the_delay_is_at_least_a_second_and_defaults_to_a_minute() {
        assert_eq!(secs(&[("Retry-After", "0")]), 1);
        // A reset time already past.
        assert_eq!(secs(&[("RateLimit-Reset", &(NOW - 5).to_string())]), 1);
        assert_eq!(secs(&[]), 60);
        assert_eq!(secs(&[("RateLimit-Reset", "later")]), 60);
        // Capped like every retry hint.
        assert_eq!(
            secs(&[("RateLimit-Reset", &(NOW + 10 * 86_400).to_string())]),
            RETRY_AFTER_MAX.as_secs()
        );
    }

    #[test]
    fn a_halted_call_fails_every_later_request_with_the_first_causes_hint() {
        let halt = Halt::default();
        assert!(halt.check().is_ok());
        halt.stop(&retryable_after(
            "cannot read variable: GET /p: status 429",
            Duration::from_secs(30),
        ));
        halt.stop(&retryable("a later cause"));
        for _ in 0..2 {
            let err = halt.check().expect_err("halted");
            assert!(
                matches!(&err, PluginError::Retryable(Retry { message, after_ms: Some(30_000) })
                    if message.starts_with("not attempted") && message.contains("status 429")),
                "{err:?}"
            );
        }
        let halt = Halt::default();
        halt.stop(&misconfigured("x: status 401"));
        assert!(matches!(
            halt.check(),
            Err(PluginError::Misconfigured(m)) if m.ends_with("x: status 401")
        ));
    }
}
