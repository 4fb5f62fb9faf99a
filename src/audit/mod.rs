//! The audit export: a tail over Connect's `/v1/activity` into the state database's outbox, one
//! shipping loop per `[[audit.sink]]` through its audit-sink plugin, recording opsync's own
//! events (`crate::own_events`) while it runs, and the `opsync audit status|replay` commands.
//!
//! Guarantees: a sink's cursor moves only after its plugin acknowledged the batch (at least once
//! per sink; a record may be shipped again after a crash, and sinks dedupe by request id); a sink
//! that is down holds back only itself; nothing here ever holds a secret value.

mod error;
pub mod events;
mod service;
mod ship;
mod status;
mod tail;

pub use error::AuditError;
pub use events::{ApiVersion, EventStream};
pub use service::{AuditService, OnceReport, once, record_own_events, start};
pub use ship::{ShipOptions, ShipReport, Shipper};
pub use status::{parse_since, replay, replay_stream, status};
pub use tail::{Tail, TailOptions, TailReport};
