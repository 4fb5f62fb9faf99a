//! The sync engine's commands, wired together: `run` (the daemon), `once`, `plan`, `status`,
//! `deadletter list|retry`, `demo` and `rotate now|status`.

mod demo;
mod engine;
mod error;
mod once;
mod pins;
mod plan;
mod prune;
mod rotate;
mod run;
mod series;
mod status;

pub use crate::connect::reference::ConnectResolver;
pub use demo::{DemoOptions, demo};
pub use engine::{Engine, fingerprint_key_path};
pub use error::AppError;
pub use once::{OnceOptions, OnceSummary, once};
pub use pins::pin_mismatches;
pub use plan::{FIELDS_SHOWN_PER_ROUTE, MASK, Plan, plan};
pub use rotate::{outcome_text, rotate_now, rotate_status};
pub use run::{RunOptions, RunSummary, plugin_cache_dir, run};
pub use status::{dead_letters, retry_dead_letters, status, status_json};
