//! Shared by the sync engine's and rotation's test suites: a Connect server on port 0, a config
//! file in a temporary directory, settings loaded from it (no environment), item edits and
//! reads, and a command's output as text for assertion messages.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use opsync::config::{EnvVars, LoadOptions, Loader, Overrides, Settings};
use opsync::connect::client::ConnectClient;
use opsync::connect::model::{FieldType, Item, PatchOp, PatchOpKind};
use opsync::connect_dev::{DevServer, DevServerOptions, Seed};
use url::Url;

pub async fn connect(seed: Seed) -> DevServer {
    DevServer::start(DevServerOptions {
        seed,
        ..DevServerOptions::default()
    })
    .await
    .expect("connect-dev starts on port 0")
}

pub fn client(server: &DevServer) -> ConnectClient {
    ConnectClient::new(&opsync::config::ConnectSettings::new(
        Url::parse(&server.base_url()).expect("url"),
        server.token(),
    ))
    .expect("client")
}

/// The `[connect]`, `[state]`, `[sync]` and `[delivery]` sections every test config starts with.
pub fn base_config(server: &DevServer, poll: &str) -> String {
    format!(
        r#"
[connect]
host = "{host}"
token = "{token}"
timeout = "5s"

[state]
path = "state.db"

[sync]
poll_interval = "{poll}"

[delivery]
retry_base = "20ms"
retry_max_delay = "200ms"
max_attempts = 3
misconfigured_pause = "1s"
shutdown_grace = "5s"
"#,
        host = server.base_url(),
        token = server.token(),
    )
}

/// A `file` plugin instance writing whole items as JSON (`{{id}}.json` by default) into
/// `dir/<sub>`, which is created.
pub fn file_plugin(dir: &Path, name: &str, sub: &str, extra: &str) -> String {
    file_instance(
        dir,
        name,
        sub,
        &format!(
            r#"format = "item-json", name = "{{{{vault}}}}/{{{{id}}}}.json", on-delete = "delete"{extra}"#
        ),
    )
}

/// A `file` plugin instance with `config` (the inside of its inline table) writing into
/// `dir/<sub>`, which is created.
pub fn file_instance(dir: &Path, name: &str, sub: &str, config: &str) -> String {
    std::fs::create_dir_all(dir.join(sub)).expect("destination dir");
    format!(
        r#"
[plugins.{name}]
builtin = "file"
config = {{ {config} }}
grants = {{ dirs = [{{ host = "{sub}" }}] }}
"#
    )
}

/// Writes `config.toml` into `dir` and loads it without the process environment.
pub fn settings(dir: &Path, config: &str) -> Settings {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    Loader::new(&LoadOptions {
        config_file: Some(path),
        env: EnvVars::default(),
        overrides: Overrides::default(),
    })
    .expect("config file")
    .settings()
    .unwrap_or_else(|e| panic!("config loads: {e}\n{config}"))
}

/// Where the file plugin put `item` (with the `{{vault}}/{{id}}.json` name).
pub fn item_file(root: &Path, vault_name: &str, item_id: &str) -> PathBuf {
    root.join(sanitize(vault_name))
        .join(format!("{item_id}.json"))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The item's version as the destination holds it, if the file exists.
pub fn delivered_version(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["version"].as_u64()
}

/// Sets the item's first concealed field (or its title) to `value` (retrying while Connect fails on purpose).
pub async fn set_secret(
    client: &ConnectClient,
    vault_id: &str,
    item_id: &str,
    value: &str,
) -> Item {
    for _ in 0..200 {
        let Ok(item) = client.get_item(vault_id, item_id).await else {
            continue;
        };
        // The first concealed field's value, or the title for items without one.
        let path = item
            .fields
            .iter()
            .flatten()
            .find(|f| f.field_type == FieldType::Concealed)
            .map(|f| format!("/fields/{}/value", f.id))
            .unwrap_or_else(|| "/title".to_owned());
        let op = PatchOp {
            op: PatchOpKind::Replace,
            path,
            value: Some(serde_json::Value::String(value.to_owned())),
        };
        if let Ok(item) = client.patch_item(vault_id, item_id, &[op]).await {
            return item;
        }
    }
    panic!("could not patch {item_id}");
}

/// Waits until `check` holds, polling every 50 ms, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The value of `item`'s field with this id or label.
pub fn value(item: &Item, id_or_label: &str) -> Option<String> {
    item.field(id_or_label)
        .and_then(|f| f.value.as_ref())
        .map(|v| v.expose().to_owned())
}

/// Runs the `opsync` binary in `dir` on its `config.toml` (logging warnings only, the SDK's
/// Connect variables of the environment left out) and waits for it.
pub fn opsync_in(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_opsync"))
        .current_dir(dir)
        .args(["--config", "config.toml"])
        .args(args)
        .env("OPSYNC_LOG__LEVEL", "warn")
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .output()
        .expect("opsync runs")
}

/// A free loopback port (bound, read and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `opsync` process, stopped with SIGTERM (and reaped) when dropped.
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Starts `opsync run` in `dir` with its admin listener on `admin`, logging warnings only.
pub fn run_daemon(dir: &Path, admin: &str) -> Daemon {
    Daemon(
        std::process::Command::new(env!("CARGO_BIN_EXE_opsync"))
            .current_dir(dir)
            .args(["run", "--admin-listen", admin])
            .env("OPSYNC_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("opsync run starts"),
    )
}

/// The Production vault's id and its item titled `title` (the demo seed).
pub async fn production_item(client: &ConnectClient, title: &str) -> (String, Item) {
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("vault");
    let item = client
        .find_item_by_title(&prod.id, title)
        .await
        .expect("item");
    (prod.id, item)
}

/// `opsync status --json` in `dir`, parsed.
pub fn status_json(dir: &Path) -> serde_json::Value {
    let out = opsync_in(dir, &["status", "--json"]);
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The daemon's `/metrics` text at `admin` (empty while it is not answering yet).
pub async fn metrics(admin: &str) -> String {
    match reqwest::get(format!("http://{admin}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `check` holds, every 200 ms, for at most a minute.
pub async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A finished command's status and output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
