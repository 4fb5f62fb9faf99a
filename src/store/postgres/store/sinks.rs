//! Audit sink cursors on PostgreSQL: acknowledgements, failures, dead records, lag, rewinds.

use chrono::{DateTime, Utc};
use postgres::Row;

use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{
    AuditDeadLetter, OutboxRecord, SinkCursor, SinkLag, SinkStart, StoreError, clip, from_millis,
    to_millis,
};

const CURSOR_COLUMNS: &str =
    "sink, acked_seq, acked_at, shipped, failures, last_error, last_error_at";

fn cursor_of(row: &Row) -> SinkCursor {
    let shipped: i64 = row.get(3);
    let failures: i64 = row.get(4);
    SinkCursor {
        sink: row.get(0),
        acked_seq: row.get(1),
        acked_at: row.get::<_, Option<i64>>(2).map(from_millis),
        shipped: shipped.max(0) as u64,
        failures: failures.max(0) as u64,
        last_error: row.get(5),
        last_error_at: row.get::<_, Option<i64>>(6).map(from_millis),
    }
}

impl PgStore {
    /// The sink's cursor, created at `start` when the sink is new.
    pub fn audit_sink(&self, sink: &str, start: SinkStart) -> Result<SinkCursor, StoreError> {
        let sink = sink.to_owned();
        self.run(move |c| {
            let first: i64 = match start {
                SinkStart::Beginning => 0,
                SinkStart::Now => c
                    .query_one("SELECT COALESCE(MAX(seq), 0) FROM audit_outbox", &[])
                    .op("read the outbox head")?
                    .get(0),
            };
            c.execute(
                "INSERT INTO audit_sinks (sink, acked_seq, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (sink) DO NOTHING",
                &[&sink, &first, &to_millis(Utc::now())],
            )
            .op("create an audit sink cursor")?;
            c.query_one(
                &format!("SELECT {CURSOR_COLUMNS} FROM audit_sinks WHERE sink = $1"),
                &[&sink],
            )
            .op("read an audit sink cursor")
            .map(|r| cursor_of(&r))
        })
    }

    /// Every sink cursor in the database, by name.
    pub fn audit_sinks(&self) -> Result<Vec<SinkCursor>, StoreError> {
        self.run(|c| {
            let rows = c
                .query(
                    &format!("SELECT {CURSOR_COLUMNS} FROM audit_sinks ORDER BY sink"),
                    &[],
                )
                .op("list audit sinks")?;
            Ok(rows.iter().map(cursor_of).collect())
        })
    }

    /// Moves the sink's cursor from `from` to `to` after it acknowledged `count` records.
    /// Returns false (and moves nothing) when the cursor is no longer at `from`: an
    /// `opsync audit replay` moved it meanwhile. One conditional UPDATE: PostgreSQL checks
    /// `acked_seq = from` again on the row it locks, so the compare-and-set holds across
    /// connections.
    pub fn audit_ack(
        &self,
        sink: &str,
        from: i64,
        to: i64,
        count: u64,
    ) -> Result<bool, StoreError> {
        let sink = sink.to_owned();
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE audit_sinks SET acked_seq = $3, acked_at = $4, \
                     shipped = shipped + $5, failures = 0 \
                     WHERE sink = $1 AND acked_seq = $2",
                    &[&sink, &from, &to, &to_millis(Utc::now()), &count],
                )
                .op("advance an audit cursor")?;
            Ok(n == 1)
        })
    }

    /// Records a failed attempt (the cursor stays).
    pub fn audit_sink_failed(&self, sink: &str, error: &str) -> Result<(), StoreError> {
        let sink = sink.to_owned();
        let error = clip(error).to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE audit_sinks SET failures = failures + 1, last_error = $2, \
                 last_error_at = $3 WHERE sink = $1",
                &[&sink, &error, &to_millis(Utc::now())],
            )
            .op("record an audit sink failure")
            .map(drop)
        })
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
        let sink = sink.to_owned();
        let seq = record.seq;
        let request_id = record.record.request_id.clone();
        let reason = clip(reason).to_owned();
        self.run(move |c| {
            let mut tx = c.transaction().op("begin audit dead letter")?;
            let now = to_millis(Utc::now());
            let moved = tx
                .execute(
                    "UPDATE audit_sinks SET acked_seq = $3, acked_at = $4, failures = 0, \
                     last_error = $5, last_error_at = $4 WHERE sink = $1 AND acked_seq = $2",
                    &[&sink, &from, &seq, &now, &reason],
                )
                .op("advance an audit cursor past a dead letter")?;
            if moved == 1 {
                tx.execute(
                    "INSERT INTO audit_dead (sink, seq, request_id, reason, dead_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&sink, &seq, &request_id, &reason, &now],
                )
                .op("keep an audit dead letter")?;
            }
            tx.commit().op("commit audit dead letter")?;
            Ok(moved == 1)
        })
    }

    /// The records `sink` refused, newest first.
    pub fn audit_dead_letters(&self, sink: &str) -> Result<Vec<AuditDeadLetter>, StoreError> {
        let sink = sink.to_owned();
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT sink, seq, request_id, reason, dead_at FROM audit_dead \
                     WHERE sink = $1 ORDER BY id DESC",
                    &[&sink],
                )
                .op("list audit dead letters")?;
            Ok(rows
                .iter()
                .map(|r| AuditDeadLetter {
                    sink: r.get(0),
                    seq: r.get(1),
                    request_id: r.get(2),
                    reason: r.get(3),
                    dead_at: from_millis(r.get(4)),
                })
                .collect())
        })
    }

    /// The sink's cursor with its lag, read from one snapshot (a read-only repeatable-read
    /// transaction), as SQLite's one connection reads it.
    pub fn audit_lag(&self, sink: &str, include_own: bool) -> Result<Option<SinkLag>, StoreError> {
        let sink = sink.to_owned();
        self.run(move |c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .op("begin audit lag")?;
            let cursor = tx
                .query_opt(
                    &format!("SELECT {CURSOR_COLUMNS} FROM audit_sinks WHERE sink = $1"),
                    &[&sink],
                )
                .op("read an audit sink cursor")?
                .map(|r| cursor_of(&r));
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let rows = tx
                .query(
                    "SELECT source, COUNT(*), MIN(at) FROM audit_outbox \
                     WHERE seq > $1 AND (own = 0 OR $2::boolean) \
                     AND (for_sink IS NULL OR for_sink = $3) \
                     GROUP BY source ORDER BY source",
                    &[&cursor.acked_seq, &include_own, &sink],
                )
                .op("count pending audit records")?;
            let by_source: Vec<(String, u64, Option<i64>)> = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1).max(0) as u64,
                        r.get::<_, Option<i64>>(2),
                    )
                })
                .collect();
            let pending: u64 = by_source.iter().map(|(_, n, _)| n).sum();
            let oldest = by_source.iter().filter_map(|(_, _, at)| *at).min();
            let dead: i64 = tx
                .query_one("SELECT COUNT(*) FROM audit_dead WHERE sink = $1", &[&sink])
                .op("count audit dead letters")?
                .get(0);
            tx.commit().op("end audit lag")?;
            Ok(Some(SinkLag {
                cursor,
                pending,
                oldest_pending: oldest.map(from_millis),
                dead: dead.max(0) as u64,
                by_source: by_source.into_iter().map(|(s, n, _)| (s, n)).collect(),
            }))
        })
    }

    /// Moves the cursor of each of `sinks` back so that every record still in the outbox with a
    /// timestamp at or after `since` is shipped again. A cursor already before that point
    /// stays. Returns (sink, old cursor, new cursor) for each sink. Each cursor is read
    /// `FOR UPDATE`, so an acknowledgement cannot land between its read and its rewind.
    pub fn audit_rewind(
        &self,
        sinks: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let sinks = sinks.to_vec();
        let since = to_millis(since);
        self.run(move |c| {
            let mut tx = c.transaction().op("begin audit rewind")?;
            let first: Option<i64> = tx
                .query_one(
                    "SELECT MIN(seq) FROM audit_outbox WHERE at >= $1",
                    &[&since],
                )
                .op("find the first record to replay")?
                .get(0);
            let read = tx
                .prepare("SELECT acked_seq FROM audit_sinks WHERE sink = $1 FOR UPDATE")
                .op("prepare audit rewind")?;
            let update = tx
                .prepare("UPDATE audit_sinks SET acked_seq = $2 WHERE sink = $1")
                .op("prepare audit rewind")?;
            let mut out = Vec::new();
            for sink in &sinks {
                let old: Option<i64> = tx
                    .query_opt(&read, &[sink])
                    .op("read an audit sink cursor")?
                    .map(|r| r.get(0));
                let Some(old) = old else {
                    return Err(StoreError::NoSuchAuditSink(sink.clone()));
                };
                let new = match first {
                    Some(first) => old.min(first - 1),
                    None => old,
                };
                tx.execute(&update, &[sink, &new])
                    .op("rewind an audit cursor")?;
                out.push((sink.clone(), old, new));
            }
            tx.commit().op("commit audit rewind")?;
            Ok(out)
        })
    }
}
