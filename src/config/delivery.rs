//! The `[delivery]` section: how failed deliveries are retried and how long shutdown waits for
//! in-flight ones.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::{RetryPolicy, WorkerOptions};

/// `[delivery]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// The ceiling of the first retry's delay; it doubles per attempt (full jitter below it).
    #[serde(with = "crate::human_time::written")]
    pub retry_base: Duration,
    /// The largest retry delay ceiling.
    #[serde(with = "crate::human_time::written")]
    pub retry_max_delay: Duration,
    /// Attempts in all before a retryable failure becomes a dead letter (the retry budget).
    pub max_attempts: u32,
    /// How long a destination reporting `misconfigured` is left alone.
    #[serde(with = "crate::human_time::written")]
    pub misconfigured_pause: Duration,
    /// The longest wait a plugin's retry hint (a `Retry-After` it passed on) is honoured for.
    #[serde(with = "crate::human_time::written")]
    pub retry_hint_max: Duration,
    /// After SIGTERM/SIGINT, how long in-flight deliveries may take to finish.
    #[serde(with = "crate::human_time::written")]
    pub shutdown_grace: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        Self {
            retry_base: policy.base,
            retry_max_delay: policy.max_delay,
            max_attempts: policy.max_attempts,
            misconfigured_pause: policy.misconfigured_pause,
            retry_hint_max: policy.hint_max,
            shutdown_grace: WorkerOptions::default().shutdown_grace,
        }
    }
}

impl DeliverySettings {
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.retry_base,
            max_delay: self.retry_max_delay.max(self.retry_base),
            max_attempts: self.max_attempts.max(1),
            misconfigured_pause: self.misconfigured_pause,
            hint_max: self.retry_hint_max,
        }
    }

    pub fn worker_options(&self) -> WorkerOptions {
        WorkerOptions {
            shutdown_grace: self.shutdown_grace,
            ..WorkerOptions::default()
        }
    }
}
