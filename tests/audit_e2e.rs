//! The audit export end to end through the real binary: 10,000 activity records (and more logged
//! while it runs) go from connect-dev's `/v1/activity` through `opsync run` to the built-in
//! `elasticsearch` sink (the Elasticsearch FAKE of tests/sink_fakes: no real one runs here) and
//! the built-in `syslog` sink (a real rsyslog), while both fail and recover and the daemon is
//! SIGKILLed twice mid-batch. At the end every record is in Elasticsearch exactly once (by `_id`;
//! re-sent ones came back 409) and in rsyslog's output file at least once (syslog cannot dedupe),
//! `opsync audit status` shows nothing pending, and `opsync audit replay` ships again.

mod audit_daemon;
mod peers;
mod plugin_support;
mod sink_fakes;
mod sync_support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use audit_daemon::{kill, once, opsync, start, syslog_id, wait_for};
use opsync::connect::client::ConnectClient;
use opsync::connect_dev::Seed;
use peers::rsyslog::Rsyslog;
use sink_fakes::{EsFailure, EsFake};
use sync_support::{base_config, client, connect, settings};

const RECORDS: usize = 10_000;
const LATER: usize = 2_000;

async fn logged(client: &ConnectClient) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut offset = 0;
    loop {
        let page = client.activity(1000, offset).await.expect("activity");
        if page.records.is_empty() {
            return ids;
        }
        offset += page.records.len() as u64;
        ids.extend(page.records.into_iter().map(|r| r.request_id));
    }
}

fn es_ids(es: &EsFake) -> HashSet<String> {
    es.documents().into_keys().map(|(_, id)| id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_elasticsearch_once_and_rsyslog_through_outages_and_sigkills() {
    let server = connect(Seed::Empty).await;
    server.seed_activity(RECORDS, 100);
    let client = client(&server);
    let es = EsFake::start(None).await;
    // Two records the fake throttles (429) three times: the call holding one keeps retrying it
    // inside the plugin for ~0.9 s, with the rest of its batch already stored but not yet
    // acknowledged to the daemon: the moments to SIGKILL it mid-batch.
    let nth_oldest = |n: u64| {
        let client = client.clone();
        async move {
            client
                .activity(1, RECORDS as u64 - n)
                .await
                .expect("activity")
                .records
                .remove(0)
                .request_id
        }
    };
    let first_victim = nth_oldest(3_000).await;
    let second_victim = nth_oldest(8_000).await;
    es.script_item(&first_victim, &[429, 429, 429]);
    es.script_item(&second_victim, &[429, 429, 429]);
    let sent = |id: &str| es.requests().iter().any(|r| r.iter().any(|x| x == id));
    // Elasticsearch starts out overloaded; rsyslog is not running yet.
    es.set_failure_mode(EsFailure::Status(503));
    let syslog_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[log]
level = "info"

[plugins.es]
builtin = "elasticsearch"
world = "audit-sink"
config = {{ url = "{es}", max-retries = "2", retry-backoff-ms = "300" }}
grants = {{ http = ["{es}"] }}

[plugins.siem-syslog]
builtin = "syslog"
world = "audit-sink"
config = {{ address = "127.0.0.1:{syslog_port}", hostname = "connect-host", close-wait-ms = "1000" }}
grants = {{ tcp = ["127.0.0.1:{syslog_port}"] }}

[audit]
poll_interval = "200ms"
page_size = 1000
lookback = "1s"

[[audit.sink]]
plugin = "es"
format = "ecs"
batch_size = 400
in_flight = 3
flush_interval = "100ms"
include_own_events = false

[[audit.sink]]
plugin = "siem-syslog"
name = "syslog"
format = "raw"
batch_size = 500
flush_interval = "100ms"
include_own_events = false
"#,
        base = base_config(&server, "1s"),
        es = es.url(),
    );
    settings(dir, &config); // checks it and writes config.toml
    let config_path = dir.join("config.toml");
    let log = dir.join("opsync.log");

    let mut daemon = start(&config_path, &log);
    // Both sinks fail and say so in `audit status`, while their records wait.
    let mut status = String::new();
    wait_for(
        "both sinks report their failures",
        Duration::from_secs(60),
        &log,
        || {
            status = opsync(&config_path, &["audit", "status"]);
            let row = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            row("es ").contains("503") && row("syslog ").contains("failures")
        },
    )
    .await;
    eprintln!("{status}");
    es.set_failure_mode(EsFailure::None);
    let mut rsyslog = Rsyslog::start_on(syslog_port).await;

    // First SIGKILL: mid-batch, while the plugin retries the throttled record.
    wait_for(
        "the first throttled record reached Elasticsearch",
        Duration::from_secs(60),
        &log,
        || sent(&first_victim),
    )
    .await;
    kill(&mut daemon);
    eprintln!(
        "killed at {} documents, {} syslog lines",
        es.documents().len(),
        rsyslog.parsed().len()
    );

    // Down time: more requests are logged, Elasticsearch throttles, rsyslog stops.
    server.seed_activity(LATER, 100);
    es.set_failure_mode(EsFailure::Status(429));
    let mut syslog_lines = rsyslog.stop();
    let mut daemon = start(&config_path, &log);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    es.set_failure_mode(EsFailure::None);
    rsyslog = Rsyslog::start_on(syslog_port).await;

    // Second SIGKILL, later in the stream, mid-batch again.
    wait_for(
        "the second throttled record reached Elasticsearch",
        Duration::from_secs(60),
        &log,
        || sent(&second_victim),
    )
    .await;
    kill(&mut daemon);
    eprintln!(
        "killed at {} documents, {} syslog lines",
        es.documents().len(),
        syslog_lines.len() + rsyslog.parsed().len()
    );

    let mut daemon = start(&config_path, &log);
    // Everything Connect logged (the seeded records and the daemon's own vault polls) arrives.
    let deadline = Instant::now() + Duration::from_secs(120);
    let expected = loop {
        let expected = logged(&client).await;
        let in_es = es_ids(&es);
        let in_syslog: HashSet<String> = syslog_lines
            .iter()
            .chain(rsyslog.parsed().iter())
            .filter_map(|l| syslog_id(l))
            .collect();
        if expected.is_subset(&in_es) && expected.is_subset(&in_syslog) {
            break expected;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived: {} logged, {} missing in Elasticsearch, {} missing in rsyslog",
            expected.len(),
            expected.difference(&in_es).count(),
            expected.difference(&in_syslog).count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(expected.len() >= RECORDS + LATER, "{}", expected.len());

    // Elasticsearch: exactly once per request id; re-sends after the kills came back 409.
    let documents = es.documents();
    let in_es: HashSet<String> = documents.keys().map(|(_, id)| id.clone()).collect();
    assert_eq!(documents.len(), in_es.len(), "one document per _id");
    assert!(
        in_es.iter().all(|id| !id.starts_with("opsync-")),
        "own events excluded"
    );
    let mut sent: HashMap<String, usize> = HashMap::new();
    for request in es.requests() {
        for id in request {
            *sent.entry(id).or_default() += 1;
        }
    }
    let resent = sent.values().filter(|n| **n > 1).count();
    // Each kill cut a call short: its batch was sent again and its stored items came back 409.
    assert!(
        resent >= 2 * 300,
        "batches cut by the kills were re-sent: {resent}"
    );
    eprintln!(
        "{} records logged; Elasticsearch: {} documents, {} ids sent more than once (409 on the re-send)",
        expected.len(),
        documents.len(),
        resent
    );

    // rsyslog: every record is in its output file; count what came twice (no dedupe in syslog).
    syslog_lines.extend(rsyslog.parsed());
    let ids: Vec<String> = syslog_lines.iter().filter_map(|l| syslog_id(l)).collect();
    assert_eq!(
        ids.len(),
        syslog_lines.len(),
        "every line carries a request id"
    );
    let unique: HashSet<&String> = ids.iter().collect();
    eprintln!(
        "rsyslog: {} lines, {} distinct request ids, {} duplicates",
        ids.len(),
        unique.len(),
        ids.len() - unique.len()
    );

    // The status command agrees: no dead letters, and nothing pending once the sinks caught up.
    // The daemon keeps polling Connect, and every poll is itself a new activity record, so the
    // tail may have just read one that the next flush ships: look until a status shows none.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = opsync(&config_path, &["audit", "status"]);
        let mut pending = 0usize;
        let mut sinks = 0;
        for line in status
            .lines()
            .filter(|l| l.starts_with("es ") || l.starts_with("syslog "))
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols[7], "0", "no dead letters: {status}");
            pending += cols[4].parse::<usize>().expect("a pending count");
            sinks += 1;
        }
        assert_eq!(sinks, 2, "both sinks listed: {status}");
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records still pending after 30 s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Replay: the last hour goes to Elasticsearch again; every re-send is a 409, no new document.
    let before = es.requests().iter().map(Vec::len).sum::<usize>();
    let replay = opsync(
        &config_path,
        &["audit", "replay", "--since", "1h", "--sink", "es"],
    );
    assert!(replay.contains("es: cursor"), "{replay}");
    wait_for(
        "the replay re-sent everything",
        Duration::from_secs(60),
        &log,
        || es.requests().iter().map(Vec::len).sum::<usize>() >= before + expected.len(),
    )
    .await;
    // (Connect keeps logging the daemon's vault polls, so new documents may appear meanwhile.)
    let after = es.documents();
    let ids_after: HashSet<&String> = after.keys().map(|(_, id)| id).collect();
    assert_eq!(after.len(), ids_after.len(), "still one document per _id");
    assert!(
        documents.keys().all(|k| after.get(k) == documents.get(k)),
        "a replay rewrites nothing: every re-sent record came back 409"
    );

    // SIGTERM stops it cleanly.
    // SAFETY: signalling our own child process.
    assert_eq!(
        unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let exit = daemon.0.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("audit sink stopped"), "clean stop logged");
    assert!(!text.contains("panicked"), "no panic in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_reads_the_log_and_ships_it_with_its_own_deliveries() {
    let server = connect(Seed::Demo).await;
    server.seed_activity(500, 100);
    let client = client(&server);
    let es = EsFake::start(None).await;
    es.set_failure_mode(EsFailure::Status(503));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
{files}
[[route]]
name = "prod"
vaults = ["Production"]
destinations = ["prod-files"]

[plugins.es]
builtin = "elasticsearch"
world = "audit-sink"
config = {{ url = "{es}", max-retries = "0" }}
grants = {{ http = ["{es}"] }}

[[audit.sink]]
plugin = "es"
format = "ecs"
batch_size = 200
include_own_events = true
"#,
        base = base_config(&server, "1s"),
        files = sync_support::file_plugin(dir, "prod-files", "prod", ""),
        es = es.url(),
    );
    settings(dir, &config);
    let config_path = dir.join("config.toml");
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    let items = client.list_items(&prod.id, None).await.expect("items");

    // The sink is down: the items are delivered, the records are kept, and the exit code says so.
    let (code, text) = once(&config_path);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("audit sink es: 0 shipped") && text.contains("stopped, records kept"),
        "{text}"
    );
    assert!(text.contains("503"), "the sink's failure is named: {text}");
    assert_eq!(es.document_count(), 0);

    // Back up: the next run ships everything logged so far and the first run's own events.
    es.set_failure_mode(EsFailure::None);
    let before = logged(&client).await;
    let (code, text) = once(&config_path);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("audit sink es:") && text.contains("caught up"),
        "{text}"
    );
    let ids = es_ids(&es);
    let missing: Vec<_> = before.difference(&ids).take(5).collect();
    assert!(missing.is_empty(), "not shipped: {missing:?}");
    let docs = es.documents();
    let delivered: HashSet<String> = docs
        .values()
        .filter(|d| d["onepassword"]["connect"]["action"] == "DELIVER")
        .filter_map(|d| {
            d["onepassword"]["connect"]["item_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let expected: HashSet<String> = items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(delivered, expected, "one DELIVER event per Production item");

    // Nothing new: nothing shipped twice.
    let count = es.document_count();
    let sent = es.requests().iter().map(Vec::len).sum::<usize>();
    let (code, text) = once(&config_path);
    assert_eq!(code, 0, "{text}");
    let resent: usize = es.requests().iter().map(Vec::len).sum::<usize>() - sent;
    assert!(
        resent <= es.document_count() - count,
        "only records logged since were sent: {resent} sent, {} new",
        es.document_count() - count
    );
    server.shutdown().await;
}
