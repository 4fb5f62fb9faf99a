//! The Events API source's tables: one cursor per stream, saved in the transaction that adds
//! the records read with it, and the replays `opsync audit replay --stream` asks for.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

use crate::store::audit::{NewRecord, insert_one};
use crate::store::error::{SqlContext, StoreError};
use crate::store::{SqliteStore, clip, from_millis, to_millis};

/// Where one Events API stream stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMark {
    pub stream: String,
    /// The API's cursor after the last page read (opaque).
    pub cursor: String,
    /// Records read since the stream started.
    pub read: u64,
    /// Timestamp of the newest record read.
    pub newest_at: Option<DateTime<Utc>>,
    pub polled_at: DateTime<Utc>,
}

/// A replay of a time window of one stream to one sink, as asked and as far as it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    pub id: i64,
    pub stream: String,
    pub sink: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// The API's cursor after the last page read; `None` before the first.
    pub cursor: Option<String>,
    /// Records added to the outbox for the sink so far.
    pub added: u64,
    pub asked_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

const REPLAY_COLUMNS: &str =
    "id, stream, sink, start_time, end_time, cursor, added, asked_at, done_at, error";

fn replay_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Replay> {
    Ok(Replay {
        id: r.get(0)?,
        stream: r.get(1)?,
        sink: r.get(2)?,
        start_time: from_millis(r.get(3)?),
        end_time: from_millis(r.get(4)?),
        cursor: r.get(5)?,
        added: r.get::<_, i64>(6)?.max(0) as u64,
        asked_at: from_millis(r.get(7)?),
        done_at: r.get::<_, Option<i64>>(8)?.map(from_millis),
        error: r.get(9)?,
    })
}

/// The outbox key of an Events API record: its time (milliseconds, zero-padded) before its id.
/// Keys in time order put a page's inserts into the key's unique index in a few places, where
/// random ids alone touched a leaf page per record, so that each page's transaction rewrote
/// most of the index. The same record read again has the same key, so it is still stored once.
fn stream_key(r: &NewRecord) -> String {
    format!(
        "{:013}:{}",
        to_millis(r.record.timestamp).max(0),
        r.record.request_id
    )
}

impl SqliteStore {
    /// The stream's mark, `None` before its first read.
    pub fn audit_stream(&self, stream: &str) -> Result<Option<StreamMark>, StoreError> {
        self.conn()
            .query_row(
                "SELECT stream, cursor, read, newest_at, polled_at FROM audit_streams \
                 WHERE stream = ?1",
                [stream],
                |r| {
                    Ok(StreamMark {
                        stream: r.get(0)?,
                        cursor: r.get(1)?,
                        read: r.get::<_, i64>(2)?.max(0) as u64,
                        newest_at: r.get::<_, Option<i64>>(3)?.map(from_millis),
                        polled_at: from_millis(r.get(4)?),
                    })
                },
            )
            .optional()
            .op("read an audit stream's cursor")
    }

    /// Adds one page of a stream to the outbox and saves the cursor that follows it, in one
    /// transaction: a crash leaves both or neither. Returns how many records were new.
    pub fn audit_append_stream(
        &self,
        stream: &str,
        records: &[NewRecord],
        cursor: &str,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin stream append")?;
        let mut added = 0;
        for r in records {
            added += insert_one(
                &tx,
                &r.record,
                false,
                &r.source,
                r.detail.as_deref(),
                None,
                Some(&stream_key(r)),
            )?;
        }
        let newest = records.iter().map(|r| to_millis(r.record.timestamp)).max();
        tx.execute(
            "INSERT INTO audit_streams (stream, cursor, read, newest_at, polled_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, \
             read = read + excluded.read, \
             newest_at = MAX(COALESCE(newest_at, 0), COALESCE(excluded.newest_at, 0)), \
             polled_at = excluded.polled_at",
            params![
                stream,
                cursor,
                records.len() as i64,
                newest,
                to_millis(Utc::now())
            ],
        )
        .op("save an audit stream's cursor")?;
        tx.commit().op("commit stream append")?;
        Ok(added)
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
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin replay request")?;
        let mut ids = Vec::new();
        for sink in sinks {
            tx.execute(
                "INSERT INTO audit_replays (stream, sink, start_time, end_time, asked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    stream,
                    sink,
                    to_millis(start),
                    to_millis(end),
                    to_millis(Utc::now())
                ],
            )
            .op("ask for a replay")?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().op("commit replay request")?;
        Ok(ids)
    }

    /// Replays not finished yet, oldest first.
    pub fn audit_replays_open(&self) -> Result<Vec<Replay>, StoreError> {
        self.audit_replays_where("done_at IS NULL")
    }

    /// Every replay, newest first.
    pub fn audit_replays(&self) -> Result<Vec<Replay>, StoreError> {
        self.audit_replays_where("1 ORDER BY id DESC")
    }

    fn audit_replays_where(&self, filter: &str) -> Result<Vec<Replay>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {REPLAY_COLUMNS} FROM audit_replays WHERE {filter}"
            ))
            .op("prepare audit replays")?;
        let rows = stmt
            .query_map([], replay_of)
            .op("list audit replays")?
            .collect::<Result<Vec<_>, _>>()
            .op("read audit replays")?;
        Ok(rows)
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
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin replay page")?;
        let mut added = 0;
        for r in records {
            // The copy's outbox key differs from the original's; the record keeps its own id,
            // so an idempotent sink overwrites what it already holds.
            let key = format!("{}#replay-{id}", stream_key(r));
            added += insert_one(
                &tx,
                &r.record,
                false,
                &r.source,
                r.detail.as_deref(),
                Some(sink),
                Some(&key),
            )?;
        }
        let now = to_millis(Utc::now());
        tx.execute(
            "UPDATE audit_replays SET cursor = ?2, added = added + ?3, \
             done_at = CASE WHEN ?4 THEN ?5 ELSE NULL END, error = NULL WHERE id = ?1",
            params![id, cursor, added as i64, done, now],
        )
        .op("save a replay's progress")?;
        tx.commit().op("commit replay page")?;
        Ok(added)
    }

    /// Ends a replay that cannot go on (its stream is not read any more), with the reason.
    pub fn audit_replay_failed(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE audit_replays SET done_at = ?2, error = ?3 WHERE id = ?1",
                params![id, to_millis(Utc::now()), clip(reason)],
            )
            .op("end a replay")
            .map(drop)
    }
}
