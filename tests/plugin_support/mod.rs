//! Shared by the plugin test suites: builds the test guest (tests/plugin_guest) once per test
//! binary, and makes hosts, specs, items and events.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use opsync::connect::model::{Category, Field, IdRef, Item, SecretString, Section};
use opsync::plugin::{
    ChangeKind, EngineOptions, Grants, HostOptions, ItemEvent, Limits, PluginConfig, PluginHost,
    PluginSource, PluginSpec, VaultRef, sha256_hex,
};

/// Builds the test guests (tests/plugin_guest, a workspace of four components) for
/// wasm32-wasip2, once per test binary, and returns the directory holding the `.wasm` files.
fn guests_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = root.join("target").join("wasm-test-guest");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--locked", "--workspace"])
            .args(["--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(root.join("tests/plugin_guest/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("LLVM_PROFILE_FILE")
            .status()
            .expect("run cargo to build the test guests");
        assert!(
            status.success(),
            "building tests/plugin_guest failed (is `rustup target add wasm32-wasip2` done?)"
        );
        target_dir.join("wasm32-wasip2/release")
    })
}

/// The destination test guest (behaviour picked by config `mode`).
pub fn guest_wasm() -> PathBuf {
    guests_dir().join("opsync_test_guest.wasm")
}

/// The rotator test guest.
pub fn rotator_wasm() -> PathBuf {
    guests_dir().join("opsync_test_rotator.wasm")
}

/// The audit-sink test guest.
pub fn audit_wasm() -> PathBuf {
    guests_dir().join("opsync_test_audit.wasm")
}

/// The no-op destination of ABI 0.2.0 (batches, read-back).
pub fn batch_wasm() -> PathBuf {
    guests_dir().join("opsync_test_batch.wasm")
}

/// A host with a small pool and a fast epoch, no disk cache.
pub fn host() -> PluginHost {
    host_with_cache(None)
}

pub fn host_with_cache(cache_dir: Option<PathBuf>) -> PluginHost {
    PluginHost::new(HostOptions {
        cache_dir,
        engine: EngineOptions {
            epoch_tick: Duration::from_millis(5),
            max_instances: 16,
            max_memory_bytes: 128 << 20,
            max_wasm_stack: 512 << 10,
        },
        on_denied: None,
        fingerprint_key: None,
    })
    .expect("plugin host starts")
}

/// Tight limits so hostile guests are stopped fast.
pub fn tight_limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu: Duration::from_millis(200),
        // Generous, so a loaded CI machine stops loops by CPU, not by the clock.
        wall_clock: Duration::from_secs(5),
        log_bytes_per_call: 4 << 10,
        log_lines_per_call: 50,
        resource_table: 256,
        ..Limits::default()
    }
}

pub fn config(pairs: &[(&str, &str)]) -> PluginConfig {
    let raw: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    PluginConfig::plain(raw).expect("plain config")
}

/// A spec for the destination test guest.
pub fn guest_spec(
    name: &str,
    pairs: &[(&str, &str)],
    limits: Limits,
    grants: Grants,
) -> PluginSpec {
    spec_for(guest_wasm(), name, pairs, limits, grants)
}

/// A spec for the component at `path`, pinned to its current sha256.
pub fn spec_for(
    path: PathBuf,
    name: &str,
    pairs: &[(&str, &str)],
    limits: Limits,
    grants: Grants,
) -> PluginSpec {
    let sha256 = sha256_hex(&std::fs::read(&path).expect("read guest"));
    PluginSpec {
        name: name.to_string(),
        source: PluginSource::File { path, sha256 },
        world: None,
        config: config(pairs),
        limits,
        grants,
    }
}

pub fn field(id: &str, label: &str, value: &str) -> Field {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "type": "CONCEALED",
        "label": label,
        "value": value,
    }))
    .expect("field")
}

/// An item with a username and a password, in section `creds`, tagged `prod`.
pub fn item(title: &str) -> Item {
    let mut item = Item::new(title, Category::from("LOGIN"));
    item.id = "itm0000000000000000000000a".into();
    item.vault = IdRef {
        id: "vlt0000000000000000000000a".into(),
    };
    item.version = 3;
    item.tags = vec!["prod".into()];
    let mut user = field("username", "username", "alice");
    user.section = Some(IdRef { id: "creds".into() });
    let password = field("password", "password", "hunter2-s3cret");
    item.sections = Some(vec![Section {
        id: "creds".into(),
        label: Some("Credentials".into()),
    }]);
    item.fields = Some(vec![user, password]);
    item
}

pub fn event(item: Item, kind: ChangeKind) -> ItemEvent {
    ItemEvent {
        idempotency_key: opsync::domain::idempotency_key("route-a", &item.id, item.version, kind),
        kind,
        vault: VaultRef {
            id: item.vault.id.clone(),
            name: "Prod".into(),
        },
        item,
        destination_key: None,
        renamed_to: None,
    }
}

pub fn secret(value: &str) -> SecretString {
    SecretString::new(value)
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged at INFO and above in this test binary, once [`with_logs`] installed the
/// global subscriber. Global, not per thread: `tracing` caches per call site whether anyone is
/// interested, so thread-local subscribers miss events while other test threads run.
fn global_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global tracing subscriber in this test binary");
        captured
    })
}

/// Runs `work` on a current-thread runtime inside a span of its own: its result and the lines
/// logged inside that span (plugin log lines and the host's lines about the plugin's calls), not
/// those of tests running beside it.
pub fn with_logs<T>(work: impl std::future::Future<Output = T>) -> (T, String) {
    use tracing::Instrument;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let captured = global_logs();
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = runtime.block_on(work.instrument(tracing::info_span!("captured", test = id)));
    let marker = format!("captured{{test={id}}}");
    let all = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let logs = all
        .lines()
        .filter(|line| line.contains(&marker))
        .collect::<Vec<_>>()
        .join("\n");
    (out, logs)
}
