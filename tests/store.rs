//! The state database through its public API: migrations and WAL on a file, idempotent
//! enqueue in item order, the pending -> delivered | dead state machine, supersession,
//! dead-letter retry, route status and holds, renames' old-key deletions, kept metadata, and
//! pruning.

use chrono::{Duration, Utc};
use opsync::plugin::ChangeKind;
use opsync::store::{Hold, LedgerEntry, PollWrite, RowUpdate, SCHEMA_VERSION, Store, StoreError};

fn entry(route: &str, item: &str, version: u64, kind: ChangeKind) -> LedgerEntry {
    LedgerEntry {
        route: route.into(),
        destination: "files".into(),
        vault_id: "v1".into(),
        vault_name: "Demo".into(),
        item_id: item.into(),
        title: format!("title of {item}"),
        key: format!("Demo/{item}"),
        category: "LOGIN".into(),
        tags: vec!["prod".into()],
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
        .mark_delivered(again.id, "/a.env", Utc::now(), None)
        .expect("late success accepted");
    store
        .mark_delivered(due[0].id, "/a.env", Utc::now(), None)
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
        store.mark_delivered(9999, "x", Utc::now(), None),
        Err(StoreError::NoSuchDelivery(9999))
    ));
}

#[test]
fn a_group_of_outcomes_is_recorded_together_and_a_missing_row_fails_alone() {
    let store = Store::open_in_memory().expect("store");
    store
        .enqueue(&[
            entry("r", "a", 1, ChangeKind::Created),
            entry("r", "b", 1, ChangeKind::Created),
            entry("r", "c", 1, ChangeKind::Created),
        ])
        .expect("enqueue");
    let now = Utc::now();
    let due = store.due("r", now, 10).expect("due");
    let by_item = |item: &str| {
        due.iter()
            .find(|d| d.entry.item_id == item)
            .map(|d| d.id)
            .expect("row")
    };
    let later = now + Duration::seconds(60);
    // A group's time is given, not read from the clock in the store.
    let dead_at = now - Duration::minutes(5);
    let recorded = store
        .record_updates(&[
            (
                by_item("a"),
                RowUpdate::Delivered {
                    location: "/a.env",
                    at: now,
                    fingerprint: None,
                    own_event: None,
                },
            ),
            (
                9999,
                RowUpdate::Dead {
                    reason: "gone",
                    at: now,
                    own_event: None,
                },
            ),
            (
                by_item("b"),
                RowUpdate::Retry {
                    error: "destination said 503",
                    next_attempt_at: later,
                },
            ),
            (
                by_item("c"),
                RowUpdate::Dead {
                    reason: "permanent: no such bucket",
                    at: dead_at,
                    own_event: None,
                },
            ),
        ])
        .expect("one transaction");
    assert_eq!(recorded.len(), 4);
    assert!(recorded[0].is_ok() && recorded[2].is_ok() && recorded[3].is_ok());
    assert!(matches!(recorded[1], Err(StoreError::NoSuchDelivery(9999))));

    // a is delivered, b waits for its retry, c is a dead letter.
    assert!(store.due("r", now, 10).expect("due").is_empty());
    let retry = store.due("r", later, 10).expect("due later");
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].entry.item_id, "b");
    assert_eq!(retry[0].last_error.as_deref(), Some("destination said 503"));
    let dead = store.dead_letters(Some("r")).expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].entry.item_id.as_str(), dead[0].reason.as_str()),
        ("c", "permanent: no such bucket")
    );
    assert_eq!(
        dead[0].dead_at.timestamp_millis(),
        dead_at.timestamp_millis()
    );
    let status = store.route_status().expect("status");
    assert_eq!(
        (status[0].pending, status[0].dead, status[0].delivered),
        (1, 1, 1)
    );
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
            .dead_letter(d.id, "permanent: bucket does not exist", None)
            .expect("dead");
    }
    let s = store.due("s", now, 10).expect("due").remove(0);
    store
        .dead_letter(s.id, "misconfigured: no region", None)
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

#[test]
fn the_deletion_of_a_renamed_items_old_key_is_not_superseded_by_the_new_keys_write() {
    let store = Store::open_in_memory().expect("store");
    let delete_old = entry("r", "a", 1, ChangeKind::Deleted);
    let mut write_new = entry("r", "a", 2, ChangeKind::Updated);
    write_new.key = "Demo/renamed".into();
    store
        .enqueue(&[delete_old, write_new.clone()])
        .expect("enqueue");
    let due = store.due("r", Utc::now(), 10).expect("due");
    assert_eq!(
        due.len(),
        2,
        "both the old key's deletion and the new write"
    );
    assert_eq!(due[0].entry.kind, ChangeKind::Deleted, "deletion first");
    assert_eq!(due[0].entry.key, "Demo/a");
    // The kept metadata comes back with the row.
    assert_eq!(due[0].entry.category, "LOGIN");
    assert_eq!(due[0].entry.tags, ["prod"]);
    // Renamed back before anything was delivered: the write of the first key supersedes the
    // deletion of that same key, and the pending write of the second key.
    let mut back = entry("r", "a", 3, ChangeKind::Updated);
    back.key = "Demo/a".into();
    let mut delete_second = entry("r", "a", 2, ChangeKind::Deleted);
    delete_second.key = "Demo/renamed".into();
    store.enqueue(&[delete_second, back]).expect("enqueue");
    let due: Vec<(ChangeKind, String)> = store
        .due("r", Utc::now(), 10)
        .expect("due")
        .into_iter()
        .map(|d| (d.entry.kind, d.entry.key))
        .collect();
    assert_eq!(
        due,
        [
            (ChangeKind::Deleted, "Demo/renamed".to_string()),
            (ChangeKind::Updated, "Demo/a".to_string())
        ]
    );
}

#[test]
fn a_polls_changes_are_queued_in_item_order_each_items_own_in_the_order_given() {
    let store = Store::open_in_memory().expect("store");
    let mut delete_old = entry("r", "b", 1, ChangeKind::Deleted);
    delete_old.key = "Demo/old-b".into();
    store
        .enqueue(&[
            entry("r", "c", 1, ChangeKind::Created),
            delete_old,
            entry("r", "a", 1, ChangeKind::Created),
            entry("r", "b", 2, ChangeKind::Updated),
        ])
        .expect("enqueue");
    let due: Vec<(String, ChangeKind)> = store
        .due("r", Utc::now(), 10)
        .expect("due")
        .into_iter()
        .map(|d| (d.entry.item_id, d.entry.kind))
        .collect();
    assert_eq!(
        due,
        [
            ("a".to_string(), ChangeKind::Created),
            ("b".to_string(), ChangeKind::Deleted),
            ("b".to_string(), ChangeKind::Updated),
            ("c".to_string(), ChangeKind::Created),
        ],
        "item order; b's old key is deleted before its new one is written"
    );
}

#[test]
fn pruning_removes_old_finished_rows_and_keeps_dead_letters_and_what_they_need() {
    let store = Store::open_in_memory().expect("store");
    let long_ago = Utc::now() - Duration::days(30);
    // Route r: item a delivered at v1 then v2 long ago; item b superseded long ago; item c
    // dead at v1 with v2 delivered after it; item d delivered just now.
    let mut b1 = entry("r", "b", 1, ChangeKind::Created);
    b1.detected_at = long_ago;
    store
        .enqueue(&[
            entry("r", "a", 1, ChangeKind::Created),
            b1,
            entry("r", "b", 2, ChangeKind::Updated),
            entry("r", "c", 1, ChangeKind::Created),
        ])
        .expect("enqueue");
    let due = store.due("r", Utc::now(), 10).expect("due");
    let id = |item: &str| {
        due.iter()
            .find(|d| d.entry.item_id == item)
            .expect("row")
            .id
    };
    store
        .mark_delivered(id("a"), "/a", long_ago, None)
        .expect("a v1");
    store
        .mark_delivered(id("b"), "/b", long_ago, None)
        .expect("b v2");
    store
        .dead_letter(id("c"), "destination refused", None)
        .expect("c dead");
    store
        .enqueue(&[
            entry("r", "a", 2, ChangeKind::Updated),
            entry("r", "c", 2, ChangeKind::Updated),
            entry("r", "d", 1, ChangeKind::Created),
        ])
        .expect("enqueue");
    for d in store.due("r", Utc::now(), 10).expect("due") {
        let at = if d.entry.item_id == "d" {
            Utc::now()
        } else {
            long_ago
        };
        store
            .mark_delivered(d.id, "/x", at, None)
            .expect("delivered");
    }
    // Before: a v1, a v2, b v2, c v2, d v1 delivered; b v1 superseded; c v1 dead.
    assert_eq!(store.counts().expect("counts"), (0, 5, 1, 1));
    let pruned = store.prune(Utc::now() - Duration::days(7)).expect("prune");
    // a v1, a v2, b v2 (delivered long ago) and b v1 (superseded long ago) go; c v2 stays (a
    // retry of the dead c v1 must see it), d v1 stays (recent, and the route's last success).
    assert_eq!(pruned, 4);
    assert_eq!(store.counts().expect("counts"), (0, 2, 1, 0));
    assert_eq!(store.dead_letters(Some("r")).expect("dead").len(), 1);
    // Retrying the dead letter does not replay the older version over c v2.
    store.retry_dead_letters(Some("r"), None).expect("retry");
    assert!(store.due("r", Utc::now(), 10).expect("due").is_empty());
    assert!(
        store.route_status().expect("status")[0]
            .last_success
            .is_some()
    );
    // The retried dead letter is superseded now, so c v2 needs no keeping any more; then
    // nothing is left to prune.
    assert_eq!(
        store.prune(Utc::now() - Duration::days(7)).expect("prune"),
        1
    );
    assert_eq!(
        store.prune(Utc::now() - Duration::days(7)).expect("prune"),
        0
    );
}
