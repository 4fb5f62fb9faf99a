//! When to try a failed delivery again: exponential backoff with full jitter, a retry budget, and
//! the plugin's error kind (retryable, permanent, misconfigured), its retry hint and any
//! `Retry-After` honoured.

use std::time::Duration;

use rand::Rng;

use crate::plugin::FailureKind;

/// The longest `Retry-After` opsync will honour; beyond it the delay is capped here.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How failed deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling of the first retry's delay; it doubles with each attempt.
    pub base: Duration,
    /// The largest ceiling a delay can reach.
    pub max_delay: Duration,
    /// Attempts in all (the first one included) before a retryable failure is dead-lettered.
    pub max_attempts: u32,
    /// How long a misconfigured destination is left alone before its deliveries are tried again.
    pub misconfigured_pause: Duration,
    /// The longest wait a plugin's retry hint (ABI 0.2.0 `retry.after-ms`) can ask for.
    pub hint_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
            max_attempts: 10,
            misconfigured_pause: Duration::from_secs(300),
            hint_max: Duration::from_secs(900),
        }
    }
}

/// What to do with a delivery whose attempt number `attempt` (1 for the first) just failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this delay.
    Retry(Duration),
    /// Give up: dead-letter with this reason.
    DeadLetter(String),
    /// The destination's config or grants are wrong: stop delivering to it for this long (the
    /// delivery stays pending and does not use its retry budget).
    Pause(Duration),
}

impl RetryPolicy {
    /// The ceiling of the delay after attempt `attempt` failed: `base * 2^(attempt-1)`, capped.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: a delay drawn uniformly from `[0, ceiling(attempt)]`, but never shorter than
    /// what the server asked for with `Retry-After` (itself capped at [`MAX_RETRY_AFTER`]).
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = Duration::from_secs_f64(rng.gen_range(0.0..=ceiling.as_secs_f64()));
        match retry_after {
            Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// How long to wait after a retryable plugin failure: the plugin's hint (bounded by
    /// `hint_max`) instead of the backoff when it gave one.
    pub fn plugin_delay(
        &self,
        attempt: u32,
        hint: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        match hint {
            Some(hint) => hint.min(self.hint_max),
            None => self.delay(attempt, None, rng),
        }
    }

    /// Decides what follows a failed attempt of a plugin; `hint` is the plugin's own "retry
    /// after" (ABI 0.2.0), honoured instead of the backoff.
    pub fn decide(
        &self,
        attempt: u32,
        kind: FailureKind,
        hint: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Decision {
        match kind {
            FailureKind::Permanent => {
                Decision::DeadLetter("the destination reported a permanent failure".into())
            }
            FailureKind::Misconfigured => Decision::Pause(self.misconfigured_pause),
            FailureKind::Retryable if attempt >= self.max_attempts => Decision::DeadLetter(
                format!("gave up after {attempt} attempts (the retry budget)"),
            ),
            FailureKind::Retryable => Decision::Retry(self.plugin_delay(attempt, hint, rng)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: 5,
            misconfigured_pause: Duration::from_secs(60),
            hint_max: Duration::from_secs(120),
        }
    }

    #[test]
    fn a_plugin_hint_replaces_the_backoff_within_its_bound() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let hinted = p.decide(
            1,
            FailureKind::Retryable,
            Some(Duration::from_secs(30)),
            &mut rng,
        );
        assert_eq!(hinted, Decision::Retry(Duration::from_secs(30)));
        let huge = p.decide(
            1,
            FailureKind::Retryable,
            Some(Duration::from_secs(86_400)),
            &mut rng,
        );
        assert_eq!(huge, Decision::Retry(p.hint_max));
        let tiny = p.decide(2, FailureKind::Retryable, Some(Duration::ZERO), &mut rng);
        assert_eq!(tiny, Decision::Retry(Duration::ZERO));
        // The budget still holds.
        assert!(matches!(
            p.decide(
                5,
                FailureKind::Retryable,
                Some(Duration::from_secs(1)),
                &mut rng
            ),
            Decision::DeadLetter(_)
        ));
    }

    #[test]
    fn ceilings_double_then_cap() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(8), Duration::from_secs(10));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..2000).map(|_| p.delay(4, None, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(800)));
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(200))
            .count();
        let high = delays
            .iter()
            .filter(|d| **d > Duration::from_millis(600))
            .count();
        // Uniform over [0, 800 ms]: about a quarter of the draws in each of these bands.
        assert!((350..650).contains(&low), "{low}");
        assert!((350..650).contains(&high), "{high}");
    }

    #[test]
    fn retry_after_is_a_floor_and_is_capped() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let d = p.delay(1, Some(Duration::from_secs(3)), &mut rng);
            assert_eq!(d, Duration::from_secs(3));
        }
        let d = p.delay(1, Some(Duration::from_secs(86_400)), &mut rng);
        assert_eq!(d, MAX_RETRY_AFTER);
    }

    #[test]
    fn error_kinds_and_budget() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(3);
        assert!(matches!(
            p.decide(1, FailureKind::Retryable, None, &mut rng),
            Decision::Retry(_)
        ));
        assert!(matches!(
            p.decide(4, FailureKind::Retryable, None, &mut rng),
            Decision::Retry(_)
        ));
        let Decision::DeadLetter(reason) = p.decide(5, FailureKind::Retryable, None, &mut rng)
        else {
            panic!("the fifth failure uses up the budget");
        };
        assert!(reason.contains("5 attempts"), "{reason}");
        assert!(matches!(
            p.decide(1, FailureKind::Permanent, None, &mut rng),
            Decision::DeadLetter(_)
        ));
        assert_eq!(
            p.decide(1, FailureKind::Misconfigured, None, &mut rng),
            Decision::Pause(Duration::from_secs(60))
        );
    }
}
