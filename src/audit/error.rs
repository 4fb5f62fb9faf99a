//! `AuditError`: why the audit export could not read Connect's log, keep its state or ship.

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
    /// `opsync audit replay --sink` names a sink the config does not have.
    #[error("--sink {name:?}: no [[audit.sink]] has that name (configured: {known})")]
    UnknownSink { name: String, known: String },
}
