//! Tests of the rotation tables: slots, the rotation in progress, results and leases.

use super::*;

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

#[test]
fn the_lease_records_its_holder_and_alive_sees_it() {
    let store = Store::open_in_memory().expect("store");
    let now = t("2025-01-01T00:00:00Z");
    let until = t("2025-01-01T00:05:00Z");
    let a = lease("a", 7, until);
    assert!(store.rotation_acquire("j", &a, now, |_| true).expect("a"));
    assert_eq!(
        store.rotation_job("j", now).expect("state").lease,
        Some(a.clone())
    );
    let seen = std::cell::RefCell::new(None);
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
}

#[test]
fn lease_keeps_a_second_owner_out_until_it_expires_or_dies() {
    let store = Store::open_in_memory().expect("store");
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
}

#[test]
fn a_run_moves_through_steps_and_ends() {
    let store = Store::open_in_memory().expect("store");
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
    assert!(
        store
            .rotation_begin("j", "a", "j:other", slot, false, now)
            .is_err()
    );
    let s = store.rotation_job("j", now).expect("state");
    assert_eq!(s.last_slot, Some(slot));
    let run = s.run.expect("run");
    assert_eq!((run.step, run.key.as_str()), (Step::Create, "j:slot"));
    store
        .rotation_step("j", "a", Step::Set, until)
        .expect("set");
    let n = store
        .rotation_attempt_failed("j", "a", "target down", until)
        .expect("failed");
    assert_eq!(n, 1);
    let run = store
        .rotation_job("j", now)
        .expect("state")
        .run
        .expect("run");
    assert_eq!((run.step, run.attempt), (Step::Set, 1));
    assert_eq!(run.step_error.as_deref(), Some("target down"));
    // Another owner cannot move it.
    assert!(matches!(
        store.rotation_step("j", "b", Step::Test, until),
        Err(StoreError::LeaseLost(_))
    ));
    store
        .rotation_end("j", "a", "succeeded", None, until)
        .expect("end");
    let s = store.rotation_job("j", now).expect("state");
    assert!(s.run.is_none());
    assert_eq!(s.last_result.as_deref(), Some("succeeded"));
    assert_eq!(s.last_success_at, Some(until));
    // A skipped slot moves last_slot forward, never back.
    store
        .rotation_skip("j", t("2024-12-30T00:00:00Z"), "late", now)
        .expect("skip");
    assert_eq!(
        store.rotation_job("j", now).expect("s").last_slot,
        Some(slot)
    );
    store
        .rotation_skip("j", t("2025-01-01T00:00:00Z"), "late", now)
        .expect("skip");
    let s = store.rotation_job("j", now).expect("s");
    assert_eq!(s.last_slot, Some(t("2025-01-01T00:00:00Z")));
    assert_eq!(s.last_result.as_deref(), Some("skipped"));
}
