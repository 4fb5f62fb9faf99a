//! The delivery ledger on PostgreSQL: idempotent enqueue, due rows, outcomes, dead letters, pruning.

use chrono::{DateTime, Utc};
use postgres::GenericClient;
use postgres::types::ToSql;

use crate::connect::model::ApiRequest;
use crate::store::error::PgOp;
use crate::store::postgres::{LEDGER_CHANNEL, PgStore};
use crate::store::{
    DeadLetter, Delivery, DeliveryId, LedgerEntry, RowUpdate, StoreError, clip, from_millis,
    kind_from_str, tags_from_text, tags_to_text, to_millis,
};

pub(super) const ENTRY_COLUMNS: &str = "id, route, destination, vault_id, vault_name, item_id, title, key, \
     version, kind, created_at, attempts, last_error, next_attempt_at, dead_at, category, tags";

/// The key of the transaction-scoped advisory lock that serialises the ledger's supersession
/// ("ledger" in ASCII). SQLite runs one writer at a time; here every transaction that inserts
/// ledger rows and supersedes older ones (or revives rows and supersedes them) takes this lock
/// first, so two of them never miss each other's uncommitted rows.
const LEDGER_LOCK: i64 = 0x6c_65_64_67_65_72;

/// Takes the ledger's supersession lock until the end of the caller's transaction.
pub(super) fn lock_ledger(tx: &mut impl GenericClient) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEDGER_LOCK])
        .op("lock the ledger")
        .map(drop)
}

/// A pending ledger row read with [`ENTRY_COLUMNS`].
pub(super) fn delivery_of(row: &postgres::Row) -> Result<Delivery, StoreError> {
    let kind: String = row.try_get(9).op("read a ledger row")?;
    let version: i64 = row.try_get(8).op("read a ledger row")?;
    let attempts: i64 = row.try_get(11).op("read a ledger row")?;
    Ok(Delivery {
        id: row.try_get(0).op("read a ledger row")?,
        entry: LedgerEntry {
            route: row.try_get(1).op("read a ledger row")?,
            destination: row.try_get(2).op("read a ledger row")?,
            vault_id: row.try_get(3).op("read a ledger row")?,
            vault_name: row.try_get(4).op("read a ledger row")?,
            item_id: row.try_get(5).op("read a ledger row")?,
            title: row.try_get(6).op("read a ledger row")?,
            key: row.try_get(7).op("read a ledger row")?,
            category: row.try_get(15).op("read a ledger row")?,
            tags: tags_from_text(&row.try_get::<_, String>(16).op("read a ledger row")?),
            version: version.max(0) as u64,
            kind: kind_from_str(&kind)?,
            detected_at: from_millis(row.try_get(10).op("read a ledger row")?),
        },
        attempts: attempts.clamp(0, u32::MAX as i64) as u32,
        last_error: row.try_get(12).op("read a ledger row")?,
        next_attempt_at: from_millis(row.try_get(13).op("read a ledger row")?),
    })
}

/// Inserts entries that are not there yet, and marks older pending rows of the same
/// (route, destination, item) superseded, inside the caller's transaction; returns how many
/// were new. As [`SqliteStore`](crate::store::SqliteStore)'s `enqueue_tx`: only the newest
/// change of an item is delivered, except the deletion of another destination key; entries
/// are inserted in (route, destination, item) order, an item's own entries in the order given.
/// Takes the ledger lock (see [`LEDGER_LOCK`]) for the rest of the transaction.
pub(super) fn enqueue_tx(
    tx: &mut impl GenericClient,
    changes: &[LedgerEntry],
) -> Result<u64, StoreError> {
    if changes.is_empty() {
        return Ok(0);
    }
    let mut changes: Vec<&LedgerEntry> = changes.iter().collect();
    changes.sort_by(|a, b| {
        (&a.route, &a.destination, &a.item_id).cmp(&(&b.route, &b.destination, &b.item_id))
    });
    lock_ledger(tx)?;
    // Two statements for the whole batch, in the entries' order (row ids follow it): the
    // inserts, then the supersession of older pending rows by each row that was new. Each row
    // supersedes only by its own id, item and key, so doing all of them at once is the same as
    // one after the other.
    let column = |f: fn(&LedgerEntry) -> String| changes.iter().map(|c| f(c)).collect::<Vec<_>>();
    let routes = column(|c| c.route.clone());
    let destinations = column(|c| c.destination.clone());
    let vault_ids = column(|c| c.vault_id.clone());
    let vault_names = column(|c| c.vault_name.clone());
    let item_ids = column(|c| c.item_id.clone());
    let titles = column(|c| c.title.clone());
    let keys = column(|c| c.key.clone());
    let kinds = column(|c| c.kind.as_str().to_owned());
    let categories = column(|c| c.category.clone());
    let tags = column(|c| tags_to_text(&c.tags));
    let versions: Vec<i64> = changes.iter().map(|c| c.version as i64).collect();
    let detected: Vec<i64> = changes.iter().map(|c| to_millis(c.detected_at)).collect();
    let inserted = tx
        .query(
            "INSERT INTO ledger (route, destination, vault_id, vault_name, item_id, \
             title, key, version, kind, next_attempt_at, created_at, category, tags) \
             SELECT route, destination, vault_id, vault_name, item_id, title, key, version, \
                    kind, detected, detected, category, tags \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::bigint[], $9::text[], $10::bigint[], \
                         $11::text[], $12::text[]) WITH ORDINALITY \
                  AS n (route, destination, vault_id, vault_name, item_id, title, key, \
                        version, kind, detected, category, tags, ord) \
             ORDER BY ord \
             ON CONFLICT DO NOTHING RETURNING id, route, destination, item_id, key",
            &[
                &routes,
                &destinations,
                &vault_ids,
                &vault_names,
                &item_ids,
                &titles,
                &keys,
                &versions,
                &kinds,
                &detected,
                &categories,
                &tags,
            ],
        )
        .op("enqueue")?;
    if inserted.is_empty() {
        return Ok(0);
    }
    // Every replica's workers wake when this commits (see `listen`).
    tx.execute("SELECT pg_notify($1, '')", &[&LEDGER_CHANNEL])
        .op("notify the replicas")?;
    let field = |i: usize| -> Vec<String> { inserted.iter().map(|r| r.get(i)).collect() };
    let ids: Vec<i64> = inserted.iter().map(|r| r.get(0)).collect();
    tx.execute(
        "UPDATE ledger SET status = 'superseded' WHERE id IN ( \
           SELECT l.id FROM ledger l \
             JOIN unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                  AS n (id, route, destination, item_id, key) \
               ON l.route = n.route AND l.destination = n.destination \
              AND l.item_id = n.item_id \
            WHERE l.status = 'pending' AND l.id < n.id \
              AND NOT (l.kind = 'deleted' AND l.key <> n.key) \
            ORDER BY l.id FOR UPDATE OF l)",
        &[&ids, &field(1), &field(2), &field(3), &field(4)],
    )
    .op("supersede older rows")?;
    Ok(inserted.len() as u64)
}

/// A [`RowUpdate`] owned, to hand to a worker.
pub(super) enum Update {
    Delivered {
        location: String,
        at: i64,
        fingerprint: Option<String>,
        own_event: Option<ApiRequest>,
    },
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    Dead {
        reason: String,
        at: i64,
        own_event: Option<ApiRequest>,
    },
}

impl Update {
    fn of(update: &RowUpdate<'_>) -> Update {
        match *update {
            RowUpdate::Delivered {
                location,
                at,
                fingerprint,
                own_event,
            } => Update::Delivered {
                location: clip(location).to_owned(),
                at: to_millis(at),
                fingerprint: fingerprint.map(str::to_owned),
                own_event: own_event.cloned(),
            },
            RowUpdate::Retry {
                error,
                next_attempt_at,
            } => Update::Retry {
                error: clip(error).to_owned(),
                next_attempt_at: to_millis(next_attempt_at),
            },
            RowUpdate::Dead {
                reason,
                at,
                own_event,
            } => Update::Dead {
                reason: clip(reason).to_owned(),
                at: to_millis(at),
                own_event: own_event.cloned(),
            },
        }
    }
}

/// Applies one update; returns the rows it changed (0 or 1).
pub(super) fn apply(
    tx: &mut impl GenericClient,
    id: DeliveryId,
    update: &Update,
) -> Result<u64, StoreError> {
    let (changed, own_event) = match update {
        Update::Delivered {
            location,
            at,
            fingerprint,
            own_event,
        } => {
            let changed = tx
                .execute(
                    "UPDATE ledger SET status = 'delivered', attempts = attempts + 1, \
                     delivered_at = $2, location = $3, last_error = NULL, \
                     claimed_by = NULL, claimed_until = NULL \
                     WHERE id = $1 AND status IN ('pending', 'superseded', 'delivered')",
                    &[&id, at, location],
                )
                .op("mark delivered")?;
            if changed > 0 {
                super::drift::delivered(tx, id, fingerprint.as_deref(), *at)?;
            }
            (changed, own_event.as_ref())
        }
        Update::Retry {
            error,
            next_attempt_at,
        } => (
            tx.execute(
                "UPDATE ledger SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3, \
                 claimed_by = NULL, claimed_until = NULL \
                 WHERE id = $1 AND status = 'pending'",
                &[&id, error, next_attempt_at],
            )
            .op("mark retry")?,
            None,
        ),
        Update::Dead {
            reason,
            at,
            own_event,
        } => (
            tx.execute(
                "UPDATE ledger SET status = 'dead', attempts = attempts + 1, last_error = $2, \
                 dead_at = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status IN ('pending', 'dead')",
                &[&id, reason, at],
            )
            .op("dead-letter")?,
            own_event.as_ref(),
        ),
    };
    if changed > 0
        && let Some(event) = own_event
    {
        super::audit::insert_records(tx, std::slice::from_ref(event), true)?;
    }
    Ok(changed)
}

/// `Ok` when the ledger has row `id`, else `NoSuchDelivery`.
pub(super) fn exists(tx: &mut impl GenericClient, id: DeliveryId) -> Result<(), StoreError> {
    let exists: bool = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM ledger WHERE id = $1)", &[&id])
        .op("look a delivery up")?
        .try_get(0)
        .op("look a delivery up")?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NoSuchDelivery(id))
    }
}

impl PgStore {
    /// Records changes to deliver. Idempotent: an entry already in the ledger (same route,
    /// destination, item, version and kind) is left as it is.
    pub fn enqueue(&self, changes: &[LedgerEntry]) -> Result<(), StoreError> {
        let changes = changes.to_vec();
        self.run(move |c| {
            let mut tx = c.transaction().op("begin enqueue")?;
            enqueue_tx(&mut tx, &changes)?;
            tx.commit().op("commit enqueue")
        })
    }

    /// Pending rows of `route` whose next attempt is due at `now`, oldest first.
    pub fn due(
        &self,
        route: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let route = route.to_owned();
        let now = to_millis(now);
        let limit = limit.min(i64::MAX as usize) as i64;
        self.run(move |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {ENTRY_COLUMNS} FROM ledger \
                         WHERE route = $1 AND status = 'pending' AND next_attempt_at <= $2 \
                         ORDER BY next_attempt_at, id LIMIT $3"
                    ),
                    &[&route, &now, &limit],
                )
                .op("read due rows")?;
            rows.iter().map(delivery_of).collect()
        })
    }

    /// The earliest next attempt of a pending row of `route`, to know how long to sleep; a
    /// claimed row's not before its claim runs out.
    pub fn next_due(&self, route: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let route = route.to_owned();
        self.run(move |c| {
            let ms: Option<i64> = c
                .query_one(
                    "SELECT MIN(CASE WHEN claimed_until > $2 \
                                     THEN GREATEST(next_attempt_at, claimed_until) \
                                     ELSE next_attempt_at END) FROM ledger \
                     WHERE route = $1 AND status = 'pending'",
                    &[&route, &to_millis(Utc::now())],
                )
                .op("read next due")?
                .try_get(0)
                .op("read next due")?;
            Ok(ms.map(from_millis))
        })
    }

    /// The destination took the change (also accepted for a row superseded while in flight);
    /// `own_event` commits with it. See `SqliteStore::mark_delivered`.
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

    /// An attempt failed and will be tried again at `next_attempt_at`; a row no longer pending
    /// is left alone.
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

    /// Gives a row up as a dead letter with `reason` (a superseded row stays superseded);
    /// `own_event` commits with it.
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

    /// Records the outcomes of several finished attempts in one transaction; the inner results
    /// say, in order, whether each row was there. See `SqliteStore::record_updates`.
    pub fn record_updates(
        &self,
        updates: &[(DeliveryId, RowUpdate<'_>)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let updates: Vec<(DeliveryId, Update)> =
            updates.iter().map(|(id, u)| (*id, Update::of(u))).collect();
        self.run(move |c| {
            let mut tx = c.transaction().op("begin ledger updates")?;
            let found = super::outcomes::apply_group(&mut tx, &updates)?;
            tx.commit().op("commit ledger updates")?;
            Ok(found)
        })
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
        let route = route.map(str::to_owned);
        self.run(move |c| {
            let rows = c
                .query(
                    &format!(
                        "SELECT {ENTRY_COLUMNS} FROM ledger \
                         WHERE status = 'dead' AND ($1::text IS NULL OR route = $1) \
                         AND ($2::bigint IS NULL OR id = $2) \
                         ORDER BY dead_at DESC NULLS LAST, id DESC"
                    ),
                    &[&route, &id],
                )
                .op("read dead letters")?;
            rows.iter()
                .map(|r| {
                    let dead_at: Option<i64> = r.try_get(14).op("read dead letter")?;
                    let d = delivery_of(r)?;
                    Ok(DeadLetter {
                        id: d.id,
                        entry: d.entry,
                        attempts: d.attempts,
                        reason: d.last_error.unwrap_or_default(),
                        dead_at: dead_at.map(from_millis).unwrap_or(d.next_attempt_at),
                    })
                })
                .collect()
        })
    }

    /// Puts dead letters (of one route, or one by id, or all) back to pending with a fresh
    /// retry budget; returns how many. One whose item has a newer row pending or delivered is
    /// marked superseded instead.
    pub fn retry_dead_letters(
        &self,
        route: Option<&str>,
        id: Option<DeliveryId>,
    ) -> Result<usize, StoreError> {
        let route = route.map(str::to_owned);
        self.run(move |c| {
            let mut tx = c.transaction().op("begin retry dead letters")?;
            lock_ledger(&mut tx)?;
            let now = to_millis(Utc::now());
            let params: [&(dyn ToSql + Sync); 3] = [&route, &id, &now];
            let n = tx
                .execute(
                    "UPDATE ledger SET status = 'pending', attempts = 0, next_attempt_at = $3, \
                     dead_at = NULL \
                     WHERE status = 'dead' AND ($1::text IS NULL OR route = $1) \
                     AND ($2::bigint IS NULL OR id = $2)",
                    &params,
                )
                .op("retry dead letters")?;
            tx.execute(
                "UPDATE ledger SET status = 'superseded' WHERE status = 'pending' AND EXISTS ( \
                   SELECT 1 FROM ledger AS newer WHERE newer.route = ledger.route \
                   AND newer.destination = ledger.destination AND newer.item_id = ledger.item_id \
                   AND newer.id > ledger.id AND newer.status IN ('pending', 'delivered') \
                   AND NOT (ledger.kind = 'deleted' AND newer.key <> ledger.key))",
                &[],
            )
            .op("supersede retried rows")?;
            tx.commit().op("commit retry dead letters")?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// Deletes delivered and superseded rows finished before `before`, keeping dead letters,
    /// every row newer than a dead letter of its item, and each route's latest delivered row;
    /// returns how many. See `SqliteStore::prune`.
    pub fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = to_millis(before);
        self.run(move |c| {
            let mut tx = c.transaction().op("begin prune")?;
            lock_ledger(&mut tx)?;
            let n = tx
                .execute(
                    "DELETE FROM ledger WHERE status IN ('delivered', 'superseded') \
                     AND COALESCE(delivered_at, created_at) < $1 \
                     AND id NOT IN (SELECT DISTINCT ON (route) id FROM ledger \
                                    WHERE status = 'delivered' \
                                    ORDER BY route, delivered_at DESC NULLS LAST, id DESC) \
                     AND NOT EXISTS (SELECT 1 FROM ledger AS dead WHERE dead.status = 'dead' \
                       AND dead.route = ledger.route AND dead.destination = ledger.destination \
                       AND dead.item_id = ledger.item_id AND dead.id < ledger.id)",
                    &[&before],
                )
                .op("prune the ledger")?;
            tx.commit().op("commit prune")?;
            Ok(n)
        })
    }
}
