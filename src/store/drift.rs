//! Drift bookkeeping: the fingerprint each destination confirmed for an item when it was
//! delivered, what the last read-back found, and the repair of a drifted item (its change
//! queued again).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::store::error::{SqlContext, StoreError};
use crate::store::{DeliveryId, SqliteStore, from_millis, to_millis};

/// What a read-back found different from what was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Something else is at the key.
    Changed,
    /// Nothing is at the key.
    Missing,
}

impl Drift {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Missing => "missing",
        }
    }
}

/// One item a destination holds, as delivered: what a drift check reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprinted {
    pub route: String,
    pub destination: String,
    pub item_id: String,
    pub vault_id: String,
    /// The vault's name as last listed (empty when no longer known).
    pub vault_name: String,
    pub key: String,
    pub version: u64,
    pub fingerprint: String,
    /// The item's title, category and tags as the route last sent it (empty when the item
    /// left the route).
    pub title: String,
    pub category: String,
    pub tags: Vec<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub drift: Option<Drift>,
}

/// Records what a delivered ledger row left at its destination: the fingerprint of a write
/// (replacing the item's previous one), or for a delivered deletion of that key, nothing.
pub(crate) fn delivered(
    conn: &Connection,
    id: DeliveryId,
    fingerprint: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    match fingerprint {
        Some(fingerprint) => conn
            .prepare_cached(
                "INSERT INTO fingerprints (route, destination, item_id, vault_id, key, version, \
                   fingerprint, delivered_at) \
                 SELECT route, destination, item_id, vault_id, key, version, ?2, ?3 \
                   FROM ledger WHERE id = ?1 AND kind <> 'deleted' \
                 ON CONFLICT (route, destination, item_id) DO UPDATE SET \
                   vault_id = excluded.vault_id, key = excluded.key, version = excluded.version, \
                   fingerprint = excluded.fingerprint, delivered_at = excluded.delivered_at, \
                   drift = NULL, drift_at = NULL",
            )
            .and_then(|mut stmt| stmt.execute(params![id, fingerprint, to_millis(at)]))
            .op("record a fingerprint")
            .map(drop),
        // A deletion of this key forgets it; a write without a fingerprint leaves the older
        // one unchecked (it may no longer describe the destination).
        None => conn
            .prepare_cached(
                "DELETE FROM fingerprints WHERE (route, destination, item_id, key) IN \
                 (SELECT route, destination, item_id, key FROM ledger WHERE id = ?1)",
            )
            .and_then(|mut stmt| stmt.execute([id]))
            .op("forget a fingerprint")
            .map(drop),
    }
}

impl SqliteStore {
    /// The items `destination` holds for `route` with a fingerprint, the least recently checked
    /// first, at most `limit`.
    pub fn fingerprinted(
        &self,
        route: &str,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<Fingerprinted>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.route, f.destination, f.item_id, f.vault_id, COALESCE(v.name, ''), \
                   f.key, f.version, f.fingerprint, COALESCE(m.title, ''), \
                   COALESCE(m.category, ''), COALESCE(m.tags, '[]'), f.checked_at, f.drift \
                 FROM fingerprints f \
                 LEFT JOIN vaults v ON v.vault_id = f.vault_id \
                 LEFT JOIN members m ON m.route = f.route AND m.vault_id = f.vault_id \
                   AND m.item_id = f.item_id \
                 WHERE f.route = ?1 AND f.destination = ?2 \
                 ORDER BY COALESCE(f.checked_at, 0), f.item_id LIMIT ?3",
            )
            .op("prepare fingerprints")?;
        let rows = stmt
            .query_map(
                params![route, destination, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    let version: i64 = r.get(6)?;
                    let drift: Option<String> = r.get(12)?;
                    Ok(Fingerprinted {
                        route: r.get(0)?,
                        destination: r.get(1)?,
                        item_id: r.get(2)?,
                        vault_id: r.get(3)?,
                        vault_name: r.get(4)?,
                        key: r.get(5)?,
                        version: version.max(0) as u64,
                        fingerprint: r.get(7)?,
                        title: r.get(8)?,
                        category: r.get(9)?,
                        tags: crate::store::tags_from_text(&r.get::<_, String>(10)?),
                        checked_at: r.get::<_, Option<i64>>(11)?.map(from_millis),
                        drift: match drift.as_deref() {
                            Some("changed") => Some(Drift::Changed),
                            Some("missing") => Some(Drift::Missing),
                            _ => None,
                        },
                    })
                },
            )
            .op("read fingerprints")?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.op("read fingerprint")?);
        }
        Ok(out)
    }

    /// Records a read-back of `item_id` at `destination`: what it found (`None`: what was
    /// delivered), at `at`.
    pub fn note_read_back(
        &self,
        route: &str,
        destination: &str,
        item_id: &str,
        drift: Option<Drift>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE fingerprints SET checked_at = ?4, drift = ?5, \
                   drift_at = CASE WHEN ?5 IS NULL THEN NULL ELSE COALESCE(drift_at, ?4) END \
                 WHERE route = ?1 AND destination = ?2 AND item_id = ?3",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    route,
                    destination,
                    item_id,
                    to_millis(at),
                    drift.map(Drift::as_str)
                ])
            })
            .op("record a read-back")
            .map(drop)
    }

    /// Queues a repair of the item at `destination`: a `repaired` change of the version last
    /// delivered there, with the metadata of that delivery (pending now, a fresh retry budget;
    /// a repair already queued is reused). False when no delivered write of the item is left in
    /// the ledger (pruned) or a change of the item is already on its way there.
    pub fn requeue_delivered(
        &self,
        route: &str,
        destination: &str,
        item_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        let pending: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM ledger WHERE route = ?1 AND destination = ?2 \
                   AND item_id = ?3 AND status = 'pending')",
                params![route, destination, item_id],
                |r| r.get(0),
            )
            .op("look for a pending change")?;
        if pending {
            return Ok(false);
        }
        let last: Option<DeliveryId> = conn
            .query_row(
                "SELECT MAX(id) FROM ledger WHERE route = ?1 AND destination = ?2 \
                   AND item_id = ?3 AND status = 'delivered' AND kind <> 'deleted'",
                params![route, destination, item_id],
                |r| r.get(0),
            )
            .optional()
            .op("find the last delivery")?
            .flatten();
        let Some(id) = last else {
            return Ok(false);
        };
        conn.execute(
            "INSERT INTO ledger (route, destination, vault_id, vault_name, item_id, title, key, \
               version, kind, next_attempt_at, created_at, category, tags) \
             SELECT route, destination, vault_id, vault_name, item_id, title, key, version, \
               'repaired', ?2, ?2, category, tags FROM ledger WHERE id = ?1 \
             ON CONFLICT (route, destination, item_id, version, kind) DO UPDATE SET \
               status = 'pending', attempts = 0, last_error = NULL, \
               next_attempt_at = excluded.next_attempt_at, created_at = excluded.created_at",
            params![id, to_millis(now)],
        )
        .op("queue a repair")?;
        Ok(true)
    }

    /// Items per (route, destination) whose last read-back found drift.
    pub fn drift_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT route, destination, COUNT(*) FROM fingerprints \
                 WHERE drift IS NOT NULL GROUP BY route, destination",
            )
            .op("prepare drift counts")?;
        let rows = stmt
            .query_map([], |r| {
                let n: i64 = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, n.max(0) as u64))
            })
            .op("read drift counts")?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.op("read drift count")?);
        }
        Ok(out)
    }
}
