//! The state database through its public API: migrations and WAL on a file, idempotent
//! enqueue, the pending -> delivered | dead state machine, supersession, dead-letter retry,
//! route status and holds.

use chrono::{Duration, Utc};
use opsync::plugin::ChangeKind;
use opsync::store::{Hold, LedgerEntry, PollWrite, SCHEMA_VERSION, Store, StoreError};

fn entry(route: &str, item: &str, version: u64, kind: ChangeKind) -> LedgerEntry {
    LedgerEntry {
        route: route.into(),
        destination: "files".into(),
        vault_id: "v1".into(),
        vault_name: "Demo".into(),
        item_id: item.into(),
        title: format!("title of {item}"),
        key: format!("Demo/{item}"),
        version,
        kind,
        // The ledger keeps milliseconds.
        detected_at: chrono::DateTime::from_timestamp_millis(
            (Utc::now() - Duration::seconds(5)).timestamp_millis(),
        )
        .expect("in range"),
    }
}

#[test]
fn a_file_database_is_wal_migrated_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    {
        let store = Store::open(&path).expect("opens");
        store
            .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
            .expect("enqueued");
        store.check_writable().expect("writable");
    }
    let conn = rusqlite_free_checks(&path);
    assert_eq!(conn, ("wal".to_owned(), SCHEMA_VERSION));
    let store = Store::open(&path).expect("reopens: migrations are not run twice");
    let due = store.due("r", Utc::now(), 10).expect("due");
    assert_eq!(due.len(), 1, "the row survived the reopen");
}

/// Reads the journal mode and schema version with the sqlite3 header bytes, so the test does
/// not need its own SQLite binding: WAL files set bytes 18-19 to 2, and `user_version` is the
/// big-endian u32 at offset 60.
fn rusqlite_free_checks(path: &std::path::Path) -> (String, i64) {
    let bytes = std::fs::read(path).expect("read db");
    let mode = if bytes[18] == 2 && bytes[19] == 2 {
        "wal"
    } else {
        "rollback"
    };
    let v = u32::from_be_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]);
    (mode.to_owned(), i64::from(v))
}

#[test]
fn a_database_from_a_newer_opsync_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    drop(Store::open(&path).expect("opens"));
    // Bump user_version past what this build knows by patching the header.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, bytes).expect("write");
    match Store::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn enqueue_is_idempotent() {
    let store = Store::open_in_memory().expect("store");
    let e = entry("r", "a", 1, ChangeKind::Created);
    store.enqueue(std::slice::from_ref(&e)).expect("first");
    store.enqueue(&[e.clone(), e.clone()]).expect("again");
    let due = store.due("r", Utc::now(), 10).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].entry, e);
    assert_eq!(due[0].attempts, 0);
    assert_eq!(due[0].entry.idempotency_key(), "r:a:1:created");
    // Another destination of the same route is its own row.
    let mut other = e.clone();
    other.destination = "vault".into();
    store.enqueue(&[other]).expect("other destination");
    assert_eq!(store.due("r", Utc::now(), 10).expect("due").len(), 2);
    assert!(
        store
            .due("elsewhere", Utc::now(), 10)
            .expect("due")
            .is_empty()
    );
}

#[test]
fn retry_then_deliver_and_a_newer_version_supersedes() {
    let store = Store::open_in_memory().expect("store");
    store
        .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
        .expect("enqueue");
    let d = store.due("r", Utc::now(), 10).expect("due").remove(0);
    let later = Utc::now() + Duration::seconds(60);
    store
        .mark_retry(d.id, "destination said 503", later)
        .expect("retry");
    assert!(
        store.due("r", Utc::now(), 10).expect("due").is_empty(),
        "not due yet"
    );
    let again = store.due("r", later, 10).expect("due at later").remove(0);
    assert_eq!(again.attempts, 1);
    assert_eq!(again.last_error.as_deref(), Some("destination said 503"));
    assert_eq!(
        store
            .next_due("r")
            .expect("next due")
            .map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );

    // Version 2 arrives before version 1 got through: only version 2 stays pending.
    store
        .enqueue(&[entry("r", "a", 2, ChangeKind::Updated)])
        .expect("enqueue v2");
    let due = store.due("r", later, 10).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].entry.version, 2);
    // The in-flight version 1 may still report success.
    store
        .mark_delivered(again.id, "/a.env", Utc::now())
        .expect("late success accepted");
    store
        .mark_delivered(due[0].id, "/a.env", Utc::now())
        .expect("delivered");
    assert!(store.due("r", later, 10).expect("due").is_empty());
    let status = store.route_status().expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].pending, status[0].dead, status[0].delivered),
        (0, 0, 2)
    );
    assert!(status[0].last_success.is_some());
    assert!(matches!(
        store.mark_delivered(9999, "x", Utc::now()),
        Err(StoreError::NoSuchDelivery(9999))
    ));
}

#[test]
fn dead_letters_keep_their_reason_and_can_be_retried() {
    let store = Store::open_in_memory().expect("store");
    store
        .enqueue(&[
            entry("r", "a", 1, ChangeKind::Created),
            entry("r", "b", 1, ChangeKind::Created),
            entry("s", "c", 3, ChangeKind::Deleted),
        ])
        .expect("enqueue");
    let now = Utc::now();
    for d in store.due("r", now, 10).expect("due") {
        store
            .dead_letter(d.id, "permanent: bucket does not exist")
            .expect("dead");
    }
    let s = store.due("s", now, 10).expect("due").remove(0);
    store
        .dead_letter(s.id, "misconfigured: no region")
        .expect("dead");
    assert!(store.due("r", now, 10).expect("due").is_empty());

    let all = store.dead_letters(None).expect("all");
    assert_eq!(all.len(), 3);
    let r_only = store.dead_letters(Some("r")).expect("r");
    assert_eq!(r_only.len(), 2);
    assert!(
        r_only
            .iter()
            .all(|d| d.reason == "permanent: bucket does not exist" && d.attempts == 1)
    );
    let status = store.route_status().expect("status");
    let r = status.iter().find(|s| s.route == "r").expect("route r");
    assert_eq!((r.pending, r.dead), (0, 2));

    assert_eq!(
        store.retry_dead_letters(Some("s"), None).expect("retry s"),
        1
    );
    let back = store.due("s", Utc::now(), 10).expect("due");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].attempts, 0, "a fresh retry budget");
    assert_eq!(back[0].entry.kind, ChangeKind::Deleted);
    assert_eq!(
        store
            .retry_dead_letters(None, Some(r_only[0].id))
            .expect("one"),
        1
    );
    assert_eq!(store.dead_letters(None).expect("left").len(), 1);
}

#[test]
fn error_texts_are_clipped() {
    let store = Store::open_in_memory().expect("store");
    store
        .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
        .expect("enqueue");
    let d = store.due("r", Utc::now(), 1).expect("due").remove(0);
    let long = "é".repeat(5000);
    store.mark_retry(d.id, &long, Utc::now()).expect("retry");
    let d = store.due("r", Utc::now(), 1).expect("due").remove(0);
    let kept = d.last_error.expect("kept");
    assert!(kept.len() <= opsync::store::ERROR_MAX && !kept.is_empty());
}

#[test]
fn holds_show_in_route_status_and_clear() {
    let store = Store::open_in_memory().expect("store");
    let hold = Hold {
        route: "r".into(),
        deletions: 8,
        total: 10,
        max_ratio: 0.2,
        since: Utc::now(),
    };
    store
        .commit_poll(&PollWrite {
            holds: vec![hold.clone()],
            ..PollWrite::default()
        })
        .expect("hold");
    let status = store.route_status().expect("status");
    assert_eq!(status.len(), 1);
    let h = status[0].hold.as_ref().expect("held");
    assert_eq!((h.deletions, h.total), (8, 10));
    store
        .commit_poll(&PollWrite {
            holds_cleared: vec!["r".into()],
            ..PollWrite::default()
        })
        .expect("clear");
    assert!(store.holds().expect("holds").is_empty());
}

#[test]
fn clones_share_one_database_across_threads() {
    let store = Store::open_in_memory().expect("store");
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    s.enqueue(&[entry("r", &format!("{t}-{i}"), 1, ChangeKind::Created)])
                        .expect("enqueue");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(store.due("r", Utc::now(), 1000).expect("due").len(), 200);
    assert_eq!(store.counts().expect("counts"), (200, 0, 0, 0));
}

#[test]
fn a_retry_of_a_superseded_row_does_not_revive_it() {
    let store = Store::open_in_memory().expect("store");
    store
        .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
        .expect("enqueue");
    let old = store.due("r", Utc::now(), 10).expect("due").remove(0);
    store
        .enqueue(&[entry("r", "a", 2, ChangeKind::Updated)])
        .expect("enqueue v2");
    store
        .mark_retry(old.id, "timed out", Utc::now())
        .expect("accepted, and ignored");
    let due = store.due("r", Utc::now(), 10).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].entry.version, 2);
    assert_eq!(store.counts().expect("counts"), (1, 0, 0, 1));
}
