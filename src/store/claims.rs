//! Delivery claims: how a replica asks for due ledger rows to deliver on a shared state, and
//! what the state says of the claims held.

use std::time::Duration;

/// How long a delivery claim holds by default: longer than a destination call may take (a
/// batch's wall-clock limit included), so a live replica's deliveries are not taken over.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(300);

/// A replica's request for due rows of a route. On a PostgreSQL state the rows it gets are
/// claimed for it until `now + timeout`, and no other replica takes them until then, or until
/// its heartbeat is older than `heartbeat_stale`, or until their outcome is recorded. A SQLite
/// state has one process: it hands out its due rows and holds no claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The replica claiming (its id in the replicas' registry).
    pub claimant: String,
    /// The most rows of the route claimed at once, by all replicas together: the route's
    /// concurrency (times its batch size when its destinations take batches). Each replica
    /// takes at most its share: the cap over the replicas heartbeating.
    pub cap: usize,
    /// How long a claim holds without being renewed; a replica renews its claims each time it
    /// claims again.
    pub timeout: Duration,
    /// A claimant whose heartbeat is older than this is gone: its claims hold no more.
    pub heartbeat_stale: Duration,
}

/// Live claims of one replica on one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimCount {
    pub claimant: String,
    pub route: String,
    pub rows: u64,
}
