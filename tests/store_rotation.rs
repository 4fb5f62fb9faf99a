//! The rotation tables' contract on both backends: slots, the rotation in progress, results and
//! the job lease (including, on PostgreSQL, connections racing for it).

mod store_support;

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use opsync::domain::Step;
use opsync::store::{ERROR_MAX, Lease, Store, StoreError};
use store_support::on_each_backend;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn lease(owner: &str, pid: i64, until: DateTime<Utc>) -> Lease {
    Lease {
        owner: owner.to_owned(),
        pid,
        until,
        instance: Some(format!("instance-{owner}")),
        place: Some("boot=b pidns=1 host=h".to_owned()),
    }
}

fn lost<T: std::fmt::Debug>(r: Result<T, StoreError>, job: &str) {
    match r {
        Err(StoreError::LeaseLost(j)) => assert_eq!(j, job),
        other => panic!("expected LeaseLost({job}), got {other:?}"),
    }
}

/// A job with `a`'s lease and a scheduled run at step `create`.
fn running(store: &Store, job: &str, now: DateTime<Utc>, slot: DateTime<Utc>) {
    let until = now + Duration::minutes(5);
    assert!(
        store
            .rotation_acquire(job, &lease("a", 1, until), now, |_| true)
            .expect("lease")
    );
    store
        .rotation_begin(job, "a", &format!("{job}:slot"), slot, false, now)
        .expect("begin");
}

#[test]
fn a_job_row_is_made_on_first_sight_and_kept() {
    on_each_backend(|store| {
        let first = t("2025-01-01T00:00:00Z");
        let s = store.rotation_job("j", first).expect("state");
        assert_eq!(s.job, "j");
        assert_eq!(s.first_seen, first);
        assert_eq!(s.last_slot, None);
        assert_eq!(s.last_result, None);
        assert_eq!(s.last_error, None);
        assert_eq!(s.last_finished_at, None);
        assert_eq!(s.last_success_at, None);
        assert_eq!(s.run, None);
        assert_eq!(s.lease, None);
        // Seen again later: the first sighting stays.
        let again = store
            .rotation_job("j", t("2025-02-01T00:00:00Z"))
            .expect("again");
        assert_eq!(again, s);
    });
}

#[test]
fn rotation_jobs_lists_every_job_with_a_row_by_name() {
    on_each_backend(|store| {
        assert!(store.rotation_jobs().expect("none").is_empty());
        let now = t("2025-01-01T00:00:00Z");
        for job in ["b", "a", "C", "a-1"] {
            store.rotation_job(job, now).expect("row");
        }
        // The acquire makes a row too.
        assert!(
            store
                .rotation_acquire("0", &lease("x", 1, now), now, |_| true)
                .expect("lease")
        );
        let names: Vec<String> = store
            .rotation_jobs()
            .expect("jobs")
            .into_iter()
            .map(|j| j.job)
            .collect();
        assert_eq!(names, ["0", "C", "a", "a-1", "b"]);
        let all = store.rotation_jobs().expect("jobs");
        assert_eq!(all[0].lease, Some(lease("x", 1, now)));
        assert_eq!(all[1], store.rotation_job("C", now).expect("C"));
    });
}

#[test]
fn the_lease_records_its_holder_and_alive_sees_it() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let until = t("2025-01-01T00:05:00Z");
        let a = lease("a", 7, until);
        assert!(store.rotation_acquire("j", &a, now, |_| true).expect("a"));
        assert_eq!(
            store.rotation_job("j", now).expect("state").lease,
            Some(a.clone())
        );
        let seen = RefCell::new(None);
        let b = lease("b", 8, until);
        let taken = store
            .rotation_acquire("j", &b, now, |held| {
                seen.replace(Some(held.clone()));
                false
            })
            .expect("b");
        assert!(taken);
        assert_eq!(
            seen.into_inner(),
            Some(a),
            "alive is asked about the holder"
        );
        store
            .rotation_renew("j", "b", t("2025-01-01T00:09:00Z"))
            .expect("renew");
        let held = store
            .rotation_job("j", now)
            .expect("state")
            .lease
            .expect("lease");
        assert_eq!(held.until, t("2025-01-01T00:09:00Z"));
        assert_eq!(held.instance.as_deref(), Some("instance-b"));
        store.rotation_release("j", "b").expect("release");
        assert_eq!(store.rotation_job("j", now).expect("state").lease, None);
    });
}

#[test]
fn lease_keeps_a_second_owner_out_until_it_expires_or_dies() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let until = t("2025-01-01T00:05:00Z");
        assert!(
            store
                .rotation_acquire("j", &lease("a", 1, until), now, |_| true)
                .expect("a")
        );
        assert!(
            !store
                .rotation_acquire("j", &lease("b", 2, until), now, |_| true)
                .expect("b")
        );
        assert_eq!(
            store.rotation_job("j", now).expect("s").lease,
            Some(lease("a", 1, until)),
            "a refused acquire leaves the holder's lease as it was"
        );
        // The holder's process is gone: the lease is free.
        assert!(
            store
                .rotation_acquire("j", &lease("b", 2, until), now, |_| false)
                .expect("b")
        );
        // Past its time, too.
        let later = t("2025-01-01T00:06:00Z");
        assert!(
            store
                .rotation_acquire("j", &lease("a", 1, later), later, |_| true)
                .expect("a")
        );
        store.rotation_release("j", "a").expect("release");
        assert!(
            store
                .rotation_acquire("j", &lease("b", 2, until), now, |_| true)
                .expect("b")
        );
    });
}

#[test]
fn alive_is_asked_only_about_another_owner_holding_the_lease_past_now() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let until = t("2025-01-01T00:05:00Z");
        let asked = Cell::new(0);
        let ask = |_: &Lease| {
            asked.set(asked.get() + 1);
            true
        };
        // A free lease.
        assert!(
            store
                .rotation_acquire("j", &lease("a", 1, until), now, ask)
                .expect("a")
        );
        // Its own holder takes it again (and moves it on).
        let longer = t("2025-01-01T00:10:00Z");
        assert!(
            store
                .rotation_acquire("j", &lease("a", 1, longer), now, ask)
                .expect("a again")
        );
        assert_eq!(
            store.rotation_job("j", now).expect("s").lease,
            Some(lease("a", 1, longer))
        );
        // Exactly at its end the lease is free.
        assert!(
            store
                .rotation_acquire("j", &lease("b", 2, longer), longer, ask)
                .expect("b at the end")
        );
        assert_eq!(asked.get(), 0, "never asked about a free or own lease");
        assert!(
            !store
                .rotation_acquire("j", &lease("c", 3, longer), now, ask)
                .expect("c")
        );
        assert_eq!(asked.get(), 1);
    });
}

#[test]
fn a_lease_without_holder_ids_reads_back_without_them() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let old = Lease {
            owner: "old-owner".into(),
            pid: 42,
            until: t("2025-01-01T00:05:00Z"),
            instance: None,
            place: None,
        };
        assert!(store.rotation_acquire("j", &old, now, |_| true).expect("a"));
        assert_eq!(store.rotation_job("j", now).expect("s").lease, Some(old));
    });
}

#[test]
fn a_run_moves_through_steps_and_ends() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let until = t("2025-01-01T00:05:00Z");
        let slot = t("2024-12-31T23:00:00Z");
        assert!(
            store
                .rotation_acquire("j", &lease("a", 1, until), now, |_| true)
                .expect("lease")
        );
        store
            .rotation_begin("j", "a", "j:slot", slot, false, now)
            .expect("begin");
        // Only one run at a time.
        lost(
            store.rotation_begin("j", "a", "j:other", slot, false, now),
            "j",
        );
        let s = store.rotation_job("j", now).expect("state");
        assert_eq!(s.last_slot, Some(slot));
        let run = s.run.expect("run");
        assert_eq!((run.step, run.key.as_str()), (Step::Create, "j:slot"));
        assert_eq!(run.slot, slot);
        assert!(!run.manual);
        assert_eq!(run.attempt, 0);
        assert_eq!(run.started_at, now);
        assert_eq!((run.retry_at, run.step_error), (None, None));
        let renewed = t("2025-01-01T00:07:00Z");
        store
            .rotation_step("j", "a", Step::Set, renewed)
            .expect("set");
        assert_eq!(
            store
                .rotation_job("j", now)
                .expect("s")
                .lease
                .expect("lease")
                .until,
            renewed,
            "a step renews the lease"
        );
        let retry = t("2025-01-01T00:01:00Z");
        let n = store
            .rotation_attempt_failed("j", "a", "target down", retry)
            .expect("failed");
        assert_eq!(n, 1);
        let run = store
            .rotation_job("j", now)
            .expect("state")
            .run
            .expect("run");
        assert_eq!((run.step, run.attempt), (Step::Set, 1));
        assert_eq!(run.step_error.as_deref(), Some("target down"));
        assert_eq!(run.retry_at, Some(retry));
        let n = store
            .rotation_attempt_failed("j", "a", "still down", retry)
            .expect("failed again");
        assert_eq!(n, 2);
        // Another owner cannot move it.
        lost(store.rotation_step("j", "b", Step::Test, until), "j");
        lost(store.rotation_attempt_failed("j", "b", "x", retry), "j");
        lost(store.rotation_renew("j", "b", until), "j");
        lost(store.rotation_end("j", "b", "failed", None, until), "j");
        // The next step starts its attempts over.
        store
            .rotation_step("j", "a", Step::Test, until)
            .expect("test");
        let run = store.rotation_job("j", now).expect("s").run.expect("run");
        assert_eq!((run.step, run.attempt), (Step::Test, 0));
        assert_eq!((run.retry_at, run.step_error), (None, None));
        assert_eq!(run.key, "j:slot", "the key stays");
        store
            .rotation_end("j", "a", "succeeded", None, until)
            .expect("end");
        let s = store.rotation_job("j", now).expect("state");
        assert!(s.run.is_none());
        assert_eq!(s.last_result.as_deref(), Some("succeeded"));
        assert_eq!(s.last_error, None);
        assert_eq!(s.last_finished_at, Some(until));
        assert_eq!(s.last_success_at, Some(until));
        assert_eq!(s.lease.as_ref().map(|l| l.owner.as_str()), Some("a"));
        // No run in progress: no step to move to or fail.
        lost(store.rotation_step("j", "a", Step::Set, until), "j");
        lost(store.rotation_attempt_failed("j", "a", "x", retry), "j");
        // A skipped slot moves last_slot forward, never back.
        store
            .rotation_skip("j", t("2024-12-30T00:00:00Z"), "late", now)
            .expect("skip");
        let s = store.rotation_job("j", now).expect("s");
        assert_eq!(s.last_slot, Some(slot));
        assert_eq!(s.last_result.as_deref(), Some("succeeded"));
        store
            .rotation_skip("j", t("2025-01-01T00:00:00Z"), "late", now)
            .expect("skip");
        let s = store.rotation_job("j", now).expect("s");
        assert_eq!(s.last_slot, Some(t("2025-01-01T00:00:00Z")));
        assert_eq!(s.last_result.as_deref(), Some("skipped"));
        assert_eq!(s.last_error.as_deref(), Some("late"));
        assert_eq!(s.last_finished_at, Some(now));
        assert_eq!(s.last_success_at, Some(until), "a skip is no success");
    });
}

#[test]
fn a_manual_run_leaves_the_last_slot_and_a_failure_the_last_success() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let until = t("2025-01-01T00:05:00Z");
        let slot = t("2024-12-31T23:00:00Z");
        running(store, "j", now, slot);
        store
            .rotation_end("j", "a", "succeeded", None, now)
            .expect("end");
        let asked = t("2025-01-01T00:02:00Z");
        store
            .rotation_begin("j", "a", "j:manual", asked, true, asked)
            .expect("manual");
        let s = store.rotation_job("j", now).expect("s");
        assert_eq!(s.last_slot, Some(slot), "a manual run is no slot");
        let run = s.run.expect("run");
        assert!(run.manual);
        assert_eq!((run.slot, run.key.as_str()), (asked, "j:manual"));
        let long = "é".repeat(ERROR_MAX);
        store
            .rotation_end("j", "a", "rolled_back", Some(&long), until)
            .expect("end");
        let s = store.rotation_job("j", now).expect("s");
        assert_eq!(s.last_result.as_deref(), Some("rolled_back"));
        let error = s.last_error.expect("error");
        assert!(error.len() <= ERROR_MAX, "clipped to {}", error.len());
        assert!(long.starts_with(&error) && !error.is_empty());
        assert_eq!(s.last_finished_at, Some(until));
        assert_eq!(s.last_success_at, Some(now), "the last success stays");
        assert!(s.run.is_none());
    });
}

#[test]
fn long_step_errors_and_skip_reasons_are_clipped() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        running(store, "j", now, now);
        let long = "x".repeat(ERROR_MAX + 100);
        store
            .rotation_attempt_failed("j", "a", &long, now)
            .expect("failed");
        let run = store.rotation_job("j", now).expect("s").run.expect("run");
        assert_eq!(run.step_error.map(|e| e.len()), Some(ERROR_MAX));
        store.rotation_job("k", now).expect("row");
        store.rotation_skip("k", now, &long, now).expect("skip");
        let s = store.rotation_job("k", now).expect("s");
        assert_eq!(s.last_error.map(|e| e.len()), Some(ERROR_MAX));
    });
}

#[test]
fn a_slot_is_not_skipped_while_a_run_is_in_progress_nor_for_an_unknown_job() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let slot = t("2024-12-31T23:00:00Z");
        running(store, "j", now, slot);
        store
            .rotation_skip("j", now, "late", now)
            .expect("skip is a no-op");
        let s = store.rotation_job("j", now).expect("s");
        assert_eq!(s.last_slot, Some(slot));
        assert_eq!(s.last_result, None);
        assert!(s.run.is_some());
        // A job without a row gets none from a skip.
        store
            .rotation_skip("ghost", now, "late", now)
            .expect("skip");
        assert_eq!(store.rotation_jobs().expect("jobs").len(), 1);
        // The same slot again is no move forward either.
        store.rotation_job("k", now).expect("row");
        store.rotation_skip("k", slot, "first", now).expect("skip");
        store.rotation_skip("k", slot, "second", now).expect("skip");
        let s = store.rotation_job("k", now).expect("s");
        assert_eq!(s.last_error.as_deref(), Some("first"));
    });
}

#[test]
fn writes_without_the_lease_are_refused_and_change_nothing() {
    on_each_backend(|store| {
        let now = t("2025-01-01T00:00:00Z");
        let until = now + Duration::minutes(5);
        // No lease at all (and no row yet for some).
        lost(
            store.rotation_begin("free", "a", "k", now, false, now),
            "free",
        );
        lost(store.rotation_renew("free", "a", until), "free");
        lost(store.rotation_end("free", "a", "failed", None, now), "free");
        store
            .rotation_release("free", "a")
            .expect("release is quiet");
        // Another owner's lease.
        running(store, "j", now, now);
        let before = store.rotation_job("j", now).expect("s");
        lost(store.rotation_begin("j", "b", "k", now, false, now), "j");
        lost(store.rotation_renew("j", "b", until), "j");
        lost(store.rotation_step("j", "b", Step::Set, until), "j");
        lost(store.rotation_attempt_failed("j", "b", "x", until), "j");
        lost(store.rotation_end("j", "b", "failed", None, now), "j");
        store
            .rotation_release("j", "b")
            .expect("release of another's lease is quiet");
        assert_eq!(store.rotation_job("j", now).expect("s"), before);
        // Taken over (the holder died): the old holder's writes are refused from then on.
        assert!(
            store
                .rotation_acquire("j", &lease("b", 2, until), now, |_| false)
                .expect("take over")
        );
        lost(store.rotation_renew("j", "a", until), "j");
        lost(store.rotation_step("j", "a", Step::Set, until), "j");
        lost(store.rotation_end("j", "a", "failed", None, now), "j");
        store.rotation_release("j", "a").expect("quiet");
        let s = store.rotation_job("j", now).expect("s");
        assert_eq!(s.lease, Some(lease("b", 2, until)));
        // The new holder resumes the run in progress.
        assert_eq!(s.run, before.run);
        store
            .rotation_step("j", "b", Step::Set, until)
            .expect("resume");
    });
}

/// PostgreSQL only: several connections race for one lease; the row lock lets exactly one win.
#[test]
fn racing_acquirers_on_postgres_take_the_lease_exactly_once_each_round() {
    let store = store_support::postgres();
    let rounds = 60;
    let now = t("2025-01-01T00:00:00Z");
    let until = now + Duration::minutes(5);
    let mut wins = [0_u32; 2];
    for round in 0..rounds {
        let job = format!("race-{round}");
        // Half the rounds on a job with no row yet (both insert it), half on one held by a
        // dead process (both take it over).
        if round % 2 == 1 {
            assert!(
                store
                    .rotation_acquire(&job, &lease("dead", 9, until), now, |_| true)
                    .expect("dead holder")
            );
        }
        let start = Arc::new(Barrier::new(2));
        let taken: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|owner| {
                    let (store, start, job) = (&store, Arc::clone(&start), &job);
                    s.spawn(move || {
                        start.wait();
                        store
                            .rotation_acquire(job, &lease(owner, 1, until), now, |held| {
                                // Only the dead holder is dead; the racer that won is alive.
                                held.owner != "dead"
                            })
                            .expect("acquire")
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        assert_eq!(
            taken.iter().filter(|t| **t).count(),
            1,
            "round {round}: {taken:?}"
        );
        let winner = if taken[0] { "a" } else { "b" };
        wins[usize::from(!taken[0])] += 1;
        let held = store.rotation_job(&job, now).expect("state").lease;
        assert_eq!(held, Some(lease(winner, 1, until)), "round {round}");
    }
    assert_eq!(wins.iter().sum::<u32>(), rounds);
}
