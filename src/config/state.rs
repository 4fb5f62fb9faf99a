//! The `[state]` section: where opsync keeps its state database.

use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

/// Default state database path.
pub const DEFAULT_STATE_PATH: &str = "opsync.db";

/// Effective `[state]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateSettings {
    /// The state database. Relative to the config file when set there, else to the
    /// working directory.
    pub path: PathBuf,
}

/// `[state]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawState {
    path: RelativePathBuf,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            path: RelativePathBuf::from(DEFAULT_STATE_PATH),
        }
    }
}

impl RawState {
    pub(crate) fn resolve(self) -> StateSettings {
        StateSettings {
            path: self.path.relative(),
        }
    }
}
