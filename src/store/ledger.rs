//! The delivery ledger: idempotent enqueue, due rows, and the pending -> delivered | dead state
//! machine (a newer version of the same item supersedes an older pending row).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, Transaction, params};

use crate::connect::model::ApiRequest;
use crate::store::audit::insert_records;
use crate::store::error::{SqlContext, StoreError};
use crate::store::{
    Claim, ClaimCount, DeadLetter, Delivery, DeliveryId, LedgerEntry, SqliteStore, clip,
    from_millis, kind_from_str, tags_from_text, tags_to_text, to_millis,
};

const ENTRY_COLUMNS: &str = "id, route, destination, vault_id, vault_name, item_id, title, key, \
     version, kind, created_at, attempts, last_error, next_attempt_at, dead_at, category, tags";

fn entry_of(row: &Row<'_>) -> rusqlite::Result<(DeliveryId, LedgerEntry, String)> {
    let kind: String = row.get(9)?;
    let version: i64 = row.get(8)?;
    Ok((
        row.get(0)?,
        LedgerEntry {
            route: row.get(1)?,
            destination: row.get(2)?,
            vault_id: row.get(3)?,
            vault_name: row.get(4)?,
            item_id: row.get(5)?,
            title: row.get(6)?,
            key: row.get(7)?,
            category: row.get(15)?,
            tags: tags_from_text(&row.get::<_, String>(16)?),
            version: version.max(0) as u64,
            // Checked after the row is read, so the error can say what was wrong.
            kind: crate::domain::ChangeKind::Created,
            detected_at: from_millis(row.get(10)?),
        },
        kind,
    ))
}

fn delivery_of(row: &Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    let (id, entry, kind) = entry_of(row)?;
    let attempts: i64 = row.get(11)?;
    Ok((
        Delivery {
            id,
            entry,
            attempts: attempts.clamp(0, u32::MAX as i64) as u32,
            last_error: row.get(12)?,
            next_attempt_at: from_millis(row.get(13)?),
        },
        kind,
    ))
}

/// Inserts entries that are not there yet, and marks older pending rows of the same
/// (route, destination, item) superseded: only the newest change of an item is delivered. The
/// one exception is the deletion of another destination key (the old key of a renamed item): the
/// newer row writes a different key, so that deletion still has to happen.
///
/// Entries are inserted in (route, destination, item) order, an item's own entries in the order
/// given. Row ids, and so deliveries, then follow the keys of the ledger's unique index and of
/// `fingerprints`: each commit writes a few neighbouring pages of them instead of one page per
/// row scattered over the whole index.
pub(crate) fn enqueue_tx(tx: &Transaction<'_>, changes: &[LedgerEntry]) -> Result<u64, StoreError> {
    let mut changes: Vec<&LedgerEntry> = changes.iter().collect();
    changes.sort_by(|a, b| {
        (&a.route, &a.destination, &a.item_id).cmp(&(&b.route, &b.destination, &b.item_id))
    });
    let mut insert = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO ledger (route, destination, vault_id, vault_name, item_id, \
             title, key, version, kind, next_attempt_at, created_at, category, tags) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)",
        )
        .op("prepare enqueue")?;
    let mut supersede = tx
        .prepare_cached(
            "UPDATE ledger SET status = 'superseded' \
             WHERE route = ?1 AND destination = ?2 AND item_id = ?3 AND status = 'pending' AND id < ?4 \
             AND NOT (kind = 'deleted' AND key <> ?5)",
        )
        .op("prepare supersede")?;
    let mut added = 0;
    for c in changes {
        let n = insert
            .execute(params![
                c.route,
                c.destination,
                c.vault_id,
                c.vault_name,
                c.item_id,
                c.title,
                c.key,
                c.version as i64,
                c.kind.as_str(),
                to_millis(c.detected_at),
                c.category,
                tags_to_text(&c.tags),
            ])
            .op("enqueue")?;
        if n == 1 {
            added += 1;
            let id = tx.last_insert_rowid();
            supersede
                .execute(params![c.route, c.destination, c.item_id, id, c.key])
                .op("supersede older rows")?;
        }
    }
    Ok(added)
}

impl SqliteStore {
    /// Records changes to deliver. Idempotent: an entry already in the ledger (same route,
    /// destination, item, version and kind) is left as it is.
    pub fn enqueue(&self, changes: &[LedgerEntry]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin enqueue")?;
        enqueue_tx(&tx, changes)?;
        tx.commit().op("commit enqueue")
    }

    /// Pending rows of `route` whose next attempt is due at `now`, oldest first.
    pub fn due(
        &self,
        route: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM ledger \
                 WHERE route = ?1 AND status = 'pending' AND next_attempt_at <= ?2 \
                 ORDER BY next_attempt_at, id LIMIT ?3"
            ))
            .op("prepare due")?;
        let rows = stmt
            .query_map(
                params![route, to_millis(now), limit.min(i64::MAX as usize) as i64],
                delivery_of,
            )
            .op("read due rows")?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, kind) = row.op("read due row")?;
            d.entry.kind = kind_from_str(&kind)?;
            out.push(d);
        }
        Ok(out)
    }

    /// The rows [`due`](Self::due) returns: one process holds no claims.
    pub fn claim_due(
        &self,
        route: &str,
        _claim: &Claim,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.due(route, now, limit)
    }

    /// Nothing to release: one process holds no claims.
    pub fn release_claims(&self, _route: &str, _claimant: &str) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// None: one process holds no claims.
    pub fn claims(&self) -> Result<Vec<ClaimCount>, StoreError> {
        Ok(Vec::new())
    }

    /// The earliest next attempt of a pending row of `route`, to know how long to sleep.
    pub fn next_due(&self, route: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.conn();
        let ms: Option<i64> = conn
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM ledger WHERE route = ?1 AND status = 'pending'",
            )
            .and_then(|mut stmt| stmt.query_row([route], |r| r.get(0)))
            .op("read next due")?;
        Ok(ms.map(from_millis))
    }

    /// The destination took the change. Also accepted for a row a newer version superseded
    /// while it was in flight. `own_event`, when the audit export records opsync's own events,
    /// is added to the audit outbox in the same transaction, so a crash keeps both or neither.
    pub fn mark_delivered(
        &self,
        id: DeliveryId,
        receipt_location: &str,
        at: DateTime<Utc>,
        own_event: Option<&ApiRequest>,
    ) -> Result<(), StoreError> {
        self.record_one(
            id,
            RowUpdate::Delivered {
                location: receipt_location,
                at,
                fingerprint: None,
                own_event,
            },
        )
    }

    /// An attempt failed and will be tried again at `next_attempt_at`. A row that is no longer
    /// pending (superseded, dead, delivered) is left alone.
    pub fn mark_retry(
        &self,
        id: DeliveryId,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_one(
            id,
            RowUpdate::Retry {
                error,
                next_attempt_at,
            },
        )
    }

    /// Gives a row up: it becomes a dead letter with `reason`. A row a newer version
    /// superseded meanwhile stays superseded: the newer row carries the change. `own_event` as
    /// for [`Store::mark_delivered`].
    pub fn dead_letter(
        &self,
        id: DeliveryId,
        reason: &str,
        own_event: Option<&ApiRequest>,
    ) -> Result<(), StoreError> {
        self.record_one(
            id,
            RowUpdate::Dead {
                reason,
                at: Utc::now(),
                own_event,
            },
        )
    }

    fn record_one(&self, id: DeliveryId, update: RowUpdate<'_>) -> Result<(), StoreError> {
        self.record_updates(&[(id, update)])?
            .pop()
            .unwrap_or(Err(StoreError::NoSuchDelivery(id)))
    }

    /// Records the outcomes of several finished attempts in one transaction: one commit for a
    /// group of deliveries instead of one each. Each row's own event commits with it. The inner
    /// results say, in order, whether each row was there (`NoSuchDelivery` when not); the outer
    /// one fails when the transaction does, and then nothing was recorded.
    pub fn record_updates(
        &self,
        updates: &[(DeliveryId, RowUpdate<'_>)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin ledger updates")?;
        let mut found = Vec::with_capacity(updates.len());
        for (id, update) in updates {
            let changed = apply(&tx, *id, update)?;
            found.push(if changed > 0 {
                Ok(())
            } else {
                exists(&tx, *id)
            });
        }
        tx.commit().op("commit ledger updates")?;
        Ok(found)
    }

    /// Dead letters, newest first, of one route or all.
    pub fn dead_letters(&self, route: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters_matching(route, None)
    }

    /// The dead letter `id`, if there is one.
    pub fn find_dead_letter(&self, id: DeliveryId) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.dead_letters_matching(None, Some(id))?.pop())
    }

    fn dead_letters_matching(
        &self,
        route: Option<&str>,
        id: Option<DeliveryId>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM ledger \
                 WHERE status = 'dead' AND (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR id = ?2) \
                 ORDER BY dead_at DESC, id DESC"
            ))
            .op("prepare dead letters")?;
        let rows = stmt
            .query_map(params![route, id], |r| {
                let dead_at: Option<i64> = r.get(14)?;
                delivery_of(r).map(|d| (d, dead_at))
            })
            .op("read dead letters")?;
        let mut out = Vec::new();
        for row in rows {
            let ((d, kind), dead_at) = row.op("read dead letter")?;
            let mut entry = d.entry;
            entry.kind = kind_from_str(&kind)?;
            out.push(DeadLetter {
                id: d.id,
                entry,
                attempts: d.attempts,
                reason: d.last_error.unwrap_or_default(),
                dead_at: dead_at.map(from_millis).unwrap_or(d.next_attempt_at),
            });
        }
        Ok(out)
    }

    /// Puts dead letters (of one route, or one by id, or all) back to pending with a fresh
    /// retry budget; returns how many. A dead letter whose item has a newer pending row is
    /// marked superseded instead.
    pub fn retry_dead_letters(
        &self,
        route: Option<&str>,
        id: Option<DeliveryId>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin retry dead letters")?;
        let now = to_millis(Utc::now());
        let n = tx
            .execute(
                "UPDATE ledger SET status = 'pending', attempts = 0, next_attempt_at = ?3, dead_at = NULL \
                 WHERE status = 'dead' AND (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR id = ?2)",
                params![route, id, now],
            )
            .op("retry dead letters")?;
        tx.execute(
            "UPDATE ledger SET status = 'superseded' WHERE status = 'pending' AND EXISTS ( \
               SELECT 1 FROM ledger AS newer WHERE newer.route = ledger.route \
               AND newer.destination = ledger.destination AND newer.item_id = ledger.item_id \
               AND newer.id > ledger.id AND newer.status IN ('pending', 'delivered') \
               AND NOT (ledger.kind = 'deleted' AND newer.key <> ledger.key))",
            [],
        )
        .op("supersede retried rows")?;
        tx.commit().op("commit retry dead letters")?;
        Ok(n)
    }

    /// Deletes delivered and superseded rows finished before `before` (delivery time, or
    /// detection time for superseded rows); returns how many. Dead letters stay until retried,
    /// and so does every row newer than a dead letter of the same (route, destination, item),
    /// which a retry needs to see so it does not replay an older version. Each route keeps its
    /// latest delivered row, for `status`'s last success.
    pub fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM ledger WHERE status IN ('delivered', 'superseded') \
                 AND COALESCE(delivered_at, created_at) < ?1 \
                 AND id NOT IN (SELECT id FROM (SELECT id, MAX(delivered_at) FROM ledger \
                                WHERE status = 'delivered' GROUP BY route)) \
                 AND NOT EXISTS (SELECT 1 FROM ledger AS dead WHERE dead.status = 'dead' \
                   AND dead.route = ledger.route AND dead.destination = ledger.destination \
                   AND dead.item_id = ledger.item_id AND dead.id < ledger.id)",
                [to_millis(before)],
            )
            .op("prune the ledger")?;
        Ok(n as u64)
    }
}

/// What a finished attempt changes in its ledger row.
#[derive(Clone, Copy, Debug)]
pub enum RowUpdate<'a> {
    /// See [`Store::mark_delivered`]. `fingerprint`: what the destination now holds, from a
    /// plugin that reads back (kept for drift checks; a delivered deletion forgets it).
    Delivered {
        location: &'a str,
        at: DateTime<Utc>,
        fingerprint: Option<&'a str>,
        own_event: Option<&'a ApiRequest>,
    },
    /// See [`Store::mark_retry`].
    Retry {
        error: &'a str,
        next_attempt_at: DateTime<Utc>,
    },
    /// See [`Store::dead_letter`].
    Dead {
        reason: &'a str,
        at: DateTime<Utc>,
        own_event: Option<&'a ApiRequest>,
    },
}

/// Applies one update; returns the rows it changed (0 or 1). The statements are cached: they
/// run once per delivery.
fn apply(conn: &Connection, id: DeliveryId, update: &RowUpdate<'_>) -> Result<usize, StoreError> {
    let (changed, own_event) = match *update {
        RowUpdate::Delivered {
            location,
            at,
            fingerprint,
            own_event,
        } => {
            let changed = conn
                .prepare_cached(
                    "UPDATE ledger SET status = 'delivered', attempts = attempts + 1, \
                     delivered_at = ?2, location = ?3, last_error = NULL \
                     WHERE id = ?1 AND status IN ('pending', 'superseded', 'delivered')",
                )
                .and_then(|mut stmt| stmt.execute(params![id, to_millis(at), clip(location)]))
                .op("mark delivered")?;
            if changed > 0 {
                crate::store::drift::delivered(conn, id, fingerprint, at)?;
            }
            (changed, own_event)
        }
        RowUpdate::Retry {
            error,
            next_attempt_at,
        } => (
            conn.prepare_cached(
                "UPDATE ledger SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 \
                 WHERE id = ?1 AND status = 'pending'",
            )
            .and_then(|mut stmt| stmt.execute(params![id, clip(error), to_millis(next_attempt_at)]))
            .op("mark retry")?,
            None,
        ),
        RowUpdate::Dead {
            reason,
            at,
            own_event,
        } => (
            conn.prepare_cached(
                "UPDATE ledger SET status = 'dead', attempts = attempts + 1, last_error = ?2, \
                 dead_at = ?3 WHERE id = ?1 AND status IN ('pending', 'dead')",
            )
            .and_then(|mut stmt| stmt.execute(params![id, clip(reason), to_millis(at)]))
            .op("dead-letter")?,
            own_event,
        ),
    };
    if changed > 0
        && let Some(event) = own_event
    {
        insert_records(conn, std::slice::from_ref(event), true)?;
    }
    Ok(changed)
}

/// `Ok` when the ledger has row `id`, else `NoSuchDelivery`.
fn exists(conn: &Connection, id: DeliveryId) -> Result<(), StoreError> {
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM ledger WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )
        .op("look a delivery up")?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NoSuchDelivery(id))
    }
}
