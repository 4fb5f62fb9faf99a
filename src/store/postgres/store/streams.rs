//! Events API stream cursors and replays on PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::audit::{insert_one, insert_prepared, prepare_insert};
use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{NewRecord, Replay, StoreError, StreamMark, clip, from_millis, to_millis};

const REPLAY_COLUMNS: &str =
    "id, stream, sink, start_time, end_time, cursor, added, asked_at, done_at, error";

fn replay_of(r: &Row) -> Replay {
    Replay {
        id: r.get(0),
        stream: r.get(1),
        sink: r.get(2),
        start_time: from_millis(r.get(3)),
        end_time: from_millis(r.get(4)),
        cursor: r.get(5),
        added: r.get::<_, i64>(6).max(0) as u64,
        asked_at: from_millis(r.get(7)),
        done_at: r.get::<_, Option<i64>>(8).map(from_millis),
        error: r.get(9),
    }
}

/// The outbox key of an Events API record: its time (milliseconds, zero-padded) before its id,
/// as SQLite's port makes it (the same record read again has the same key).
fn stream_key(r: &NewRecord) -> String {
    format!(
        "{:013}:{}",
        to_millis(r.record.timestamp).max(0),
        r.record.request_id
    )
}

/// Adds `records` to the outbox inside the caller's transaction, each under its key (made by
/// `key`) and addressed to `for_sink`; how many were new. Holds the outbox lock to the
/// transaction's end (see `audit::OUTBOX_LOCK`).
fn insert_page(
    tx: &mut impl postgres::GenericClient,
    records: &[NewRecord],
    for_sink: Option<&str>,
    key: impl Fn(&NewRecord) -> String,
) -> Result<u64, StoreError> {
    let Some((first, rest)) = records.split_first() else {
        return Ok(0);
    };
    // The first record's insert takes the outbox lock; the rest share one prepared statement
    // under it.
    let mut added = insert_one(
        tx,
        &first.record,
        false,
        &first.source,
        first.detail.as_deref(),
        for_sink,
        Some(&key(first)),
    )?;
    if rest.is_empty() {
        return Ok(added);
    }
    let insert = prepare_insert(tx)?;
    for r in rest {
        added += insert_prepared(
            tx,
            &insert,
            &r.record,
            false,
            &r.source,
            r.detail.as_deref(),
            for_sink,
            Some(&key(r)),
        )?;
    }
    Ok(added)
}

impl PgStore {
    /// The stream's mark, `None` before its first read.
    pub fn audit_stream(&self, stream: &str) -> Result<Option<StreamMark>, StoreError> {
        let stream = stream.to_owned();
        self.run(move |c| {
            let row = c
                .query_opt(
                    "SELECT stream, cursor, read, newest_at, polled_at FROM audit_streams \
                     WHERE stream = $1",
                    &[&stream],
                )
                .op("read an audit stream's cursor")?;
            Ok(row.map(|r| StreamMark {
                stream: r.get(0),
                cursor: r.get(1),
                read: r.get::<_, i64>(2).max(0) as u64,
                newest_at: r.get::<_, Option<i64>>(3).map(from_millis),
                polled_at: from_millis(r.get(4)),
            }))
        })
    }

    /// Adds one page of a stream to the outbox and saves the cursor that follows it, in one
    /// transaction: a crash leaves both or neither. Returns how many records were new.
    pub fn audit_append_stream(
        &self,
        stream: &str,
        records: &[NewRecord],
        cursor: &str,
    ) -> Result<u64, StoreError> {
        let stream = stream.to_owned();
        let records = records.to_vec();
        let cursor = cursor.to_owned();
        self.run(move |c| {
            let mut tx = c.transaction().op("begin stream append")?;
            let added = insert_page(&mut tx, &records, None, stream_key)?;
            let newest = records.iter().map(|r| to_millis(r.record.timestamp)).max();
            let read = i64::try_from(records.len()).unwrap_or(i64::MAX);
            tx.execute(
                "INSERT INTO audit_streams (stream, cursor, read, newest_at, polled_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, \
                 read = audit_streams.read + excluded.read, \
                 newest_at = GREATEST(COALESCE(audit_streams.newest_at, 0), \
                 COALESCE(excluded.newest_at, 0)), \
                 polled_at = excluded.polled_at",
                &[&stream, &cursor, &read, &newest, &to_millis(Utc::now())],
            )
            .op("save an audit stream's cursor")?;
            tx.commit().op("commit stream append")?;
            Ok(added)
        })
    }

    /// Asks for `stream`'s records from `start` to `end` to be read again and shipped to each
    /// of `sinks`; returns the replays' ids.
    pub fn audit_replay_ask(
        &self,
        stream: &str,
        sinks: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let stream = stream.to_owned();
        let sinks = sinks.to_vec();
        let (start, end) = (to_millis(start), to_millis(end));
        self.run(move |c| {
            let mut tx = c.transaction().op("begin replay request")?;
            let insert = tx
                .prepare(
                    "INSERT INTO audit_replays (stream, sink, start_time, end_time, asked_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .op("prepare a replay request")?;
            let now = to_millis(Utc::now());
            let mut ids = Vec::with_capacity(sinks.len());
            for sink in &sinks {
                let id: i64 = tx
                    .query_one(&insert, &[&stream, sink, &start, &end, &now])
                    .op("ask for a replay")?
                    .get(0);
                ids.push(id);
            }
            tx.commit().op("commit replay request")?;
            Ok(ids)
        })
    }

    /// Replays not finished yet, oldest first.
    pub fn audit_replays_open(&self) -> Result<Vec<Replay>, StoreError> {
        self.audit_replays_where("WHERE done_at IS NULL ORDER BY id")
    }

    /// Every replay, newest first.
    pub fn audit_replays(&self) -> Result<Vec<Replay>, StoreError> {
        self.audit_replays_where("ORDER BY id DESC")
    }

    fn audit_replays_where(&self, filter: &'static str) -> Result<Vec<Replay>, StoreError> {
        self.run(move |c| {
            let rows = c
                .query(
                    &format!("SELECT {REPLAY_COLUMNS} FROM audit_replays {filter}"),
                    &[],
                )
                .op("list audit replays")?;
            Ok(rows.iter().map(replay_of).collect())
        })
    }

    /// Adds one page of a replay to the outbox as copies addressed to its sink and saves the
    /// cursor that follows it (and whether it is done), in one transaction.
    pub fn audit_replay_page(
        &self,
        id: i64,
        sink: &str,
        records: &[NewRecord],
        cursor: &str,
        done: bool,
    ) -> Result<u64, StoreError> {
        let sink = sink.to_owned();
        let records = records.to_vec();
        let cursor = cursor.to_owned();
        self.run(move |c| {
            let mut tx = c.transaction().op("begin replay page")?;
            // The copy's outbox key differs from the original's; the record keeps its own id,
            // so an idempotent sink overwrites what it already holds.
            let added = insert_page(&mut tx, &records, Some(&sink), |r| {
                format!("{}#replay-{id}", stream_key(r))
            })?;
            let now = to_millis(Utc::now());
            let added_i = i64::try_from(added).unwrap_or(i64::MAX);
            tx.execute(
                "UPDATE audit_replays SET cursor = $2, added = added + $3, \
                 done_at = CASE WHEN $4::boolean THEN $5::bigint ELSE NULL END, error = NULL \
                 WHERE id = $1",
                &[&id, &cursor, &added_i, &done, &now],
            )
            .op("save a replay's progress")?;
            tx.commit().op("commit replay page")?;
            Ok(added)
        })
    }

    /// Ends a replay that cannot go on (its stream is not read any more), with the reason.
    pub fn audit_replay_failed(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        let reason = clip(reason).to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE audit_replays SET done_at = $2, error = $3 WHERE id = $1",
                &[&id, &to_millis(Utc::now()), &reason],
            )
            .op("end a replay")
            .map(drop)
        })
    }
}
