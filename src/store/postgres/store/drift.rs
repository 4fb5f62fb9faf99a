//! Drift bookkeeping on PostgreSQL: what each destination last confirmed, and read-backs.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{
    DeliveryId, Drift, Fingerprinted, StoreError, from_millis, tags_from_text, to_millis,
};

/// Records what a delivered ledger row left at its destination, inside the caller's
/// transaction: the fingerprint of a write (replacing the item's previous one), or for a
/// delivered deletion of that key, nothing. `at` in milliseconds.
pub(super) fn delivered(
    tx: &mut impl GenericClient,
    id: DeliveryId,
    fingerprint: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    match fingerprint {
        Some(fingerprint) => tx
            .execute(
                "INSERT INTO fingerprints (route, destination, item_id, vault_id, key, version, \
                   fingerprint, delivered_at) \
                 SELECT route, destination, item_id, vault_id, key, version, $2::text, $3::bigint \
                   FROM ledger WHERE id = $1 AND kind <> 'deleted' \
                 ON CONFLICT (route, destination, item_id) DO UPDATE SET \
                   vault_id = excluded.vault_id, key = excluded.key, version = excluded.version, \
                   fingerprint = excluded.fingerprint, delivered_at = excluded.delivered_at, \
                   drift = NULL, drift_at = NULL",
                &[&id, &fingerprint, &at],
            )
            .op("record a fingerprint")
            .map(drop),
        // A deletion of this key forgets it; a write without a fingerprint leaves the older
        // one unchecked (it may no longer describe the destination).
        None => tx
            .execute(
                "DELETE FROM fingerprints WHERE (route, destination, item_id, key) IN \
                 (SELECT route, destination, item_id, key FROM ledger WHERE id = $1)",
                &[&id],
            )
            .op("forget a fingerprint")
            .map(drop),
    }
}

impl PgStore {
    /// The items `destination` holds for `route` with a fingerprint, the least recently checked
    /// first, at most `limit`.
    pub fn fingerprinted(
        &self,
        route: &str,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<Fingerprinted>, StoreError> {
        let route = route.to_owned();
        let destination = destination.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT f.route, f.destination, f.item_id, f.vault_id, COALESCE(v.name, ''), \
                       f.key, f.version, f.fingerprint, COALESCE(m.title, ''), \
                       COALESCE(m.category, ''), COALESCE(m.tags, '[]'), f.checked_at, f.drift \
                     FROM fingerprints f \
                     LEFT JOIN vaults v ON v.vault_id = f.vault_id \
                     LEFT JOIN members m ON m.route = f.route AND m.vault_id = f.vault_id \
                       AND m.item_id = f.item_id \
                     WHERE f.route = $1 AND f.destination = $2 \
                     ORDER BY COALESCE(f.checked_at, 0), f.item_id COLLATE \"C\" LIMIT $3",
                    &[&route, &destination, &limit],
                )
                .op("read fingerprints")?;
            rows.iter()
                .map(|r| {
                    let version: i64 = r.try_get(6).op("read fingerprint")?;
                    let drift: Option<String> = r.try_get(12).op("read fingerprint")?;
                    Ok(Fingerprinted {
                        route: r.try_get(0).op("read fingerprint")?,
                        destination: r.try_get(1).op("read fingerprint")?,
                        item_id: r.try_get(2).op("read fingerprint")?,
                        vault_id: r.try_get(3).op("read fingerprint")?,
                        vault_name: r.try_get(4).op("read fingerprint")?,
                        key: r.try_get(5).op("read fingerprint")?,
                        version: version.max(0) as u64,
                        fingerprint: r.try_get(7).op("read fingerprint")?,
                        title: r.try_get(8).op("read fingerprint")?,
                        category: r.try_get(9).op("read fingerprint")?,
                        tags: tags_from_text(&r.try_get::<_, String>(10).op("read fingerprint")?),
                        checked_at: r
                            .try_get::<_, Option<i64>>(11)
                            .op("read fingerprint")?
                            .map(from_millis),
                        drift: match drift.as_deref() {
                            Some("changed") => Some(Drift::Changed),
                            Some("missing") => Some(Drift::Missing),
                            _ => None,
                        },
                    })
                })
                .collect()
        })
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
        let route = route.to_owned();
        let destination = destination.to_owned();
        let item_id = item_id.to_owned();
        let at = to_millis(at);
        let drift = drift.map(Drift::as_str);
        self.run(move |c| {
            c.execute(
                "UPDATE fingerprints SET checked_at = $4::bigint, drift = $5::text, \
                   drift_at = CASE WHEN $5::text IS NULL THEN NULL \
                                   ELSE COALESCE(drift_at, $4::bigint) END \
                 WHERE route = $1 AND destination = $2 AND item_id = $3",
                &[&route, &destination, &item_id, &at, &drift],
            )
            .op("record a read-back")
            .map(drop)
        })
    }

    /// Queues a repair of the item at `destination`: a `repaired` change of the version last
    /// delivered there (a repair already queued is reused). False when no delivered write of
    /// the item is left or a change of the item is already on its way there.
    pub fn requeue_delivered(
        &self,
        route: &str,
        destination: &str,
        item_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let route = route.to_owned();
        let destination = destination.to_owned();
        let item_id = item_id.to_owned();
        let now = to_millis(now);
        self.run(move |c| {
            let mut tx = c.transaction().op("begin repair")?;
            // Against a concurrent enqueue of the same item, as SQLite's single writer.
            super::ledger::lock_ledger(&mut tx)?;
            let pending: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM ledger WHERE route = $1 AND destination = $2 \
                       AND item_id = $3 AND status = 'pending')",
                    &[&route, &destination, &item_id],
                )
                .op("look for a pending change")?
                .try_get(0)
                .op("look for a pending change")?;
            if pending {
                return Ok(false);
            }
            let last: Option<DeliveryId> = tx
                .query_one(
                    "SELECT MAX(id) FROM ledger WHERE route = $1 AND destination = $2 \
                       AND item_id = $3 AND status = 'delivered' AND kind <> 'deleted'",
                    &[&route, &destination, &item_id],
                )
                .op("find the last delivery")?
                .try_get(0)
                .op("find the last delivery")?;
            let Some(id) = last else {
                return Ok(false);
            };
            tx.execute(
                "INSERT INTO ledger (route, destination, vault_id, vault_name, item_id, title, \
                   key, version, kind, next_attempt_at, created_at, category, tags) \
                 SELECT route, destination, vault_id, vault_name, item_id, title, key, version, \
                   'repaired', $2::bigint, $2::bigint, category, tags FROM ledger WHERE id = $1 \
                 ON CONFLICT (route, destination, item_id, version, kind) DO UPDATE SET \
                   status = 'pending', attempts = 0, last_error = NULL, \
                   next_attempt_at = excluded.next_attempt_at, created_at = excluded.created_at",
                &[&id, &now],
            )
            .op("queue a repair")?;
            tx.commit().op("commit repair")?;
            Ok(true)
        })
    }

    /// Items per (route, destination) whose last read-back found drift.
    pub fn drift_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.run(|c| {
            let rows = c
                .query(
                    "SELECT route, destination, COUNT(*) FROM fingerprints \
                     WHERE drift IS NOT NULL GROUP BY route, destination \
                     ORDER BY route COLLATE \"C\", destination COLLATE \"C\"",
                    &[],
                )
                .op("read drift counts")?;
            rows.iter()
                .map(|r| {
                    let n: i64 = r.try_get(2).op("read drift count")?;
                    Ok((
                        r.try_get(0).op("read drift count")?,
                        r.try_get(1).op("read drift count")?,
                        n.max(0) as u64,
                    ))
                })
                .collect()
        })
    }
}
