//! The Events API audit source end to end through the real binary: records of the three streams
//! go from connect-dev's Events API (a FAKE: no real Events API runs offline) through `opsync
//! run` to all four built-in sinks (the Elasticsearch and Splunk HEC fakes of tests/sink_fakes, a
//! real rsyslog, and a webhook receiver here) while Elasticsearch fails 3 requests in 10 and the
//! daemon is SIGKILLed twice. Every record arrives at every sink, exactly once in Elasticsearch,
//! and after each kill no sink's cursor is ahead of what that sink holds. Also: 429 storms are
//! ridden out, a window is replayed from the API with `audit replay --stream`, and a token
//! without a feature or one the API refuses stops the daemon at start with a message naming it.

mod audit_daemon;
mod peers;
mod plugin_support;
mod sink_fakes;
mod sync_support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_daemon::{kill, once, opsync, start, syslog_id, wait_for};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opsync::connect_dev::{DevServer, DevServerOptions, EventsOptions, Seed, Stream};
use opsync::store::Store;
use peers::rsyslog::Rsyslog;
use serde_json::{Value, json};
use sink_fakes::{EsFailure, EsFake, HecFake, Server};
use sync_support::{base_config, client, settings};

const STREAMS: [&str; 3] = ["auditevents", "itemusages", "signinattempts"];
const HEC_TOKEN: &str = "5a0c1e9e-hec-token";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// connect-dev with `seed` synthetic records per Events API stream.
async fn server_with_events(seed: usize) -> DevServer {
    DevServer::start(DevServerOptions {
        seed: Seed::Demo,
        events: EventsOptions {
            seed,
            ..EventsOptions::default()
        },
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev starts on port 0")
}

/// Every record id the fake's Events API holds for `stream`, read with an outside client
/// (reqwest) by a reset cursor and then its cursors until `has_more` is false.
async fn api_ids(base: &str, token: &str, stream: &str) -> HashSet<String> {
    let http = reqwest::Client::new();
    let mut body = json!({ "limit": 1000 });
    let mut ids = HashSet::new();
    loop {
        let page: Value = http
            .post(format!("{base}/api/v2/{stream}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the Events API answers")
            .error_for_status()
            .expect("a page")
            .json()
            .await
            .expect("JSON");
        for item in page["items"].as_array().expect("items") {
            ids.insert(item["uuid"].as_str().expect("a uuid").to_owned());
        }
        if page["has_more"] != json!(true) {
            return ids;
        }
        body = json!({ "cursor": page["cursor"] });
    }
}

async fn all_api_ids(base: &str, token: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    for stream in STREAMS {
        ids.extend(api_ids(base, token, stream).await);
    }
    ids
}

/// A webhook-audit receiver: the ids of every record of every POST it answered 200 (raw format:
/// an Events record's `uuid`, an activity record's `requestId`).
#[derive(Clone, Default)]
struct Hook {
    ids: Arc<Mutex<Vec<String>>>,
}

impl Hook {
    async fn start(&self) -> Server {
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        Server::start(app).await
    }

    fn ids(&self) -> Vec<String> {
        self.ids.lock().expect("hook").clone()
    }
}

async fn receive(State(hook): State<Hook>, body: Bytes) -> StatusCode {
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let events = doc["data"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ids = hook.ids.lock().expect("hook");
    for e in events {
        if let Some(id) = e["uuid"].as_str().or(e["requestId"].as_str()) {
            ids.push(id.to_owned());
        }
    }
    StatusCode::OK
}

fn hec_ids(hec: &HecFake) -> Vec<String> {
    hec.events()
        .iter()
        .filter_map(|e| e["fields"]["request_id"].as_str().map(str::to_owned))
        .collect()
}

fn es_ids(es: &EsFake) -> HashSet<String> {
    es.documents().into_keys().map(|(_, id)| id).collect()
}

/// The `[plugins.hook]` instance of the `webhook-audit` sink posting to `hook`.
fn hook_plugin(hook: &str) -> String {
    format!(
        r#"[plugins.hook]
builtin = "webhook-audit"
world = "audit-sink"
config = {{ url = "{hook}/hook", secret = "{WEBHOOK_SECRET}" }}
grants = {{ http = ["{hook}"] }}"#
    )
}

/// The `[audit.sources.events]` section for `server` with `token`.
fn events_section(server: &DevServer, token: &str, limit: u32) -> String {
    format!(
        r#"
[audit.sources.events]
url = "{url}"
token = "{token}"
start_time = "8d"
poll_interval = "200ms"
limit = {limit}
"#,
        url = server.base_url()
    )
}

/// Asserts that for each sink every outbox record up to its cursor is in `held(sink)`: the
/// cursor is never ahead of what the sink acknowledged.
fn cursors_behind_acknowledgements(state: &Path, held: &[(&str, HashSet<String>)]) {
    let store = Store::open(state).expect("the state database opens after a kill");
    let cursors: HashMap<String, i64> = store
        .audit_sinks()
        .expect("cursors")
        .into_iter()
        .map(|c| (c.sink, c.acked_seq))
        .collect();
    for (sink, ids) in held {
        let acked = cursors.get(*sink).copied().unwrap_or(0);
        let behind: Vec<String> = store
            .audit_batch(sink, 0, 1_000_000, false)
            .expect("outbox")
            .into_iter()
            .filter(|r| r.seq <= acked && r.source != "activity")
            .map(|r| r.record.request_id)
            .filter(|id| !ids.contains(id))
            .collect();
        assert!(
            behind.is_empty(),
            "sink {sink}: cursor {acked} is past {} records it does not hold, e.g. {:?}",
            behind.len(),
            behind.first()
        );
        eprintln!("sink {sink}: cursor {acked}, every record up to it is held");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_events_record_reaches_all_four_sinks_through_a_failing_sink_and_sigkills() {
    let server = server_with_events(1_500).await;
    let token = server.events_token(&[], None).expect("an Events API token");
    let connect = client(&server);
    let es = EsFake::start(None).await;
    es.set_failure_mode(EsFailure::TenthsFailing(3));
    let hec = HecFake::start(HEC_TOKEN).await;
    let rsyslog = Rsyslog::start().await;
    let hook = Hook::default();
    let hook_server = hook.start().await;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[log]
level = "info"

[plugins.es]
builtin = "elasticsearch"
world = "audit-sink"
config = {{ url = "{es}", max-retries = "0" }}
grants = {{ http = ["{es}"] }}

[plugins.hec]
builtin = "splunk-hec"
world = "audit-sink"
config = {{ url = "{hec}", token = "{HEC_TOKEN}", ack-poll-ms = "20" }}
grants = {{ http = ["{hec}"] }}

[plugins.syslog]
builtin = "syslog"
world = "audit-sink"
config = {{ address = "127.0.0.1:{syslog_port}", hostname = "events-host" }}
grants = {{ tcp = ["127.0.0.1:{syslog_port}"] }}

{hook_plugin}

[audit]
poll_interval = "500ms"
{events}
[[audit.sink]]
plugin = "es"
format = "ecs"
batch_size = 300
flush_interval = "100ms"
include_own_events = false

[[audit.sink]]
plugin = "hec"
format = "ocsf"
batch_size = 300
flush_interval = "100ms"
include_own_events = false

[[audit.sink]]
plugin = "syslog"
format = "raw"
batch_size = 300
flush_interval = "100ms"
include_own_events = false

[[audit.sink]]
plugin = "hook"
format = "raw"
batch_size = 300
flush_interval = "100ms"
include_own_events = false
"#,
        base = base_config(&server, "1s"),
        es = es.url(),
        hec = hec.url(),
        syslog_port = rsyslog.port,
        hook_plugin = hook_plugin(&hook_server.url()),
        events = events_section(&server, &token, 250),
    );
    settings(dir, &config);
    let config_path = dir.join("config.toml");
    let state = dir.join("state.db");
    let log = dir.join("opsync.log");
    let seeded = all_api_ids(&server.base_url(), &token).await;
    assert_eq!(seeded.len(), 4_500, "1,500 seeded per stream");

    // Two SIGKILLs mid-stream, each once a sink holds part of what was seeded; after each, no
    // cursor is ahead of its sink.
    for threshold in [800, 2_500] {
        let mut daemon = start(&config_path, &log);
        wait_for(
            "Splunk HEC holds part of the seeded records",
            Duration::from_secs(120),
            &log,
            || hec.event_count() >= threshold,
        )
        .await;
        kill(&mut daemon);
        eprintln!(
            "killed at {} HEC events, {} Elasticsearch documents, {} webhook records",
            hec.event_count(),
            es.document_count(),
            hook.ids().len()
        );
        cursors_behind_acknowledgements(
            &state,
            &[
                ("es", es_ids(&es)),
                ("hec", hec_ids(&hec).into_iter().collect()),
                ("hook", hook.ids().into_iter().collect()),
            ],
        );
        // Meanwhile 1Password is used: item reads make item usages, a new token a sign-in.
        let prod = connect
            .find_vault_by_name("Production")
            .await
            .expect("vault");
        for item in connect.list_items(&prod.id, None).await.expect("items") {
            connect.get_item(&prod.id, &item.id).await.expect("item");
        }
    }

    let _daemon = start(&config_path, &log);
    let deadline = Instant::now() + Duration::from_secs(180);
    let expected = loop {
        let expected = all_api_ids(&server.base_url(), &token).await;
        let in_es = es_ids(&es);
        let in_hec: HashSet<String> = hec_ids(&hec).into_iter().collect();
        let in_syslog: HashSet<String> = rsyslog
            .parsed()
            .iter()
            .filter_map(|l| syslog_id(l))
            .collect();
        let in_hook: HashSet<String> = hook.ids().into_iter().collect();
        let missing = [
            ("es", expected.difference(&in_es).count()),
            ("hec", expected.difference(&in_hec).count()),
            ("syslog", expected.difference(&in_syslog).count()),
            ("hook", expected.difference(&in_hook).count()),
        ];
        if missing.iter().all(|(_, n)| *n == 0) {
            break expected;
        }
        assert!(
            Instant::now() < deadline,
            "not every Events record arrived ({} in the API): missing {missing:?}",
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        expected.len() > seeded.len(),
        "records made while the daemon ran were read too: {}",
        expected.len()
    );

    // Elasticsearch is idempotent by `_id`: one document per record, the re-sends were 409s.
    let documents = es.documents();
    let in_es: HashSet<String> = documents.keys().map(|(_, id)| id.clone()).collect();
    assert_eq!(documents.len(), in_es.len(), "one document per _id");
    let sample = documents
        .iter()
        .find(|((_, id), _)| expected.contains(id))
        .map(|(_, doc)| doc)
        .expect("an Events document");
    assert!(
        sample["event"]["dataset"]
            .as_str()
            .is_some_and(|d| d.starts_with("1password.")),
        "shaped as ECS with the stream as dataset: {sample}"
    );
    let count = |ids: &[String]| {
        ids.iter()
            .filter(|id| expected.contains(*id))
            .count()
            .saturating_sub(expected.len())
    };
    let syslog: Vec<String> = rsyslog
        .parsed()
        .iter()
        .filter_map(|l| syslog_id(l))
        .collect();
    eprintln!(
        "{} Events records; duplicates: Elasticsearch 0, HEC {}, syslog {}, webhook {}",
        expected.len(),
        count(&hec_ids(&hec)),
        count(&syslog),
        count(&hook.ids())
    );
    let status = opsync(&config_path, &["audit", "status"]);
    for stream in STREAMS {
        assert!(
            status.contains(&format!("events api {stream}: ")),
            "status shows the stream: {status}"
        );
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("panicked"), "no panic in the log");
    assert!(
        !text.contains(&token),
        "the Events API token is never logged"
    );
    rsyslog.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_is_ridden_out_and_a_window_is_replayed_from_the_api() {
    let server = server_with_events(400).await;
    let token = server.events_token(&[], None).expect("token");
    let seeded = all_api_ids(&server.base_url(), &token).await;
    // Half of the Events API's answers are 429 with Retry-After: 1.
    server.set_events_faults(0.5, Duration::from_secs(1));
    let hook = Hook::default();
    let hook_server = hook.start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
{hook_plugin}
{events}
[[audit.sink]]
plugin = "hook"
format = "raw"
batch_size = 200
flush_interval = "100ms"
include_own_events = false
"#,
        base = base_config(&server, "1s"),
        hook_plugin = hook_plugin(&hook_server.url()),
        events = events_section(&server, &token, 100),
    );
    settings(dir, &config);
    let config_path = dir.join("config.toml");
    let log = dir.join("opsync.log");
    let _daemon = start(&config_path, &log);
    wait_for(
        "every seeded record arrived through the 429s",
        Duration::from_secs(120),
        &log,
        || {
            let got: HashSet<String> = hook.ids().into_iter().collect();
            seeded.is_subset(&got)
        },
    )
    .await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("asked to slow down (429)"),
        "the storm was seen and waited out"
    );
    server.set_events_faults(0.0, Duration::from_secs(1));

    // Replay a window of one stream from the API: each of its records arrives once more.
    let audit_events = api_ids(&server.base_url(), &token, "auditevents").await;
    let before: HashMap<String, usize> = counts(&hook.ids());
    let asked = opsync(
        &config_path,
        &[
            "audit",
            "replay",
            "--stream",
            "auditevents",
            "--since",
            "8d",
            "--sink",
            "hook",
        ],
    );
    assert!(
        asked.contains("hook: replay 1 asked: auditevents from "),
        "{asked}"
    );
    wait_for(
        "the replayed window arrived again",
        Duration::from_secs(60),
        &log,
        || {
            let now = counts(&hook.ids());
            audit_events
                .iter()
                .all(|id| now.get(id).copied().unwrap_or(0) > before.get(id).copied().unwrap_or(0))
        },
    )
    .await;
    let status = opsync(&config_path, &["audit", "status"]);
    assert!(
        status.contains("replay 1 of auditevents to hook") && status.contains("done"),
        "{status}"
    );

    // What a replay cannot do is refused with the reason.
    for (args, reason) in [
        (vec!["--stream", "activity"], "leave --stream out"),
        (vec!["--stream", "nope"], "unknown Events API stream"),
        (
            vec!["--stream", "auditevents", "--sink", "nope"],
            "no [[audit.sink]]",
        ),
    ] {
        let out = std::process::Command::new(audit_daemon::binary())
            .arg("--config")
            .arg(&config_path)
            .args(["audit", "replay", "--since", "1d"])
            .args(&args)
            .output()
            .expect("opsync");
        assert!(!out.status.success(), "{args:?} refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

fn counts(ids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_feature_or_refused_stops_the_daemon_at_start() {
    let server = server_with_events(10).await;
    let hook = Hook::default();
    let hook_server = hook.start().await;
    let partial = server
        .events_token(&[Stream::AuditEvents], None)
        .expect("token");
    for (token, expected) in [
        (
            partial.as_str(),
            "the Events API token cannot read itemusages, signinattempts",
        ),
        ("not-a-token", "HTTP 401"),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let config = format!(
            r#"{base}
{hook_plugin}
{events}
[[audit.sink]]
plugin = "hook"
"#,
            base = base_config(&server, "1s"),
            hook_plugin = hook_plugin(&hook_server.url()),
            events = events_section(&server, token, 100),
        );
        settings(dir, &config);
        let config_path = dir.join("config.toml");
        let log = dir.join("opsync.log");
        let mut daemon = start(&config_path, &log);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = daemon.0.try_wait().expect("wait") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon keeps running with a token it cannot use"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(!status.success());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(text.contains(expected), "{expected}: {text}");
        assert!(
            text.contains("audit.sources.events"),
            "names the config: {text}"
        );
        assert!(!text.contains(&partial), "the token is never printed");
        let (code, printed) = once(&config_path);
        assert_ne!(code, 0);
        assert!(printed.contains(expected), "once: {printed}");
    }
    assert!(hook.ids().is_empty(), "nothing was shipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_reads_every_stream_and_ships_it() {
    let server = server_with_events(50).await;
    let token = server.events_token(&[], None).expect("token");
    let hook = Hook::default();
    let hook_server = hook.start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
{hook_plugin}
{events}
[[audit.sink]]
plugin = "hook"
include_own_events = false
"#,
        base = base_config(&server, "1s"),
        hook_plugin = hook_plugin(&hook_server.url()),
        events = events_section(&server, &token, 20),
    );
    settings(dir, &config);
    let config_path = dir.join("config.toml");
    let (code, printed) = once(&config_path);
    assert_eq!(code, 0, "{printed}");
    for stream in STREAMS {
        assert!(
            printed.contains(&format!("new {stream} records from the Events API")),
            "{printed}"
        );
    }
    let seeded = all_api_ids(&server.base_url(), &token).await;
    let got: HashSet<String> = hook.ids().into_iter().collect();
    let shipped_before = seeded.intersection(&got).count();
    assert!(
        shipped_before >= 150,
        "the seeded records were shipped: {shipped_before}"
    );
    // A second run reads from the saved cursors: nothing seeded is shipped twice.
    let (code, printed) = once(&config_path);
    assert_eq!(code, 0, "{printed}");
    let again = counts(&hook.ids());
    assert!(
        seeded
            .iter()
            .all(|id| again.get(id).copied().unwrap_or(0) <= 1),
        "the cursors were kept between runs"
    );
}
