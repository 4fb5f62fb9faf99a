//! Plugin host overhead: a no-op event end to end (fresh store, instantiate, call, drop) on one
//! core, and the start-up of every built-in plugin with and without the compiled cache.
//!
//! Run: `cargo bench --bench plugin_overhead` (or `--profile dev`: dependencies are optimized in
//! the dev profile too, and the host's own code is not on the hot path).

#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

use std::time::{Duration, Instant};

use opsync::plugin::{
    BUILTINS, ChangeKind, Grants, Limits, PluginConfig, PluginSource, PluginSpec,
};
use plugin_support::{event, guest_spec, host, host_with_cache, item};

fn start_builtins(cache: Option<std::path::PathBuf>) -> Duration {
    let host = host_with_cache(cache);
    let started = Instant::now();
    for builtin in BUILTINS {
        host.load(PluginSpec {
            name: builtin.name.to_string(),
            source: PluginSource::Builtin(builtin.name.to_string()),
            world: None,
            config: PluginConfig::default(),
            limits: Limits::default(),
            grants: Grants::default(),
        })
        .expect("built-in loads");
    }
    started.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this runs as a quick smoke
    // test instead.
    let measuring = std::env::args().any(|a| a == "--bench");
    let events: u32 = if measuring { 20_000 } else { 200 };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let host = host();
    let plugin = host
        .load(guest_spec(
            "noop",
            &[],
            Limits::default(),
            Grants::default(),
        ))
        .expect("guest loads");
    let mut noop = event(item("x"), ChangeKind::Updated);
    noop.idempotency_key = "noop".into();

    let per_event = runtime.block_on(async {
        for _ in 0..events / 40 {
            plugin.deliver(&noop).await.expect("warm-up");
        }
        let n = events;
        let started = Instant::now();
        for _ in 0..n {
            plugin.deliver(&noop).await.expect("noop");
        }
        started.elapsed() / n
    });
    println!(
        "no-op event (fresh store + instantiate + call + drop), one core: {:.1} us/event, {:.0} events/s",
        per_event.as_secs_f64() * 1e6,
        1.0 / per_event.as_secs_f64()
    );

    if std::env::args().any(|a| a == "--events-only") {
        return;
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let uncached = start_builtins(None);
    let cold = start_builtins(Some(cache.path().to_path_buf()));
    let warm = start_builtins(Some(cache.path().to_path_buf()));
    println!(
        "start of all {} built-ins: no cache {:.1} ms, cold cache {:.1} ms, warm cache {:.2} ms",
        BUILTINS.len(),
        uncached.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );
}
