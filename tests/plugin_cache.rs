//! Plugin identity and the compiled-component cache: pinned hashes, world checks, and cache entries
//! that are reused when valid and recompiled when stale, truncated or corrupt.

mod plugin_support;

use std::path::{Path, PathBuf};

use opsync::plugin::{
    CacheOutcome, ChangeKind, Grants, PluginError, PluginSource, PluginSpec, World, sha256_hex,
};
use plugin_support::{event, guest_spec, host, host_with_cache, item, tight_limits};

fn spec() -> PluginSpec {
    guest_spec(
        "cached",
        &[("mode", "ok")],
        tight_limits(),
        Grants::default(),
    )
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

async fn works(plugin: &opsync::plugin::Plugin) {
    plugin
        .deliver(&event(item("x"), ChangeKind::Created))
        .await
        .expect("the cached component runs");
}

#[tokio::test]
async fn a_valid_entry_is_reused_and_a_bad_one_is_recompiled_and_replaced() {
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = cache.path().join("compiled");
    let load = || {
        host_with_cache(Some(dir.clone()))
            .load(spec())
            .expect("loads")
    };

    let first = load();
    assert_eq!(first.cache_outcome(), &CacheOutcome::Compiled);
    let files = entries(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let entry = files[0].clone();
    assert!(
        entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(first.sha256())),
        "the entry is keyed by the component's sha256: {}",
        entry.display()
    );
    works(&first).await;

    let second = load();
    assert_eq!(second.cache_outcome(), &CacheOutcome::Hit);
    works(&second).await;

    // One flipped byte: the checksum catches it.
    let mut bytes = std::fs::read(&entry).expect("read entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).expect("corrupt");
    let third = load();
    assert_eq!(
        third.cache_outcome(),
        &CacheOutcome::Replaced("checksum mismatch".into())
    );
    works(&third).await;
    assert_eq!(load().cache_outcome(), &CacheOutcome::Hit);

    // Truncated.
    std::fs::write(&entry, b"short").expect("truncate");
    assert_eq!(
        load().cache_outcome(),
        &CacheOutcome::Replaced("truncated".into())
    );

    // Garbage with a matching checksum: wasmtime's own checks refuse it.
    let garbage = vec![7u8; 4096];
    let mut forged = garbage.clone();
    forged.extend_from_slice(&hex_to_bytes(&sha256_hex(&garbage)));
    std::fs::write(&entry, &forged).expect("forge");
    let forged_load = load();
    assert!(
        matches!(forged_load.cache_outcome(), CacheOutcome::Replaced(r) if r.starts_with("stale")),
        "{:?}",
        forged_load.cache_outcome()
    );
    works(&forged_load).await;
    assert_eq!(load().cache_outcome(), &CacheOutcome::Hit);
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn a_pinned_hash_that_does_not_match_refuses_to_load_and_names_both_hashes() {
    let mut spec = spec();
    let actual = match &spec.source {
        PluginSource::File { sha256, .. } => sha256.clone(),
        PluginSource::Builtin(_) => unreachable!("the guest is a file"),
    };
    let wrong = "0".repeat(64);
    if let PluginSource::File { sha256, .. } = &mut spec.source {
        *sha256 = wrong.clone();
    }
    let err = host().load(spec).expect_err("mismatch");
    assert!(matches!(err, PluginError::HashMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("plugin `cached`"), "{text}");
    assert!(text.contains(&wrong) && text.contains(&actual), "{text}");
}

#[test]
fn a_plugin_of_another_world_than_configured_is_refused() {
    let mut spec = spec();
    spec.world = Some(World::AuditSink);
    let err = host().load(spec).expect_err("wrong world");
    assert!(
        err.to_string()
            .contains("is a destination plugin; config expects audit-sink"),
        "{err}"
    );
}

#[test]
fn unknown_builtins_and_missing_files_are_named() {
    let mut spec = spec();
    spec.source = PluginSource::Builtin("nope".into());
    let err = host().load(spec.clone()).expect_err("unknown");
    assert!(err.to_string().contains("built-ins: file"), "{err}");
    spec.source = PluginSource::File {
        path: "/nonexistent/plugin.wasm".into(),
        sha256: "0".repeat(64),
    };
    let err = host().load(spec).expect_err("missing");
    assert!(matches!(err, PluginError::Read { .. }), "{err}");
}

#[test]
fn a_memory_limit_above_the_pool_is_refused_at_load() {
    let mut spec = spec();
    spec.limits.memory_bytes = 1 << 40;
    let err = host().load(spec).expect_err("too big");
    assert!(matches!(err, PluginError::Config { .. }), "{err}");
}

#[test]
fn inspect_names_world_version_imports_and_hash() {
    let path = plugin_support::guest_wasm();
    let report = opsync::plugin::inspect(&host(), &path).expect("inspects");
    assert_eq!(report.world, Some(World::Destination));
    assert_eq!(report.abi_version.as_deref(), Some("0.1.0"));
    assert_eq!(
        report.sha256,
        sha256_hex(&std::fs::read(path).expect("read"))
    );
    assert!(report.exports.contains(&"deliver".to_string()), "{report}");
    assert!(
        report
            .imports
            .iter()
            .any(|i| i.starts_with("opsync:plugin/secrets@0.1.0")),
        "{report}"
    );
    assert!(report.problem.is_none());
    let text = report.to_string();
    assert!(
        text.contains("world:   destination (opsync:plugin@0.1.0)"),
        "{text}"
    );
}
