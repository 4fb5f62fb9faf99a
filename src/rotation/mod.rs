//! Scheduled rotation: the persisted create/set/test/promote/finish state machine that drives a
//! rotator plugin and Connect PATCHes, the daemon's scheduler, and the item section opsync owns.

mod error;
mod item;
mod job;
mod lease;
mod outcome;
mod runner;
mod scheduler;
mod telemetry;

pub use error::RotationError;
pub use item::{
    JOB_FIELD, KEY_FIELD, LAST_KEY_FIELD, ROTATED_AT_FIELD, SECTION_ID, SECTION_LABEL, STATE_FIELD,
    pending_id, previous_id, strip_owned_section,
};
pub use job::RotationJob;
pub use lease::{Holder, Place};
pub use outcome::{Outcome, Start, StepRetry, StepTiming};
pub use runner::{KILL_HOOK_ENV, LEASE_TTL, Rotator};
pub use scheduler::{RECHECK, spawn};
pub use telemetry::{
    LAST_SUCCESS_TIMESTAMP_SECONDS, NEXT_RUN_TIMESTAMP_SECONDS, ROTATION_DURATION_SECONDS,
    ROTATIONS_TOTAL, STEP_DURATION_SECONDS, STEPS_TOTAL,
};
