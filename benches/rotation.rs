//! Rotation through the whole engine (`Rotator::run`, as `opsync rotate now` and the daemon run
//! it): wall time of one rotation split by step, and how much of each step is the host's own work
//! (Connect GET/PATCH, the state database, the lease) beyond the plugin's call (the plugin's own
//! work and its requests to the target). Three jobs against the embedded Connect server: the
//! built-in `password` rotator (no target), `openbao-userpass` against an OpenBao dev server and
//! `aws-iam-access-key` against moto, both real peers started here (`scripts/setup-peers.sh`).
//! Run with `cargo bench --bench rotation`; prints Markdown.

#[path = "../tests/peers/mod.rs"]
mod peers;
#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use opsync::app::Engine;
use opsync::config::{EnvVars, LoadOptions, Loader, Overrides, Settings};
use opsync::connect::model::{Category, Field, FieldType, Item};
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use opsync::rotation::{Outcome, Rotator, Start, StepTiming};
use opsync::store::Store;
use peers::{Bao, Moto};
use serde_json::json;

const WARMUP: usize = 3;
/// Rotations per job (`OPSYNC_BENCH_RUNS` overrides).
const RUNS: usize = 50;

fn settings(dir: &Path, server: &DevServer, extra: &str) -> Settings {
    let config = format!(
        r#"
[connect]
host = "{host}"
token = "{token}"
[state]
path = "state.db"
[log]
level = "error"
[plugins.pw]
builtin = "password"
world = "rotator"
[[rotation]]
name = "password"
item = "op://Bulk 01/Login 00002"
plugin = "pw"
schedule = "@yearly"
{extra}
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = DevServer::start(DevServerOptions {
            seed: Seed::Bulk {
                vaults: 1,
                items_per_vault: 2,
            },
            ..DevServerOptions::default()
        })
        .await
        .expect("connect-dev");
        let tmp = tempfile::tempdir().expect("tmp");
        let extra = peers_jobs(&server).await;
        let settings = settings(tmp.path(), &server, &extra.0);
        let jobs = settings.rotations.clone();
        let store = Store::open(&tmp.path().join("state.db")).expect("store");
        let engine = Engine::start(settings, store, Some(tmp.path().join("cache")))
            .await
            .expect("engine");
        let rotator = Rotator::new(engine.client.clone(), engine.store.clone());
        println!("| job | step | median total ms | p95 total ms | median plugin ms | median host ms |");
        println!("| --- | --- | ---: | ---: | ---: | ---: |");
        let mut whole_rows = Vec::new();
        for job in &jobs {
            let plugin = engine.plugins.get(&job.plugin).unwrap_or_else(|| {
                panic!("plugin {} not usable: {:?}", job.plugin, engine.broken.get(&job.plugin))
            });
            let base = chrono::Utc::now();
            let mut per_step: BTreeMap<&'static str, Vec<StepTiming>> = BTreeMap::new();
            let mut whole = Vec::new();
            // `cargo bench` passes `--bench`; under `cargo test --all-targets` one quick pass
            // checks that the bench still works.
            let full = std::env::args().any(|a| a == "--bench");
            let runs = support::env_or("OPSYNC_BENCH_RUNS", if full { RUNS } else { 1 });
            for i in 0..(WARMUP + runs) {
                let start = Start {
                    slot: base + chrono::Duration::milliseconds(i as i64),
                    manual: true,
                };
                let t0 = Instant::now();
                let (outcome, timings) = rotator
                    .run_timed(job, plugin, Some(start))
                    .await
                    .expect("rotation");
                let total = t0.elapsed();
                assert_eq!(outcome, Outcome::Succeeded, "job {}", job.name);
                if i < WARMUP {
                    continue;
                }
                whole.push((
                    total,
                    timings.iter().map(|t| t.plugin).sum::<Duration>(),
                ));
                for t in timings {
                    per_step.entry(t.step.as_str()).or_default().push(t);
                }
            }
            for step in ["create", "set", "test", "promote", "finish"] {
                let Some(ts) = per_step.get(step) else { continue };
                let mut total: Vec<Duration> = ts.iter().map(|t| t.total).collect();
                let mut plugin: Vec<Duration> = ts.iter().map(|t| t.plugin).collect();
                let mut host: Vec<Duration> = ts.iter().map(|t| t.total.saturating_sub(t.plugin)).collect();
                total.sort();
                plugin.sort();
                host.sort();
                println!(
                    "| {} | {step} | {:.2} | {:.2} | {:.2} | {:.2} |",
                    job.name,
                    ms(pct(&total, 0.5)),
                    ms(pct(&total, 0.95)),
                    ms(pct(&plugin, 0.5)),
                    ms(pct(&host, 0.5)),
                );
            }
            let mut totals: Vec<Duration> = whole.iter().map(|w| w.0).collect();
            let mut plugins: Vec<Duration> = whole.iter().map(|w| w.1).collect();
            let mut hosts: Vec<Duration> = whole.iter().map(|w| w.0.saturating_sub(w.1)).collect();
            totals.sort();
            plugins.sort();
            hosts.sort();
            whole_rows.push(format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                job.name,
                whole.len(),
                ms(pct(&totals, 0.5)),
                ms(pct(&totals, 0.95)),
                ms(pct(&plugins, 0.5)),
                ms(pct(&hosts, 0.5)),
            ));
        }
        println!();
        println!("| job | rotations | median whole ms | p95 whole ms | median in plugin ms | median host overhead ms |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for r in whole_rows {
            println!("{r}");
        }
        drop(extra);
        server.shutdown().await;
    });
}

/// Starts OpenBao (a userpass user holding the bench item's password) and moto (an IAM user with
/// one access key, held by a second item), and returns the jobs for them, with the peers.
async fn peers_jobs(server: &DevServer) -> (String, Bao, Moto) {
    let client =
        opsync::connect::client::ConnectClient::new(&opsync::config::ConnectSettings::new(
            url::Url::parse(&server.base_url()).expect("url"),
            server.token(),
        ))
        .expect("client");
    let vault = client.find_vault_by_name("Bulk 01").await.expect("vault");
    let login = client
        .find_item_by_title(&vault.id, "Login 00001")
        .await
        .expect("item");
    let password = login
        .field("password")
        .and_then(|f| f.value.clone())
        .expect("password");

    let bao = Bao::start().await;
    let (status, _) = bao
        .call(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert!(status < 300, "enable userpass: {status}");
    let (status, _) = bao
        .call(
            "POST",
            "auth/userpass/users/user1-1",
            Some(json!({"password": password.expose()})),
        )
        .await;
    assert!(status < 300, "userpass user: {status}");

    let moto = Moto::start().await;
    let key = moto.user_with_key("bench").await;
    let mut item = Item::new("bench keys", Category::ApiCredential);
    let concealed = |label: &str, value: &str| Field {
        id: String::new(),
        field_type: FieldType::Concealed,
        section: None,
        purpose: None,
        label: Some(label.into()),
        value: Some(value.into()),
        generate: false,
        recipe: None,
        entropy: None,
        totp: None,
    };
    item.fields = Some(vec![
        concealed("access key id", &key.id),
        concealed("secret access key", &key.secret),
    ]);
    client.create_item(&vault.id, &item).await.expect("item");

    let jobs = format!(
        r#"
[plugins.bao]
builtin = "openbao-userpass"
world = "rotator"
config = {{ address = "{bao_addr}", token = "{token}" }}
grants = {{ http = ["{bao_addr}"] }}
[[rotation]]
name = "openbao-userpass"
item = "op://Bulk 01/Login 00001"
plugin = "bao"
schedule = "@yearly"
[plugins.iam]
builtin = "aws-iam-access-key"
world = "rotator"
config = {{ user-name = "bench", access-key-id = "AKIDEXAMPLE", secret-access-key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", endpoint = "{moto}", propagation-seconds = "0" }}
grants = {{ http = ["{moto}"] }}
[[rotation]]
name = "aws-iam-access-key"
item = "op://Bulk 01/bench keys"
plugin = "iam"
schedule = "@yearly"
fields = ["access key id", "secret access key"]
"#,
        bao_addr = bao.address,
        token = Bao::TOKEN,
        moto = moto.endpoint,
    );
    (jobs, bao, moto)
}
