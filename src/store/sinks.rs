//! The audit sinks' tables: one cursor per sink (moved only on acknowledgement, rewound by a
//! replay), its failures and lag, and the records it refused.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

use crate::store::audit::OutboxRecord;
use crate::store::error::{SqlContext, StoreError};
use crate::store::{SqliteStore, clip, from_millis, to_millis};

/// Where a new sink's cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkStart {
    /// At the oldest record still in the outbox.
    Beginning,
    /// After the newest record in the outbox: only what arrives from now on.
    Now,
}

/// Where one sink stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkCursor {
    pub sink: String,
    /// The last outbox seq the sink acknowledged.
    pub acked_seq: i64,
    pub acked_at: Option<DateTime<Utc>>,
    /// Records acknowledged since the sink was created.
    pub shipped: u64,
    /// Failed attempts since the last acknowledgement.
    pub failures: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A sink's cursor with its lag, for `opsync audit status` and the gauges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkLag {
    pub cursor: SinkCursor,
    /// Records after the cursor that this sink ships.
    pub pending: u64,
    /// Timestamp of the oldest of them.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Records this sink refused permanently.
    pub dead: u64,
    /// `pending` by source (`activity`, `auditevents`, ...), the sources with none left out.
    pub by_source: Vec<(String, u64)>,
}

/// A record a sink refused permanently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDeadLetter {
    pub sink: String,
    pub seq: i64,
    pub request_id: String,
    pub reason: String,
    pub dead_at: DateTime<Utc>,
}

/// The sink's acknowledged seq, or `None` when it has no cursor yet.
pub(super) fn acked_seq(
    conn: &rusqlite::Connection,
    sink: &str,
) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        "SELECT acked_seq FROM audit_sinks WHERE sink = ?1",
        [sink],
        |r| r.get(0),
    )
    .optional()
    .op("read an audit sink cursor")
}

fn cursor_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<SinkCursor> {
    let shipped: i64 = row.get(3)?;
    let failures: i64 = row.get(4)?;
    Ok(SinkCursor {
        sink: row.get(0)?,
        acked_seq: row.get(1)?,
        acked_at: row.get::<_, Option<i64>>(2)?.map(from_millis),
        shipped: shipped.max(0) as u64,
        failures: failures.max(0) as u64,
        last_error: row.get(5)?,
        last_error_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
    })
}

const CURSOR_COLUMNS: &str =
    "sink, acked_seq, acked_at, shipped, failures, last_error, last_error_at";

impl SqliteStore {
    /// The sink's cursor, created at `start` when the sink is new.
    pub fn audit_sink(&self, sink: &str, start: SinkStart) -> Result<SinkCursor, StoreError> {
        let conn = self.conn();
        let first = match start {
            SinkStart::Beginning => 0,
            SinkStart::Now => conn
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_outbox", [], |r| {
                    r.get::<_, i64>(0)
                })
                .op("read the outbox head")?,
        };
        conn.execute(
            "INSERT OR IGNORE INTO audit_sinks (sink, acked_seq, created_at) VALUES (?1, ?2, ?3)",
            params![sink, first, to_millis(Utc::now())],
        )
        .op("create an audit sink cursor")?;
        conn.query_row(
            &format!("SELECT {CURSOR_COLUMNS} FROM audit_sinks WHERE sink = ?1"),
            [sink],
            cursor_of,
        )
        .op("read an audit sink cursor")
    }

    /// Every sink cursor in the database, by name.
    pub fn audit_sinks(&self) -> Result<Vec<SinkCursor>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {CURSOR_COLUMNS} FROM audit_sinks ORDER BY sink"
            ))
            .op("prepare audit sinks")?;
        let rows = stmt
            .query_map([], cursor_of)
            .op("list audit sinks")?
            .collect::<Result<Vec<_>, _>>()
            .op("read audit sinks")?;
        Ok(rows)
    }

    /// Moves the sink's cursor from `from` to `to` after it acknowledged `count` records.
    /// Returns false (and moves nothing) when the cursor is no longer at `from`: an
    /// `opsync audit replay` moved it meanwhile.
    pub fn audit_ack(
        &self,
        sink: &str,
        from: i64,
        to: i64,
        count: u64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE audit_sinks SET acked_seq = ?3, acked_at = ?4, \
                 shipped = shipped + ?5, failures = 0 \
                 WHERE sink = ?1 AND acked_seq = ?2",
                params![sink, from, to, to_millis(Utc::now()), count as i64],
            )
            .op("advance an audit cursor")?;
        Ok(n == 1)
    }

    /// Records a failed attempt (the cursor stays).
    pub fn audit_sink_failed(&self, sink: &str, error: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE audit_sinks SET failures = failures + 1, last_error = ?2, \
                 last_error_at = ?3 WHERE sink = ?1",
                params![sink, clip(error), to_millis(Utc::now())],
            )
            .op("record an audit sink failure")
            .map(drop)
    }

    /// Keeps a record the sink refused permanently and moves the cursor past it (from `from`
    /// to its seq), in one transaction. False when the cursor moved meanwhile.
    pub fn audit_dead_letter(
        &self,
        sink: &str,
        from: i64,
        record: &OutboxRecord,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin audit dead letter")?;
        let now = to_millis(Utc::now());
        let moved = tx
            .execute(
                "UPDATE audit_sinks SET acked_seq = ?3, acked_at = ?4, failures = 0, \
                 last_error = ?5, last_error_at = ?4 WHERE sink = ?1 AND acked_seq = ?2",
                params![sink, from, record.seq, now, clip(reason)],
            )
            .op("advance an audit cursor past a dead letter")?;
        if moved == 1 {
            tx.execute(
                "INSERT INTO audit_dead (sink, seq, request_id, reason, dead_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    sink,
                    record.seq,
                    record.record.request_id,
                    clip(reason),
                    now
                ],
            )
            .op("keep an audit dead letter")?;
        }
        tx.commit().op("commit audit dead letter")?;
        Ok(moved == 1)
    }

    /// The records `sink` refused, newest first.
    pub fn audit_dead_letters(&self, sink: &str) -> Result<Vec<AuditDeadLetter>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT sink, seq, request_id, reason, dead_at FROM audit_dead \
                 WHERE sink = ?1 ORDER BY id DESC",
            )
            .op("prepare audit dead letters")?;
        let rows = stmt
            .query_map([sink], |r| {
                Ok(AuditDeadLetter {
                    sink: r.get(0)?,
                    seq: r.get(1)?,
                    request_id: r.get(2)?,
                    reason: r.get(3)?,
                    dead_at: from_millis(r.get(4)?),
                })
            })
            .op("list audit dead letters")?
            .collect::<Result<Vec<_>, _>>()
            .op("read audit dead letters")?;
        Ok(rows)
    }

    /// The sink's cursor with its lag.
    pub fn audit_lag(&self, sink: &str, include_own: bool) -> Result<Option<SinkLag>, StoreError> {
        let conn = self.conn();
        let cursor = conn
            .query_row(
                &format!("SELECT {CURSOR_COLUMNS} FROM audit_sinks WHERE sink = ?1"),
                [sink],
                cursor_of,
            )
            .optional()
            .op("read an audit sink cursor")?;
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT source, COUNT(*), MIN(at) FROM audit_outbox \
                 WHERE seq > ?1 AND (own = 0 OR ?2) AND (for_sink IS NULL OR for_sink = ?3) \
                 GROUP BY source ORDER BY source",
            )
            .op("prepare pending audit records")?;
        let by_source = stmt
            .query_map(params![cursor.acked_seq, include_own, sink], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?.max(0) as u64,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .op("count pending audit records")?
            .collect::<Result<Vec<_>, _>>()
            .op("count pending audit records")?;
        drop(stmt);
        let pending: u64 = by_source.iter().map(|(_, n, _)| n).sum();
        let oldest = by_source.iter().filter_map(|(_, _, at)| *at).min();
        let dead: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit_dead WHERE sink = ?1",
                [sink],
                |r| r.get(0),
            )
            .op("count audit dead letters")?;
        Ok(Some(SinkLag {
            cursor,
            pending,
            oldest_pending: oldest.map(from_millis),
            dead: dead.max(0) as u64,
            by_source: by_source.into_iter().map(|(s, n, _)| (s, n)).collect(),
        }))
    }

    /// Moves the cursor of each of `sinks` back so that every record still in the outbox with a
    /// timestamp at or after `since` is shipped again. A cursor already before that point
    /// stays. Returns (sink, old cursor, new cursor) for each sink.
    pub fn audit_rewind(
        &self,
        sinks: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin audit rewind")?;
        let first: Option<i64> = tx
            .query_row(
                "SELECT MIN(seq) FROM audit_outbox WHERE at >= ?1",
                [to_millis(since)],
                |r| r.get(0),
            )
            .op("find the first record to replay")?;
        let mut out = Vec::new();
        for sink in sinks {
            let old = acked_seq(&tx, sink)?;
            let Some(old) = old else {
                return Err(StoreError::NoSuchAuditSink(sink.clone()));
            };
            let new = match first {
                Some(first) => old.min(first - 1),
                None => old,
            };
            tx.execute(
                "UPDATE audit_sinks SET acked_seq = ?2 WHERE sink = ?1",
                params![sink, new],
            )
            .op("rewind an audit cursor")?;
            out.push((sink.clone(), old, new));
        }
        tx.commit().op("commit audit rewind")?;
        Ok(out)
    }
}
