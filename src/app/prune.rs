//! Ledger pruning on a timer: delivered and superseded rows older than `[state]
//! ledger_retention` are deleted; dead letters stay until they are retried.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::store::Store;

/// The longest time between two prunes.
const MAX_EVERY: Duration = Duration::from_secs(3600);
/// The shortest time between two prunes.
const MIN_EVERY: Duration = Duration::from_secs(1);

/// Prunes the ledger at most every hour (or every `retention`, when shorter).
#[derive(Debug)]
pub(crate) struct Pruner {
    retention: Duration,
    every: Duration,
    last: Option<Instant>,
}

impl Pruner {
    pub(crate) fn new(retention: Duration) -> Self {
        Self {
            retention,
            every: retention.clamp(MIN_EVERY, MAX_EVERY),
            last: None,
        }
    }

    /// Prunes when the last prune is old enough (or none ran yet); returns the rows deleted.
    /// A failure is logged and tried again at the next tick: pruning never stops the daemon.
    pub(crate) async fn tick(&mut self, store: &Store) -> u64 {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return 0;
        }
        self.last = Some(Instant::now());
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        match store.blocking(move |store| store.prune(cutoff)).await {
            Ok(0) => 0,
            Ok(n) => {
                tracing::info!(
                    rows = n,
                    retention = %humantime::format_duration(self.retention),
                    "pruned delivered ledger rows"
                );
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning the ledger failed; trying again later");
                0
            }
        }
    }
}
