//! The SQLite implementation's handle: one connection behind a mutex, opened in WAL mode and
//! migrated; each concern's module (`ledger`, `audit`, ...) adds its operations to it.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use rusqlite::Connection;

use crate::store::error::SqlContext;
use crate::store::{StoreError, schema, to_millis};

/// The SQLite state. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` in WAL mode and migrates it.
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        schema::prepare(&mut conn, false)?;
        Ok(Self::wrap(conn))
    }

    /// A private database in memory.
    pub(crate) fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".into(),
            source,
        })?;
        schema::prepare(&mut conn, true)?;
        Ok(Self::wrap(conn))
    }

    fn wrap(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// The connection; a panic in another holder does not make the database unusable.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks that the database can be written (for `/readyz`).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [to_millis(Utc::now()).to_string()],
            )
            .op("write probe")
            .map(drop)
    }
}
