//! The audit export's parts against real servers: the tail over connect-dev's `/v1/activity`
//! (bursts of equal timestamps, pages, resets, gaps), and the shipping loop through the test
//! audit-sink guest to a local receiver (a sink down holds back only itself, a refused record is
//! isolated and dead-lettered, replay). Own events are in `audit_own.rs` (a process-wide writer).

mod audit_support;
mod plugin_support;

use std::collections::HashSet;
use std::time::Duration;

use audit_support::Receiver;
use opsync::audit::{ShipOptions, Shipper, Tail, TailOptions};
use opsync::connect::client::ConnectClient;
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use opsync::delivery::RetryPolicy;
use opsync::store::{LogOrder, SinkStart, Store};

async fn server() -> DevServer {
    DevServer::start(DevServerOptions {
        seed: Seed::Empty,
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev starts")
}

fn client(server: &DevServer) -> ConnectClient {
    ConnectClient::new(&opsync::config::ConnectSettings::new(
        url::Url::parse(&server.base_url()).expect("url"),
        server.token(),
    ))
    .expect("client")
}

fn tail(server: &DevServer, store: &Store, page_size: u32) -> Tail {
    tail_with(server, store, page_size, Duration::from_secs(2))
}

fn tail_with(server: &DevServer, store: &Store, page_size: u32, lookback: Duration) -> Tail {
    Tail::new(
        client(server),
        store.clone(),
        TailOptions {
            page_size,
            lookback,
        },
    )
}

/// Every record in the outbox, oldest first.
fn outbox(store: &Store) -> Vec<opsync::store::OutboxRecord> {
    store
        .audit_batch("any", 0, 1_000_000, true)
        .expect("outbox")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_reads_every_record_once_in_log_order() {
    let server = server().await;
    let store = Store::open_in_memory().expect("store");
    // Bursts of 250 records per millisecond, read 300 at a time: the mark falls inside bursts
    // and pages cut through them.
    server.seed_activity(2_500, 250);
    // No lookback: the second read must stop at the mark and skip the mark's ids by themselves.
    let tail = tail_with(&server, &store, 300, Duration::ZERO);

    let first = tail.poll().await.expect("first read");
    assert_eq!(first.added, 2_500);
    assert_eq!(first.total, Some(2_500));
    assert_eq!(first.order, LogOrder::NewestFirst);
    assert!(!first.reset && !first.gap, "{first:?}");
    assert_eq!(first.requests, 9, "2,500 records in pages of 300");

    let again = tail.poll().await.expect("second read");
    assert_eq!(again.added, 0, "{again:?}");
    assert!(!again.gap && !again.reset, "{again:?}");
    assert!(
        again.requests <= 2,
        "an idle read stops near the mark: {again:?}"
    );

    // With a lookback every record of the last seconds is read again, and none added twice.
    let looking_back = tail_with(&server, &store, 300, Duration::from_secs(2));
    let again = looking_back.poll().await.expect("a read with lookback");
    assert_eq!((again.read, again.added), (2_500, 0), "{again:?}");

    server.seed_activity(1_000, 250);
    let more = tail.poll().await.expect("third read");
    assert_eq!(more.added, 1_000, "{more:?}");

    let records = outbox(&store);
    assert_eq!(records.len(), 3_500);
    let ids: HashSet<&str> = records
        .iter()
        .map(|r| r.record.request_id.as_str())
        .collect();
    assert_eq!(ids.len(), 3_500, "every request id once");
    assert!(
        records
            .windows(2)
            .all(|w| w[0].record.timestamp <= w[1].record.timestamp),
        "oldest first"
    );
    let mark = store.audit_mark().expect("mark");
    assert_eq!(mark.order, LogOrder::NewestFirst);
    assert_eq!(mark.total, Some(3_500));
    assert_eq!(mark.at, records.last().map(|r| r.record.timestamp));
    assert_eq!(mark.ids.len(), 250, "the ids of the newest burst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_logged_between_reads_are_picked_up() {
    let server = server().await;
    let store = Store::open_in_memory().expect("store");
    let tail = tail(&server, &store, 50);
    let c = client(&server);
    for round in 0..5 {
        for _ in 0..30 {
            c.list_vaults(None).await.expect("a request that is logged");
        }
        let r = tail.poll().await.expect("read");
        assert_eq!(r.added, 30, "round {round}: {r:?}");
    }
    assert_eq!(outbox(&store).len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_log_and_a_gap_are_detected_and_read() {
    let store = Store::open_in_memory().expect("store");
    let before = server().await;
    before.seed_activity(2_000, 100);
    let r = tail(&before, &store, 500).poll().await.expect("read");
    assert_eq!(r.added, 2_000);
    tokio::time::sleep(Duration::from_millis(30)).await;

    // Connect restarted with an empty log: fewer records, none back to the mark.
    let restarted = server().await;
    restarted.seed_activity(300, 100);
    let r = tail(&restarted, &store, 500).poll().await.expect("read");
    assert!(r.reset && !r.gap, "{r:?}");
    assert_eq!(r.added, 300);
    tokio::time::sleep(Duration::from_millis(30)).await;

    // More records than before and none reaching the mark: the ones between were pruned.
    let pruned = server().await;
    pruned.seed_activity(1_000, 100);
    let r = tail(&pruned, &store, 500).poll().await.expect("read");
    assert!(r.gap && !r.reset, "{r:?}");
    assert_eq!(r.added, 1_000);
    assert_eq!(outbox(&store).len(), 3_300);
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_attempts: 3,
        misconfigured_pause: Duration::from_millis(200),
        hint_max: Duration::from_millis(500),
    }
}

fn options(batch_size: usize, include_own_events: bool) -> ShipOptions {
    ShipOptions {
        batch_size,
        in_flight: 1,
        flush_interval: Duration::from_millis(50),
        start: SinkStart::Beginning,
        include_own_events,
        retry: policy(),
        shutdown_grace: Duration::from_secs(2),
        until_caught_up: false,
    }
}

/// Waits until `check` holds, up to 20 s; on time-out says where every sink stands.
async fn until_in(store: &Store, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {what}; sinks: {:#?}",
            store.audit_sinks()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_is_down_holds_back_only_itself() {
    let server = server().await;
    let store = Store::open_in_memory().expect("store");
    server.seed_activity(1_000, 100);
    tail(&server, &store, 500).poll().await.expect("read");

    let up = Receiver::start().await;
    let down = Receiver::start().await;
    down.inbox.set_down(true);
    let (wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let a = Shipper::new(
        "up".into(),
        Ok(up.plugin("up")),
        store.clone(),
        options(128, false),
    );
    let b = Shipper::new(
        "down".into(),
        Ok(down.plugin("down")),
        store.clone(),
        options(128, false),
    );
    let ta = tokio::spawn(a.run(wake.clone(), shutdown.clone()));
    let tb = tokio::spawn(b.run(wake.clone(), shutdown.clone()));

    until_in(&store, "the healthy sink has everything", || {
        up.inbox.ids().len() == 1_000
    })
    .await;
    until_in(
        &store,
        "the sink that is down was tried several times",
        || down.inbox.answered(503) >= 3,
    )
    .await;
    let lag = store
        .audit_lag("down", false)
        .expect("lag")
        .expect("cursor");
    assert_eq!((lag.cursor.acked_seq, lag.pending), (0, 1_000));
    assert!(lag.cursor.failures >= 3, "{lag:?}");
    assert!(
        lag.cursor
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{lag:?}"
    );

    // More records while it is down; then it recovers and gets all of them, once each.
    server.seed_activity(500, 100);
    tail(&server, &store, 500).poll().await.expect("read");
    wake_tx.send_modify(|n| *n += 1);
    down.inbox.set_down(false);
    until_in(&store, "the recovered sink caught up", || {
        down.inbox.ids().len() == 1_500
    })
    .await;
    until_in(&store, "the healthy sink has the new records", || {
        up.inbox.ids().len() == 1_500
    })
    .await;
    for inbox in [&up.inbox, &down.inbox] {
        let ids = inbox.ids();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "nothing twice");
    }
    assert_eq!(up.inbox.ids(), down.inbox.ids(), "both in log order");
    let lag = store
        .audit_lag("down", false)
        .expect("lag")
        .expect("cursor");
    assert_eq!(lag.pending, 0);
    assert_eq!(lag.cursor.failures, 0);

    trigger.trigger();
    let ra = ta.await.expect("joined").expect("ran");
    let rb = tb.await.expect("joined").expect("ran");
    assert_eq!(ra.shipped, 1_500);
    assert_eq!(rb.shipped, 1_500);
    assert_eq!(ra.failures, 0);
    assert!(rb.failures >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_sink_refuses_is_isolated_and_dead_lettered_for_that_sink() {
    let server = server().await;
    let store = Store::open_in_memory().expect("store");
    server.seed_activity(300, 100);
    tail(&server, &store, 500).poll().await.expect("read");
    let records = outbox(&store);
    let poison = records[137].record.request_id.clone();

    let receiver = Receiver::start().await;
    *receiver.inbox.poison.lock().expect("poison") = Some(poison.clone());
    let (_wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let shipper = Shipper::new(
        "siem".into(),
        Ok(receiver.plugin("siem")),
        store.clone(),
        options(100, false),
    );
    let task = tokio::spawn(shipper.run(wake, shutdown));
    until_in(&store, "everything but the refused record arrived", || {
        receiver.inbox.ids().len() == 299
    })
    .await;
    until_in(&store, "the cursor passed the end", || {
        store
            .audit_lag("siem", false)
            .ok()
            .flatten()
            .is_some_and(|l| l.pending == 0)
    })
    .await;
    let ids = receiver.inbox.ids();
    assert!(!ids.contains(&poison));
    let dead = store.audit_dead_letters("siem").expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].request_id, poison);
    assert!(dead[0].reason.contains("400"), "{:?}", dead[0]);
    trigger.trigger();
    let report = task.await.expect("joined").expect("ran");
    assert_eq!((report.shipped, report.dead), (299, 1));

    // Replay: the cursor goes back and everything kept is shipped again (the refused record is
    // refused again and dead-lettered a second time).
    *receiver.inbox.poison.lock().expect("poison") = None;
    let moved = store
        .audit_rewind(
            &["siem".to_owned()],
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .expect("rewind");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].2, 0, "{moved:?}");
    let (_wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let shipper = Shipper::new(
        "siem".into(),
        Ok(receiver.plugin("siem")),
        store.clone(),
        options(100, false),
    );
    let task = tokio::spawn(shipper.run(wake, shutdown));
    until_in(&store, "everything shipped again", || {
        receiver.inbox.ids().len() == 299 + 300
    })
    .await;
    trigger.trigger();
    task.await.expect("joined").expect("ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_starts_now_gets_only_what_is_logged_after_its_start() {
    let server = server().await;
    let store = Store::open_in_memory().expect("store");
    server.seed_activity(400, 100);
    let receiver = Receiver::start().await;
    let (wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let mut now = options(100, false);
    now.start = SinkStart::Now;
    let shipper = Shipper::new(
        "late".into(),
        Ok(receiver.plugin("late")),
        store.clone(),
        now,
    );
    // Started before the tail's first read: it waits for it, so the 400 are history.
    let task = tokio::spawn(shipper.run(wake, shutdown));
    tokio::time::sleep(Duration::from_millis(300)).await;
    tail(&server, &store, 500).poll().await.expect("read");
    wake_tx.send_modify(|n| *n += 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.inbox.ids().is_empty(),
        "{:?}",
        receiver.inbox.ids().len()
    );
    server.seed_activity(50, 10);
    tail(&server, &store, 500).poll().await.expect("read");
    wake_tx.send_modify(|n| *n += 1);
    until_in(&store, "the 50 new records arrived", || {
        receiver.inbox.ids().len() == 50
    })
    .await;
    trigger.trigger();
    let report = task.await.expect("joined").expect("ran");
    assert_eq!(report.shipped, 50);
}

/// A stand-in for a Connect whose log lists the OLDEST record first (connect-dev lists newest
/// first; Connect documents neither), with 1-based `Content-Range` like Connect's example.
async fn oldest_first_server(
    log: std::sync::Arc<std::sync::Mutex<Vec<opsync::connect::model::ApiRequest>>>,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::{Query, State};
    use axum::http::header::CONTENT_RANGE;
    use axum::response::IntoResponse;
    type Log = std::sync::Arc<std::sync::Mutex<Vec<opsync::connect::model::ApiRequest>>>;
    async fn activity(
        State(log): State<Log>,
        Query(q): Query<std::collections::HashMap<String, usize>>,
    ) -> axum::response::Response {
        let log = log.lock().expect("log");
        let (limit, offset) = (
            q.get("limit").copied().unwrap_or(50),
            q.get("offset").copied().unwrap_or(0),
        );
        let page: Vec<_> = log.iter().skip(offset).take(limit).cloned().collect();
        let range = if page.is_empty() {
            format!("0-0/{}", log.len())
        } else {
            format!("{}-{}/{}", offset + 1, offset + page.len(), log.len())
        };
        ([(CONTENT_RANGE, range)], axum::Json(page)).into_response()
    }
    let app = axum::Router::new()
        .route("/v1/activity", axum::routing::get(activity))
        .with_state(log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oldest_first_log_is_detected_and_read_from_its_end() {
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    let record = |i: usize| -> opsync::connect::model::ApiRequest {
        serde_json::from_value(serde_json::json!({
            "requestId": format!("req-{i:05}"),
            // Bursts of 7 records per millisecond.
            "timestamp": (base + chrono::Duration::milliseconds((i / 7) as i64)).to_rfc3339(),
            "action": "READ",
            "result": "SUCCESS",
        }))
        .expect("a record")
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(
        (0..1_000).map(record).collect::<Vec<_>>(),
    ));
    let (url, task) = oldest_first_server(log.clone()).await;
    let client = ConnectClient::new(&opsync::config::ConnectSettings::new(
        url::Url::parse(&url).expect("url"),
        "any-token",
    ))
    .expect("client");
    let store = Store::open_in_memory().expect("store");
    let tail = Tail::new(
        client,
        store.clone(),
        TailOptions {
            page_size: 100,
            lookback: Duration::ZERO,
        },
    );
    let r = tail.poll().await.expect("first read");
    assert_eq!((r.added, r.order), (1_000, LogOrder::OldestFirst), "{r:?}");
    assert_eq!(
        store.audit_mark().expect("mark").order,
        LogOrder::OldestFirst
    );
    log.lock().expect("log").extend((1_000..1_050).map(record));
    let r = tail.poll().await.expect("second read");
    assert_eq!(r.added, 50, "{r:?}");
    assert!(
        r.requests <= 3,
        "read from the end, not the whole log: {r:?}"
    );
    let ids: Vec<String> = outbox(&store)
        .into_iter()
        .map(|r| r.record.request_id)
        .collect();
    let expected: Vec<String> = (0..1_050).map(|i| format!("req-{i:05}")).collect();
    assert_eq!(ids, expected, "log order, once each");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_move_the_cursor_only_over_acknowledged_batches() {
    let server = server().await;
    let store = Store::open_in_memory().expect("store");
    server.seed_activity(2_000, 100);
    tail(&server, &store, 1_000).poll().await.expect("read");
    let flaky = Receiver::start().await;
    // Every third request fails: batches behind a failed one may already be delivered; they
    // are sent again (at least once), and the cursor never passes the failed batch.
    flaky
        .inbox
        .fail_every
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let (_wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let shipper = Shipper::new(
        "flaky".into(),
        Ok(flaky.plugin("flaky")),
        store.clone(),
        ShipOptions {
            in_flight: 4,
            ..options(100, false)
        },
    );
    let task = tokio::spawn(shipper.run(wake, shutdown));
    until_in(&store, "the flaky sink caught up", || {
        store
            .audit_lag("flaky", false)
            .ok()
            .flatten()
            .is_some_and(|lag| lag.pending == 0)
    })
    .await;
    trigger.trigger();
    let report = task.await.expect("joined").expect("ran");
    let ids = flaky.inbox.ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 2_000, "every record arrived");
    assert!(report.failures > 0, "{report:?}");
    assert_eq!(
        report.shipped, 2_000,
        "each record counted once: {report:?}"
    );
    let lag = store
        .audit_lag("flaky", false)
        .expect("lag")
        .expect("cursor");
    assert_eq!(lag.cursor.acked_seq, store.audit_head().expect("head"));
}
