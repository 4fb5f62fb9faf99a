//! The state through its public API, each behaviour on both backends (a fresh SQLite state,
//! then a fresh PostgreSQL state of a throwaway cluster): detection bookkeeping and a poll's
//! commit, the delivery ledger (idempotent enqueue in item order, supersession, outcomes, dead
//! letters, pruning), route and destination status, drift bookkeeping and poll health; and what
//! only a SQLite file has (WAL, its migrations, a newer schema refused).

mod store_support;

use chrono::{DateTime, Duration, Utc};
use opsync::plugin::ChangeKind;
use opsync::store::{
    Drift, Hold, KnownItem, KnownVault, LedgerEntry, Member, PollWrite, RowUpdate, SCHEMA_VERSION,
    Store, StoreError, UnusablePlugin,
};
use store_support::on_each_backend;

/// A time the ledger keeps exactly (milliseconds).
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("in range")
}

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
        detected_at: ms(Utc::now() - Duration::seconds(5)),
    }
}

fn own_event(id: &str) -> opsync::connect::model::ApiRequest {
    serde_json::from_value(serde_json::json!({
        "requestId": id,
        "timestamp": Utc::now().to_rfc3339(),
        "action": "UPDATE",
        "result": "SUCCESS",
    }))
    .expect("a record")
}

fn id_of(store: &Store, route: &str, item: &str) -> i64 {
    store
        .due(route, Utc::now() + Duration::days(1), 100)
        .expect("due")
        .into_iter()
        .find(|d| d.entry.item_id == item)
        .expect("row")
        .id
}

#[test]
fn enqueue_is_idempotent() {
    on_each_backend(|store| {
        let e = entry("r", "a", 1, ChangeKind::Created);
        store.enqueue(std::slice::from_ref(&e)).expect("first");
        store.enqueue(&[e.clone(), e.clone()]).expect("again");
        store.enqueue(&[]).expect("nothing");
        let due = store.due("r", Utc::now(), 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].entry, e);
        assert_eq!(due[0].attempts, 0);
        assert_eq!(due[0].last_error, None);
        assert_eq!(due[0].next_attempt_at, e.detected_at);
        assert_eq!(due[0].entry.idempotency_key(), "r:a:1:created");
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
        assert_eq!(store.next_due("elsewhere").expect("next due"), None);
    });
}

#[test]
fn due_respects_its_limit_and_order() {
    on_each_backend(|store| {
        let now = ms(Utc::now());
        let mut entries = Vec::new();
        for (i, item) in ["a", "b", "c", "d"].iter().enumerate() {
            let mut e = entry("r", item, 1, ChangeKind::Created);
            // d is detected first, a last.
            e.detected_at = now - Duration::seconds(10 * (i as i64 + 1));
            entries.push(e);
        }
        store.enqueue(&entries).expect("enqueue");
        let due: Vec<String> = store
            .due("r", now, 3)
            .expect("due")
            .into_iter()
            .map(|d| d.entry.item_id)
            .collect();
        assert_eq!(due, ["d", "c", "b"], "oldest next attempt first, limited");
        assert_eq!(store.due("r", now, 0).expect("due").len(), 0);
        assert_eq!(store.due("r", now, usize::MAX).expect("due").len(), 4);
        // Not yet due before their time.
        assert!(
            store
                .due("r", now - Duration::minutes(1), 10)
                .expect("due")
                .is_empty()
        );
        assert_eq!(
            store.next_due("r").expect("next due"),
            Some(now - Duration::seconds(40))
        );
    });
}

#[test]
fn retry_then_deliver_and_a_newer_version_supersedes() {
    on_each_backend(|store| {
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

        store
            .enqueue(&[entry("r", "a", 2, ChangeKind::Updated)])
            .expect("enqueue v2");
        let due = store.due("r", later, 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].entry.version, 2);
        assert_eq!(store.counts().expect("counts"), (1, 0, 0, 1));
        store
            .mark_delivered(again.id, "/a.env", Utc::now(), None)
            .expect("late success accepted");
        store
            .mark_delivered(due[0].id, "/a.env", Utc::now(), None)
            .expect("delivered");
        // Delivered twice is accepted too.
        store
            .mark_delivered(due[0].id, "/a.env", Utc::now(), None)
            .expect("delivered again");
        assert!(store.due("r", later, 10).expect("due").is_empty());
        assert_eq!(store.next_due("r").expect("next due"), None);
        let status = store.route_status().expect("status");
        assert_eq!(status.len(), 1);
        assert_eq!(
            (status[0].pending, status[0].dead, status[0].delivered),
            (0, 0, 2)
        );
        assert!(status[0].last_success.is_some());
        assert_eq!(status[0].oldest_pending, None);
        assert!(matches!(
            store.mark_delivered(9999, "x", Utc::now(), None),
            Err(StoreError::NoSuchDelivery(9999))
        ));
        assert!(matches!(
            store.mark_retry(9999, "x", Utc::now()),
            Err(StoreError::NoSuchDelivery(9999))
        ));
        assert!(matches!(
            store.dead_letter(9999, "x", None),
            Err(StoreError::NoSuchDelivery(9999))
        ));
        // A delivered row is not dead-lettered or retried; both are accepted and ignored.
        store
            .dead_letter(due[0].id, "too late", None)
            .expect("ignored");
        store
            .mark_retry(due[0].id, "too late", Utc::now())
            .expect("ignored");
        assert_eq!(store.counts().expect("counts"), (0, 2, 0, 0));
    });
}

#[test]
fn a_group_of_outcomes_is_recorded_together_and_a_missing_row_fails_alone() {
    on_each_backend(|store| {
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
        assert!(store.record_updates(&[]).expect("empty").is_empty());

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
    });
}

#[test]
fn dead_letters_keep_their_reason_and_can_be_retried() {
    on_each_backend(|store| {
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
        // Newest first.
        assert!(
            all.windows(2)
                .all(|w| (w[0].dead_at, w[0].id) >= (w[1].dead_at, w[1].id))
        );
        let r_only = store.dead_letters(Some("r")).expect("r");
        assert_eq!(r_only.len(), 2);
        assert!(
            r_only
                .iter()
                .all(|d| d.reason == "permanent: bucket does not exist" && d.attempts == 1)
        );
        let found = store
            .find_dead_letter(s.id)
            .expect("find")
            .expect("a dead letter");
        assert_eq!(found.entry.item_id, "c");
        assert_eq!(found.entry.kind, ChangeKind::Deleted);
        assert_eq!(found.reason, "misconfigured: no region");
        assert_eq!(found.entry.tags, ["prod"]);
        assert!(store.find_dead_letter(9999).expect("find").is_none());
        let status = store.route_status().expect("status");
        let r = status.iter().find(|s| s.route == "r").expect("route r");
        assert_eq!((r.pending, r.dead), (0, 2));
        assert_eq!(
            status.iter().map(|s| s.route.as_str()).collect::<Vec<_>>(),
            ["r", "s"]
        );

        assert_eq!(
            store.retry_dead_letters(Some("s"), None).expect("retry s"),
            1
        );
        assert!(store.find_dead_letter(s.id).expect("find").is_none());
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
        assert_eq!(
            store.retry_dead_letters(Some("nope"), None).expect("none"),
            0
        );
        assert_eq!(store.retry_dead_letters(None, None).expect("all"), 1);
        assert!(store.dead_letters(None).expect("left").is_empty());
        assert_eq!(store.counts().expect("counts"), (3, 0, 0, 0));
    });
}

#[test]
fn a_dead_letter_with_a_newer_row_is_superseded_when_retried() {
    on_each_backend(|store| {
        store
            .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
            .expect("enqueue");
        let v1 = id_of(store, "r", "a");
        store.dead_letter(v1, "refused", None).expect("dead");
        store
            .enqueue(&[entry("r", "a", 2, ChangeKind::Updated)])
            .expect("enqueue v2");
        assert_eq!(store.counts().expect("counts"), (1, 0, 1, 0));
        assert_eq!(store.retry_dead_letters(None, None).expect("retry"), 1);
        assert_eq!(store.counts().expect("counts"), (1, 0, 0, 1));
        let due = store.due("r", Utc::now(), 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].entry.version, 2);
        // A dead letter stays dead when dead-lettered again (its reason is replaced).
        store.dead_letter(due[0].id, "first", None).expect("dead");
        store.dead_letter(due[0].id, "second", None).expect("dead");
        let dead = store
            .find_dead_letter(due[0].id)
            .expect("find")
            .expect("dead");
        assert_eq!((dead.reason.as_str(), dead.attempts), ("second", 2));
        // A superseded row is not dead-lettered.
        store.dead_letter(v1, "late", None).expect("ignored");
        assert_eq!(store.counts().expect("counts"), (0, 0, 1, 1));
    });
}

#[test]
fn error_texts_are_clipped() {
    on_each_backend(|store| {
        store
            .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
            .expect("enqueue");
        let d = store.due("r", Utc::now(), 1).expect("due").remove(0);
        let long = "é".repeat(5000);
        store.mark_retry(d.id, &long, Utc::now()).expect("retry");
        let d = store.due("r", Utc::now(), 1).expect("due").remove(0);
        let kept = d.last_error.expect("kept");
        assert!(kept.len() <= opsync::store::ERROR_MAX && !kept.is_empty());
        store.dead_letter(d.id, &long, None).expect("dead");
        let dead = store.find_dead_letter(d.id).expect("find").expect("dead");
        assert!(dead.reason.len() <= opsync::store::ERROR_MAX && !dead.reason.is_empty());
    });
}

#[test]
fn holds_show_in_route_status_and_clear() {
    on_each_backend(|store| {
        let hold = Hold {
            route: "r".into(),
            deletions: 8,
            total: 10,
            max_ratio: 0.2,
            since: ms(Utc::now()),
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
        assert_eq!(store.holds().expect("holds"), std::slice::from_ref(&hold));
        // A hold renewed keeps its start and takes the new numbers.
        let renewed = Hold {
            deletions: 9,
            since: hold.since + Duration::hours(1),
            ..hold.clone()
        };
        store
            .commit_poll(&PollWrite {
                holds: vec![renewed],
                ..PollWrite::default()
            })
            .expect("renew");
        let held = store.holds().expect("holds");
        assert_eq!((held[0].deletions, held[0].since), (9, hold.since));
        // A held route with ledger rows shows both.
        store
            .enqueue(&[entry("r", "a", 1, ChangeKind::Created)])
            .expect("enqueue");
        let status = store.route_status().expect("status");
        assert_eq!((status.len(), status[0].pending), (1, 1));
        assert!(status[0].hold.is_some());
        store
            .commit_poll(&PollWrite {
                holds_cleared: vec!["r".into()],
                ..PollWrite::default()
            })
            .expect("clear");
        assert!(store.holds().expect("holds").is_empty());
        assert!(store.route_status().expect("status")[0].hold.is_none());
    });
}

#[test]
fn clones_share_one_database_across_threads() {
    on_each_backend(|store| {
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
    });
}

#[test]
fn concurrent_versions_of_one_item_leave_one_pending() {
    on_each_backend(|store| {
        const THREADS: u64 = 4;
        const ROUNDS: u64 = 20;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS as usize));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let s = store.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        // Every thread enqueues its own version of the round's item at once;
                        // other items after it keep each transaction open a while after.
                        let mut changes = vec![entry(
                            "r",
                            &format!("a{round:02}"),
                            1 + t,
                            ChangeKind::Updated,
                        )];
                        changes.extend((0..20).map(|i| {
                            entry("r", &format!("b-{round}-{t}-{i}"), 1, ChangeKind::Created)
                        }));
                        barrier.wait();
                        s.enqueue(&changes).expect("enqueue");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let mut pending_a = std::collections::HashMap::<String, u64>::new();
        for d in store.due("r", Utc::now(), usize::MAX).expect("due") {
            if d.entry.item_id.starts_with('a') {
                *pending_a.entry(d.entry.item_id).or_default() += 1;
            }
        }
        assert_eq!(pending_a.len(), ROUNDS as usize);
        assert!(
            pending_a.values().all(|n| *n == 1),
            "one pending version of each item: {pending_a:?}"
        );
        let (_, _, _, superseded) = store.counts().expect("counts");
        assert_eq!(superseded, ROUNDS * (THREADS - 1));
    });
}

#[test]
fn a_retry_of_a_superseded_row_does_not_revive_it() {
    on_each_backend(|store| {
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
    });
}

#[test]
fn the_deletion_of_a_renamed_items_old_key_is_not_superseded_by_the_new_keys_write() {
    on_each_backend(|store| {
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
        assert_eq!(due[0].entry.category, "LOGIN");
        assert_eq!(due[0].entry.tags, ["prod"]);
        let mut back = entry("r", "a", 3, ChangeKind::Updated);
        back.key = "Demo/a".into();
        let mut delete_second = entry("r", "a", 2, ChangeKind::Deleted);
        delete_second.key = "Demo/renamed".into();
        // Detected together (one poll): the ledger's order alone decides.
        back.detected_at = delete_second.detected_at;
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
    });
}

#[test]
fn a_polls_changes_are_queued_in_item_order_each_items_own_in_the_order_given() {
    on_each_backend(|store| {
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
    });
}

#[test]
fn pruning_removes_old_finished_rows_and_keeps_dead_letters_and_what_they_need() {
    on_each_backend(|store| {
        let long_ago = Utc::now() - Duration::days(30);
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
        assert_eq!(store.counts().expect("counts"), (0, 5, 1, 1));
        let pruned = store.prune(Utc::now() - Duration::days(7)).expect("prune");
        assert_eq!(pruned, 4);
        assert_eq!(store.counts().expect("counts"), (0, 2, 1, 0));
        assert_eq!(store.dead_letters(Some("r")).expect("dead").len(), 1);
        store.retry_dead_letters(Some("r"), None).expect("retry");
        assert!(store.due("r", Utc::now(), 10).expect("due").is_empty());
        assert!(
            store.route_status().expect("status")[0]
                .last_success
                .is_some()
        );
        assert_eq!(
            store.prune(Utc::now() - Duration::days(7)).expect("prune"),
            1
        );
        assert_eq!(
            store.prune(Utc::now() - Duration::days(7)).expect("prune"),
            0
        );
    });
}

#[test]
fn pruning_keeps_each_routes_latest_delivery() {
    on_each_backend(|store| {
        let long_ago = Utc::now() - Duration::days(30);
        store
            .enqueue(&[
                entry("r", "a", 1, ChangeKind::Created),
                entry("r", "b", 1, ChangeKind::Created),
                entry("s", "c", 1, ChangeKind::Created),
            ])
            .expect("enqueue");
        let (a, b, c) = (
            id_of(store, "r", "a"),
            id_of(store, "r", "b"),
            id_of(store, "s", "c"),
        );
        store
            .mark_delivered(a, "/a", long_ago, None)
            .expect("delivered");
        store
            .mark_delivered(b, "/b", long_ago + Duration::hours(1), None)
            .expect("delivered");
        store
            .mark_delivered(c, "/c", long_ago, None)
            .expect("delivered");
        assert_eq!(store.prune(Utc::now()).expect("prune"), 1, "only r's a");
        assert_eq!(store.counts().expect("counts"), (0, 2, 0, 0));
        let status = store.route_status().expect("status");
        assert_eq!(
            status
                .iter()
                .map(|s| (
                    s.route.as_str(),
                    s.last_success.map(|t| t.timestamp_millis())
                ))
                .collect::<Vec<_>>(),
            [
                (
                    "r",
                    Some((long_ago + Duration::hours(1)).timestamp_millis())
                ),
                ("s", Some(long_ago.timestamp_millis()))
            ]
        );
    });
}

#[test]
fn destination_status_counts_each_destination_and_shows_the_newest_error() {
    on_each_backend(|store| {
        let now = ms(Utc::now());
        let mut other = entry("r", "a", 1, ChangeKind::Created);
        other.destination = "vault".into();
        let b = entry("r", "b", 1, ChangeKind::Created);
        store
            .enqueue(&[
                entry("r", "a", 1, ChangeKind::Created),
                b.clone(),
                entry("r", "c", 1, ChangeKind::Created),
                other,
            ])
            .expect("enqueue");
        assert!(store.destination_status().expect("status").len() == 2);
        let due = store.due("r", now, 10).expect("due");
        let row = |dest: &str, item: &str| {
            due.iter()
                .find(|d| d.entry.destination == dest && d.entry.item_id == item)
                .expect("row")
                .id
        };
        store
            .mark_delivered(row("files", "a"), "/a", now, None)
            .expect("delivered");
        store
            .mark_retry(
                row("files", "b"),
                "older error",
                now + Duration::seconds(10),
            )
            .expect("retry");
        store
            .mark_retry(
                row("files", "c"),
                "newer error",
                now + Duration::seconds(20),
            )
            .expect("retry");
        store
            .dead_letter(row("vault", "a"), "vault refused", None)
            .expect("dead");
        let status = store.destination_status().expect("status");
        assert_eq!(status.len(), 2);
        let files = &status[0];
        assert_eq!(
            (files.route.as_str(), files.destination.as_str()),
            ("r", "files")
        );
        assert_eq!((files.pending, files.retrying, files.dead), (2, 2, 0));
        assert_eq!(files.oldest_pending, Some(b.detected_at));
        assert_eq!(files.last_delivered, Some(now));
        assert_eq!(files.last_error.as_deref(), Some("newer error"));
        let vault = &status[1];
        assert_eq!(vault.destination, "vault");
        assert_eq!((vault.pending, vault.retrying, vault.dead), (0, 0, 1));
        assert_eq!((vault.oldest_pending, vault.last_delivered), (None, None));
        assert_eq!(vault.last_error.as_deref(), Some("vault refused"));
    });
}

#[test]
fn empty_state_reads_empty() {
    on_each_backend(|store| {
        assert_eq!(store.counts().expect("counts"), (0, 0, 0, 0));
        assert!(store.route_status().expect("status").is_empty());
        assert!(store.destination_status().expect("status").is_empty());
        assert!(store.holds().expect("holds").is_empty());
        assert!(store.dead_letters(None).expect("dead").is_empty());
        assert!(store.known_vaults().expect("vaults").is_empty());
        assert!(store.known_items("v1").expect("items").is_empty());
        assert!(store.members("v1").expect("members").is_empty());
        assert!(store.member_counts().expect("counts").is_empty());
        assert_eq!(store.meta("routes_fingerprint").expect("meta"), None);
        assert!(store.drift_counts().expect("drift").is_empty());
        assert!(
            store
                .fingerprinted("r", "files", 10)
                .expect("fp")
                .is_empty()
        );
        assert_eq!(store.prune(Utc::now()).expect("prune"), 0);
        assert_eq!(store.retry_dead_letters(None, None).expect("retry"), 0);
        assert_eq!(store.commit_poll(&PollWrite::default()).expect("commit"), 0);
    });
}

#[test]
fn a_polls_commit_writes_everything_it_learned() {
    on_each_backend(|store| {
        let listed_at = ms(Utc::now());
        let vault = KnownVault {
            vault_id: "v1".into(),
            name: "Demo".into(),
            content_version: 7,
            listed_at,
        };
        let items = vec![
            KnownItem {
                vault_id: "v1".into(),
                item_id: "a".into(),
                version: 1,
                meta_hash: "ha".into(),
            },
            KnownItem {
                vault_id: "v1".into(),
                item_id: "b".into(),
                version: 2,
                meta_hash: "hb".into(),
            },
        ];
        let member = Member {
            route: "other".into(),
            vault_id: "v1".into(),
            item_id: "b".into(),
            version: 2,
            title: "B".into(),
            key: "B".into(),
            category: "PASSWORD".into(),
            tags: vec!["x".into(), "y".into()],
        };
        let entries = vec![
            entry("r", "b", 2, ChangeKind::Created),
            entry("r", "a", 1, ChangeKind::Created),
        ];
        let added = store
            .commit_poll(&PollWrite {
                entries: entries.clone(),
                vaults: vec![vault.clone()],
                items: items.clone(),
                members: vec![member.clone()],
                member_entries: vec![0, 1, 99],
                meta: vec![("routes_fingerprint".into(), "abc".into())],
                ..PollWrite::default()
            })
            .expect("commit");
        assert_eq!(added, 2);
        assert_eq!(store.known_vaults().expect("vaults")["v1"], vault);
        let known = store.known_items("v1").expect("items");
        assert_eq!(known.len(), 2);
        assert_eq!(known["b"], items[1]);
        assert!(store.known_items("v2").expect("items").is_empty());
        let mut members = store.members("v1").expect("members");
        members.sort_by(|x, y| (&x.route, &x.item_id).cmp(&(&y.route, &y.item_id)));
        assert_eq!(members.len(), 3);
        assert_eq!(members[0], member);
        assert_eq!(
            members[1],
            Member {
                route: "r".into(),
                vault_id: "v1".into(),
                item_id: "a".into(),
                version: 1,
                title: "title of a".into(),
                key: "Demo/a".into(),
                category: "LOGIN".into(),
                tags: vec!["prod".into()],
            }
        );
        let counts = store.member_counts().expect("counts");
        assert_eq!((counts["r"], counts["other"], counts.len()), (2, 1, 2));
        assert_eq!(
            store.meta("routes_fingerprint").expect("meta").as_deref(),
            Some("abc")
        );
        assert_eq!(store.due("r", Utc::now(), 10).expect("due").len(), 2);

        // The next poll: the same entries again (nothing new), b gone, a updated, vault
        // renamed, a member updated, meta replaced.
        let renamed = KnownVault {
            name: "Demo 2".into(),
            content_version: 8,
            ..vault.clone()
        };
        let a2 = KnownItem {
            version: 3,
            meta_hash: "ha3".into(),
            ..items[0].clone()
        };
        let mut member2 = member.clone();
        member2.item_id = "a".into();
        member2.tags = vec![];
        let added = store
            .commit_poll(&PollWrite {
                entries,
                vaults: vec![renamed.clone()],
                items: vec![a2.clone()],
                items_gone: vec![("v1".into(), "b".into())],
                members: vec![member2.clone()],
                members_gone: vec![
                    ("other".into(), "v1".into(), "b".into()),
                    ("r".into(), "v1".into(), "b".into()),
                ],
                meta: vec![("routes_fingerprint".into(), "def".into())],
                ..PollWrite::default()
            })
            .expect("commit");
        assert_eq!(added, 0, "already queued");
        assert_eq!(store.known_vaults().expect("vaults")["v1"], renamed);
        let known = store.known_items("v1").expect("items");
        assert_eq!(known.len(), 1);
        assert_eq!(known["a"], a2);
        let mut members = store.members("v1").expect("members");
        members.sort_by(|x, y| (&x.route, &x.item_id).cmp(&(&y.route, &y.item_id)));
        assert_eq!(members.len(), 2);
        assert_eq!(members[0], member2);
        assert_eq!(members[1].route, "r");
        let counts = store.member_counts().expect("counts");
        assert_eq!((counts["r"], counts["other"]), (1, 1));
        assert_eq!(
            store.meta("routes_fingerprint").expect("meta").as_deref(),
            Some("def")
        );
    });
}

#[test]
fn own_events_commit_with_their_outcome_once() {
    on_each_backend(|store| {
        store
            .enqueue(&[
                entry("r", "a", 1, ChangeKind::Created),
                entry("r", "b", 1, ChangeKind::Created),
            ])
            .expect("enqueue");
        let (a, b) = (id_of(store, "r", "a"), id_of(store, "r", "b"));
        let delivered = own_event("own-delivered");
        let dead = own_event("own-dead");
        store
            .mark_delivered(a, "/a", Utc::now(), Some(&delivered))
            .expect("delivered");
        store
            .mark_delivered(a, "/a", Utc::now(), Some(&delivered))
            .expect("delivered again");
        store.dead_letter(b, "refused", Some(&dead)).expect("dead");
        // No row: no event.
        assert!(
            store
                .mark_delivered(9999, "/x", Utc::now(), Some(&own_event("lost")))
                .is_err()
        );
        // A row left alone records no event either.
        store
            .dead_letter(a, "too late", Some(&own_event("ignored")))
            .expect("ignored");
        let batch = store.audit_batch("sink", 0, 10, true).expect("batch");
        let ids: Vec<&str> = batch.iter().map(|r| r.record.request_id.as_str()).collect();
        assert_eq!(ids, ["own-delivered", "own-dead"]);
        assert!(batch.iter().all(|r| r.own));
        assert!(
            store
                .audit_batch("sink", 0, 10, false)
                .expect("batch")
                .is_empty()
        );
    });
}

#[test]
fn fingerprints_read_backs_and_repairs() {
    on_each_backend(|store| {
        let now = ms(Utc::now());
        store
            .commit_poll(&PollWrite {
                entries: vec![
                    entry("r", "a", 1, ChangeKind::Created),
                    entry("r", "b", 1, ChangeKind::Created),
                ],
                vaults: vec![KnownVault {
                    vault_id: "v1".into(),
                    name: "Demo".into(),
                    content_version: 1,
                    listed_at: now,
                }],
                member_entries: vec![0],
                ..PollWrite::default()
            })
            .expect("commit");
        let (a, b) = (id_of(store, "r", "a"), id_of(store, "r", "b"));
        let recorded = store
            .record_updates(&[
                (
                    a,
                    RowUpdate::Delivered {
                        location: "/a",
                        at: now,
                        fingerprint: Some("fp-a"),
                        own_event: None,
                    },
                ),
                (
                    b,
                    RowUpdate::Delivered {
                        location: "/b",
                        at: now,
                        fingerprint: Some("fp-b"),
                        own_event: None,
                    },
                ),
            ])
            .expect("delivered");
        assert!(recorded.iter().all(Result::is_ok));
        let fp = store.fingerprinted("r", "files", 10).expect("fingerprints");
        assert_eq!(fp.len(), 2);
        assert_eq!(
            (fp[0].item_id.as_str(), fp[0].fingerprint.as_str()),
            ("a", "fp-a")
        );
        assert_eq!(fp[0].vault_name, "Demo");
        assert_eq!(fp[0].title, "title of a", "from the route's member");
        assert_eq!(fp[0].category, "LOGIN");
        assert_eq!(fp[0].tags, ["prod"]);
        assert_eq!(fp[1].title, "", "b is no member");
        assert_eq!(fp[1].tags, Vec::<String>::new());
        assert_eq!((fp[0].checked_at, fp[0].drift), (None, None));
        assert_eq!((fp[0].version, fp[0].key.as_str()), (1, "Demo/a"));
        assert_eq!(store.fingerprinted("r", "files", 1).expect("fp").len(), 1);
        assert!(
            store
                .fingerprinted("r", "other", 10)
                .expect("fp")
                .is_empty()
        );

        // a reads back clean, b drifted: b comes first now (least recently checked).
        store
            .note_read_back("r", "files", "a", None, now)
            .expect("read back");
        store
            .note_read_back(
                "r",
                "files",
                "b",
                Some(Drift::Changed),
                now - Duration::seconds(1),
            )
            .expect("read back");
        let fp = store.fingerprinted("r", "files", 10).expect("fp");
        assert_eq!(
            fp.iter()
                .map(|f| (f.item_id.as_str(), f.drift, f.checked_at))
                .collect::<Vec<_>>(),
            [
                ("b", Some(Drift::Changed), Some(now - Duration::seconds(1))),
                ("a", None, Some(now)),
            ]
        );
        store
            .note_read_back("r", "files", "b", Some(Drift::Missing), now)
            .expect("read back");
        assert_eq!(
            store.drift_counts().expect("drift"),
            [("r".to_string(), "files".to_string(), 1)]
        );

        // The repair: a pending `repaired` change of the version delivered.
        assert!(
            store
                .requeue_delivered("r", "files", "b", now)
                .expect("repair")
        );
        let due = store.due("r", now, 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(
            (
                due[0].entry.kind,
                due[0].entry.version,
                due[0].entry.key.as_str()
            ),
            (ChangeKind::Repaired, 1, "Demo/b")
        );
        assert_eq!(due[0].entry.detected_at, now);
        assert!(
            !store
                .requeue_delivered("r", "files", "b", now)
                .expect("repair"),
            "already on its way"
        );
        assert!(
            !store
                .requeue_delivered("r", "files", "zz", now)
                .expect("repair"),
            "never delivered"
        );
        // The repair fails, then is given up; a second repair reuses its row.
        store.dead_letter(due[0].id, "refused", None).expect("dead");
        let later = now + Duration::minutes(1);
        assert!(
            store
                .requeue_delivered("r", "files", "b", later)
                .expect("repair")
        );
        let again = store.due("r", later, 10).expect("due");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, due[0].id);
        assert_eq!((again[0].attempts, again[0].entry.detected_at), (0, later));
        // Delivered with a fingerprint: the drift is forgotten.
        store
            .record_updates(&[(
                again[0].id,
                RowUpdate::Delivered {
                    location: "/b",
                    at: later,
                    fingerprint: Some("fp-b2"),
                    own_event: None,
                },
            )])
            .expect("delivered");
        assert!(store.drift_counts().expect("drift").is_empty());
        let fp = store.fingerprinted("r", "files", 10).expect("fp");
        let fb = fp.iter().find(|f| f.item_id == "b").expect("b");
        assert_eq!((fb.fingerprint.as_str(), fb.drift), ("fp-b2", None));

        // A delivered deletion of the key forgets its fingerprint.
        store
            .enqueue(&[entry("r", "a", 2, ChangeKind::Deleted)])
            .expect("enqueue");
        let del = id_of(store, "r", "a");
        store
            .mark_delivered(del, "/a", later, None)
            .expect("delivered");
        let fp = store.fingerprinted("r", "files", 10).expect("fp");
        assert_eq!(
            fp.iter().map(|f| f.item_id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
    });
}

#[test]
fn poll_outcomes_and_unusable_plugins_round_trip() {
    on_each_backend(|store| {
        assert_eq!(
            store.poll_health().expect("health"),
            opsync::store::PollHealth::default()
        );
        assert!(store.unusable_plugins().expect("plugins").is_empty());
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).expect("time");
        store.note_poll_ok(t).expect("ok");
        store
            .note_poll_error(t, "GET /v1/vaults: 503")
            .expect("error");
        let h = store.poll_health().expect("health");
        assert_eq!(h.last_ok, Some(t));
        let e = h.last_error.expect("an error");
        assert_eq!((e.at, e.message.as_str()), (t, "GET /v1/vaults: 503"));
        let later = t + Duration::minutes(1);
        store.note_poll_ok(later).expect("ok");
        assert_eq!(store.poll_health().expect("health").last_ok, Some(later));
        let broken = vec![UnusablePlugin {
            name: "kv".into(),
            reason: "sha256 mismatch".into(),
        }];
        store.note_unusable_plugins(&broken).expect("note");
        assert_eq!(store.unusable_plugins().expect("plugins"), broken);
        store.note_unusable_plugins(&[]).expect("note");
        assert!(store.unusable_plugins().expect("plugins").is_empty());
    });
}

#[test]
fn a_long_poll_error_is_cut() {
    on_each_backend(|store| {
        let long = "x".repeat(opsync::store::ERROR_MAX * 2);
        store.note_poll_error(Utc::now(), &long).expect("note");
        let noted = store
            .poll_health()
            .expect("health")
            .last_error
            .expect("noted");
        assert_eq!(noted.message.len(), opsync::store::ERROR_MAX);
    });
}

#[test]
fn each_backend_opens_writable() {
    on_each_backend(|store| {
        store.check_writable().expect("writable");
        assert!(["sqlite", "postgres"].contains(&store.backend_name()));
    });
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
