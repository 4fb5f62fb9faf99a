//! What a rotation run starts from and ends with: its start, its outcome, the time each step
//! took, and how a failing step is retried within a run.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::Step;

/// How a rotation ended (or why it did not run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new value is current in 1Password and on the target.
    Succeeded,
    /// The target was put back on the current value; the pending value was dropped.
    RolledBack { reason: String },
    /// It stopped: before anything reached the target (create failed), or after the promotion
    /// (finish failed: the new value is current, an older credential may remain).
    Failed { reason: String },
    /// A step keeps failing; it stays recorded and is tried again from `retry_at`.
    Stalled {
        step: Step,
        reason: String,
        retry_at: DateTime<Utc>,
    },
    /// Another process holds the job.
    Busy,
    /// Nothing to do (no rotation in progress and none asked for).
    Idle,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled_back",
            Outcome::Failed { .. } => "failed",
            Outcome::Stalled { .. } => "stalled",
            Outcome::Busy => "busy",
            Outcome::Idle => "idle",
        }
    }
}

/// How long one step took, and how much of it was the plugin's call (its own work and its
/// requests to the target); the rest is the host's: Connect requests, the state database.
#[derive(Clone, Copy, Debug)]
pub struct StepTiming {
    pub step: Step,
    pub total: Duration,
    pub plugin: Duration,
}

/// What starts a rotation when none is in progress.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// The nominal slot, or the request time of a manual run.
    pub slot: DateTime<Utc>,
    pub manual: bool,
}

/// Retries of a failing step within one run.
#[derive(Clone, Copy, Debug)]
pub struct StepRetry {
    /// Attempts per step before giving up on it (rolling back, or stalling).
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for StepRetry {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The longest wait a plugin's retry hint can ask of a rotation step.
pub const STEP_HINT_MAX: Duration = Duration::from_secs(900);

impl StepRetry {
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before attempt `attempt + 1`: the plugin's hint (up to [`STEP_HINT_MAX`]) when
    /// it gave one, else the backoff.
    pub(crate) fn delay_with(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        match hint {
            Some(hint) => hint.min(STEP_HINT_MAX),
            None => self.delay(attempt),
        }
    }
}
