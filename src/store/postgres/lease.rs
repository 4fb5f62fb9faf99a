//! Leadership over PostgreSQL: one lease row per name whose epoch grows at every change of
//! holder. The holder keeps the lease by renewing it before it runs out; every write a leader
//! makes first passes the database's fence with its epoch, so a leader that was paused past its
//! lease and wakes up cannot write.

use std::time::Duration;

use tokio_postgres::{Client, GenericClient};

use crate::store::postgres::PgError;
use crate::store::postgres::error::PgContext;

/// The lease whose holder does the work that must happen once: polling Connect, the audit
/// tail, starting scheduled rotations.
pub const LEADER_LEASE: &str = "leader";

/// Where one replica stands after a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// This replica holds the lease with this epoch for `remaining` more (by the database's
    /// clock when it answered).
    Leader { epoch: i64, remaining: Duration },
    /// Another replica holds it (or held it last: `holder` is `None` when no one ever did).
    Follower { holder: Option<String>, epoch: i64 },
}

/// The lease row as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    pub holder: String,
    pub epoch: i64,
    /// Milliseconds since the epoch.
    pub acquired_at: i64,
    pub renewed_at: i64,
    pub expires_at: i64,
    /// Whether it had run out when read.
    pub expired: bool,
}

/// One replica's view of one lease.
#[derive(Clone, Debug)]
pub struct Lease {
    name: String,
    holder: String,
    duration: Duration,
}

impl Lease {
    /// The lease `name` as claimed by `holder` (a replica id, unique per process), held for
    /// `duration` past each renewal.
    pub fn new(name: &str, holder: &str, duration: Duration) -> Lease {
        Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            duration,
        }
    }

    /// This replica's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes the lease when no one holds it or its holder let it run out (a new epoch), renews
    /// it when this replica holds it (the same epoch): one statement, so two replicas claiming
    /// at once cannot both win.
    pub async fn claim(&self, client: &Client) -> Result<Standing, PgError> {
        let row = client
            .query_opt(
                "INSERT INTO leases AS l (name, holder, epoch, acquired_at, renewed_at, expires_at)
                 VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp(),
                         clock_timestamp() + $3::float8 * interval '1 second')
                 ON CONFLICT (name) DO UPDATE SET
                     epoch = CASE WHEN l.holder = excluded.holder
                                   AND l.expires_at > clock_timestamp()
                                  THEN l.epoch ELSE l.epoch + 1 END,
                     acquired_at = CASE WHEN l.holder = excluded.holder
                                         AND l.expires_at > clock_timestamp()
                                        THEN l.acquired_at ELSE clock_timestamp() END,
                     holder = excluded.holder,
                     renewed_at = clock_timestamp(),
                     expires_at = excluded.expires_at
                 WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
                 RETURNING l.epoch,
                     (extract(epoch FROM l.expires_at - clock_timestamp()) * 1000)::bigint",
                &[&self.name, &self.holder, &self.duration.as_secs_f64()],
            )
            .await
            .op("claim the lease")?;
        if let Some(row) = row {
            let remaining: i64 = row.get(1);
            return Ok(Standing::Leader {
                epoch: row.get(0),
                remaining: Duration::from_millis(remaining.max(0) as u64),
            });
        }
        Ok(match lease_row(client, &self.name).await? {
            Some(held) => Standing::Follower {
                holder: Some(held.holder),
                epoch: held.epoch,
            },
            None => Standing::Follower {
                holder: None,
                epoch: 0,
            },
        })
    }

    /// Lets the lease run out now when this replica holds it with `epoch`, so another replica
    /// takes over at its next renewal instead of a whole lease later. Returns whether it did.
    pub async fn release(&self, client: &Client, epoch: i64) -> Result<bool, PgError> {
        let n = client
            .execute(
                "UPDATE leases SET expires_at = clock_timestamp()
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&self.name, &self.holder, &epoch],
            )
            .await
            .op("release the lease")?;
        Ok(n == 1)
    }
}

/// Reads the lease row `$1` (see [`lease_of`]).
pub(crate) const LEASE_ROW: &str = "SELECT holder, epoch,
        (extract(epoch FROM acquired_at) * 1000)::bigint,
        (extract(epoch FROM renewed_at) * 1000)::bigint,
        (extract(epoch FROM expires_at) * 1000)::bigint,
        expires_at <= clock_timestamp()
     FROM leases WHERE name = $1";

/// A row of [`LEASE_ROW`].
pub(crate) fn lease_of(r: &tokio_postgres::Row) -> LeaseRow {
    LeaseRow {
        holder: r.get(0),
        epoch: r.get(1),
        acquired_at: r.get(2),
        renewed_at: r.get(3),
        expires_at: r.get(4),
        expired: r.get(5),
    }
}

/// The lease row `name`, if it was ever taken.
pub async fn lease_row(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<LeaseRow>, PgError> {
    let row = client
        .query_opt(LEASE_ROW, &[&name])
        .await
        .op("read the lease")?;
    Ok(row.as_ref().map(lease_of))
}

/// The fence: the first statement of a leader's write transaction. The database refuses it
/// ([`PgError::Fenced`]) unless `epoch` holds lease `name` now, and keeps the lease row
/// share-locked until the transaction ends, so no takeover commits before the write does.
pub async fn fence(
    tx: &impl GenericClient,
    name: &str,
    epoch: i64,
    op: &'static str,
) -> Result<(), PgError> {
    tx.execute("SELECT opsync_fence($1, $2)", &[&name, &epoch])
        .await
        .fenced_op(op, epoch)
        .map(drop)
}
