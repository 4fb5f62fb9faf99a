//! The state: what opsync last saw in Connect, which items each route sends, the delivery
//! ledger, rotation jobs, and the audit outbox with its cursors, on SQLite (one process, the
//! default) or PostgreSQL (shared by replicas). It holds references and non-secret metadata,
//! never a value.
//!
//! One interface, two implementations: `api` lists every operation once and dispatches it to
//! `SqliteStore` (this directory's concern modules, on rusqlite) or `PgStore` (`postgres/store`),
//! which keep the same contract; tests/store*.rs run each behaviour on both.
//!
//! **The store rule.** Every `Store` method is blocking and holds a connection (SQLite's one, or
//! one of PostgreSQL's workers) for the length of its statement or transaction. Async code calls a method inline only when its work is
//! bounded by an index to a few rows (a cursor, a meta key, the next due time, one row's state):
//! that holds the connection for microseconds, less than a hand-off to another thread costs. Work
//! that grows with its input (a poll's commit, a vault's known items and route members, an outbox
//! batch, a group of recorded outcomes, pruning) runs on the blocking pool: through
//! [`Store::blocking`], or inside a `spawn_blocking` job that does more with it (the delivery
//! recorder also flushes files, audit maintenance prunes and counts in one job).

mod api;
mod audit;
mod claims;
mod drift;
mod error;
mod health;
mod known;
mod ledger;
pub mod postgres;
mod rotation;
mod routes;
mod schema;
mod sinks;
mod sqlite;
mod streams;

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};

pub use audit::{ACTIVITY, LogOrder, NewRecord, OutboxRecord, TailMark};
pub use claims::{Claim, ClaimCount, DEFAULT_CLAIM_TIMEOUT};
pub use drift::{Drift, Fingerprinted};
pub use error::StoreError;
pub use health::{Noted, PollHealth, UnusablePlugin};
pub use known::{KnownItem, KnownVault, Member, PollWrite};
pub use ledger::RowUpdate;
pub use rotation::{JobState, Lease, RunState};
pub use schema::SCHEMA_VERSION;
pub use sinks::{AuditDeadLetter, SinkCursor, SinkLag, SinkStart};
pub use streams::{Replay, StreamMark};

use crate::domain::ChangeKind;
use crate::store::postgres::{PgStore, PgTarget};
pub(crate) use crate::store::sqlite::SqliteStore;

/// A ledger row's id.
pub type DeliveryId = i64;

/// Longest error text kept in the ledger; the rest is cut.
pub const ERROR_MAX: usize = 2000;

/// One thing that must reach one destination of one route: a reference, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub route: String,
    /// The plugin instance (a `[plugins.NAME]`).
    pub destination: String,
    pub vault_id: String,
    pub vault_name: String,
    pub item_id: String,
    /// The item's title when the change was detected (non-secret metadata).
    pub title: String,
    /// The route's name template, rendered for this item.
    pub key: String,
    /// The item's category when the change was detected (`LOGIN`, ...; non-secret metadata).
    pub category: String,
    /// The item's tags when the change was detected (non-secret metadata).
    pub tags: Vec<String>,
    pub version: u64,
    pub kind: ChangeKind,
    /// When the change was detected: the start of the change-to-delivered latency.
    pub detected_at: DateTime<Utc>,
}

impl LedgerEntry {
    /// The idempotency key handed to the plugin: route + item + version + kind.
    pub fn idempotency_key(&self) -> String {
        crate::domain::idempotency_key(&self.route, &self.item_id, self.version, self.kind)
    }
}

/// A pending ledger row, due for an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub entry: LedgerEntry,
    /// Attempts made so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
}

/// A delivery that was given up, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: DeliveryId,
    pub entry: LedgerEntry,
    pub attempts: u32,
    pub reason: String,
    pub dead_at: DateTime<Utc>,
}

/// A route whose deletions are held because they exceed its `max_delete_ratio`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hold {
    pub route: String,
    /// Deletions the last poll wanted to make.
    pub deletions: u64,
    /// Items the route sends (its destination keys) before them.
    pub total: u64,
    pub max_ratio: f64,
    pub since: DateTime<Utc>,
}

/// Where one route stands.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteStatus {
    pub route: String,
    pub last_success: Option<DateTime<Utc>>,
    pub pending: u64,
    pub dead: u64,
    /// Detection time of the oldest pending row: now minus this is the route's lag.
    pub oldest_pending: Option<DateTime<Utc>>,
    pub delivered: u64,
    pub hold: Option<Hold>,
}

/// Where one destination of one route stands, read from the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationStatus {
    pub route: String,
    pub destination: String,
    /// Changes not delivered yet (retrying ones included).
    pub pending: u64,
    /// Pending changes that failed at least once.
    pub retrying: u64,
    pub dead: u64,
    pub oldest_pending: Option<DateTime<Utc>>,
    pub last_delivered: Option<DateTime<Utc>>,
    /// The newest error of a pending or dead row.
    pub last_error: Option<String>,
}

/// The shortest time a PostgreSQL session may sit idle inside a transaction before the server
/// ends it: a busy replica's legitimate pauses stay well below it.
const IDLE_IN_TRANSACTION_FLOOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Who leads a PostgreSQL state, and which replicas are alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The leader lease, once a replica took it.
    pub lease: Option<postgres::LeaseRow>,
    /// The replicas whose heartbeat is recent, most recently started first.
    pub replicas: Vec<postgres::SeenReplica>,
}

/// The state: SQLite (one process) or PostgreSQL (shared by replicas). Cheap to clone; clones
/// share one connection (SQLite) or one set of connections (PostgreSQL).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// Where the state lives.
#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the SQLite database at `path` in WAL mode and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sqlite(SqliteStore::open(path)?),
        })
    }

    /// A private SQLite database in memory, for tests and `plan`.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sqlite(SqliteStore::open_in_memory()?),
        })
    }

    /// Connects to the PostgreSQL state at `target` and migrates it.
    pub fn open_postgres(target: &PgTarget) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(PgStore::open(target)?),
        })
    }

    /// The PostgreSQL state at `target` for replicas whose leader lease lasts `lease`: its
    /// sessions are ended by the server when they sit idle inside a transaction longer than the
    /// lease (at least 10 s), so a paused replica's locks do not
    /// outlive its lease for long.
    pub fn open_replicated(
        mut target: PgTarget,
        lease: std::time::Duration,
    ) -> Result<Store, StoreError> {
        target.bound_idle_transactions(lease.max(IDLE_IN_TRANSACTION_FLOOR));
        Store::open_postgres(&target)
    }

    /// On PostgreSQL: from now on this process's writes to the tables the leader owns carry
    /// `epoch`, and the database refuses them once another replica took over. `None`: this
    /// process does not lead, and all such writes are refused. A SQLite state has one process
    /// and no epochs.
    pub fn lead_with(&self, epoch: Option<i64>) {
        if let Backend::Postgres(db) = &self.backend {
            db.carry_epoch(epoch.unwrap_or(postgres::STANDING_BY));
        }
    }

    /// On PostgreSQL: the leader lease and the replicas seen within `within`; `None` on SQLite
    /// (one process, no leases).
    pub fn leadership(
        &self,
        within: std::time::Duration,
    ) -> Result<Option<Leadership>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(db) => db.leadership(within).map(Some),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The SQLite database, when the state is one.
    pub(crate) fn sqlite(&self) -> Option<&SqliteStore> {
        match &self.backend {
            Backend::Sqlite(db) => Some(db),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `work` on the blocking pool, off the async workers (see the store rule above).
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn kind_from_str(s: &str) -> Result<ChangeKind, StoreError> {
    ChangeKind::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Tags as stored: a JSON list.
pub(crate) fn tags_to_text(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

/// Tags as stored; a row written before tags were kept (or unreadable) has none.
pub(crate) fn tags_from_text(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Cuts an error message to [`ERROR_MAX`] bytes on a character boundary.
pub(crate) fn clip(s: &str) -> &str {
    if s.len() <= ERROR_MAX {
        return s;
    }
    let mut end = ERROR_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
