//! The status document: what `/status` serves and `opsync status --json` prints, schema
//! `opsync.status/v1`. Fields are only ever added within a version; a rename or removal bumps it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The schema this build writes.
pub const SCHEMA: &str = "opsync.status/v1";

/// Everything the status page shows. Names, times, counts and redacted errors: never a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    pub schema: String,
    pub generated_at: DateTime<Utc>,
    /// The opsync version that wrote the document.
    pub opsync_version: String,
    pub connect: ConnectStatus,
    pub routes: Vec<RouteStatus>,
    pub rotations: Vec<RotationStatus>,
    pub audit_sinks: Vec<SinkStatus>,
    pub dead_letters: DeadLetters,
    /// Where the state lives and, on PostgreSQL, its leader and replicas.
    #[serde(default)]
    pub state: StateStatus,
}

/// The state backend, its leader and replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateStatus {
    /// `sqlite` (one process) or `postgres` (shared by replicas).
    pub backend: String,
    /// The leader lease, on PostgreSQL once a replica took it.
    pub leader: Option<LeaderStatus>,
    /// The replicas seen in the last minute, most recently started first (PostgreSQL).
    pub replicas: Vec<ReplicaStatus>,
}

/// Who holds the leader lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderStatus {
    /// The holder's replica id.
    pub replica: String,
    pub epoch: i64,
    pub since: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether the lease had run out when read (no replica leads).
    pub expired: bool,
}

/// One replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub id: String,
    /// `leader` or `follower`.
    pub role: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Ledger rows it holds claimed for delivery now, per route.
    pub claims: Vec<ClaimStatus>,
}

/// Rows of one route a replica holds claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatus {
    pub route: String,
    pub rows: u64,
}

/// How the last polls of Connect went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectStatus {
    pub host: String,
    pub health: Health,
    pub last_poll_ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<ErrorNote>,
}

/// Connect's health as the polls saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The last poll succeeded.
    Ok,
    /// The last poll failed.
    Failing,
    /// No poll recorded yet.
    Unknown,
}

/// An error and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorNote {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub name: String,
    /// False for a route the state database knows but the config no longer has.
    pub in_config: bool,
    pub selection: Selection,
    /// Items the route sends (its destination keys).
    pub items_tracked: u64,
    /// Age of the oldest undelivered change, in seconds (0 when none).
    pub lag_seconds: u64,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Deletions held by the mass-delete breaker.
    pub hold: Option<HoldStatus>,
    pub destinations: Vec<DestinationStatus>,
}

/// Which items a route takes (empty lists: no condition).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub vaults: Vec<String>,
    pub tags: Vec<String>,
    pub title: Option<String>,
    pub categories: Vec<String>,
}

/// Deletions held back because they exceed the route's `max_delete_ratio`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldStatus {
    pub deletions: u64,
    pub total: u64,
    pub max_delete_ratio: f64,
    pub since: DateTime<Utc>,
}

/// One destination of one route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationStatus {
    /// The plugin instance (`[plugins.NAME]`).
    pub name: String,
    pub state: DestinationState,
    pub pending: u64,
    pub retrying: u64,
    pub dead: u64,
    /// Items whose last read-back found them changed or missing at the destination.
    pub drifted: u64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// The newest error of a pending or dead change, or why the plugin is unusable.
    pub last_error: Option<String>,
}

/// Where a destination stands; the first that applies, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationState {
    /// Its plugin could not be loaded: nothing is delivered.
    PluginUnusable,
    /// The route's deletions are held by the mass-delete breaker.
    Held,
    /// At least one change was given up.
    DeadLetter,
    /// A read-back found an item changed or missing at the destination.
    Drifted,
    /// A change failed and waits for its next attempt.
    Retrying,
    /// Changes wait for their first attempt.
    Pending,
    /// Everything detected was delivered.
    Synced,
}

impl DestinationState {
    /// The name used in the JSON and on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PluginUnusable => "plugin_unusable",
            Self::Held => "held",
            Self::DeadLetter => "dead_letter",
            Self::Drifted => "drifted",
            Self::Retrying => "retrying",
            Self::Pending => "pending",
            Self::Synced => "synced",
        }
    }
}

/// One `[[rotation]]` job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationStatus {
    pub name: String,
    /// `op://vault/item`.
    pub item: String,
    pub plugin: String,
    pub schedule: String,
    pub timezone: String,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the next slot starts; the past when one is due now; null when none will.
    pub next_run_at: Option<DateTime<Utc>>,
    pub in_flight: Option<InFlight>,
}

/// A rotation in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub step: String,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub retry_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// One audit sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    pub name: String,
    pub plugin: String,
    /// The last outbox position the sink acknowledged (null: no cursor yet).
    pub cursor: Option<i64>,
    pub acked_at: Option<DateTime<Utc>>,
    pub shipped: u64,
    /// Records after the cursor that this sink ships.
    pub pending: u64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub lag_seconds: u64,
    pub dead: u64,
    /// Failed attempts since the last acknowledgement.
    pub failures: u64,
    pub last_error: Option<ErrorNote>,
}

/// The dead letters, newest first; at most [`crate::status::DEAD_LETTERS_SHOWN`] of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetters {
    pub total: u64,
    pub shown: Vec<DeadLetter>,
}

/// A delivery that was given up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: i64,
    pub route: String,
    pub destination: String,
    pub vault: String,
    pub vault_id: String,
    pub item_id: String,
    pub title: String,
    /// The destination key the change was for.
    pub key: String,
    pub version: u64,
    pub kind: String,
    pub attempts: u32,
    pub detected_at: DateTime<Utc>,
    pub dead_at: DateTime<Utc>,
    pub reason: String,
}
