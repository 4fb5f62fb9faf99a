//! Shared deliveries on a real PostgreSQL server (a throwaway cluster): replicas claim due
//! ledger rows without overlap, within a per-route cap held across them, one row at a time per
//! (destination, item); claims lapse when they run out or their replica stops heartbeating;
//! recording an outcome frees a row, also from a replica that does not lead.

mod pg_support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use opsync::plugin::ChangeKind;
use opsync::store::{Claim, LedgerEntry, RowUpdate, Store};

fn store(db: &pg_support::Database) -> Store {
    Store::open_postgres(&db.target()).expect("PostgreSQL state opens")
}

fn change(item: &str, version: u64) -> LedgerEntry {
    LedgerEntry {
        route: "r".into(),
        destination: "d".into(),
        vault_id: "v".into(),
        vault_name: "V".into(),
        item_id: item.into(),
        title: item.into(),
        key: format!("V/{item}"),
        category: "LOGIN".into(),
        tags: Vec::new(),
        version,
        kind: ChangeKind::Updated,
        detected_at: Utc::now() - chrono::Duration::seconds(1),
    }
}

fn items(n: usize) -> Vec<LedgerEntry> {
    (0..n).map(|i| change(&format!("item-{i:03}"), 1)).collect()
}

fn claim(claimant: &str, cap: usize) -> Claim {
    Claim {
        claimant: claimant.into(),
        cap,
        timeout: Duration::from_secs(300),
        heartbeat_stale: Duration::from_secs(10),
    }
}

fn ids(rows: &[opsync::store::Delivery]) -> HashSet<i64> {
    rows.iter().map(|d| d.id).collect()
}

fn deliver(store: &Store, rows: &[opsync::store::Delivery]) {
    let updates: Vec<_> = rows
        .iter()
        .map(|d| {
            (
                d.id,
                RowUpdate::Delivered {
                    location: "d://x",
                    at: Utc::now(),
                    fingerprint: None,
                    own_event: None,
                },
            )
        })
        .collect();
    for recorded in store.record_updates(&updates).expect("records") {
        recorded.expect("the row is there");
    }
}

#[test]
fn replicas_claim_disjoint_rows_and_the_routes_cap_holds_across_them() {
    let db = pg_support::database();
    let (a, b) = (store(&db), store(&db));
    a.enqueue(&items(10)).expect("enqueue");

    let mine = a
        .claim_due("r", &claim("a", 4), Utc::now(), 100)
        .expect("a claims");
    assert_eq!(mine.len(), 4, "the cap bounds a's claim");
    let theirs = b
        .claim_due("r", &claim("b", 4), Utc::now(), 100)
        .expect("b claims");
    assert!(
        theirs.is_empty(),
        "the cap is held across replicas: {theirs:?}"
    );

    // A claims again: it gets its own rows back (renewed), nothing more.
    let again = a
        .claim_due("r", &claim("a", 4), Utc::now(), 100)
        .expect("a again");
    assert_eq!(ids(&again), ids(&mine));

    deliver(&a, &mine[..2]);
    let theirs = b
        .claim_due("r", &claim("b", 4), Utc::now(), 100)
        .expect("b claims");
    assert_eq!(theirs.len(), 2, "the freed room goes to b");
    assert!(ids(&theirs).is_disjoint(&ids(&mine)));

    let counts = a.claims().expect("claims");
    let held: Vec<_> = counts
        .iter()
        .map(|c| (c.claimant.as_str(), c.route.as_str(), c.rows))
        .collect();
    assert_eq!(held, vec![("a", "r", 2), ("b", "r", 2)]);
}

#[test]
fn concurrent_claimers_never_claim_a_row_twice_and_deliver_every_row() {
    let db = pg_support::database();
    store(&db).enqueue(&items(200)).expect("enqueue");
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let store = store(&db);
            std::thread::spawn(move || {
                let me = claim(&format!("replica-{w}"), 24);
                let mut delivered = Vec::new();
                loop {
                    let rows = store.claim_due("r", &me, Utc::now(), 8).expect("claims");
                    if rows.is_empty() {
                        if store.next_due("r").expect("next due").is_none() {
                            return delivered;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    deliver(&store, &rows);
                    delivered.extend(rows.iter().map(|d| d.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut busy = 0;
    for w in workers {
        let delivered = w.join().expect("worker");
        busy += usize::from(!delivered.is_empty());
        all.extend(delivered);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "a row was claimed and delivered twice"
    );
    assert_eq!(all.len(), 200);
    assert!(busy > 1, "only one claimer got rows");
    assert_eq!(
        db.psql("SELECT count(*) FROM ledger WHERE status = 'delivered' AND claimed_by IS NULL"),
        "200"
    );
}

#[test]
fn a_claim_that_ran_out_or_whose_replica_went_silent_returns_to_the_queue() {
    let db = pg_support::database();
    let (a, b) = (store(&db), store(&db));
    a.enqueue(&items(3)).expect("enqueue");

    let short = Claim {
        timeout: Duration::from_millis(600),
        ..claim("a", 10)
    };
    assert_eq!(a.claim_due("r", &short, Utc::now(), 1).expect("a").len(), 1);
    // A replica whose heartbeat is a minute old holds a long claim on another row.
    db.psql(
        "INSERT INTO replicas (id, host, pid, version, started_at, seen_at) \
         VALUES ('silent', 'h', 1, 'v', now(), now() - interval '1 minute')",
    );
    let silent = b
        .claim_due("r", &claim("silent", 10), Utc::now(), 1)
        .expect("silent");
    assert_eq!(silent.len(), 1);

    let got = b
        .claim_due("r", &claim("b", 10), Utc::now(), 10)
        .expect("b");
    assert_eq!(
        got.len(),
        2,
        "the silent replica's row and the free one: {got:?}"
    );
    assert!(ids(&silent).is_subset(&ids(&got)));

    std::thread::sleep(Duration::from_millis(800));
    let got = b
        .claim_due("r", &claim("b", 10), Utc::now(), 10)
        .expect("b");
    assert_eq!(got.len(), 3, "a's claim ran out");
}

#[test]
fn an_item_is_delivered_by_one_replica_at_a_time() {
    let db = pg_support::database();
    let (a, b) = (store(&db), store(&db));
    a.enqueue(&[change("x", 1)]).expect("enqueue v1");
    let first = a
        .claim_due("r", &claim("a", 10), Utc::now(), 10)
        .expect("a");
    assert_eq!(first.len(), 1);

    // Version 2 supersedes version 1 while a delivers it: b must wait, or version 1 could
    // land after version 2.
    a.enqueue(&[change("x", 2)]).expect("enqueue v2");
    let waiting = b
        .claim_due("r", &claim("b", 10), Utc::now(), 10)
        .expect("b");
    assert!(waiting.is_empty(), "{waiting:?}");

    deliver(&a, &first);
    let second = b
        .claim_due("r", &claim("b", 10), Utc::now(), 10)
        .expect("b");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].entry.version, 2);
}

#[test]
fn released_claims_go_back_to_the_queue() {
    let db = pg_support::database();
    let (a, b) = (store(&db), store(&db));
    a.enqueue(&items(2)).expect("enqueue");
    assert_eq!(
        a.claim_due("r", &claim("a", 10), Utc::now(), 10)
            .expect("a")
            .len(),
        2
    );
    assert_eq!(a.release_claims("r", "a").expect("release"), 2);
    assert_eq!(
        b.claim_due("r", &claim("b", 10), Utc::now(), 10)
            .expect("b")
            .len(),
        2
    );
}

#[tokio::test]
async fn a_replica_that_does_not_lead_delivers_but_cannot_enqueue() {
    let db = pg_support::database();
    let leader = store(&db);
    let follower = store(&db);
    let mut client = db.target().connect().await.expect("connects");
    opsync::store::postgres::migrate(&mut client)
        .await
        .expect("migrates");
    let lease = opsync::store::postgres::Lease::new(
        opsync::store::postgres::LEADER_LEASE,
        "leader",
        Duration::from_secs(30),
    );
    lease.claim(&client).await.expect("leads");
    leader.lead_with(Some(1));
    follower.lead_with(None);

    leader.enqueue(&items(2)).expect("the leader enqueues");
    let err = follower
        .enqueue(&[change("other", 1)])
        .expect_err("a follower's enqueue is fenced");
    assert!(err.to_string().contains("is stale"), "{err}");

    let rows = follower
        .claim_due("r", &claim("follower", 10), Utc::now(), 10)
        .expect("a follower claims");
    assert_eq!(rows.len(), 2);
    let event: opsync::connect::model::ApiRequest = serde_json::from_value(serde_json::json!({
        "requestId": "delivered-by-follower",
        "timestamp": Utc::now().to_rfc3339(),
        "action": "UPDATE",
        "result": "SUCCESS",
    }))
    .expect("a record");
    let updates = [
        (
            rows[0].id,
            RowUpdate::Delivered {
                location: "d://x",
                at: Utc::now(),
                fingerprint: Some("fp"),
                own_event: Some(&event),
            },
        ),
        (
            rows[1].id,
            RowUpdate::Retry {
                error: "destination busy",
                next_attempt_at: Utc::now() + chrono::Duration::seconds(60),
            },
        ),
    ];
    for recorded in follower
        .record_updates(&updates)
        .expect("a follower records")
    {
        recorded.expect("recorded");
    }
    assert_eq!(
        db.psql("SELECT string_agg(status || ':' || coalesce(claimed_by, '-'), ',' ORDER BY id) FROM ledger"),
        "delivered:-,pending:-"
    );
    assert_eq!(db.psql("SELECT count(*) FROM fingerprints"), "1");
    assert_eq!(
        db.psql("SELECT count(*) FROM audit_outbox WHERE request_id = 'delivered-by-follower'"),
        "1"
    );
}

#[tokio::test]
async fn every_replica_hears_of_rows_another_one_enqueued() {
    let db = pg_support::database();
    let leader = store(&db);
    let (wake, mut woken) = tokio::sync::watch::channel(0u64);
    opsync::store::postgres::listen_for_ledger(db.target(), std::sync::Arc::new(wake))
        .expect("listens");
    // The listener connects in the background: enqueue until one is heard.
    let heard = tokio::time::timeout(Duration::from_secs(30), async {
        for version in 1.. {
            leader.enqueue(&[change("x", version)]).expect("enqueue");
            if tokio::time::timeout(Duration::from_millis(500), woken.changed())
                .await
                .is_ok()
            {
                return version;
            }
        }
        unreachable!()
    })
    .await
    .expect("a notification within 30 s");
    // Once the notifications of those enqueues are all in, an enqueue that adds nothing
    // notifies nobody.
    while tokio::time::timeout(Duration::from_secs(1), woken.changed())
        .await
        .is_ok()
    {}
    leader
        .enqueue(&[change("x", heard)])
        .expect("enqueue again");
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), woken.changed())
            .await
            .is_err(),
        "an enqueue that added no row woke the workers"
    );
}

#[test]
fn each_live_replica_claims_at_most_its_share_of_the_cap() {
    let db = pg_support::database();
    let (a, b) = (store(&db), store(&db));
    a.enqueue(&items(20)).expect("enqueue");
    db.psql(
        "INSERT INTO replicas (id, host, pid, version, started_at, seen_at) VALUES \
         ('a', 'h', 1, 'v', now(), now()), ('b', 'h', 2, 'v', now(), now())",
    );
    let mine = a
        .claim_due("r", &claim("a", 10), Utc::now(), 100)
        .expect("a");
    assert_eq!(mine.len(), 5, "half of the cap for each of two replicas");
    let theirs = b
        .claim_due("r", &claim("b", 10), Utc::now(), 100)
        .expect("b");
    assert_eq!(theirs.len(), 5);
    assert!(ids(&mine).is_disjoint(&ids(&theirs)));
}
