//! `opsync plugin new|inspect|check`: a scaffolded crate builds for wasm32-wasip2 and passes its
//! own test, the host loads it pinned by sha256 and delivers to it, and `check` reports every
//! configured plugin against a real connect-dev server, from the binary as a user runs it.

mod plugin_support;
mod sync_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use opsync::connect_dev::Seed;
use opsync::plugin::{ChangeKind, PluginError, PluginSource, World, inspect};
use opsync::plugin_cmd::{ScaffoldError, scaffold};

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plugin-new-test")
}

/// Runs cargo in `dir` on the scaffolded crate, offline, with a target dir shared across runs
/// (under the repo's target/) so wit-bindgen is compiled once.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .arg("--offline")
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("LLVM_PROFILE_FILE")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Scaffolds `hello-dest` into a temporary folder, builds it and runs its tests, once per test
/// binary; returns the component.
fn scaffolded_wasm() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, wasm) = BUILT.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = scaffold(&tmp.path().join("hello-dest")).expect("scaffold");
        cargo(
            &s.dir,
            &["build", "--release", "--target", "wasm32-wasip2", "--quiet"],
        );
        let tested = cargo(&s.dir, &["test", "--quiet"]);
        let stdout = String::from_utf8_lossy(&tested.stdout);
        assert!(
            stdout.contains("test result: ok. 3 passed"),
            "the scaffold's own tests:\n{stdout}"
        );
        let wasm = target_dir().join(s.wasm.strip_prefix("target").expect("under target/"));
        assert!(wasm.is_file(), "{} was built", wasm.display());
        (tmp, wasm)
    });
    wasm
}

fn opsync(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .env_remove("OPSYNC_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .expect("run opsync")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_plugin_builds_passes_its_test_and_runs_in_the_host() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wasm = scaffolded_wasm().to_path_buf();
    let bytes = std::fs::read(&wasm).expect("read component");
    let sha256 = opsync::plugin::sha256_hex(&bytes);

    // inspect: a destination of the ABI this host speaks.
    let report = inspect(&plugin_support::host(), &wasm).expect("inspect");
    assert_eq!(report.world, Some(World::Destination), "{report}");
    assert_eq!(report.abi_version.as_deref(), Some("0.2.0"));
    assert_eq!(report.problem, None);
    assert_eq!(report.sha256, sha256);
    assert_eq!(report.size, bytes.len() as u64);

    // Loaded as an external plugin pinned by its sha256, it validates and takes one event.
    let host = plugin_support::host();
    let mut spec = plugin_support::spec_for(
        wasm.clone(),
        "hello",
        &[("prefix", "team/app")],
        opsync::plugin::Limits::default(),
        opsync::plugin::Grants::default(),
    );
    let plugin = host.load(spec.clone()).expect("loads");
    assert_eq!(plugin.world(), World::Destination);
    plugin.validate().await.expect("validates");
    let event = plugin_support::event(plugin_support::item("db/primary"), ChangeKind::Created);
    let receipt = plugin.deliver(&event).await.expect("delivers");
    assert_eq!(receipt.location, "team/app/Prod/db_primary");
    assert_eq!(receipt.destination_version.as_deref(), Some("3"));
    assert!(!receipt.unchanged);
    // A batch is one call with a result per event; it cannot read its destination back.
    let other = plugin_support::event(plugin_support::item("cache"), ChangeKind::Updated);
    let results = plugin
        .deliver_batch(&[event.clone(), other])
        .await
        .expect("one call");
    let locations: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("delivered").location)
        .collect();
    assert_eq!(
        locations,
        ["team/app/Prod/db_primary", "team/app/Prod/cache"]
    );
    let item = opsync::plugin::ItemRef {
        key: "Prod/db".into(),
        vault: event.vault.clone(),
        id: event.item.id.clone(),
        title: event.item.title.clone(),
        category: "LOGIN".into(),
        tags: Vec::new(),
        version: 3,
    };
    assert_eq!(
        plugin.read_back(&item).await.expect("answers"),
        opsync::plugin::Found::Unsupported
    );

    // Its own config checks run in the host: a typo is misconfigured, naming the plugin.
    spec.config = plugin_support::config(&[("prefx", "team")]);
    let typo = host.load(spec.clone()).expect("loads");
    let err = typo.validate().await.expect_err("unknown key");
    assert!(matches!(err, PluginError::Failed { .. }), "{err:?}");
    assert!(err.to_string().contains("plugin `hello`"), "{err}");
    assert!(err.to_string().contains("`prefx`"), "{err}");

    // A different pin refuses to load.
    spec.source = PluginSource::File {
        path: wasm,
        sha256: "0".repeat(64),
    };
    let err = host.load(spec).expect_err("pin mismatch");
    assert!(matches!(err, PluginError::HashMismatch { .. }), "{err:?}");

    // The binary: `plugin inspect` prints the world and the sha256 and exits 0.
    let none = tmp.path().join("none.toml");
    std::fs::write(&none, "").expect("empty config");
    let out = opsync(
        &none,
        &["plugin", "inspect", report.path.to_str().expect("utf-8")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("world:   destination (opsync:plugin@0.2.0)"),
        "{stdout}"
    );
    assert!(stdout.contains(&sha256), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_configured_plugin_and_fails_when_one_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wasm = scaffolded_wasm();
    let sha256 = opsync::plugin::sha256_hex(&std::fs::read(wasm).expect("read"));
    let server = sync_support::connect(Seed::Demo).await;
    let path = wasm.display();
    let good = format!(
        r#"{base}
[plugins.hello]
path = "{path}"
sha256 = "{sha256}"
config = {{ prefix = "team/app" }}
grants = {{ http = ["https://api.example.com"] }}

[plugins.files]
builtin = "file"
config = {{ format = "dotenv" }}
grants = {{ dirs = [{{ host = "out" }}] }}
"#,
        base = sync_support::base_config(&server, "1s"),
    );
    std::fs::create_dir_all(tmp.path().join("out")).expect("out dir");
    let config = tmp.path().join("good.toml");
    std::fs::write(&config, &good).expect("config");
    let out = opsync(&config, &["plugin", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let files = lines
        .iter()
        .find(|l| l.starts_with("files "))
        .expect("files line");
    assert!(
        files.contains("source=builtin:file") && files.contains("world=destination"),
        "{files}"
    );
    assert!(files.ends_with("http=none  OK"), "{files}");
    let hello = lines
        .iter()
        .find(|l| l.starts_with("hello "))
        .expect("hello line");
    assert!(hello.contains(&format!("sha256={sha256}")), "{hello}");
    assert!(
        hello.contains("http=https://api.example.com") && hello.ends_with("OK"),
        "{hello}"
    );

    // An op:// value resolved through Connect reaches the plugin; one that does not resolve,
    // a wrong pin and a plugin's own validation failure each fail their line, naming it.
    let bad = format!(
        r#"{base}
[plugins.resolved]
path = "{path}"
sha256 = "{sha256}"
config = {{ prefix = "op://Production/Payments API/hostname" }}

[plugins.dangling]
path = "{path}"
sha256 = "{sha256}"
config = {{ prefix = "op://Production/No such item/password" }}

[plugins.repinned]
path = "{path}"
sha256 = "{zero}"

[plugins.typo]
path = "{path}"
sha256 = "{sha256}"
config = {{ prefx = "team" }}
"#,
        base = sync_support::base_config(&server, "1s"),
        zero = "0".repeat(64),
    );
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, &bad).expect("config");
    let out = opsync(&config, &["plugin", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"))
            .to_owned()
    };
    assert!(line("resolved").ends_with("OK"), "{stdout}");
    let dangling = line("dangling");
    assert!(
        dangling.contains("FAILED: plugin `dangling`: config key `prefix`"),
        "{dangling}"
    );
    assert!(
        dangling.contains("world=destination") && dangling.contains(&sha256),
        "the component is still identified: {dangling}"
    );
    let repinned = line("repinned");
    assert!(
        repinned.contains("FAILED: plugin `repinned`: sha256 mismatch"),
        "{repinned}"
    );
    let typo = line("typo");
    assert!(
        typo.contains("FAILED: plugin `typo`") && typo.contains("`prefx`"),
        "{typo}"
    );
    assert!(!stdout.contains("api.payments.example.com"), "{stdout}");
    server.shutdown().await;
}

#[test]
fn new_refuses_an_existing_folder_from_the_binary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let none = tmp.path().join("none.toml");
    std::fs::write(&none, "").expect("empty config");
    let dir = tmp.path().join("my-plugin");
    let out = opsync(&none, &["plugin", "new", dir.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created"));
    assert!(dir.join("src/lib.rs").is_file() && dir.join("wit/opsync.wit").is_file());
    let again = opsync(&none, &["plugin", "new", dir.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(matches!(scaffold(&dir), Err(ScaffoldError::Exists(_))));
}
