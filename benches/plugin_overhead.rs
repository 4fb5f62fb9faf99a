//! Plugin host overhead: a no-op event end to end (fresh store, instantiate, call, drop) on one
//! core, a warm call (the no-op export again on an instance kept alive in its store), no-op
//! events per second per core in batches of 1, 8, 32 and 128 (ABI 0.2.0 `deliver-batch`: one
//! fresh store per batch), the memory of a live no-op instance, and the start-up of every
//! built-in plugin with and without the compiled cache.
//!
//! The warm call and the live instances go through `Plugin::warm_instance`, which exists for this
//! bench: the daemon never reuses a store, so the warm call is a floor (the guest call and the
//! event's conversion), not a path opsync takes.
//!
//! Memory per live instance is the growth of the process's resident set (`VmRSS` in
//! `/proc/self/status`) while `INSTANCES` no-op instances are alive at once, each in its own store
//! and called once, divided by `INSTANCES`. It counts what each instance adds: its store and host
//! state (WASI context, resource table, limiter), the guest's linear memory and tables that were
//! touched (copy-on-write from the compiled image otherwise) and its stack. It does not count what
//! all instances share and was resident before: the engine, the compiled code, the linker, the
//! pool's bookkeeping. The pool's address-space reservation is printed beside it, measured as the
//! growth of `VmSize` when the engine starts divided by its slots: reserved, not resident.
//!
//! Run: `cargo bench --bench plugin_overhead` (or `--profile dev`: dependencies are optimized in
//! the dev profile too, and the host's own code is not on the hot path).

#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

use std::time::{Duration, Instant};

use opsync::plugin::{
    BUILTINS, ChangeKind, EngineOptions, Grants, HostOptions, ItemEvent, Limits, Plugin,
    PluginConfig, PluginHost, PluginSource, PluginSpec,
};
use plugin_support::{batch_wasm, event, guest_spec, host, host_with_cache, item, spec_for};

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

/// Batch sizes measured.
const BATCH_SIZES: [usize; 4] = [1, 8, 32, 128];

/// No-op instances held alive at once for the memory figure.
const INSTANCES: u32 = 200;

/// The destination test guest, answering events keyed `noop` without doing anything.
fn load_noop(host: &PluginHost) -> Plugin {
    host.load(guest_spec(
        "noop",
        &[],
        Limits::default(),
        Grants::default(),
    ))
    .expect("guest loads")
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmSize`), in bytes.
fn proc_status_bytes(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("a kB figure in /proc/self/status")
}

/// Holds `INSTANCES` instantiated no-op instances alive at once; returns the resident bytes each
/// adds and the address space the pool reserved per slot.
async fn memory_per_instance(noop: &ItemEvent) -> (u64, u64) {
    let size_before = proc_status_bytes("VmSize");
    let host = PluginHost::new(HostOptions {
        cache_dir: None,
        engine: EngineOptions {
            max_instances: INSTANCES,
            max_memory_bytes: 128 << 20,
            ..EngineOptions::default()
        },
        ..HostOptions::default()
    })
    .expect("plugin host starts");
    let reserved = proc_status_bytes("VmSize").saturating_sub(size_before) / u64::from(INSTANCES);
    let plugin = load_noop(&host);
    // The first instance and call fault in the shared code and data; they are not per instance.
    plugin.deliver(noop).await.expect("noop");
    let mut first = plugin.warm_instance().await.expect("warm instance");
    first.deliver(noop).await.expect("noop");
    drop(first);
    let rss_before = proc_status_bytes("VmRSS");
    let mut live = Vec::with_capacity(INSTANCES as usize);
    for _ in 0..INSTANCES {
        let mut instance = plugin.warm_instance().await.expect("warm instance");
        instance.deliver(noop).await.expect("noop");
        live.push(instance);
    }
    let rss_after = proc_status_bytes("VmRSS");
    drop(live);
    (
        rss_after.saturating_sub(rss_before) / u64::from(INSTANCES),
        reserved,
    )
}

/// The mean time of `call` over `n` runs, after `n / 40` to warm up.
async fn per_call(n: u32, mut call: impl AsyncFnMut()) -> Duration {
    for _ in 0..n / 40 {
        call().await;
    }
    let started = Instant::now();
    for _ in 0..n {
        call().await;
    }
    started.elapsed() / n
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
    let plugin = load_noop(&host);
    let mut noop = event(item("x"), ChangeKind::Updated);
    noop.idempotency_key = "noop".into();

    let per_event = runtime.block_on(per_call(events, async || {
        plugin.deliver(&noop).await.expect("noop");
    }));
    println!(
        "no-op event (fresh store + instantiate + call + drop), one core: {:.1} us/event, {:.0} events/s",
        per_event.as_secs_f64() * 1e6,
        1.0 / per_event.as_secs_f64()
    );

    let per_warm_call = runtime.block_on(async {
        let mut warm = plugin.warm_instance().await.expect("warm instance");
        per_call(events, async || {
            warm.deliver(&noop).await.expect("noop");
        })
        .await
    });
    println!(
        "warm call (same store and instance, bench-only), one core: {:.2} us/call, {:.0} calls/s",
        per_warm_call.as_secs_f64() * 1e6,
        1.0 / per_warm_call.as_secs_f64()
    );

    let batch_plugin = host
        .load(spec_for(
            batch_wasm(),
            "noop-batch",
            &[],
            Limits::default(),
            Grants::default(),
        ))
        .expect("batch guest loads");
    for size in BATCH_SIZES {
        let batch: Vec<ItemEvent> = (0..size)
            .map(|i| {
                let mut e = event(item(&format!("x{i}")), ChangeKind::Updated);
                e.destination_key = Some(format!("Prod/x{i}"));
                e
            })
            .collect();
        let calls = (events / size as u32).max(10);
        let per_batch = runtime.block_on(per_call(calls, async || {
            let results = batch_plugin.deliver_batch(&batch).await.expect("batch");
            assert_eq!(results.len(), batch.len());
        }));
        let per_event = per_batch / size as u32;
        println!(
            "no-op events in batches of {size} (one store per batch), one core: {:.2} us/event, {:.0} events/s",
            per_event.as_secs_f64() * 1e6,
            1.0 / per_event.as_secs_f64()
        );
    }

    if std::env::args().any(|a| a == "--events-only") {
        return;
    }
    let (per_instance, reserved) = runtime.block_on(memory_per_instance(&noop));
    println!(
        "memory per live no-op instance ({INSTANCES} alive): {:.0} KiB resident, {:.2} GiB address space reserved per pool slot",
        per_instance as f64 / 1024.0,
        reserved as f64 / f64::from(1u32 << 30)
    );
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
