//! `AuditError`: why the audit export could not read Connect's log or the Events API, keep its
//! state or ship.

use crate::audit::events::{BadRecord, EventsError};
use crate::connect::error::ConnectError;
use crate::store::StoreError;

/// An audit export failure, naming the part that failed. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading `/v1/activity` failed.
    #[error("reading Connect's activity log (GET /v1/activity): {0}")]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sink's plugin could not be loaded or validated.
    #[error("audit sink `{sink}`: {reason}")]
    Sink { sink: String, reason: String },
    /// A blocking task panicked.
    #[error("audit: a background task failed: {0}")]
    Task(String),
    /// `opsync audit replay --since` could not be read.
    #[error(
        "--since {value:?}: expected an RFC 3339 time (2026-01-02T03:04:05Z) or a duration ago (2h, 30m)"
    )]
    Since { value: String },
    /// A request to the Events API failed.
    #[error("reading the Events API (audit.sources.events): {0}")]
    Events(#[from] EventsError),
    /// The Events API answered with a record opsync cannot read.
    #[error("reading the Events API (audit.sources.events): {0}")]
    EventsRecord(#[from] BadRecord),
    /// The Events API token cannot read a configured stream.
    #[error(
        "the Events API token cannot read {missing} (audit.sources.events.streams): its features are [{features}]; \
         give the Events Reporting integration's token those events, or remove them from streams"
    )]
    MissingFeatures { missing: String, features: String },
    /// The Events API token could not be read.
    #[error("audit.sources.events.token: {0}")]
    EventsToken(String),
    /// `opsync audit replay --stream` asks for something the config cannot do.
    #[error("--stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    /// `opsync audit replay --sink` names a sink the config does not have.
    #[error("--sink {name:?}: no [[audit.sink]] has that name (configured: {known})")]
    UnknownSink { name: String, known: String },
}
