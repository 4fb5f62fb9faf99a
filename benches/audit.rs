//! Audit export throughput: records per second from connect-dev's `/v1/activity` into the
//! outbox (the tail), and from the outbox to each sink through its plugin (one `ingest` per
//! batch, a fresh sandbox per call), at several batch sizes.
//!
//! Sinks: the built-in `elasticsearch` and `splunk-hec` against their FAKES (tests/sink_fakes; no
//! real server runs here), the built-in `syslog` against a real rsyslog, the built-in
//! `webhook-audit` against a local receiver that parses each body and counts its events, and the
//! test guest POSTing lines (the sandbox and HTTP cost without a format).
//!
//! `cargo bench --bench audit` (env `AUDIT_BENCH_RECORDS`, default 20000; `AUDIT_BENCH_SINKS`, a
//! comma-separated subset of `es,hec,webhook,syslog,lines,once-es`, where `once-es` runs
//! `opsync once` as its own process against the Elasticsearch fake, three times per window;
//! `AUDIT_BENCH_IN_FLIGHT`, batches in flight per sink, default `1,4`).

#[path = "../tests/audit_support/mod.rs"]
mod audit_support;
#[path = "../tests/peers/mod.rs"]
mod peers;
#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;
#[path = "../tests/sink_fakes/mod.rs"]
mod sink_fakes;

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opsync::audit::{ShipOptions, Shipper, Tail, TailOptions};
use opsync::connect::client::ConnectClient;
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use opsync::delivery::RetryPolicy;
use opsync::plugin::{Grants, Plugin};
use opsync::store::{SinkStart, Store};

const BATCH_SIZES: &[usize] = &[100, 500, 1000, 2000];

fn client(server: &DevServer) -> ConnectClient {
    ConnectClient::new(&opsync::config::ConnectSettings::new(
        url::Url::parse(&server.base_url()).expect("url"),
        server.token(),
    ))
    .expect("client")
}

/// A sink under test: its plugin, and how many records its peer holds.
struct Bench {
    name: &'static str,
    plugin: Plugin,
    received: Box<dyn Fn() -> usize>,
    _keep: Box<dyn std::any::Any>,
}

async fn line_sink() -> Bench {
    let receiver = audit_support::Receiver::start().await;
    let plugin = receiver.plugin("lines");
    let inbox = receiver.inbox.clone();
    Bench {
        name: "test guest, HTTP lines",
        plugin,
        received: Box::new(move || inbox.lines.lock().map(|l| l.len()).unwrap_or(0)),
        _keep: Box::new(receiver),
    }
}

async fn es_sink() -> Bench {
    let es = sink_fakes::EsFake::start(None).await;
    let plugin = sink_fakes::audit_sink(
        &plugin_support::host(),
        "elasticsearch",
        &[("url", &es.url()), ("format", "ecs")],
        sink_fakes::http_grant(&es.url()),
    );
    let es = std::sync::Arc::new(es);
    let count = es.clone();
    Bench {
        name: "elasticsearch (fake), ecs",
        plugin,
        received: Box::new(move || count.document_count()),
        _keep: Box::new(es),
    }
}

async fn hec_sink() -> Bench {
    let hec = sink_fakes::HecFake::start("bench-token").await;
    let plugin = sink_fakes::audit_sink(
        &plugin_support::host(),
        "splunk-hec",
        &[
            ("url", &hec.url()),
            ("token", "bench-token"),
            ("format", "ocsf"),
            ("ack-poll-ms", "10"),
        ],
        sink_fakes::http_grant(&hec.url()),
    );
    let hec = std::sync::Arc::new(hec);
    let count = hec.clone();
    Bench {
        name: "splunk-hec (fake), ocsf, ack",
        plugin,
        received: Box::new(move || count.event_count()),
        _keep: Box::new(hec),
    }
}

async fn webhook_sink() -> Bench {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let receiver = sink_fakes::Server::start(axum::Router::new().route(
        "/in",
        axum::routing::post(move |body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                // Parse the whole body, as a receiver does, and count its events.
                let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let n = payload["data"]["events"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                counter.fetch_add(n, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    ))
    .await;
    let plugin = sink_fakes::audit_sink(
        &plugin_support::host(),
        "webhook-audit",
        &[
            ("url", &format!("{}/in", receiver.url())),
            ("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("format", "raw"),
        ],
        sink_fakes::http_grant(&receiver.url()),
    );
    Bench {
        name: "webhook-audit (receiver), raw",
        plugin,
        received: Box::new(move || count.load(Ordering::Relaxed)),
        _keep: Box::new(receiver),
    }
}

async fn syslog_sink() -> Bench {
    let rsyslog = peers::rsyslog::Rsyslog::start().await;
    let addr: std::net::SocketAddr = rsyslog.address().parse().expect("address");
    let plugin = sink_fakes::audit_sink(
        &plugin_support::host(),
        "syslog",
        &[("address", &rsyslog.address()), ("format", "raw")],
        Grants {
            tcp: vec![addr],
            ..Grants::default()
        },
    );
    let rsyslog = std::sync::Arc::new(rsyslog);
    let count = rsyslog.clone();
    Bench {
        name: "syslog (rsyslog), raw",
        plugin,
        received: Box::new(move || count.parsed().len()),
        _keep: Box::new(rsyslog),
    }
}

/// Ships the whole outbox to a new sink; `Err` with the sink's last error when it stalls.
async fn ship(
    store: &Store,
    bench: &Bench,
    sink: &str,
    batch_size: usize,
    in_flight: usize,
    n: usize,
) -> Result<Duration, String> {
    let before = (bench.received)();
    let (_wake_tx, wake) = tokio::sync::watch::channel(0u64);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let shipper = Shipper::new(
        sink.to_owned(),
        Ok(bench.plugin.clone()),
        store.clone(),
        ShipOptions {
            batch_size,
            in_flight,
            flush_interval: Duration::from_millis(1),
            start: SinkStart::Beginning,
            include_own_events: false,
            retry: RetryPolicy::default(),
            shutdown_grace: Duration::from_secs(5),
            until_caught_up: false,
        },
    );
    let started = Instant::now();
    let task = tokio::spawn(shipper.run(wake, shutdown));
    let mut stalled = None;
    while (bench.received)() < before + n {
        if started.elapsed() > Duration::from_secs(60) {
            let cursor = store.audit_sink(sink, SinkStart::Beginning).ok();
            stalled = Some(
                cursor
                    .and_then(|c| c.last_error)
                    .unwrap_or_else(|| "no progress".into()),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    trigger.trigger();
    let report = task.await.expect("joined").expect("shipped");
    match stalled {
        Some(error) => Err(error),
        None if report.failures > 0 => Err(format!("{} failed calls", report.failures)),
        None => Ok(elapsed),
    }
}

/// `opsync once` as its own process, as a user runs it from cron: a fresh state database and a
/// fresh Elasticsearch fake, the whole backlog read from `/v1/activity` and shipped. Wall time
/// from spawn to exit (startup, config, plugin load from the compile cache in `cache`, the tail,
/// shipping); `Ok` with the documents stored and the time.
async fn once_process(
    server: &DevServer,
    cache: &std::path::Path,
    run: &str,
    batch: usize,
    in_flight: usize,
) -> Result<(usize, Duration), String> {
    let es = sink_fakes::EsFake::start(None).await;
    let config_path = cache.join(format!("{run}.toml"));
    let config = format!(
        r#"
[connect]
host = "{host}"
token = "{token}"

[state]
path = "{state}"

[log]
level = "warn"

[plugins.es]
builtin = "elasticsearch"
world = "audit-sink"
config = {{ url = "{es}" }}
grants = {{ http = ["{es}"] }}

[audit]
page_size = 1000

[[audit.sink]]
plugin = "es"
format = "ecs"
batch_size = {batch}
in_flight = {in_flight}
include_own_events = false
"#,
        host = server.base_url(),
        token = server.token(),
        state = cache.join(format!("{run}.db")).display(),
        es = es.url(),
    );
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let bin =
        std::env::var_os("OPSYNC_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_opsync").into());
    let started = Instant::now();
    let out = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .arg("once")
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((es.document_count(), elapsed))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = support::env_or("AUDIT_BENCH_RECORDS", 20_000);
    let server = DevServer::start(DevServerOptions {
        seed: Seed::Empty,
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev");
    server.seed_activity(n, 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).expect("store");
    let tail = Tail::new(
        client(&server),
        store.clone(),
        TailOptions {
            page_size: 1000,
            lookback: Duration::from_secs(5),
        },
    );
    let started = Instant::now();
    let read = tail.poll().await.expect("tail");
    let tail_time = started.elapsed();
    assert_eq!(read.added as usize, n);
    println!(
        "tail: {n} records from /v1/activity (pages of 1000) into the outbox in {:.0} ms: {:.0} records/s ({} requests)",
        tail_time.as_secs_f64() * 1e3,
        n as f64 / tail_time.as_secs_f64(),
        read.requests
    );
    let started = Instant::now();
    let idle = tail.poll().await.expect("idle tail");
    println!(
        "tail, nothing new, lookback 5s (every record is younger): {} request(s), {:.1} ms",
        idle.requests,
        started.elapsed().as_secs_f64() * 1e3
    );
    let no_lookback = Tail::new(
        client(&server),
        store.clone(),
        TailOptions {
            page_size: 1000,
            lookback: Duration::ZERO,
        },
    );
    let started = Instant::now();
    let idle = no_lookback.poll().await.expect("idle tail");
    println!(
        "tail, nothing new, no lookback: {} request(s), {:.1} ms",
        idle.requests,
        started.elapsed().as_secs_f64() * 1e3
    );

    let chosen = std::env::var("AUDIT_BENCH_SINKS")
        .unwrap_or_else(|_| "es,hec,webhook,syslog,lines,once-es".into());
    let windows: Vec<usize> = std::env::var("AUDIT_BENCH_IN_FLIGHT")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .map(|w| w.trim().parse().expect("AUDIT_BENCH_IN_FLIGHT: numbers"))
        .collect();
    for name in chosen.split(',') {
        if name.trim() == "once-es" {
            let cache = tempfile::tempdir().expect("tempdir");
            // Warm-up: compiles the plugin into the cache the measured runs share.
            if let Err(e) = once_process(&server, cache.path(), "warm-up", 1000, 1).await {
                println!("opsync once: not measured: {e}");
                continue;
            }
            for &in_flight in &windows {
                for run in 1..=3 {
                    let label = format!("once-{in_flight}-{run}");
                    match once_process(&server, cache.path(), &label, 1000, in_flight).await {
                        Ok((docs, t)) => println!(
                            "opsync once (own process) -> elasticsearch (fake), ecs, in flight {in_flight:>2}, batch 1000, run {run}: {docs} records in {:>6.0} ms = {:>7.0} records/s, whole process",
                            t.as_secs_f64() * 1e3,
                            docs as f64 / t.as_secs_f64()
                        ),
                        Err(e) => println!("opsync once, in flight {in_flight}: not measured: {e}"),
                    }
                }
            }
            continue;
        }
        for &in_flight in &windows {
            for &batch in BATCH_SIZES {
                // A fresh peer per run: Elasticsearch would answer 409 to records it already holds.
                let bench = match name.trim() {
                    "es" => es_sink().await,
                    "hec" => hec_sink().await,
                    "webhook" => webhook_sink().await,
                    "syslog" => syslog_sink().await,
                    "lines" => line_sink().await,
                    other => panic!("unknown sink {other:?} in AUDIT_BENCH_SINKS"),
                };
                let sink = format!("{name}-{in_flight}-{batch}");
                let t = match ship(&store, &bench, &sink, batch, in_flight, n).await {
                    Ok(t) => t,
                    Err(e) => {
                        println!(
                            "{:<30} in flight {in_flight:>2}, batch {batch:>5}: not measured: {e}",
                            bench.name
                        );
                        continue;
                    }
                };
                let end_to_end = n as f64 / (t + tail_time).as_secs_f64();
                println!(
                    "{:<30} in flight {in_flight:>2}, batch {batch:>5}: {n} records in {:>6.0} ms = {:>7.0} records/s shipping; {:>7.0} records/s from /v1/activity",
                    bench.name,
                    t.as_secs_f64() * 1e3,
                    n as f64 / t.as_secs_f64(),
                    end_to_end
                );
            }
        }
    }
}
