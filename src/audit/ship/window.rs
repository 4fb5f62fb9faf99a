//! Where one sink's shipping loop stands: its cursor, the batch size while a refused record is
//! isolated, and the `ingest` calls in flight, oldest first.

use std::collections::VecDeque;
use std::time::Instant;

use crate::audit::ship::ShipReport;
use crate::plugin::AuditRecord;
use crate::plugin::{Plugin, PluginError};
use crate::store::OutboxRecord;

/// Where one shipping loop stands.
pub(super) struct Window {
    pub(super) report: ShipReport,
    /// Records per batch: the sink's batch size, or less while a refused record is isolated.
    pub(super) limit: usize,
    /// Failures in a row, for the backoff.
    pub(super) failures: u32,
    /// When the partial batch waiting for more records was first seen.
    pub(super) partial_since: Option<Instant>,
    /// The sink's acknowledged seq.
    pub(super) cursor: i64,
    /// The seq after which the next batch starts (the cursor when nothing is in flight).
    pub(super) next: i64,
    /// Batches sent and not yet acknowledged, oldest first.
    pub(super) flight: VecDeque<InFlight>,
    /// Set at shutdown: past it, what is still in flight is cut off.
    pub(super) cut_off: Option<tokio::time::Instant>,
}

impl Window {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            report: ShipReport::default(),
            limit,
            failures: 0,
            partial_since: None,
            cursor: 0,
            next: 0,
            flight: VecDeque::new(),
            cut_off: None,
        }
    }
}

/// What filling the window left the loop to do.
pub(super) enum Fill {
    /// Wait for the oldest batch in flight.
    Ready,
    /// Start the loop over (a partial batch waited and may have grown).
    Again,
    /// Shutdown came while waiting.
    Stop,
}

/// One `ingest` call under way, on its own task (so a second batch is formatted while the
/// first waits for the sink).
pub(super) struct InFlight {
    pub(super) batch: Vec<OutboxRecord>,
    pub(super) started: Instant,
    pub(super) task: tokio::task::JoinHandle<Result<(), PluginError>>,
}

impl InFlight {
    pub(super) fn send(plugin: &Plugin, batch: Vec<OutboxRecord>) -> Self {
        let records: Vec<AuditRecord> = batch
            .iter()
            .map(|r| AuditRecord {
                request: r.record.clone(),
                source: r.source.clone(),
                detail: r.detail.clone(),
            })
            .collect();
        let plugin = plugin.clone();
        Self {
            batch,
            started: Instant::now(),
            task: tokio::spawn(async move { plugin.ingest(&records).await }),
        }
    }
}

/// Drops the batches in flight: their calls are cancelled, and whatever they delivered counts
/// for nothing until the cursor reaches them again (at least once, as after a crash).
pub(super) fn abandon(flight: &mut VecDeque<InFlight>) {
    for f in flight.drain(..) {
        f.task.abort();
    }
}
