//! The audit outbox, its sinks' cursors and the Events API streams' tables behave the same on
//! SQLite and PostgreSQL: the store-level behaviours of `src/store/{audit,sinks,streams}.rs`
//! (and those `tests/audit*.rs` rely on), each run on both backends.

mod store_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use opsync::connect::model::ApiRequest;
use opsync::store::{
    ACTIVITY, ERROR_MAX, LogOrder, NewRecord, SinkStart, Store, StoreError, TailMark,
};
use store_support::on_each_backend;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("a time")
}

/// An activity record logged at `ms`.
fn request(id: &str, ms: i64) -> ApiRequest {
    serde_json::from_value(serde_json::json!({
        "requestId": id,
        "timestamp": at(ms).to_rfc3339(),
        "action": "READ",
        "result": "SUCCESS",
    }))
    .expect("a record")
}

/// An Events API record (as `src/store/streams.rs`'s tests make them).
fn record(id: &str, source: &str) -> NewRecord {
    let request: ApiRequest = serde_json::from_value(serde_json::json!({
        "requestId": id,
        "timestamp": "2026-11-30T10:00:00Z",
        "action": "signin",
        "result": "SUCCESS",
    }))
    .expect("a record");
    NewRecord {
        record: request,
        source: source.into(),
        detail: Some(format!(r#"{{"uuid":"{id}"}}"#)),
    }
}

fn record_at(id: &str, source: &str, ms: i64) -> NewRecord {
    NewRecord {
        record: request(id, ms),
        source: source.into(),
        detail: None,
    }
}

fn ids(store: &Store, sink: &str, include_own: bool) -> Vec<String> {
    store
        .audit_batch(sink, 0, 1_000_000, include_own)
        .expect("batch")
        .into_iter()
        .map(|r| r.record.request_id)
        .collect()
}

#[test]
fn the_mark_is_empty_at_first_and_saved_with_the_records() {
    on_each_backend(|store| {
        assert_eq!(store.audit_mark().expect("mark"), TailMark::default());
        assert_eq!(store.audit_head().expect("head"), 0);

        let mark = TailMark {
            at: Some(Utc.timestamp_nanos(1_790_000_000_123_456_789)),
            ids: vec!["r2".into(), "r3".into()],
            total: Some(42),
            order: LogOrder::NewestFirst,
            polled_at: Some(at(1_790_000_001_000)),
        };
        let records = [request("r1", 1_000), request("r2", 2_000)];
        let added = store
            .audit_append(&records, false, Some(&mark))
            .expect("append");
        assert_eq!(added, 2);
        assert_eq!(store.audit_mark().expect("mark"), mark, "nanoseconds kept");

        // Without a mark, the mark stays; a new one replaces it whole.
        store
            .audit_append(&[request("r3", 3_000)], false, None)
            .expect("append");
        assert_eq!(store.audit_mark().expect("mark"), mark);
        let next = TailMark {
            at: None,
            ids: vec![],
            total: None,
            order: LogOrder::OldestFirst,
            polled_at: None,
        };
        store.audit_append(&[], false, Some(&next)).expect("append");
        assert_eq!(store.audit_mark().expect("mark"), next);
        assert_eq!(store.audit_head().expect("head"), 3);
    });
}

#[test]
fn appends_dedupe_by_request_id_and_number_records_in_order() {
    on_each_backend(|store| {
        let first = [request("a", 1), request("b", 2), request("c", 3)];
        assert_eq!(store.audit_append(&first, false, None).expect("append"), 3);
        let again = [request("c", 3), request("d", 4), request("a", 1)];
        assert_eq!(
            store.audit_append(&again, false, None).expect("append"),
            1,
            "only d is new"
        );
        assert_eq!(store.audit_append(&again, true, None).expect("append"), 0);
        let batch = store.audit_batch("any", 0, 100, true).expect("batch");
        let got: Vec<&str> = batch.iter().map(|r| r.record.request_id.as_str()).collect();
        assert_eq!(got, ["a", "b", "c", "d"], "in the order added");
        assert!(
            batch.windows(2).all(|w| w[0].seq < w[1].seq),
            "seqs grow in the order added"
        );
        assert_eq!(
            store.audit_head().expect("head"),
            batch[3].seq,
            "the head is the newest seq"
        );
        assert!(
            batch
                .iter()
                .all(|r| r.source == ACTIVITY && r.detail.is_none())
        );
        assert_eq!(batch[0].record, first[0], "the record as it was added");
    });
}

#[test]
fn a_batch_respects_after_limit_and_own_events() {
    on_each_backend(|store| {
        store
            .audit_append(&[request("a", 1), request("b", 2)], false, None)
            .expect("append");
        store
            .audit_append(&[request("opsync-1", 3)], true, None)
            .expect("own");
        store
            .audit_append(&[request("c", 4)], false, None)
            .expect("append");

        assert_eq!(ids(store, "s", false), ["a", "b", "c"]);
        assert_eq!(ids(store, "s", true), ["a", "b", "opsync-1", "c"]);
        let own = store.audit_batch("s", 0, 10, true).expect("batch");
        assert_eq!(
            own.iter().map(|r| r.own).collect::<Vec<_>>(),
            [false, false, true, false]
        );

        let page = store.audit_batch("s", 0, 2, true).expect("batch");
        assert_eq!(page.len(), 2);
        let rest = store
            .audit_batch("s", page[1].seq, 10, true)
            .expect("batch");
        assert_eq!(
            rest.iter()
                .map(|r| r.record.request_id.as_str())
                .collect::<Vec<_>>(),
            ["opsync-1", "c"]
        );
        assert!(
            store
                .audit_batch("s", store.audit_head().expect("head"), 10, true)
                .expect("batch")
                .is_empty()
        );
        assert!(
            store
                .audit_batch("s", 0, 0, true)
                .expect("batch")
                .is_empty()
        );
    });
}

#[test]
fn a_sink_starts_at_the_beginning_or_now_and_keeps_its_cursor() {
    on_each_backend(|store| {
        store
            .audit_append(&[request("a", 1), request("b", 2)], false, None)
            .expect("append");
        let from_start = store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");
        assert_eq!(from_start.sink, "siem");
        assert_eq!(
            (
                from_start.acked_seq,
                from_start.shipped,
                from_start.failures
            ),
            (0, 0, 0)
        );
        assert_eq!(from_start.acked_at, None);
        assert_eq!(from_start.last_error, None);
        let now = store.audit_sink("hec", SinkStart::Now).expect("sink");
        assert_eq!(now.acked_seq, 2, "after the newest record");

        // An existing sink keeps its cursor, whatever the start asked.
        store
            .audit_append(&[request("c", 3)], false, None)
            .expect("append");
        assert_eq!(
            store
                .audit_sink("siem", SinkStart::Now)
                .expect("sink")
                .acked_seq,
            0
        );
        assert_eq!(
            store
                .audit_sink("hec", SinkStart::Beginning)
                .expect("sink")
                .acked_seq,
            2
        );
        let all = store.audit_sinks().expect("sinks");
        assert_eq!(
            all.iter()
                .map(|c| (c.sink.as_str(), c.acked_seq))
                .collect::<Vec<_>>(),
            [("hec", 2), ("siem", 0)],
            "by name"
        );
    });
}

#[test]
fn an_ack_is_a_compare_and_set_that_clears_failures() {
    on_each_backend(|store| {
        let records: Vec<_> = (0..5).map(|i| request(&format!("r{i}"), i)).collect();
        store.audit_append(&records, false, None).expect("append");
        store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");

        store.audit_sink_failed("siem", "timeout").expect("failed");
        let long = "é".repeat(ERROR_MAX);
        store.audit_sink_failed("siem", &long).expect("failed");
        let cursor = &store.audit_sinks().expect("sinks")[0];
        assert_eq!(
            (cursor.failures, cursor.acked_seq),
            (2, 0),
            "the cursor stays"
        );
        let kept = cursor.last_error.as_deref().expect("an error");
        assert!(kept.len() <= ERROR_MAX && kept.len() >= ERROR_MAX - 1);
        assert!(long.starts_with(kept), "cut on a character boundary");
        assert!(cursor.last_error_at.is_some());
        // A failure of a sink with no cursor changes nothing.
        store.audit_sink_failed("nobody", "x").expect("failed");
        assert_eq!(store.audit_sinks().expect("sinks").len(), 1);

        assert!(store.audit_ack("siem", 0, 3, 3).expect("ack"));
        let cursor = &store.audit_sinks().expect("sinks")[0];
        assert_eq!(
            (cursor.acked_seq, cursor.shipped, cursor.failures),
            (3, 3, 0)
        );
        assert!(cursor.acked_at.is_some());
        assert_eq!(
            cursor.last_error.as_deref(),
            Some(kept),
            "the last error is kept"
        );

        assert!(
            !store.audit_ack("siem", 0, 5, 5).expect("stale ack"),
            "the cursor is no longer at 0"
        );
        assert!(!store.audit_ack("nobody", 0, 5, 5).expect("no sink"));
        assert!(store.audit_ack("siem", 3, 5, 2).expect("ack"));
        let cursor = &store.audit_sinks().expect("sinks")[0];
        assert_eq!((cursor.acked_seq, cursor.shipped), (5, 5));
    });
}

#[test]
fn concurrent_acks_from_one_cursor_move_it_once() {
    on_each_backend(|store| {
        let records: Vec<_> = (0..20).map(|i| request(&format!("r{i}"), i)).collect();
        store.audit_append(&records, false, None).expect("append");
        store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");
        for round in 0..10_i64 {
            let from = round * 2;
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let store = store.clone();
                    std::thread::spawn(move || {
                        store.audit_ack("siem", from, from + 2, 2).expect("ack")
                    })
                })
                .collect();
            let won = handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .filter(|w| *w)
                .count();
            assert_eq!(won, 1, "round {round}: exactly one ack moves the cursor");
        }
        let cursor = &store.audit_sinks().expect("sinks")[0];
        assert_eq!((cursor.acked_seq, cursor.shipped), (20, 20));
    });
}

#[test]
fn a_dead_letter_moves_the_cursor_past_the_record_once() {
    on_each_backend(|store| {
        let records: Vec<_> = (0..3).map(|i| request(&format!("r{i}"), i)).collect();
        store.audit_append(&records, false, None).expect("append");
        store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");
        store.audit_sink_failed("siem", "400").expect("failed");
        let batch = store.audit_batch("siem", 0, 10, false).expect("batch");

        assert!(
            store
                .audit_dead_letter("siem", 0, &batch[0], "400 bad record")
                .expect("dead")
        );
        let cursor = &store.audit_sinks().expect("sinks")[0];
        assert_eq!(
            (cursor.acked_seq, cursor.failures, cursor.shipped),
            (batch[0].seq, 0, 0)
        );
        assert_eq!(cursor.last_error.as_deref(), Some("400 bad record"));
        assert_eq!(cursor.acked_at, cursor.last_error_at);

        assert!(
            !store
                .audit_dead_letter("siem", 0, &batch[1], "stale")
                .expect("stale"),
            "the cursor moved meanwhile: nothing kept"
        );
        assert!(
            store
                .audit_dead_letter("siem", batch[0].seq, &batch[2], "too big")
                .expect("dead")
        );
        let dead = store.audit_dead_letters("siem").expect("dead letters");
        assert_eq!(
            dead.iter()
                .map(|d| (
                    d.sink.as_str(),
                    d.seq,
                    d.request_id.as_str(),
                    d.reason.as_str()
                ))
                .collect::<Vec<_>>(),
            [
                ("siem", batch[2].seq, "r2", "too big"),
                ("siem", batch[0].seq, "r0", "400 bad record")
            ],
            "newest first"
        );
        assert!(store.audit_dead_letters("hec").expect("none").is_empty());
        let lag = store
            .audit_lag("siem", false)
            .expect("lag")
            .expect("a sink");
        assert_eq!((lag.dead, lag.pending), (2, 0));
    });
}

#[test]
fn the_lag_counts_what_the_sink_ships_by_source() {
    on_each_backend(|store| {
        assert_eq!(store.audit_lag("siem", true).expect("lag"), None);
        store
            .audit_append(&[request("a", 5_000), request("b", 1_000)], false, None)
            .expect("append");
        store
            .audit_append(&[request("opsync-1", 500)], true, None)
            .expect("own");
        store
            .audit_append_stream(
                "auditevents",
                &[record_at("e1", "auditevents", 3_000)],
                "c1",
            )
            .expect("stream");
        store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");
        store.audit_sink("hec", SinkStart::Beginning).expect("sink");

        let lag = store
            .audit_lag("siem", false)
            .expect("lag")
            .expect("a sink");
        assert_eq!(lag.cursor.sink, "siem");
        assert_eq!(lag.pending, 3);
        assert_eq!(lag.oldest_pending, Some(at(1_000)));
        assert_eq!(
            lag.by_source,
            [(ACTIVITY.to_string(), 2), ("auditevents".to_string(), 1)]
        );
        assert_eq!(lag.dead, 0);
        let with_own = store.audit_lag("siem", true).expect("lag").expect("a sink");
        assert_eq!(with_own.pending, 4);
        assert_eq!(with_own.oldest_pending, Some(at(500)));
        assert_eq!(with_own.by_source[0], (ACTIVITY.to_string(), 3));

        // A replayed copy counts for its sink only.
        let ids = store
            .audit_replay_ask("auditevents", &["siem".into()], at(0), at(10_000))
            .expect("asked");
        store
            .audit_replay_page(
                ids[0],
                "siem",
                &[record_at("e1", "auditevents", 3_000)],
                "r1",
                true,
            )
            .expect("page");
        let siem = store
            .audit_lag("siem", false)
            .expect("lag")
            .expect("a sink");
        let hec = store.audit_lag("hec", false).expect("lag").expect("a sink");
        assert_eq!((siem.pending, hec.pending), (4, 3));

        let head = store.audit_head().expect("head");
        assert!(store.audit_ack("siem", 0, head, 5).expect("ack"));
        let siem = store.audit_lag("siem", true).expect("lag").expect("a sink");
        assert_eq!(siem.pending, 0);
        assert_eq!(siem.oldest_pending, None);
        assert!(siem.by_source.is_empty());
    });
}

#[test]
fn a_rewind_moves_cursors_back_to_the_first_record_since() {
    on_each_backend(|store| {
        let records: Vec<_> = (1..=6)
            .map(|i| request(&format!("r{i}"), i * 1_000))
            .collect();
        store.audit_append(&records, false, None).expect("append");
        store.audit_sink("siem", SinkStart::Now).expect("sink");
        store.audit_sink("hec", SinkStart::Beginning).expect("sink");
        store.audit_sink("es", SinkStart::Beginning).expect("sink");
        assert!(store.audit_ack("es", 0, 2, 2).expect("ack"));

        let moved = store
            .audit_rewind(&["siem".into(), "hec".into(), "es".into()], at(4_000))
            .expect("rewind");
        assert_eq!(
            moved,
            [
                ("siem".to_string(), 6, 3),
                ("hec".to_string(), 0, 0),
                ("es".to_string(), 2, 2)
            ],
            "a cursor already before the point stays"
        );
        assert_eq!(
            store
                .audit_lag("siem", false)
                .expect("lag")
                .expect("a sink")
                .pending,
            3
        );

        // Nothing at or after `since`: nothing moves.
        let moved = store
            .audit_rewind(&["siem".into()], at(60_000))
            .expect("rewind");
        assert_eq!(moved, [("siem".to_string(), 3, 3)]);

        // An unknown sink fails the whole rewind.
        let err = store
            .audit_rewind(&["siem".into(), "nobody".into()], at(0))
            .expect_err("no such sink");
        assert!(
            matches!(&err, StoreError::NoSuchAuditSink(s) if s == "nobody"),
            "{err:?}"
        );
        let siem = store
            .audit_lag("siem", false)
            .expect("lag")
            .expect("a sink");
        assert_eq!(siem.cursor.acked_seq, 3, "nothing moved");
    });
}

#[test]
fn compaction_deletes_only_what_every_sink_acknowledged_and_is_old() {
    on_each_backend(|store| {
        let records: Vec<_> = (1..=6)
            .map(|i| request(&format!("r{i}"), i * 1_000))
            .collect();
        store.audit_append(&records, false, None).expect("append");
        store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");
        store.audit_sink("hec", SinkStart::Beginning).expect("sink");
        assert!(store.audit_ack("siem", 0, 5, 5).expect("ack"));
        assert!(store.audit_ack("hec", 0, 3, 3).expect("ack"));
        let sinks = ["siem".to_string(), "hec".to_string()];

        assert_eq!(
            store.audit_compact(&sinks, at(2_500)).expect("compact"),
            2,
            "acknowledged by both and older"
        );
        assert_eq!(ids(store, "x", true), ["r3", "r4", "r5", "r6"]);
        assert_eq!(
            store.audit_compact(&sinks, at(100_000)).expect("compact"),
            1,
            "up to the slowest sink"
        );
        assert_eq!(ids(store, "x", true), ["r4", "r5", "r6"]);
        assert_eq!(
            store
                .audit_compact(&["siem".into(), "new".into()], at(100_000))
                .expect("compact"),
            0,
            "a sink without a cursor has acknowledged nothing"
        );
        assert_eq!(
            store.audit_compact(&[], at(5_500)).expect("compact"),
            2,
            "no sinks: only the age counts"
        );
        assert_eq!(ids(store, "x", true), ["r6"]);
        assert_eq!(store.audit_head().expect("head"), 6, "the head stays");
        store
            .audit_append(&[request("r7", 7_000), request("r1", 1_000)], false, None)
            .expect("append");
        let batch = store.audit_batch("x", 0, 10, true).expect("batch");
        assert_eq!(
            batch
                .iter()
                .map(|r| (r.seq, r.record.request_id.as_str()))
                .collect::<Vec<_>>(),
            [(6, "r6"), (7, "r7"), (8, "r1")],
            "seqs are not reused; a compacted id may come again"
        );
    });
}

#[test]
fn a_page_and_its_cursor_are_kept_together_and_dedupe_by_id() {
    on_each_backend(|store| {
        assert_eq!(store.audit_stream("signinattempts").expect("mark"), None);
        let page = [record("a", "signinattempts"), record("b", "signinattempts")];
        assert_eq!(
            store
                .audit_append_stream("signinattempts", &page, "c1")
                .expect("append"),
            2
        );
        let first = store
            .audit_stream("signinattempts")
            .expect("mark")
            .expect("read once");
        assert_eq!(first.stream, "signinattempts");
        assert_eq!(
            first.newest_at,
            Some(page[0].record.timestamp),
            "the newest record's time"
        );
        assert_eq!(
            store
                .audit_append_stream("signinattempts", &page[1..], "c2")
                .expect("again"),
            0,
            "an id already in the outbox is not added twice"
        );
        let mark = store
            .audit_stream("signinattempts")
            .expect("mark")
            .expect("read once");
        assert_eq!((mark.cursor.as_str(), mark.read), ("c2", 3));
        assert!(mark.polled_at >= first.polled_at);
        let batch = store.audit_batch("es", 0, 10, false).expect("batch");
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].source, "signinattempts");
        assert_eq!(batch[0].detail.as_deref(), Some(r#"{"uuid":"a"}"#));
        assert!(!batch[0].own);
        assert_eq!(batch[0].record, page[0].record);

        // An empty page moves the cursor only; an older page keeps the newest time.
        store
            .audit_append_stream("signinattempts", &[], "c3")
            .expect("empty");
        store
            .audit_append_stream(
                "signinattempts",
                &[record_at("old", "signinattempts", 1_000)],
                "c4",
            )
            .expect("older");
        let mark = store
            .audit_stream("signinattempts")
            .expect("mark")
            .expect("read");
        assert_eq!((mark.cursor.as_str(), mark.read), ("c4", 4));
        assert_eq!(mark.newest_at, Some(page[0].record.timestamp));
        assert_eq!(store.audit_stream("auditevents").expect("mark"), None);

        // A first page with no records has no newest time yet.
        store
            .audit_append_stream("itemusages", &[], "u1")
            .expect("empty");
        let mark = store
            .audit_stream("itemusages")
            .expect("mark")
            .expect("read");
        assert_eq!(
            (mark.cursor.as_str(), mark.read, mark.newest_at),
            ("u1", 0, None)
        );
        // The same request id in another stream's record (another time) is another key.
        assert_eq!(
            store
                .audit_append_stream("itemusages", &[record_at("a", "itemusages", 7)], "u2")
                .expect("append"),
            1
        );
    });
}

#[test]
fn a_replay_adds_copies_only_its_sink_sees() {
    on_each_backend(|store| {
        store
            .audit_append_stream("auditevents", &[record("a", "auditevents")], "c1")
            .expect("append");
        let start = at(0);
        let end = Utc::now();
        let ids = store
            .audit_replay_ask("auditevents", &["es".into()], start, end)
            .expect("asked");
        let open = store.audit_replays_open().expect("open");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].id, ids[0]);
        assert_eq!(
            (open[0].stream.as_str(), open[0].sink.as_str()),
            ("auditevents", "es")
        );
        assert_eq!(open[0].start_time, start);
        assert_eq!(open[0].end_time, at(end.timestamp_millis()));
        assert_eq!((open[0].cursor.as_deref(), open[0].added), (None, 0));
        assert_eq!((open[0].done_at, open[0].error.as_deref()), (None, None));

        let added = store
            .audit_replay_page(ids[0], "es", &[record("a", "auditevents")], "r1", false)
            .expect("page");
        assert_eq!(added, 1, "a copy, though the original is still there");
        let open = store.audit_replays_open().expect("open");
        assert_eq!(
            (open[0].cursor.as_deref(), open[0].added),
            (Some("r1"), 1),
            "not done yet"
        );
        let added = store
            .audit_replay_page(
                ids[0],
                "es",
                &[record("a", "auditevents"), record("b", "auditevents")],
                "r2",
                true,
            )
            .expect("page");
        assert_eq!(added, 1, "the copy of a is there already");
        let es = store.audit_batch("es", 0, 10, false).expect("es");
        let hec = store.audit_batch("hec", 0, 10, false).expect("hec");
        assert_eq!(es.len(), 3);
        assert_eq!(
            es[1].record.request_id, "a",
            "the copy keeps the record's own id"
        );
        assert_eq!(hec.len(), 1, "the copies are for es only");
        assert!(store.audit_replays_open().expect("open").is_empty());
        let done = &store.audit_replays().expect("all")[0];
        assert_eq!((done.added, done.cursor.as_deref()), (2, Some("r2")));
        assert!(done.done_at.is_some());
    });
}

#[test]
fn replays_are_listed_in_order_and_a_failed_one_is_done_with_its_reason() {
    on_each_backend(|store| {
        let sinks = ["es".to_string(), "hec".to_string()];
        let first = store
            .audit_replay_ask("auditevents", &sinks, at(0), at(1_000))
            .expect("asked");
        assert_eq!(first.len(), 2);
        assert!(first[0] < first[1]);
        let second = store
            .audit_replay_ask("signinattempts", &sinks[..1], at(0), at(1_000))
            .expect("asked");
        assert!(
            store
                .audit_replay_ask("auditevents", &[], at(0), at(1))
                .expect("none")
                .is_empty()
        );

        let open: Vec<i64> = store
            .audit_replays_open()
            .expect("open")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, [first[0], first[1], second[0]], "oldest first");

        store
            .audit_replay_failed(first[1], &"x".repeat(ERROR_MAX + 10))
            .expect("failed");
        let open: Vec<i64> = store
            .audit_replays_open()
            .expect("open")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, [first[0], second[0]]);

        let all = store.audit_replays().expect("all");
        assert_eq!(
            all.iter().map(|r| r.id).collect::<Vec<_>>(),
            [second[0], first[1], first[0]],
            "newest first"
        );
        let failed = &all[1];
        assert!(failed.done_at.is_some());
        assert_eq!(failed.error.as_deref().map(str::len), Some(ERROR_MAX));

        // A page after a failure clears the error.
        store
            .audit_replay_page(first[1], "hec", &[], "r9", false)
            .expect("page");
        let again = &store.audit_replays().expect("all")[1];
        assert_eq!(
            (
                again.error.as_deref(),
                again.done_at,
                again.cursor.as_deref()
            ),
            (None, None, Some("r9"))
        );
    });
}

/// Appenders on several connections and a sink shipping meanwhile: the sink's cursor ("every
/// record up to seq N") must never pass a record that commits later, so every record arrives
/// exactly once. On PostgreSQL this needs seq order to be commit order.
#[test]
fn concurrent_appends_are_all_shipped_once() {
    on_each_backend(|store| {
        store
            .audit_sink("siem", SinkStart::Beginning)
            .expect("sink");
        let done = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for round in 0..40 {
                        let page: Vec<NewRecord> = (0..5)
                            .map(|i| record_at(&format!("w{w}-{round}-{i}"), "auditevents", round))
                            .collect();
                        if w % 2 == 0 {
                            let records: Vec<ApiRequest> =
                                page.into_iter().map(|r| r.record).collect();
                            store.audit_append(&records, false, None).expect("append");
                        } else {
                            store
                                .audit_append_stream(&format!("s{w}"), &page, "c")
                                .expect("append stream");
                        }
                    }
                })
            })
            .collect();
        let shipper = {
            let store = store.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut cursor = 0;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let batch = store.audit_batch("siem", cursor, 7, false).expect("batch");
                    if batch.is_empty() {
                        if finished {
                            return seen;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue;
                    }
                    let last = batch.last().map(|r| r.seq).unwrap_or(cursor);
                    let count = batch.len() as u64;
                    seen.extend(batch.into_iter().map(|r| r.record.request_id));
                    assert!(
                        store.audit_ack("siem", cursor, last, count).expect("ack"),
                        "only this shipper moves the cursor"
                    );
                    cursor = last;
                }
            })
        };
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::SeqCst);
        let seen = shipper.join().expect("shipper");
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "nothing twice");
        assert_eq!(seen.len(), 4 * 40 * 5, "every record shipped");
        let lag = store
            .audit_lag("siem", false)
            .expect("lag")
            .expect("a sink");
        assert_eq!(lag.pending, 0);
        assert_eq!(lag.cursor.acked_seq, store.audit_head().expect("head"));
        assert_eq!(lag.cursor.shipped, 800);
    });
}
