//! Events API audit source throughput: records per second from connect-dev's Events API (a FAKE:
//! no real Events API runs offline) to the Splunk HEC FAKE of tests/sink_fakes, through the
//! release `opsync run` as a user runs it (from spawn until HEC holds every record: start-up,
//! the token check, reading the three streams page by page into the state database, shipping
//! through the built-in `splunk-hec` plugin with indexer acknowledgement, 4 batches of 1,000 in
//! flight), once with `format = "raw"` (the API's JSON, as Splunk's 1Password app reads it) and
//! once with `ocsf`. The baseline, in the same run, is
//! benches/baseline_events_hec.py: the plain script around `requests` that reads each stream and
//! posts every page to HEC, as the Events API's published sample scripts do.
//!
//! `cargo bench --bench audit_events` (env `EVENTS_BENCH_RECORDS`: records per stream, default
//! 50000; `EVENTS_BENCH_FORMATS`, default `raw,ocsf`; `EVENTS_BENCH_IN_FLIGHT`, the sink's
//! `in_flight`, default 4). The request budget is lifted to measure
//! opsync itself: against the real API a token's 600 requests a minute of 1,000 records bound a
//! deployment at 10,000 records/s.

#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;
#[path = "../tests/sink_fakes/mod.rs"]
mod sink_fakes;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use opsync::connect_dev::{DevServer, DevServerOptions, EventsOptions, Seed, Stream};
use sink_fakes::{HecFailure, HecFake};

const HEC_TOKEN: &str = "bench-hec-token";

fn config(
    server: &DevServer,
    token: &str,
    hec: &str,
    dir: &Path,
    run: &str,
    format: &str,
    in_flight: usize,
) -> String {
    format!(
        r#"
[connect]
host = "{host}"
token = "{connect_token}"

[state]
path = "{state}"

[log]
level = "warn"

[plugins.hec]
builtin = "splunk-hec"
world = "audit-sink"
config = {{ url = "{hec}", token = "{HEC_TOKEN}", ack-poll-ms = "10" }}
grants = {{ http = ["{hec}"] }}

[audit.sources.events]
url = "{host}"
token = "{token}"
start_time = "8d"
limit = 1000
requests_per_minute = 1000000
requests_per_hour = 60000000

[[audit.sink]]
plugin = "hec"
format = "{format}"
batch_size = 1000
in_flight = {in_flight}
include_own_events = false
"#,
        host = server.base_url(),
        connect_token = server.token(),
        state = dir.join(format!("{run}.db")).display(),
    )
}

/// Events API records HEC holds.
fn events_in(hec: &HecFake) -> usize {
    hec.count_where(|e| {
        e["sourcetype"]
            .as_str()
            .is_some_and(|s| s.starts_with("1password:") && !s.contains("connect"))
    })
}

/// One `opsync run` from spawn until HEC holds `total` Events records (then SIGTERM): the
/// records and the time.
async fn opsync_run(
    server: &DevServer,
    token: &str,
    dir: &Path,
    run: &str,
    format: &str,
    in_flight: usize,
    total: usize,
) -> (usize, Duration) {
    let hec = HecFake::start(HEC_TOKEN).await;
    let path = dir.join(format!("{run}.toml"));
    std::fs::write(
        &path,
        config(server, token, &hec.url(), dir, run, format, in_flight),
    )
    .expect("config");
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let started = Instant::now();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_opsync"))
        .arg("--config")
        .arg(&path)
        .args(["run", "--admin-listen", &admin.to_string()])
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .kill_on_drop(true)
        .spawn()
        .expect("opsync run");
    // HEC also holds the few activity records. While even all it holds are fewer than `total`,
    // its length says enough: scanning 150,000 records every 20 ms would take CPU from opsync
    // and hold the fake's lock against its own ingest.
    let mut held = 0;
    while held < total {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{run}: {held} of {total} records after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        if hec.event_count() >= total {
            held = events_in(&hec);
        }
    }
    let took = started.elapsed();
    // SAFETY: signalling our own child process.
    if let Some(pid) = daemon.id() {
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    let _ = daemon.wait().await;
    (events_in(&hec), took)
}

/// The baseline script: records it posted, and the whole process's time. Its HEC token has
/// indexer acknowledgement off (the script awaits none), so a 200 means indexed.
async fn baseline(server: &DevServer, token: &str) -> (u64, f64) {
    let hec = HecFake::start(HEC_TOKEN).await;
    hec.set_failure_mode(HecFailure::NoAckIds);
    let args = [
        server.base_url(),
        token.to_owned(),
        hec.url(),
        HEC_TOKEN.to_owned(),
    ];
    let (posted, seconds) = support::baseline(
        "baseline_events_hec.py",
        &args,
        (&server.base_url(), server.token()),
    );
    assert_eq!(hec.event_count() as u64, posted, "HEC holds what it posted");
    (posted, seconds)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let per_stream = support::env_or("EVENTS_BENCH_RECORDS", 50_000);
    let server = DevServer::start(DevServerOptions {
        seed: Seed::Empty,
        events: EventsOptions {
            seed: per_stream,
            ..EventsOptions::default()
        },
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev");
    let token = server.events_token(&[], None).expect("token");
    let total = per_stream * Stream::ALL.len();
    let dir = tempfile::tempdir().expect("tempdir");
    println!("Events API (fake) -> splunk-hec (fake, indexer ack), {total} records");
    let in_flight = support::env_or("EVENTS_BENCH_IN_FLIGHT", 4);
    println!("splunk-hec sink: batches of 1,000, {in_flight} in flight");
    let formats = std::env::var("EVENTS_BENCH_FORMATS").unwrap_or_else(|_| "raw,ocsf".into());
    let mut medians = Vec::new();
    for format in formats.split(',') {
        // Warm-up: compiles the plugin into the cache the measured runs share.
        let _ = opsync_run(
            &server,
            &token,
            dir.path(),
            &format!("warm-up-{format}"),
            format,
            in_flight,
            total,
        )
        .await;
        let mut rates = Vec::new();
        for run in 1..=3 {
            let label = format!("{format}-{run}");
            let (records, took) = opsync_run(
                &server,
                &token,
                dir.path(),
                &label,
                format,
                in_flight,
                total,
            )
            .await;
            // (A few more than seeded: connect-dev records a sign-in on each Connect token's
            // first use.)
            assert!(
                records >= total,
                "every record reached HEC: {records} of {total}"
            );
            let rate = records as f64 / took.as_secs_f64();
            rates.push(rate);
            println!(
                "opsync run, {format}, run {run}: {records} records in {} ms, {rate:.0} records/s",
                took.as_millis()
            );
        }
        rates.sort_by(f64::total_cmp);
        medians.push((format.to_owned(), rates[rates.len() / 2]));
    }
    let (posted, seconds) = baseline(&server, &token).await;
    let base = posted as f64 / seconds;
    println!(
        "baseline (Python, requests): {posted} records in {seconds:.2} s, {base:.0} records/s"
    );
    for (format, median) in medians {
        println!(
            "{format}: median {median:.0} records/s, {:.2}x the baseline; goal >= 20,000/s: {}",
            median / base,
            if median >= 20_000.0 { "met" } else { "not met" }
        );
    }
}
