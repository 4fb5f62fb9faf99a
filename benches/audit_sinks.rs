//! Audit-sink throughput: records per second through each built-in sink's `ingest` (fresh store,
//! format, send, acknowledgement) at batch sizes 100, 500 and 1,000, against its peer on the same
//! machine: a real rsyslog for `syslog` (plain TCP, then TLS: one connection and handshake per
//! batch), the HEC fake for `splunk-hec` (acks confirmed at the first poll, which waits
//! `ack-poll-ms` = 10 ms), the `_bulk` fake for `elasticsearch` (every item 201) and a local
//! receiver for `webhook-audit`. Each batch carries new request ids. The peer shares the two cores
//! with the plugin, so figures are for the whole loop, not the plugin alone.
//!
//! Run: `cargo bench --bench audit_sinks` (or `--profile dev`: dependencies are optimized in the
//! dev profile too).

#[path = "../tests/peers/mod.rs"]
mod peers;
#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;
#[path = "../tests/sink_fakes/mod.rs"]
mod sink_fakes;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use opsync::plugin::{Grants, Plugin};
use peers::rsyslog::Rsyslog;
use plugin_support::host;
use sink_fakes::{EsFake, HecFake, Server, audit_sink, http_grant, records};

const SIZES: [usize; 3] = [100, 500, 1000];
/// Time spent per (sink, batch size), after one warm-up batch.
const BUDGET: Duration = Duration::from_secs(3);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Records per second shipping batches of `size` for about `BUDGET`.
async fn measure(sink: &Plugin, size: usize) -> (f64, usize) {
    let mut next = 0;
    let mut batch = || {
        let b = records(next, size);
        next += size;
        b
    };
    sink.ingest(&batch()).await.expect("warm-up batch");
    let started = Instant::now();
    let mut shipped = 0;
    while started.elapsed() < BUDGET {
        sink.ingest(&batch()).await.expect("batch ships");
        shipped += size;
    }
    (shipped as f64 / started.elapsed().as_secs_f64(), shipped)
}

async fn report(name: &str, sink: &Plugin) {
    for size in SIZES {
        let (rate, shipped) = measure(sink, size).await;
        println!("{name:<14} batch {size:>5}: {rate:>9.0} records/s ({shipped} records)");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let host = host();

    let rsyslog = Rsyslog::start().await;
    let addr = rsyslog.address();
    let syslog = audit_sink(
        &host,
        "syslog",
        &[("address", &addr), ("hostname", "bench")],
        Grants {
            tcp: vec![addr.parse().expect("address")],
            ..Grants::default()
        },
    );
    report("syslog", &syslog).await;
    drop(rsyslog);

    let rsyslog = Rsyslog::start_tls().await;
    let addr = rsyslog.address();
    let ca = rsyslog
        .cert_pem
        .clone()
        .expect("a TLS rsyslog has a certificate");
    let syslog_tls = audit_sink(
        &host,
        "syslog",
        &[
            ("address", &addr),
            ("hostname", "bench"),
            ("tls", "true"),
            ("tls-ca", &ca),
        ],
        Grants {
            tcp: vec![addr.parse().expect("address")],
            ..Grants::default()
        },
    );
    report("syslog (TLS)", &syslog_tls).await;
    drop(rsyslog);

    let hec = HecFake::start("bench-token").await;
    hec.set_ack_after_polls(0);
    let splunk = audit_sink(
        &host,
        "splunk-hec",
        &[
            ("url", &hec.url()),
            ("token", "bench-token"),
            ("ack-poll-ms", "10"),
        ],
        http_grant(&hec.url()),
    );
    report("splunk-hec", &splunk).await;
    hec.stop().await;

    let es = EsFake::start(None).await;
    let elastic = audit_sink(
        &host,
        "elasticsearch",
        &[("url", &es.url())],
        http_grant(&es.url()),
    );
    report("elasticsearch", &elastic).await;
    es.stop().await;

    let receiver = Server::start(Router::new().route(
        "/in",
        post(|body: Bytes| async move {
            // Read the whole body before answering, as a real receiver does.
            drop(body);
            StatusCode::OK
        }),
    ))
    .await;
    let webhook = audit_sink(
        &host,
        "webhook-audit",
        &[
            ("url", &format!("{}/in", receiver.url())),
            ("secret", SECRET),
        ],
        http_grant(&receiver.url()),
    );
    report("webhook-audit", &webhook).await;
    receiver.stop().await;
}
