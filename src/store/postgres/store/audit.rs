//! The audit outbox on PostgreSQL: the tail's high-water mark, appending records, batches for sinks, compaction.

use chrono::{DateTime, Utc};
use postgres::GenericClient;
use postgres::Statement;

use crate::connect::model::ApiRequest;
use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{
    ACTIVITY, LogOrder, OutboxRecord, StoreError, TailMark, from_millis, to_millis,
};

/// The key of the transaction-scoped advisory lock every transaction that adds to the outbox
/// holds from before its first insert until it ends ("opsync" in ASCII, then "ob" for outbox;
/// the migration lock is "opsync" alone).
///
/// A sink's cursor acknowledges "everything up to seq N". The outbox's seq comes from a
/// sequence, which hands out numbers when rows are inserted, not when they commit: without the
/// lock, a transaction could take seq 5, another take seq 6 and commit, a sink ship and
/// acknowledge 6, and seq 5 commit afterwards, never to be shipped. Under the lock, appends to the
/// outbox run one at a time from their first insert to their commit, so seq order is commit
/// order, as with SQLite's single connection.
const OUTBOX_LOCK: i64 = 0x6f_70_73_79_6e_63_6f_62;

/// Takes the outbox's append lock for the rest of the caller's transaction (see
/// [`OUTBOX_LOCK`]). Taking it again in the same transaction is harmless. A transaction that
/// also locks other rows should take it first, before those, so that two such transactions
/// cannot wait on each other.
pub(super) fn lock_outbox(tx: &mut impl GenericClient) -> Result<(), StoreError> {
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({OUTBOX_LOCK})"))
        .op("lock the audit outbox")
}

/// Adds a record unless its key is in the outbox. The `NOT EXISTS` keeps a record already there
/// from drawing a seq (SQLite's `INSERT OR IGNORE` draws none either); under the outbox lock no
/// other transaction can add the same key meanwhile, and `ON CONFLICT` covers any that did.
const INSERT_SQL: &str = "INSERT INTO audit_outbox \
     (request_id, at, own, record, added_at, source, detail, for_sink) \
     SELECT $1::text, $2::bigint, $3::bigint, $4::text, $5::bigint, $6::text, $7::text, $8::text \
     WHERE NOT EXISTS (SELECT 1 FROM audit_outbox WHERE request_id = $1::text) \
     ON CONFLICT (request_id) DO NOTHING";

/// Prepares [`INSERT_SQL`] for [`insert_prepared`].
pub(super) fn prepare_insert(tx: &mut impl GenericClient) -> Result<Statement, StoreError> {
    tx.prepare(INSERT_SQL).op("prepare audit insert")
}

/// [`insert_one`] with the statement prepared and the outbox lock already held.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_prepared(
    tx: &mut impl GenericClient,
    insert: &Statement,
    record: &ApiRequest,
    own: bool,
    source: &str,
    detail: Option<&str>,
    for_sink: Option<&str>,
    key: Option<&str>,
) -> Result<u64, StoreError> {
    let json = serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("audit record {}: {e}", record.request_id)))?;
    let key = key.unwrap_or(&record.request_id);
    tx.execute(
        insert,
        &[
            &key,
            &to_millis(record.timestamp),
            &i64::from(own),
            &json,
            &to_millis(Utc::now()),
            &source,
            &detail,
            &for_sink,
        ],
    )
    .op("insert audit record")
}

/// Reads `mark_at` as SQLite's port stored it.
fn parse_mark_at(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("audit_tail.mark_at {s:?}: {e}")))
}

fn parse_order(s: &str) -> Result<LogOrder, StoreError> {
    Ok(match s {
        "unknown" => LogOrder::Unknown,
        "newest_first" => LogOrder::NewestFirst,
        "oldest_first" => LogOrder::OldestFirst,
        other => {
            return Err(StoreError::Corrupt(format!(
                "audit_tail: unknown log order {other:?}"
            )));
        }
    })
}

impl PgStore {
    /// The tail's mark; the default (nothing read yet) on a new database. See
    /// [`SqliteStore::audit_mark`](crate::store::SqliteStore::audit_mark).
    pub fn audit_mark(&self) -> Result<TailMark, StoreError> {
        self.run(|c| {
            let row = c
                .query_opt(
                    "SELECT mark_at, mark_ids, total, log_order, polled_at FROM audit_tail \
                     WHERE id = 1",
                    &[],
                )
                .op("read the audit mark")?;
            let Some(row) = row else {
                return Ok(TailMark::default());
            };
            let at: Option<String> = row.get(0);
            let ids: String = row.get(1);
            let total: Option<i64> = row.get(2);
            let order: String = row.get(3);
            let polled_at: Option<i64> = row.get(4);
            let at = at.as_deref().map(parse_mark_at).transpose()?;
            let ids: Vec<String> = serde_json::from_str(&ids)
                .map_err(|e| StoreError::Corrupt(format!("audit_tail.mark_ids: {e}")))?;
            Ok(TailMark {
                at,
                ids,
                total: total.map(|t| t.max(0) as u64),
                order: parse_order(&order)?,
                polled_at: polled_at.map(from_millis),
            })
        })
    }

    /// Adds records to the outbox in the order given (oldest first), skipping request ids it
    /// already holds, and saves the tail's new mark in the same transaction. Returns how many
    /// records were new.
    pub fn audit_append(
        &self,
        records: &[ApiRequest],
        own: bool,
        mark: Option<&TailMark>,
    ) -> Result<u64, StoreError> {
        let records = records.to_vec();
        let mark = match mark {
            Some(mark) => {
                let ids = serde_json::to_string(&mark.ids)
                    .map_err(|e| StoreError::Corrupt(format!("audit mark ids: {e}")))?;
                Some((
                    mark.at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
                    ids,
                    mark.total.map(|t| t as i64),
                    mark.order.as_str(),
                    mark.polled_at.map(to_millis),
                ))
            }
            None => None,
        };
        self.run(move |c| {
            let mut tx = c.transaction().op("begin audit append")?;
            let added = insert_records(&mut tx, &records, own)?;
            if let Some((at, ids, total, order, polled_at)) = mark {
                tx.execute(
                    "INSERT INTO audit_tail (id, mark_at, mark_ids, total, log_order, polled_at) \
                     VALUES (1, $1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET mark_at = excluded.mark_at, \
                     mark_ids = excluded.mark_ids, total = excluded.total, \
                     log_order = excluded.log_order, polled_at = excluded.polled_at",
                    &[&at, &ids, &total, &order, &polled_at],
                )
                .op("save the audit mark")?;
            }
            tx.commit().op("commit audit append")?;
            Ok(added)
        })
    }

    /// The newest outbox seq (0 when empty).
    pub fn audit_head(&self) -> Result<i64, StoreError> {
        self.run(|c| {
            c.query_one("SELECT COALESCE(MAX(seq), 0) FROM audit_outbox", &[])
                .op("read the outbox head")
                .map(|r| r.get::<_, i64>(0))
        })
    }

    /// Up to `limit` records for `sink` after `after` (oldest first): every source's, replayed
    /// copies addressed to this sink, and opsync's own events only when `include_own`.
    pub fn audit_batch(
        &self,
        sink: &str,
        after: i64,
        limit: usize,
        include_own: bool,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let sink = sink.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT seq, own, record, source, detail FROM audit_outbox \
                     WHERE seq > $1 AND (own = 0 OR $2::boolean) \
                     AND (for_sink IS NULL OR for_sink = $4) \
                     ORDER BY seq LIMIT $3",
                    &[&after, &include_own, &limit, &sink],
                )
                .op("read audit batch")?;
            rows.iter()
                .map(|r| {
                    let seq: i64 = r.get(0);
                    let json: String = r.get(2);
                    serde_json::from_str(&json)
                        .map(|record| OutboxRecord {
                            seq,
                            own: r.get::<_, i64>(1) != 0,
                            source: r.get(3),
                            record,
                            detail: r.get(4),
                        })
                        .map_err(|e| StoreError::Corrupt(format!("audit_outbox seq {seq}: {e}")))
                })
                .collect()
        })
    }

    /// Deletes outbox records every one of `sinks` acknowledged and older than `before`.
    /// With no sinks, only the age counts. The cursors read are locked until the deletion
    /// commits, so a concurrent rewind cannot move one back over records being deleted.
    pub fn audit_compact(
        &self,
        sinks: &[String],
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sinks = sinks.to_vec();
        let before = to_millis(before);
        self.run(move |c| {
            let mut tx = c.transaction().op("begin audit compact")?;
            let rows = tx
                .query(
                    "SELECT sink, acked_seq FROM audit_sinks WHERE sink = ANY($1) \
                     ORDER BY sink FOR SHARE",
                    &[&sinks],
                )
                .op("read audit sink cursors")?;
            let mut floor = i64::MAX;
            for sink in &sinks {
                let acked = rows
                    .iter()
                    .find(|r| r.get::<_, &str>(0) == sink.as_str())
                    .map(|r| r.get::<_, i64>(1));
                floor = floor.min(acked.unwrap_or(0));
            }
            let n = tx
                .execute(
                    "DELETE FROM audit_outbox WHERE seq <= $1 AND at < $2",
                    &[&floor, &before],
                )
                .op("compact the audit outbox")?;
            tx.commit().op("commit audit compact")?;
            Ok(n)
        })
    }
}

/// Adds activity records to the outbox (once per request id) inside the caller's transaction,
/// holding the outbox lock from here to the transaction's end; returns how many were new.
pub(super) fn insert_records(
    tx: &mut impl postgres::GenericClient,
    records: &[ApiRequest],
    own: bool,
) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    lock_outbox(tx)?;
    let insert = prepare_insert(tx)?;
    let mut added = 0;
    for r in records {
        added += insert_prepared(tx, &insert, r, own, ACTIVITY, None, None, None)?;
    }
    Ok(added)
}

/// Adds one record to the outbox unless its request id (or `key`) is there; returns 1 if new.
/// Takes the outbox lock for the rest of the caller's transaction first.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_one(
    tx: &mut impl postgres::GenericClient,
    record: &ApiRequest,
    own: bool,
    source: &str,
    detail: Option<&str>,
    for_sink: Option<&str>,
    key: Option<&str>,
) -> Result<u64, StoreError> {
    lock_outbox(tx)?;
    let insert = prepare_insert(tx)?;
    insert_prepared(tx, &insert, record, own, source, detail, for_sink, key)
}
