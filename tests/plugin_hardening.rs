//! What a hostile plugin supplies never leaks a secret or forges a line (receipts, straddling
//! cuts, control characters), and what it asks of the host is bounded (made secrets, stdout,
//! directory writes, symbolic links).

mod plugin_support;

use std::path::Path;

use opsync::plugin::{
    ChangeKind, DirGrant, FailureKind, Grants, Limits, Plugin, PluginError, REDACTED,
};
use plugin_support::{event, guest_spec, host, item, tight_limits, with_logs};

/// The test item's password (see `plugin_support::item`).
const PASSWORD: &str = "hunter2-s3cret";

fn load(mode: &str, limits: Limits, grants: Grants) -> Plugin {
    host()
        .load(guest_spec(mode, &[("mode", mode)], limits, grants))
        .expect("loads")
}

fn writable(dir: &Path) -> Grants {
    Grants {
        dirs: vec![DirGrant {
            host: dir.to_path_buf(),
            guest: "/".into(),
            read_only: false,
            flush: false,
        }],
        ..Grants::default()
    }
}

#[test]
fn a_receipt_is_redacted_and_escaped_before_anyone_sees_it() {
    let plugin = load("receipt-leak", tight_limits(), Grants::default());
    let (result, _) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    let receipt = result.expect("delivers");
    assert!(!receipt.location.contains(PASSWORD), "{}", receipt.location);
    assert!(receipt.location.contains(REDACTED), "{}", receipt.location);
    assert!(!receipt.location.contains('\n'), "{}", receipt.location);
    assert!(
        receipt.location.contains("\\nERROR forged"),
        "{}",
        receipt.location
    );
}

#[test]
fn a_secret_straddling_the_cut_never_reaches_the_log_or_the_error_in_part() {
    let limits = Limits {
        log_bytes_per_call: 64 << 10,
        ..tight_limits()
    };
    let plugin = load("straddle", limits, Grants::default());
    let (result, logs) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    let err = result.expect_err("fails on purpose");
    // Any prefix of the value of 4 bytes or more would be a partial leak.
    let prefix = &PASSWORD[..4];
    assert!(logs.contains("xxxx"), "the line is logged: {logs}");
    assert!(!logs.contains(prefix), "{logs}");
    let text = err.to_string();
    assert!(!text.contains(prefix), "{text}");
    assert!(
        matches!(&err, PluginError::Failed { failure, .. } if failure.kind == FailureKind::Permanent)
    );
}

#[test]
fn control_characters_cannot_forge_log_lines_or_error_lines() {
    let plugin = load("forge", tight_limits(), Grants::default());
    let (result, logs) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    // Only lines of this test's span are kept: a forged line would stand alone, without it.
    assert!(
        logs.contains("line one\\nERROR forged log line plugin=other"),
        "the message stays one line, its newline escaped: {logs}"
    );
    let text = result.expect_err("fails on purpose").to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("bad\\nERROR forged error"), "{text}");
}

#[test]
fn made_secrets_are_bounded_and_stop_the_call_as_permanent() {
    let plugin = load("secret-hoard", tight_limits(), Grants::default());
    let (result, _) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    let err = result.expect_err("stopped at the bound");
    assert!(matches!(err, PluginError::SecretLimit { .. }), "{err}");
    assert_eq!(err.kind(), FailureKind::Permanent);
    assert!(
        err.to_string().contains("secret-hoard"),
        "names the plugin: {err}"
    );
}

#[test]
fn stdout_past_its_cap_is_dropped_not_fatal() {
    let plugin = load("stdout-flood", tight_limits(), Grants::default());
    let (result, logs) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    let receipt = result.expect("printing too much does not stop the call");
    assert!(receipt.location.contains("printed"), "{}", receipt.location);
    assert!(logs.contains("plugin output dropped"), "{logs}");
}

#[test]
fn a_symbolic_link_is_refused_in_a_granted_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = load("symlink", tight_limits(), writable(dir.path()));
    let (result, _) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    let receipt = result.expect("the call goes on; the link is refused");
    assert_eq!(receipt.location, "symlink rc=-1");
    assert!(
        std::fs::symlink_metadata(dir.path().join("escape")).is_err(),
        "no link was left behind"
    );
}

#[test]
fn writes_past_the_directory_quota_stop_the_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        dir_write_bytes_per_call: 1 << 20,
        ..tight_limits()
    };
    let plugin = load("write-bomb", limits, writable(dir.path()));
    let (result, _) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    let err = result.expect_err("stopped at the quota");
    assert!(matches!(err, PluginError::WriteQuota { .. }), "{err}");
    assert_eq!(err.kind(), FailureKind::Permanent);
    let written = std::fs::metadata(dir.path().join("big.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        written <= 1 << 20,
        "at most the quota reached the disk: {written}"
    );

    // Under the default quota (64 MiB), the same plugin writes its 8 MiB (with the default CPU
    // budget: writing 8 MiB on a busy machine can take longer than the tight one).
    let defaults = Limits::default();
    let limits = Limits {
        cpu: defaults.cpu,
        wall_clock: defaults.wall_clock,
        ..tight_limits()
    };
    let plugin = load("write-bomb", limits, writable(dir.path()));
    let (result, _) = with_logs(plugin.deliver(&event(item("x"), ChangeKind::Updated)));
    result.expect("within the quota");
}
