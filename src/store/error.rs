//! `StoreError`: why the state could not be opened, read or written.

use std::path::PathBuf;

/// A state database failure. Messages name the database and the operation, never a value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("state database {}: cannot open: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer opsync.
    #[error(
        "state database schema version {found} is newer than this opsync understands ({known})"
    )]
    TooNew { found: i64, known: i64 },
    /// A query failed.
    #[error("state database: {op}: {source}")]
    Sql {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A row holds something this version cannot read (e.g. an unknown change kind).
    #[error("state database: {0}")]
    Corrupt(String),
    /// No ledger row has this id.
    #[error("state database: no delivery with id {0}")]
    NoSuchDelivery(i64),
    /// Another process took over this rotation job (its lease was not ours any more).
    #[error("state database: rotation job {0} is not held by this process any more")]
    LeaseLost(String),
    /// A blocking-pool job holding the connection panicked or was cancelled.
    #[error("state database: a blocking job failed: {0}")]
    Task(String),
    /// A PostgreSQL statement failed.
    #[error("PostgreSQL state: {op}: {}", crate::store::postgres::reason(.source))]
    Pg {
        op: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The PostgreSQL state could not be reached or prepared.
    #[error(transparent)]
    Postgres(Box<crate::store::postgres::PgError>),
    /// An operation that only a SQLite state has.
    #[error("{0} needs a SQLite state")]
    NotSupported(&'static str),
    /// No audit sink cursor has this name (the sink has not run yet).
    #[error("state database: no audit sink named {0:?} (it has not run yet)")]
    NoSuchAuditSink(String),
}

/// Adds the operation's name to a PostgreSQL error.
pub(crate) trait PgOp<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> PgOp<T> for Result<T, tokio_postgres::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Pg { op, source })
    }
}

/// Adds the operation's name to a rusqlite error.
pub(crate) trait SqlContext<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sql { op, source })
    }
}
