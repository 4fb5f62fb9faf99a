//! The `[state]` section: where opsync keeps its state database.

use std::path::PathBuf;
use std::time::Duration;

use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

/// Default state database path.
pub const DEFAULT_STATE_PATH: &str = "opsync.db";

/// Default age after which delivered and superseded ledger rows are pruned.
pub const DEFAULT_LEDGER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Effective `[state]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateSettings {
    /// The state database. Relative to the config file when set there, else to the
    /// working directory.
    pub path: PathBuf,
    /// Delivered and superseded ledger rows older than this are pruned (dead letters stay until
    /// retried).
    #[serde(with = "crate::human_time::written")]
    pub ledger_retention: Duration,
}

/// `[state]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawState {
    path: RelativePathBuf,
    #[serde(with = "crate::human_time::written")]
    pub(crate) ledger_retention: Duration,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            path: RelativePathBuf::from(DEFAULT_STATE_PATH),
            ledger_retention: DEFAULT_LEDGER_RETENTION,
        }
    }
}

impl RawState {
    pub(crate) fn resolve(self) -> StateSettings {
        StateSettings {
            path: self.path.relative(),
            ledger_retention: self.ledger_retention,
        }
    }
}
