//! `PgError`: why a PostgreSQL state could not be reached, migrated, led or copied into.

use std::path::PathBuf;

use crate::store::StoreError;

/// SQLSTATE of the error `opsync_fence` raises when a leader's epoch is stale.
pub const FENCED_SQLSTATE: &str = "OP001";

/// A PostgreSQL state failure. Messages name the server by its URL without a password, the
/// setting or the operation; never a password or a value.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL or one of its parameters is not usable.
    #[error("{key}: {reason}")]
    Url { key: String, reason: String },
    /// The password could not be read from where it was said to be.
    #[error("{from}: {reason}")]
    Password { from: String, reason: String },
    /// The CA certificates for TLS could not be read.
    #[error("sslrootcert {}: {reason}", .path.display())]
    Ca { path: PathBuf, reason: String },
    /// The server could not be reached or refused the login.
    #[error("PostgreSQL state {target}: cannot connect: {source}")]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL state: {op}: {}", reason(.source))]
    Sql {
        op: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database refused a leader's write: another replica took the lease over (a newer
    /// epoch), or the lease ran out before the write.
    #[error("PostgreSQL state: {op}: refused, epoch {epoch} is not the leader's any more")]
    Fenced { op: &'static str, epoch: i64 },
    /// A step took longer than it may.
    #[error("PostgreSQL state: {op}: no answer within {after:?}")]
    Timeout {
        op: &'static str,
        after: std::time::Duration,
    },
    /// The connection was closed.
    #[error("PostgreSQL state: the connection is closed")]
    Closed,
    /// The database's schema was written by a newer opsync.
    #[error(
        "PostgreSQL state schema version {found} is newer than this opsync understands ({known})"
    )]
    TooNew { found: i64, known: i64 },
    /// `state migrate` found state in the target already.
    #[error(
        "PostgreSQL state {target}: table {table} already holds {rows} rows; copy into an empty database"
    )]
    NotEmpty {
        target: String,
        table: &'static str,
        rows: i64,
    },
    /// The SQLite side of a copy failed.
    #[error(transparent)]
    Sqlite(#[from] StoreError),
}

/// Adds the operation's name to a PostgreSQL error; the fencing refusal gets its own variant.
pub(crate) trait PgContext<T> {
    fn op(self, op: &'static str) -> Result<T, PgError>;
    fn fenced_op(self, op: &'static str, epoch: i64) -> Result<T, PgError>;
}

impl<T> PgContext<T> for Result<T, tokio_postgres::Error> {
    fn op(self, op: &'static str) -> Result<T, PgError> {
        self.map_err(|source| PgError::Sql { op, source })
    }

    fn fenced_op(self, op: &'static str, epoch: i64) -> Result<T, PgError> {
        self.map_err(|source| {
            if source.code().map(|c| c.code()) == Some(FENCED_SQLSTATE) {
                PgError::Fenced { op, epoch }
            } else {
                PgError::Sql { op, source }
            }
        })
    }
}

/// What went wrong, with the server's own message when it sent one ("db error" alone says
/// nothing).
pub fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
