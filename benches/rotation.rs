//! Rotation measurements: wall time of one rotation split by step, and how much of each step is
//! the host's own work (Connect GET/PATCH, the state database, the sandbox) beyond the plugin's
//! call. Against the embedded Connect server with the built-in `password` rotator (its steps do
//! nothing, so its plugin share is the sandbox's cost), and, when `OPSYNC_BENCH_ROTATORS` names a
//! config file, against the jobs that file adds (real peers: OpenBao userpass, moto IAM).
//! Run with `cargo bench --bench rotation`; prints Markdown.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use opsync::app::Engine;
use opsync::config::{EnvVars, LoadOptions, Loader, Overrides, Settings};
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use opsync::rotation::{Outcome, Rotator, Start, StepTiming};
use opsync::store::Store;

const WARMUP: usize = 5;
const RUNS: usize = 100;

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
item = "op://Bulk 01/Login 00001"
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
                items_per_vault: 1,
            },
            ..DevServerOptions::default()
        })
        .await
        .expect("connect-dev");
        let tmp = tempfile::tempdir().expect("tmp");
        let extra = std::env::var("OPSYNC_BENCH_ROTATORS")
            .ok()
            .map(|p| std::fs::read_to_string(p).expect("OPSYNC_BENCH_ROTATORS file"))
            .unwrap_or_default();
        let settings = settings(tmp.path(), &server, &extra);
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
            for i in 0..(WARMUP + RUNS) {
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
                "| {} | {RUNS} | {:.2} | {:.2} | {:.2} | {:.2} |",
                job.name,
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
        server.shutdown().await;
    });
}
