//! The replicas registry: each replica's heartbeat (who, where, since when, last seen), so
//! `status` can show every replica and which one leads.

use tokio_postgres::Client;

use crate::store::postgres::PgError;
use crate::store::postgres::error::PgContext;

/// One replica as it describes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// Unique per process start (the lease holder id).
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// The opsync version it runs.
    pub version: String,
}

impl Replica {
    /// This process: a fresh random id, the host name, the pid and this build's version.
    pub fn this_process() -> Replica {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Replica {
            id: format!("{}-{:016x}", host, rand::random::<u64>()),
            host,
            pid: i64::from(std::process::id()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A replica as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenReplica {
    pub replica: Replica,
    /// Milliseconds since the epoch, by the database's clock.
    pub started_at: i64,
    pub seen_at: i64,
}

/// Records that `replica` is alive now.
pub async fn heartbeat(client: &Client, replica: &Replica) -> Result<(), PgError> {
    client
        .execute(
            "INSERT INTO replicas (id, host, pid, version, started_at, seen_at)
             VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())
             ON CONFLICT (id) DO UPDATE SET seen_at = clock_timestamp()",
            &[&replica.id, &replica.host, &replica.pid, &replica.version],
        )
        .await
        .op("record the replica's heartbeat")
        .map(drop)
}

/// Removes `replica` from the registry (a clean shutdown).
pub async fn leave(client: &Client, replica: &Replica) -> Result<(), PgError> {
    client
        .execute("DELETE FROM replicas WHERE id = $1", &[&replica.id])
        .await
        .op("remove the replica")
        .map(drop)
}

/// The replicas seen within `$1` seconds, most recently started first (see [`seen_of`]).
pub(crate) const SEEN: &str = "SELECT id, host, pid, version,
        (extract(epoch FROM started_at) * 1000)::bigint,
        (extract(epoch FROM seen_at) * 1000)::bigint
     FROM replicas
     WHERE seen_at > clock_timestamp() - $1::float8 * interval '1 second'
     ORDER BY started_at DESC, id";

/// A row of [`SEEN`].
pub(crate) fn seen_of(r: &tokio_postgres::Row) -> SeenReplica {
    SeenReplica {
        replica: Replica {
            id: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            version: r.get(3),
        },
        started_at: r.get(4),
        seen_at: r.get(5),
    }
}

/// The replicas seen within `within`, most recently started first.
pub async fn seen(
    client: &Client,
    within: std::time::Duration,
) -> Result<Vec<SeenReplica>, PgError> {
    let rows = client
        .query(SEEN, &[&within.as_secs_f64()])
        .await
        .op("list replicas")?;
    Ok(rows.iter().map(seen_of).collect())
}
