//! The status page of a running daemon in a real browser. The real `opsync` binary runs against
//! the embedded Connect server with a route whose deletions are held, a route whose destination
//! dead-letters every change, a route whose plugin cannot be loaded, and a rotation that has run;
//! Debian's Chromium (headless, `--dump-dom`) loads `/` and a dead letter's page, and the test
//! asserts on the rendered DOM. `/status` and `opsync status --json` print the same document, and
//! no secret value appears in either.
//!
//! Chromium comes from scripts/setup-system.sh (the Debian package `chromium`).

mod dashboard_support;
mod sync_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opsync::connect::model::FieldType;
use opsync::connect::token::Access;
use opsync::connect_dev::Seed;
use serde_json::Value;
use sync_support::{
    Daemon, base_config, client, connect, file_instance, file_plugin, free_port, opsync_in, text,
};

/// The audit sink's signing secret: a config secret that must not show either.
const SINK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Where a screenshot of the page is also copied, when set (docs/status-page.png is made so).
const SCREENSHOT_TO: &str = "STATUS_SCREENSHOT_TO";

/// Runs Debian's Chromium headless on `url` with `args` (a fresh profile each time) and returns
/// what it printed on stdout.
fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new("timeout")
        .arg("60")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-extensions",
            "--disable-sync",
            "--disable-component-update",
            "--mute-audio",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("p").display()
        ))
        .args(args)
        .arg(url)
        .env("HOME", profile.path())
        .env("TMPDIR", profile.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}); run scripts/setup-system.sh (Debian package `chromium`)"
            )
        });
    assert!(
        out.status.success(),
        "chromium on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn status_json(admin: &str) -> Option<Value> {
    let resp = reqwest::get(format!("http://{admin}/status")).await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.json().await.ok()
}

fn route<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no route {name} in {doc:#}"))
}

/// Whether the route delivered something after `t`.
fn delivered_since(route: &Value, t: chrono::DateTime<chrono::Utc>) -> bool {
    route["last_delivered_at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|at| at >= t)
}

/// The document without what changes from one reading to the next.
fn steady(mut doc: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in [
                    "generated_at",
                    "last_poll_ok_at",
                    "lag_seconds",
                    "next_run_at",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut doc);
    doc
}

/// Every concealed value the demo vaults hold that is long enough to be told apart.
async fn secret_values(client: &opsync::connect::client::ConnectClient) -> Vec<String> {
    let mut out = Vec::new();
    for vault in client.list_vaults(None).await.expect("vaults") {
        for summary in client.list_items(&vault.id, None).await.expect("items") {
            let item = client.get_item(&vault.id, &summary.id).await.expect("item");
            for f in item.fields.iter().flatten() {
                if f.field_type == FieldType::Concealed
                    && let Some(v) = &f.value
                    && v.expose().len() >= 8
                {
                    out.push(v.expose().to_owned());
                }
            }
        }
    }
    out
}

fn config(server: &opsync::connect_dev::DevServer, dir: &Path) -> String {
    std::fs::write(dir.join("gone.wasm"), b"not a component").expect("gone.wasm");
    format!(
        "{base}{prod}{broken}{extra}",
        base = base_config(server, "300ms"),
        prod = file_plugin(dir, "prod-files", "prod", ""),
        broken = file_instance(
            dir,
            "broken-files",
            "broken",
            r#"format = "raw", field = "no-such-field", name = "{{id}}.txt""#
        ),
        extra = r#"
# Pinned to other bytes than the file's: unusable, and the daemon starts without it only when
# told to (--allow-unusable-plugins).
[plugins.gone]
path = "gone.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[plugins.pw]
builtin = "password"
world = "rotator"

[[route]]
name = "prod"
vaults = ["Production"]
destinations = ["prod-files"]
on_delete = "delete"
drift_check = "1s"

[[route]]
name = "broken"
vaults = ["Shared"]
destinations = ["broken-files"]

[[route]]
name = "staging"
vaults = ["Staging"]
tags = ["ci"]
destinations = ["gone"]

[[rotation]]
name = "ci-token"
item = "op://Staging/CI deploy token"
plugin = "pw"
schedule = "@yearly"

# Nothing listens on port 9: the sink fails and keeps its cursor.
[plugins.siem]
builtin = "webhook-audit"
world = "audit-sink"
config = { url = "http://127.0.0.1:9/audit", secret = "<SINK_SECRET>" }
grants = { http = ["http://127.0.0.1:9"] }

[audit]
poll_interval = "300ms"

[[audit.sink]]
plugin = "siem"
include_own_events = true
"#
        .replace("<SINK_SECRET>", SINK_SECRET)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_held_dead_unusable_and_rotated_in_a_real_browser() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // A token that expires (in a day), as Connect tokens made with `--expires-in` do.
    let grants: Vec<_> = ["Production", "Staging", "Shared"]
        .iter()
        .map(|v| (v.to_string(), Access::ReadWrite))
        .collect();
    let token = server
        .mint_token(&grants, Some(Duration::from_secs(24 * 3600)))
        .expect("token");
    let config = config(&server, dir).replace(server.token(), &token);
    std::fs::write(dir.join("config.toml"), config).expect("config");

    // A first cycle: prod's keys are written, every Shared item dead-letters.
    let once = opsync_in(dir, &["once", "--allow-unusable-plugins"]);
    assert_eq!(once.status.code(), Some(1), "{}", text(&once));
    let rotated = opsync_in(dir, &["rotate", "now", "ci-token"]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    // Two of Production's keys go: more than the route's max_delete_ratio (0.2) allows.
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("vault");
    let items = client.list_items(&prod.id, None).await.expect("items");
    // Admin Console stays (it has a concealed field to change); two others go.
    let kept = items
        .iter()
        .find(|i| i.title == "Admin Console")
        .expect("Admin Console")
        .clone();
    let doomed: Vec<_> = items.iter().filter(|i| i.id != kept.id).take(2).collect();
    for doomed in doomed {
        client
            .delete_item(&prod.id, &doomed.id)
            .await
            .expect("delete");
    }

    let admin = format!("127.0.0.1:{}", free_port());
    let started = chrono::Utc::now();
    let log = std::fs::File::create(dir.join("daemon.log")).expect("log file");
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_opsync"))
            .current_dir(dir)
            .args(["run", "--allow-unusable-plugins", "--admin-listen", &admin])
            .env("OPSYNC_LOG__LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("opsync run starts"),
    );
    let daemon_log = || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    // A change the daemon delivers itself (updates still go while deletions are held).
    sync_support::set_secret(&client, &prod.id, &kept.id, "rotated-by-hand-0001").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let doc = loop {
        if let Some(doc) = status_json(&admin).await
            && doc["connect"]["health"] == "ok"
            && !route(&doc, "prod")["hold"].is_null()
            && !doc["audit_sinks"][0]["last_error"].is_null()
            && delivered_since(route(&doc, "prod"), started)
        {
            break doc;
        }
        assert!(
            Instant::now() < deadline,
            "no held route on /status\n{}",
            daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(doc["schema"], "opsync.status/v1");
    assert_eq!(route(&doc, "prod")["hold"]["deletions"], 2);
    assert_eq!(route(&doc, "prod")["destinations"][0]["state"], "held");
    assert_eq!(
        route(&doc, "broken")["destinations"][0]["state"],
        "dead_letter"
    );
    assert_eq!(
        route(&doc, "staging")["destinations"][0]["state"],
        "plugin_unusable"
    );
    assert_eq!(doc["rotations"][0]["last_result"], "succeeded");
    assert!(
        doc["audit_sinks"][0]["pending"].as_u64() > Some(0),
        "{doc:#}"
    );
    let dead_id = doc["dead_letters"]["shown"][0]["id"]
        .as_i64()
        .expect("a dead letter");

    // The page as Chromium renders it.
    let base = format!("http://{admin}/");
    let dom = chromium(&["--dump-dom"], &base);
    let article = |name: &str| {
        let start = dom
            .find(&format!("data-route=\"{name}\""))
            .unwrap_or_else(|| panic!("no article for route {name}:\n{dom}"));
        let end = dom[start..].find("</article>").expect("article ends") + start;
        dom[start..end].to_owned()
    };
    let prod_html = article("prod");
    assert!(
        prod_html.contains("Deletions held: </strong>2 of "),
        "{prod_html}"
    );
    assert!(
        prod_html.contains(r#"data-destination="prod-files" data-state="held""#),
        "{prod_html}"
    );
    let broken_html = article("broken");
    assert!(
        broken_html.contains(r#"data-destination="broken-files" data-state="dead_letter""#),
        "{broken_html}"
    );
    assert!(broken_html.contains("no-such-field"), "{broken_html}");
    let staging_html = article("staging");
    assert!(
        staging_html.contains(r#"data-destination="gone" data-state="plugin_unusable""#),
        "{staging_html}"
    );
    assert!(
        staging_html.contains("Selects vaults Staging; tags ci"),
        "{staging_html}"
    );
    assert!(dom.contains(r#"data-job="ci-token""#), "{dom}");
    assert!(dom.contains(r#"class="badge s-succeeded""#), "{dom}");
    assert!(
        dom.contains(r#"class="badge s-ok""#),
        "Connect healthy: {dom}"
    );
    let link = format!(r#"href="dead-letters/{dead_id}""#);
    assert!(dom.contains(&link), "{dom}");

    // A dead letter's page, followed from the link.
    let detail = chromium(&["--dump-dom"], &format!("{base}dead-letters/{dead_id}"));
    assert!(
        detail.contains(&format!("Dead letter #{dead_id}")),
        "{detail}"
    );
    assert!(detail.contains("no-such-field"), "{detail}");
    assert!(
        detail.contains(&format!("opsync deadletter retry --id {dead_id}")),
        "{detail}"
    );
    let missing = reqwest::get(format!("{base}dead-letters/999999"))
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);

    // A screenshot renders (and is kept for docs/ when asked).
    let shots = tempfile::tempdir().expect("shots");
    let shot = shots.path().join("status.png");
    chromium(
        &[
            "--window-size=1280,1500",
            &format!("--screenshot={}", shot.display()),
        ],
        &base,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(to) = std::env::var_os(SCREENSHOT_TO) {
        std::fs::copy(&shot, PathBuf::from(to)).expect("copy the screenshot");
    }

    // `opsync status --json` prints the same document (read at the same moment).
    let mut same = false;
    for _ in 0..20 {
        let cli = opsync_in(dir, &["status", "--json"]);
        assert!(cli.status.success(), "{}", text(&cli));
        let printed: Value = serde_json::from_slice(&cli.stdout).expect("JSON");
        let served = status_json(&admin).await.expect("/status");
        if steady(printed.clone()) == steady(served.clone()) {
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(same, "`status --json` and /status differ");

    // Every metric the Grafana dashboard queries is in this daemon's /metrics (the drift
    // checks' counter once the first check of `prod` ran).
    let mut missing = Vec::new();
    for _ in 0..50 {
        let exposition = reqwest::get(format!("{base}metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        let exported = dashboard_support::metric_names(&exposition);
        missing = dashboard_support::dashboard_metrics()
            .into_iter()
            .filter(|name| !exported.contains(name))
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which /metrics lacks"
    );

    // No secret value anywhere.
    let json = reqwest::get(format!("{base}status"))
        .await
        .expect("json")
        .text()
        .await
        .expect("body");
    let mut secrets = secret_values(&client).await;
    secrets.push(SINK_SECRET.to_owned());
    for secret in secrets {
        assert!(!dom.contains(&secret), "a secret value on the page");
        assert!(
            !detail.contains(&secret),
            "a secret value on a dead letter's page"
        );
        assert!(!json.contains(&secret), "a secret value in /status");
    }
    server.shutdown().await;
}

#[test]
fn status_json_without_a_state_database_shows_the_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("config.toml"),
        r#"
[connect]
host = "http://127.0.0.1:9"

[state]
path = "state.db"

[plugins.pw]
builtin = "password"
world = "rotator"

[[rotation]]
name = "db"
item = "op://V/I"
plugin = "pw"
schedule = "@daily"
"#,
    )
    .expect("config");
    // No Connect token is needed: status never talks to Connect.
    let out = opsync_in(tmp.path(), &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["schema"], "opsync.status/v1");
    assert_eq!(doc["connect"]["health"], "unknown");
    assert_eq!(doc["connect"]["host"], "http://127.0.0.1:9/");
    assert_eq!(doc["rotations"][0]["name"], "db");
    assert!(doc["rotations"][0]["last_result"].is_null());
    assert!(doc["rotations"][0]["next_run_at"].is_string());
    assert_eq!(doc["dead_letters"]["total"], 0);
    assert!(
        !tmp.path().join("state.db").exists(),
        "status creates no state"
    );
}
