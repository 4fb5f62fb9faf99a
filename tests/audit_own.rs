//! opsync's own audit events (deliveries, dead letters, denied plugin requests, rotations)
//! through an installed `AuditEvents` handle into the outbox, and out through the sinks that
//! include them.

mod audit_support;
mod plugin_support;

use std::time::Duration;

use audit_support::Receiver;
use opsync::audit::{ShipOptions, Shipper};
use opsync::delivery::RetryPolicy;
use opsync::own_events::{self as own, AuditEvents};
use opsync::store::{SinkStart, Store};

fn options(include_own_events: bool) -> ShipOptions {
    ShipOptions {
        batch_size: 10,
        in_flight: 1,
        flush_interval: Duration::from_millis(50),
        start: SinkStart::Beginning,
        include_own_events,
        retry: RetryPolicy::default(),
        shutdown_grace: Duration::from_secs(2),
        until_caught_up: false,
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_events_reach_only_the_sinks_that_include_them() {
    let store = Store::open_in_memory().expect("store");
    let with = Receiver::start().await;
    let without = Receiver::start().await;
    let (wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let events = AuditEvents::new();
    let writer = events.install(store.clone(), wake_tx.clone());
    events.record(own::item_event(
        own::OwnAction::Deliver,
        "prod",
        "aws",
        "vlt0000000000000000000000a",
        "itm0000000000000000000000a",
        4,
    ));
    events.record(own::item_event(
        own::OwnAction::DeadLetter,
        "prod",
        "vault",
        "vlt0000000000000000000000a",
        "itm0000000000000000000000b",
        2,
    ));
    events.denied("webhook", "https://evil.example:443");
    events.rotated(
        "db-rotator",
        "vlt0000000000000000000000a",
        "itm0000000000000000000000c",
        9,
    );

    let (trigger, shutdown) = opsync::shutdown::channel();
    let a = Shipper::new(
        "with".into(),
        Ok(with.plugin("with")),
        store.clone(),
        options(true),
    );
    let b = Shipper::new(
        "without".into(),
        Ok(without.plugin("without")),
        store.clone(),
        options(false),
    );
    let ta = tokio::spawn(a.run(wake.clone(), shutdown.clone()));
    let tb = tokio::spawn(b.run(wake.clone(), shutdown.clone()));
    until("four own events shipped", || with.inbox.ids().len() == 4).await;
    let lines = with.inbox.lines.lock().expect("lines").clone();
    assert!(lines.iter().all(|l| l.starts_with("opsync-")), "{lines:?}");
    assert!(
        lines[0].contains(
            " DELIVER SUCCESS plugin:aws ITEM:vlt0000000000000000000000a:itm0000000000000000000000a"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(" DEAD_LETTER FAILURE plugin:vault "),
        "{lines:?}"
    );
    assert!(
        lines[2]
            .contains(" PLUGIN_REQUEST_DENIED DENY plugin:webhook HOST:-:https://evil.example:443"),
        "{lines:?}"
    );
    assert!(
        lines[3].contains(" ROTATE SUCCESS plugin:db-rotator "),
        "{lines:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(without.inbox.ids().is_empty());
    trigger.trigger();
    ta.await.expect("joined").expect("ran");
    tb.await.expect("joined").expect("ran");
    writer.stop();
}
