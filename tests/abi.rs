//! Plugin ABI versions through the real binary: a component built for ABI 0.1.0 (the `file`
//! plugin as it was built before 0.2.0, kept in tests/fixtures/) still delivers; a 0.2.0
//! destination gets a route's changes in batches (one call each, a result per change, so a
//! change that fails leaves the others delivered); and a 0.2.0 plugin's retry hint (a
//! `Retry-After` its receiver sent) decides when the change is tried again.

mod sync_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use opsync::connect_dev::Seed;
use opsync::plugin::sha256_hex;
use opsync::store::Store;
use sync_support::{
    base_config, client, connect, file_instance, files_under, free_port, opsync_in, run_daemon,
    text,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/file-abi-0.1.0.wasm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_for_abi_0_1_0_still_delivers() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let wasm = fixture();

    std::fs::create_dir_all(dir.join("old")).expect("dir");
    let config = format!(
        r#"{base}
[plugins.old-files]
path = "{path}"
sha256 = "{sha}"
config = {{ format = "item-json", name = "{{{{vault}}}}/{{{{id}}}}.json" }}
grants = {{ dirs = [{{ host = "old" }}] }}

[[route]]
name = "prod"
vaults = ["Production"]
destinations = ["old-files"]
"#,
        base = base_config(&server, "1s"),
        path = wasm.display(),
        sha = sha256_hex(&std::fs::read(&wasm).expect("fixture")),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let inspect = opsync_in(dir, &["plugin", "inspect", &wasm.display().to_string()]);
    assert!(inspect.status.success(), "{}", text(&inspect));
    let shown = String::from_utf8_lossy(&inspect.stdout).to_string();
    assert!(shown.contains("opsync:plugin@0.1.0"), "{shown}");
    let once = opsync_in(dir, &["once"]);
    assert_eq!(once.status.code(), Some(0), "{}", text(&once));
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("vault");
    let items = client.list_items(&prod.id, None).await.expect("items");
    let written = files_under(&dir.join("old"));
    assert_eq!(written.len(), items.len(), "{written:?}");
    for item in &items {
        let path = dir.join("old/Production").join(format!("{}.json", item.id));
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("delivered")).expect("JSON");
        assert_eq!(doc["version"], item.version, "{}", path.display());
    }
}

/// The sum of a counter's series whose labels contain every `(name, value)` of `labels`.
fn counter(exposition: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_destination_gets_changes_in_few_calls_with_a_result_each() {
    let server = connect(Seed::Bulk {
        vaults: 1,
        items_per_vault: 200,
    })
    .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // Every bulk item has a password; the ones whose title ends in 7 are sent a field they do
    // not have: those fail alone, in the same calls as the others.
    let config = format!(
        r#"{base}
{all}
{some}
[[route]]
name = "all"
vaults = ["Bulk 01"]
destinations = ["all-files"]
batch_size = 50

[[route]]
name = "some"
vaults = ["Bulk 01"]
title = "*7"
destinations = ["some-files"]
batch_size = 50
"#,
        base = base_config(&server, "300ms"),
        all = file_instance(
            dir,
            "all-files",
            "all",
            r#"format = "item-json", name = "{{id}}.json""#
        ),
        some = file_instance(
            dir,
            "some-files",
            "some",
            r#"format = "raw", field = "no-such-field", name = "{{id}}.txt""#
        ),
    );
    std::fs::write(dir.join("config.toml"), &config).expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let _daemon = run_daemon(dir, &admin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let text = sync_support::metrics(&admin).await;
        let delivered = counter(
            &text,
            "opsync_deliveries_total",
            &[("route", "all"), ("outcome", "delivered")],
        );
        let dead = counter(
            &text,
            "opsync_deliveries_total",
            &[("route", "some"), ("outcome", "dead_letter")],
        );
        if delivered >= 200.0 && dead >= 20.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered in time: {delivered} delivered, {dead} dead\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(files_under(&dir.join("all")).len(), 200);
    assert!(files_under(&dir.join("some")).is_empty());
    let batch_calls = counter(
        &metrics,
        "opsync_plugin_calls_total",
        &[("plugin", "all-files"), ("call", "deliver-batch")],
    );
    let single_calls = counter(
        &metrics,
        "opsync_plugin_calls_total",
        &[("plugin", "all-files"), ("call", "deliver")],
    );
    // 200 changes, 50 a call: 4 calls, a few more if a poll split the backlog (a lone change
    // left over goes through `deliver`).
    assert!(
        batch_calls >= 4.0 && batch_calls + single_calls <= 8.0,
        "{batch_calls} batch calls, {single_calls} single calls"
    );
    // The 20 failing changes were refused one by one inside their batches, not retried whole.
    let some_calls = counter(
        &metrics,
        "opsync_plugin_calls_total",
        &[("plugin", "some-files"), ("call", "deliver-batch")],
    );
    assert!(some_calls <= 2.0, "{some_calls} calls for 20 changes");
    let store = Store::open(&dir.join("state.db")).expect("state");
    let dead = store.dead_letters(Some("some")).expect("dead letters");
    assert_eq!(dead.len(), 20);
    assert!(
        dead.iter().all(|d| d.reason.contains("no-such-field")),
        "{dead:?}"
    );
}

/// A receiver that answers every POST with 429 and `Retry-After: 30`.
async fn throttling_receiver() -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().route(
        "/hooks",
        post(|| async {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", HeaderValue::from_static("30"));
            (StatusCode::TOO_MANY_REQUESTS, headers, "slow down")
        }),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (port, tx)
}

/// Runs `opsync once` (one failed attempt of route `hooked`) and returns how many milliseconds
/// after its start the route's next attempt is due.
fn next_attempt_after_once(dir: &Path) -> i64 {
    let started = chrono::Utc::now();
    let once = opsync_in(dir, &["once"]);
    assert_eq!(once.status.code(), Some(1), "{}", text(&once));
    let store = Store::open(&dir.join("state.db")).expect("state");
    let next = store
        .next_due("hooked")
        .expect("ledger")
        .expect("a retry is scheduled");
    (next - started).num_milliseconds()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_hint_from_the_destination_decides_the_next_attempt() {
    let server = connect(Seed::Demo).await;
    let (port, _stop) = throttling_receiver().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[plugins.hook]
builtin = "webhook"
config = {{ url = "http://127.0.0.1:{port}/hooks", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }}
grants = {{ http = ["http://127.0.0.1:{port}"] }}

[[route]]
name = "hooked"
vaults = ["Shared"]
destinations = ["hook"]
"#,
        base = base_config(&server, "1s"),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    // The backoff of this config is at most 200 ms; the receiver asked for 30 s.
    let wait = next_attempt_after_once(dir);
    assert!(
        (29_000..=32_000).contains(&wait),
        "next attempt in {wait} ms"
    );

    // The hint is bounded by delivery.retry_hint_max.
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    let bounded = config.replace(
        "shutdown_grace = \"5s\"",
        "shutdown_grace = \"5s\"\nretry_hint_max = \"2s\"",
    );
    std::fs::write(dir.join("config.toml"), bounded).expect("config");
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let wait = next_attempt_after_once(dir);
    assert!((1_500..=4_000).contains(&wait), "next attempt in {wait} ms");
}
