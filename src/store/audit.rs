//! The audit export's outbox: audit records of every source (deduplicated by request id) in the
//! order they were added, the tail's high-water mark, and compaction of what every sink
//! acknowledged.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::connect::model::ApiRequest;
use crate::store::error::{SqlContext, StoreError};
use crate::store::sinks::acked_seq;
use crate::store::{SqliteStore, from_millis, to_millis};

/// The order `/v1/activity` lists records in, as the tail detected it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogOrder {
    /// Not seen yet (every record read so far had the same timestamp).
    #[default]
    Unknown,
    /// Offset 0 is the newest record.
    NewestFirst,
    /// Offset 0 is the oldest record.
    OldestFirst,
}

impl LogOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            LogOrder::Unknown => "unknown",
            LogOrder::NewestFirst => "newest_first",
            LogOrder::OldestFirst => "oldest_first",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
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
}

/// The tail's high-water mark and what it knows about the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TailMark {
    /// The newest record timestamp read so far.
    pub at: Option<DateTime<Utc>>,
    /// The request ids read at exactly `at`.
    pub ids: Vec<String>,
    /// The last `Content-Range` total.
    pub total: Option<u64>,
    pub order: LogOrder,
    pub polled_at: Option<DateTime<Utc>>,
}

/// The `source` of Connect's activity records and opsync's own events.
pub const ACTIVITY: &str = "activity";

/// One record of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    pub seq: i64,
    /// One of opsync's own events (request id `opsync-...`).
    pub own: bool,
    /// The log it comes from: [`ACTIVITY`] or an Events API stream (`auditevents`, ...).
    pub source: String,
    /// The common fields every sink gets (for an Events API record, as the source mapped them).
    pub record: ApiRequest,
    /// An Events API record as the API returned it (JSON); `None` for activity.
    pub detail: Option<String>,
}

/// A record on its way into the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecord {
    /// The common fields; `record.request_id` is the record's own id.
    pub record: ApiRequest,
    pub source: String,
    pub detail: Option<String>,
}

impl SqliteStore {
    /// The tail's mark; the default (nothing read yet) on a new database.
    pub fn audit_mark(&self) -> Result<TailMark, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT mark_at, mark_ids, total, log_order, polled_at FROM audit_tail WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .optional()
            .op("read the audit mark")?;
        let Some((at, ids, total, order, polled_at)) = row else {
            return Ok(TailMark::default());
        };
        let at = at
            .map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| StoreError::Corrupt(format!("audit_tail.mark_at {s:?}: {e}")))
            })
            .transpose()?;
        let ids: Vec<String> = serde_json::from_str(&ids)
            .map_err(|e| StoreError::Corrupt(format!("audit_tail.mark_ids: {e}")))?;
        Ok(TailMark {
            at,
            ids,
            total: total.map(|t| t.max(0) as u64),
            order: LogOrder::parse(&order)?,
            polled_at: polled_at.map(from_millis),
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
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin audit append")?;
        let added = insert_records(&tx, records, own)?;
        if let Some(mark) = mark {
            let ids = serde_json::to_string(&mark.ids)
                .map_err(|e| StoreError::Corrupt(format!("audit mark ids: {e}")))?;
            tx.execute(
                "INSERT INTO audit_tail (id, mark_at, mark_ids, total, log_order, polled_at) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (id) DO UPDATE SET mark_at = excluded.mark_at, \
                 mark_ids = excluded.mark_ids, total = excluded.total, \
                 log_order = excluded.log_order, polled_at = excluded.polled_at",
                params![
                    mark.at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
                    ids,
                    mark.total.map(|t| t as i64),
                    mark.order.as_str(),
                    mark.polled_at.map(to_millis),
                ],
            )
            .op("save the audit mark")?;
        }
        tx.commit().op("commit audit append")?;
        Ok(added)
    }

    /// The newest outbox seq (0 when empty).
    pub fn audit_head(&self) -> Result<i64, StoreError> {
        self.conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_outbox", [], |r| {
                r.get(0)
            })
            .op("read the outbox head")
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
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, own, record, source, detail FROM audit_outbox \
                 WHERE seq > ?1 AND (own = 0 OR ?2) AND (for_sink IS NULL OR for_sink = ?4) \
                 ORDER BY seq LIMIT ?3",
            )
            .op("prepare audit batch")?;
        let rows = stmt
            .query_map(params![after, include_own, limit as i64, sink], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .op("read audit batch")?
            .collect::<Result<Vec<_>, _>>()
            .op("read audit batch")?;
        drop(stmt);
        drop(conn);
        rows.into_iter()
            .map(|(seq, own, json, source, detail)| {
                serde_json::from_str(&json)
                    .map(|record| OutboxRecord {
                        seq,
                        own,
                        source,
                        record,
                        detail,
                    })
                    .map_err(|e| StoreError::Corrupt(format!("audit_outbox seq {seq}: {e}")))
            })
            .collect()
    }

    /// Deletes outbox records every one of `sinks` acknowledged and older than `before`.
    /// With no sinks, only the age counts.
    pub fn audit_compact(
        &self,
        sinks: &[String],
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut floor = i64::MAX;
        for sink in sinks {
            let acked = acked_seq(&conn, sink)?;
            floor = floor.min(acked.unwrap_or(0));
        }
        let n = conn
            .execute(
                "DELETE FROM audit_outbox WHERE seq <= ?1 AND at < ?2",
                params![floor, to_millis(before)],
            )
            .op("compact the audit outbox")?;
        Ok(n as u64)
    }
}

/// Adds `records` to the outbox (skipping request ids it already holds) inside the caller's
/// transaction; how many were new. Shared by the tail's appends and by ledger updates that carry
/// an own event, so the event and the state change it reports commit together.
pub(crate) fn insert_records(
    conn: &Connection,
    records: &[ApiRequest],
    own: bool,
) -> Result<u64, StoreError> {
    let mut added = 0;
    for r in records {
        added += insert_one(conn, r, own, ACTIVITY, None, None, None)?;
    }
    Ok(added)
}

/// Adds one record to the outbox (1) unless its key (`key`, else its request id) is there (0).
pub(crate) fn insert_one(
    conn: &Connection,
    record: &ApiRequest,
    own: bool,
    source: &str,
    detail: Option<&str>,
    for_sink: Option<&str>,
    key: Option<&str>,
) -> Result<u64, StoreError> {
    let json = serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("audit record {}: {e}", record.request_id)))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO audit_outbox \
             (request_id, at, own, record, added_at, source, detail, for_sink) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .op("prepare audit insert")?;
    let n = insert
        .execute(params![
            key.unwrap_or(&record.request_id),
            to_millis(record.timestamp),
            own,
            json,
            to_millis(Utc::now()),
            source,
            detail,
            for_sink,
        ])
        .op("insert audit record")?;
    Ok(n as u64)
}
