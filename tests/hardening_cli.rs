//! The hardening cases that are the binary's own behaviour, through the real binary: receipts and
//! errors that reach the state database and `deadletter list` stay redacted and one line each,
//! `plugin inspect` applies the loader's checks and refuses files that are not components, and a
//! pin mismatch stops `once` and `check-config` unless `--allow-unusable-plugins`.

mod plugin_support;
mod sync_support;

use std::path::Path;
use std::process::Output;

use opsync::connect_dev::{DevServer, Seed};
use opsync::plugin::sha256_hex;
use sync_support::{base_config, connect, text};

const BIN: &str = env!("CARGO_BIN_EXE_opsync");

/// The demo's password values all end so; none may reach the state database.
const DEMO_PASSWORD_TAIL: &str = "password-not-real";

/// `opsync ARGS` in `dir`, with nothing inherited from the environment.
fn opsync(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("the binary runs")
}

/// A config with one route over the demo's Production vault into the test guest in `mode`,
/// pinned to `sha256`.
fn guest_config(server: &DevServer, mode: &str, sha256: &str) -> String {
    let wasm = plugin_support::guest_wasm();
    format!(
        r#"{base}
[plugins.guest]
path = "{path}"
sha256 = "{sha256}"
config = {{ mode = "{mode}" }}

[[route]]
name = "prod"
vaults = ["Production"]
destinations = ["guest"]
"#,
        base = base_config(server, "1s"),
        path = wasm.display(),
    )
}

fn guest_sha256() -> String {
    sha256_hex(&std::fs::read(plugin_support::guest_wasm()).expect("read guest"))
}

/// Runs `opsync once` over `config` in a fresh directory; returns it with the output.
fn once(config: &str, extra: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.toml"), config).expect("write config");
    let mut args = vec!["--config", "config.toml", "once", "--no-progress"];
    args.extend_from_slice(extra);
    let out = opsync(dir.path(), &args);
    (dir, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_the_state_database_redacted() {
    let server = connect(Seed::Demo).await;
    let config = guest_config(&server, "receipt-leak", &guest_sha256());
    let (dir, out) = tokio::task::spawn_blocking(move || once(&config, &[]))
        .await
        .expect("join");
    assert!(out.status.success(), "{}", text(&out));
    // The main file and its write-ahead log: a row may not be checkpointed yet.
    let mut db = std::fs::read(dir.path().join("state.db")).expect("state database");
    db.extend(std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    assert!(
        db.contains("stored at /kv/[REDACTED]"),
        "receipts are stored"
    );
    assert!(
        !db.contains(DEMO_PASSWORD_TAIL),
        "a revealed value reached the state database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_print_a_plugin_error_on_one_line() {
    let server = connect(Seed::Demo).await;
    let config = guest_config(&server, "forge", &guest_sha256());
    let (dir, out) = tokio::task::spawn_blocking(move || once(&config, &[]))
        .await
        .expect("join");
    assert!(!out.status.success(), "permanent failures: {}", text(&out));
    assert!(
        !text(&out).lines().any(|l| l.starts_with("ERROR forged")),
        "{}",
        text(&out)
    );
    let list = opsync(
        dir.path(),
        &["--config", "config.toml", "deadletter", "list"],
    );
    let list = text(&list);
    assert!(
        list.contains("bad\\nERROR forged error plugin=other"),
        "{list}"
    );
    assert!(
        !list
            .lines()
            .any(|l| l.trim_start().starts_with("ERROR forged")),
        "a plugin forged a line of its own: {list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_mismatch_stops_once_and_check_config_unless_allowed() {
    let server = connect(Seed::Demo).await;
    let wrong = "0".repeat(64);
    let config = guest_config(&server, "ok", &wrong);
    let check_config = config.clone();
    let (refused, refused_run, allowed, checked) = tokio::task::spawn_blocking(move || {
        let (_dir, refused) = once(&config, &[]);
        // The daemon refuses at start too, before it listens or polls.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), &config).expect("write");
        // Under `timeout`: a daemon that did start would otherwise run on.
        let refused_run = std::process::Command::new("timeout")
            .args(["30", BIN, "--config", "config.toml", "run"])
            .current_dir(dir.path())
            .env_clear()
            .output()
            .expect("timeout runs the binary");
        let (_dir, allowed) = once(&config, &["--allow-unusable-plugins"]);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.toml"), &check_config).expect("write");
        let checked = opsync(dir.path(), &["--config", "config.toml", "check-config"]);
        (refused, refused_run, allowed, checked)
    })
    .await
    .expect("join");

    let refused_text = text(&refused);
    assert!(!refused.status.success(), "{refused_text}");
    assert!(refused_text.contains("sha256 mismatch"), "{refused_text}");
    assert!(refused_text.contains("plugin `guest`"), "{refused_text}");
    assert!(
        refused_text.contains(&wrong),
        "names the pinned hash: {refused_text}"
    );
    assert!(
        refused_text.contains(&guest_sha256()),
        "and the file's: {refused_text}"
    );
    assert!(
        refused_text.contains("--allow-unusable-plugins"),
        "{refused_text}"
    );

    let run_text = text(&refused_run);
    assert!(!refused_run.status.success(), "{run_text}");
    assert!(run_text.contains("sha256 mismatch"), "{run_text}");

    let allowed_text = text(&allowed);
    assert!(
        !allowed_text.contains("supply-chain alarm"),
        "the flag lets it start: {allowed_text}"
    );
    assert!(
        allowed_text.contains("detected:"),
        "the cycle ran: {allowed_text}"
    );

    let checked_text = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{checked_text}");
    assert!(checked_text.contains("plugins.guest"), "{checked_text}");
    assert!(checked_text.contains("sha256 mismatch"), "{checked_text}");
}

/// A component whose exports are a destination's but which imports an interface opsync does not
/// provide: the daemon refuses to load it, so `inspect` must say so.
const FOREIGN_IMPORT: &str = r#"
(component
  (import "evil:spy/exfil@1.0.0" (instance (export "send" (func (param "data" string)))))
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $deliver (canon lift (core func $i "f")))
  (export "deliver" (func $deliver))
  (func $validate (canon lift (core func $i "f")))
  (export "validate" (func $validate))
)
"#;

#[test]
fn inspect_refuses_a_component_the_loader_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("foreign.wasm");
    std::fs::write(&path, FOREIGN_IMPORT).expect("write");
    let out = opsync(dir.path(), &["plugin", "inspect", "foreign.wasm"]);
    let out_text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{out_text}");
    let problem = out_text
        .lines()
        .find(|l| l.starts_with("problem:"))
        .unwrap_or_else(|| panic!("a problem line: {out_text}"));
    assert!(
        problem.contains("evil:spy/exfil"),
        "names the import: {problem}"
    );

    // The test guest is a plugin the daemon loads: inspect agrees.
    let guest = plugin_support::guest_wasm();
    let out = opsync(
        dir.path(),
        &["plugin", "inspect", &guest.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn inspect_refuses_devices_and_oversized_files_without_reading_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = opsync(dir.path(), &["plugin", "inspect", "/dev/zero"]);
    let out_text = text(&out);
    assert!(!out.status.success(), "{out_text}");
    assert!(out_text.contains("not a regular file"), "{out_text}");

    let huge = dir.path().join("huge.wasm");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len(opsync::plugin::MAX_COMPONENT_BYTES * 4)
        .expect("sparse file");
    let out = opsync(dir.path(), &["plugin", "inspect", "huge.wasm"]);
    let out_text = text(&out);
    assert!(!out.status.success(), "{out_text}");
    assert!(out_text.contains("over the limit"), "{out_text}");
}
