//! Rotation metrics, per step and outcome, per job (their names live in telemetry::names). Labels
//! are job names from config, step names and small enums; never an item title or a value.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::Step;
use crate::rotation::outcome::Outcome;

pub use crate::telemetry::names::{
    ROTATION_DURATION_SECONDS,
    ROTATION_LAST_SUCCESS_TIMESTAMP_SECONDS as LAST_SUCCESS_TIMESTAMP_SECONDS,
    ROTATION_NEXT_RUN_TIMESTAMP_SECONDS as NEXT_RUN_TIMESTAMP_SECONDS,
    ROTATION_STEP_DURATION_SECONDS as STEP_DURATION_SECONDS, ROTATION_STEPS_TOTAL as STEPS_TOTAL,
    ROTATIONS_TOTAL,
};

/// Registers the help texts.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(STEPS_TOTAL, "Rotation steps by job, step and result.");
    describe_histogram!(
        STEP_DURATION_SECONDS,
        Unit::Seconds,
        "Rotation step duration by job and step."
    );
    describe_counter!(ROTATIONS_TOTAL, "Rotations ended, by job and outcome.");
    describe_histogram!(
        ROTATION_DURATION_SECONDS,
        Unit::Seconds,
        "Wall time of a rotation run, by job."
    );
    describe_gauge!(
        NEXT_RUN_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "When the rotation job next runs (Unix time)."
    );
    describe_gauge!(
        LAST_SUCCESS_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "When the rotation job last succeeded (Unix time)."
    );
}

pub(crate) fn step(job: &str, step: Step, result: &'static str, elapsed: Duration) {
    metrics::counter!(STEPS_TOTAL, "job" => job.to_owned(), "step" => step.as_str(), "result" => result)
        .increment(1);
    metrics::histogram!(STEP_DURATION_SECONDS, "job" => job.to_owned(), "step" => step.as_str())
        .record(elapsed.as_secs_f64());
}

pub(crate) fn finished(job: &str, outcome: &Outcome, elapsed: Duration) {
    metrics::counter!(ROTATIONS_TOTAL, "job" => job.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
    metrics::histogram!(ROTATION_DURATION_SECONDS, "job" => job.to_owned())
        .record(elapsed.as_secs_f64());
    match outcome {
        Outcome::Succeeded => {
            metrics::gauge!(LAST_SUCCESS_TIMESTAMP_SECONDS, "job" => job.to_owned())
                .set(Utc::now().timestamp() as f64);
            tracing::info!(
                job,
                outcome = outcome.as_str(),
                elapsed_ms = elapsed.as_millis() as u64,
                "rotation finished"
            );
        }
        Outcome::RolledBack { reason } | Outcome::Failed { reason } => {
            tracing::warn!(job, outcome = outcome.as_str(), reason = %reason, "rotation finished");
        }
        Outcome::Stalled {
            step,
            reason,
            retry_at,
        } => {
            tracing::warn!(job, outcome = outcome.as_str(), step = %step, reason = %reason, retry_at = %retry_at, "rotation stalled; it resumes later");
        }
        Outcome::Busy | Outcome::Idle => {}
    }
}

pub(crate) fn skipped(job: &str, slot: DateTime<Utc>, late_by: Duration) {
    metrics::counter!(ROTATIONS_TOTAL, "job" => job.to_owned(), "outcome" => "skipped")
        .increment(1);
    tracing::warn!(
        job,
        slot = %slot,
        late_by = %humantime::format_duration(Duration::from_secs(late_by.as_secs())),
        "rotation slot missed by more than its deadline; skipped"
    );
}

pub(crate) fn next_run(job: &str, at: DateTime<Utc>) {
    metrics::gauge!(NEXT_RUN_TIMESTAMP_SECONDS, "job" => job.to_owned()).set(at.timestamp() as f64);
}
