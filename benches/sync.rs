//! Sync engine measurements against the embedded Connect server and the built-in `file` plugin:
//! Connect requests per idle poll, initial sync throughput, change-to-destination latency at a
//! 1 s poll interval, and resident memory. Run with `cargo bench --bench sync`; prints Markdown.

use std::path::Path;
use std::time::{Duration, Instant};

use opsync::app::{self, OnceOptions, RunOptions};
use opsync::config::{EnvVars, LoadOptions, Loader, Overrides, Settings};
use opsync::connect::client::ConnectClient;
use opsync::connect::model::{FieldType, PatchOp, PatchOpKind};
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};

const VAULTS: usize = 10;
const ITEMS_PER_VAULT: usize = 1000;
const LATENCY_SAMPLES: usize = 40;

fn settings(dir: &Path, server: &DevServer) -> Settings {
    std::fs::create_dir_all(dir.join("out")).expect("out dir");
    let config = format!(
        r#"
[connect]
host = "{host}"
token = "{token}"
[state]
path = "state.db"
[sync]
poll_interval = "1s"
[log]
level = "error"
[plugins.files]
builtin = "file"
config = {{ format = "dotenv", name = "{{{{vault}}}}/{{{{id}}}}.env" }}
grants = {{ dirs = [{{ host = "out" }}] }}
[[route]]
name = "all"
destinations = ["files"]
concurrency = 16
"#,
        host = server.base_url(),
        token = server.token()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    Loader::new(&LoadOptions {
        config_file: Some(path),
        env: EnvVars::default(),
        overrides: Overrides::default(),
    })
    .expect("loader")
    .settings()
    .expect("settings")
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = DevServer::start(DevServerOptions {
        seed: Seed::Bulk {
            vaults: VAULTS,
            items_per_vault: ITEMS_PER_VAULT,
        },
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let total = VAULTS * ITEMS_PER_VAULT;

    // 1. Initial sync of every item to the file plugin.
    let started = Instant::now();
    let first = app::once(settings(dir, &server), OnceOptions::default())
        .await
        .expect("initial sync");
    let took = started.elapsed();
    assert_eq!(first.delivery.delivered as usize, total, "{}", first.text());

    // 2. Connect requests per idle poll.
    let idle = app::once(settings(dir, &server), OnceOptions::default())
        .await
        .expect("idle cycle");

    // 3. Change-to-destination latency with the daemon polling every second.
    let (trigger, shutdown) = opsync::shutdown::channel();
    let daemon = tokio::spawn(app::run(
        settings(dir, &server),
        RunOptions::default(),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = ConnectClient::new(&settings(dir, &server).connect).expect("client");
    let vaults = client.list_vaults(None).await.expect("vaults");
    let mut latencies = Vec::new();
    for n in 0..LATENCY_SAMPLES {
        let vault = &vaults[n % vaults.len()];
        let items = client.list_items(&vault.id, None).await.expect("items");
        let item = client
            .get_item(&vault.id, &items[(n * 37) % items.len()].id)
            .await
            .expect("item");
        let field = item
            .fields
            .iter()
            .flatten()
            .find(|f| f.field_type == FieldType::Concealed)
            .expect("password field");
        let value = format!("latency-probe-{n}");
        let op = PatchOp {
            op: PatchOpKind::Replace,
            path: format!("/fields/{}/value", field.id),
            value: Some(serde_json::Value::String(value.clone())),
        };
        let path = dir
            .join("out")
            .join(vault.name.replace(' ', "_"))
            .join(format!("{}.env", item.id));
        let changed = Instant::now();
        client
            .patch_item(&vault.id, &item.id, &[op])
            .await
            .expect("patch");
        loop {
            if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&value)) {
                latencies.push(changed.elapsed());
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(30),
                "change never arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Spread the changes over the poll cycle.
        tokio::time::sleep(Duration::from_millis(137 * (n as u64 % 7))).await;
    }
    trigger.trigger();
    daemon.await.expect("joined").expect("daemon");
    latencies.sort();
    let rss = rss_mb();

    println!("| measure | result | goal |");
    println!("| --- | --- | --- |");
    println!(
        "| Connect requests per idle poll ({VAULTS} vaults x {ITEMS_PER_VAULT} items) | {} | 1 |",
        idle.poll.requests
    );
    println!(
        "| initial sync of {total} items to the file plugin | {:.1} s, {:.0} items/s | 10x the Python SDK baseline |",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    println!(
        "| change-to-destination latency, 1 s poll, {total} items tracked ({LATENCY_SAMPLES} changes) | p50 {:.0} ms, p99 {:.0} ms | p99 <= 1.5 s |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| resident memory of this process (opsync + the embedded Connect server), {total} items tracked | {rss:.0} MB | <= 150 MB at 100,000 |"
    );
    server.shutdown().await;
}
