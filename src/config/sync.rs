//! The `[sync]` section: how often detection polls and fully reconciles.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default poll interval.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Effective `[sync]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Time between two polls (an idle poll costs one Connect request).
    #[serde(with = "crate::human_time::written")]
    pub poll_interval: Duration,
    /// Time between two full reconciliations (every vault listed, whatever its
    /// `contentVersion`).
    #[serde(with = "crate::human_time::written")]
    pub full_reconcile_interval: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            full_reconcile_interval: crate::detect::DEFAULT_FULL_RECONCILE_INTERVAL,
        }
    }
}
