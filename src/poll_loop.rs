//! The one poll loop, shared by detection and the audit tail: one poll at a time, every interval
//! until shutdown; after failures, a backoff drawn from the retry policy (full jitter, never
//! shorter than the server's `Retry-After`), at least the interval and at most five minutes.

use std::time::Duration;

use crate::delivery::RetryPolicy;
use crate::shutdown::Shutdown;

/// The longest wait between polls after failures (unless the interval itself is longer).
pub const MAX_POLL_BACKOFF: Duration = Duration::from_secs(300);

/// The pace of one poll loop: when the next poll is due, after how many failures.
///
/// ```text
/// let mut polling = PollLoop::new("poll", interval, policy);
/// while polling.due(&mut shutdown).await {
///     polling.done(poll().await);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct PollLoop {
    /// What is polled, for log lines: `poll` logs "poll failed".
    what: &'static str,
    interval: Duration,
    policy: RetryPolicy,
    failures: u32,
    /// The wait before the next poll; none before the first.
    wait: Option<Duration>,
}

/// A poll that failed: what to log, and how long the server asked to wait, if it did.
#[derive(Debug)]
pub struct PollFailure {
    pub error: String,
    pub retry_after: Option<Duration>,
}

impl PollFailure {
    pub fn new(error: &impl std::fmt::Display, retry_after: Option<Duration>) -> Self {
        Self {
            error: error.to_string(),
            retry_after,
        }
    }
}

impl PollLoop {
    pub fn new(what: &'static str, interval: Duration, policy: RetryPolicy) -> Self {
        Self {
            what,
            interval,
            policy,
            failures: 0,
            wait: None,
        }
    }

    /// Waits until the next poll is due (the first one is due at once); false when shutdown
    /// came first.
    pub async fn due(&mut self, shutdown: &mut Shutdown) -> bool {
        if shutdown.is_triggered() {
            return false;
        }
        let Some(wait) = self.wait else {
            return true;
        };
        tokio::select! {
            () = shutdown.wait() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Records how a poll went, which sets the wait before the next one.
    pub fn done(&mut self, result: Result<(), PollFailure>) {
        self.wait = Some(match result {
            Ok(()) => {
                self.failures = 0;
                self.interval
            }
            Err(failure) => {
                self.failures = self.failures.saturating_add(1);
                self.backoff(&failure)
            }
        });
    }

    /// The wait after the current run of failures, logged.
    fn backoff(&self, failure: &PollFailure) -> Duration {
        let drawn = self
            .policy
            .delay(self.failures, failure.retry_after, &mut rand::thread_rng());
        let wait = drawn
            .max(self.interval)
            .min(MAX_POLL_BACKOFF.max(self.interval));
        tracing::warn!(
            error = %failure.error,
            failures = self.failures,
            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "{} failed",
            self.what
        );
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls with `poll` until `stop_after`, returning when each poll started.
    async fn run_for(
        interval_ms: u64,
        stop_after: Duration,
        mut poll: impl FnMut() -> Result<(), PollFailure>,
    ) -> Vec<Duration> {
        let (trigger, mut shutdown) = crate::shutdown::channel();
        let started = tokio::time::Instant::now();
        let stop = async {
            tokio::time::sleep(stop_after).await;
            trigger.trigger();
        };
        let mut polling = PollLoop::new(
            "test poll",
            Duration::from_millis(interval_ms),
            RetryPolicy::default(),
        );
        let mut at = Vec::new();
        let run = async {
            while polling.due(&mut shutdown).await {
                at.push(started.elapsed());
                polling.done(poll());
            }
        };
        tokio::join!(run, stop);
        at
    }

    #[tokio::test(start_paused = true)]
    async fn polls_every_interval_until_shutdown() {
        let at = run_for(100, Duration::from_millis(1050), || Ok(())).await;
        // At 0, 100, ... 1000 ms.
        assert_eq!(at.len(), 11, "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_no_shorter_than_the_interval_nor_than_retry_after() {
        let at = run_for(1000, Duration::from_secs(100), || {
            Err(PollFailure::new(&"down", Some(Duration::from_secs(30))))
        })
        .await;
        // At 0, then at least 30 s apart (the server's Retry-After), at most 5 min.
        assert!((2..=4).contains(&at.len()), "{at:?}");
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_secs(30), "{at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_after_failures_resets_the_pace() {
        let mut n = 0;
        let at = run_for(1000, Duration::from_secs(60), || {
            n += 1;
            if n == 1 {
                Err(PollFailure::new(&"once", Some(Duration::from_secs(20))))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(at[1] >= Duration::from_secs(20), "{at:?}");
        assert_eq!(at[2] - at[1], Duration::from_secs(1), "{at:?}");
    }
}
