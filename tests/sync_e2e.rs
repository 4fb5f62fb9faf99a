//! The sync engine end to end against the embedded Connect server and the built-in `file`
//! plugin: created, updated and deleted items reach each route's destination under its
//! `on_delete` policy; Connect failing for a while is waited out with nothing missed; a
//! permanently failing destination dead-letters with its reason while other routes go on; `plan`
//! writes nothing and masks values, and counts deletions held by the mass-delete breaker (exit 2,
//! as `once`); batches read from Connect within their route's concurrency.

mod sync_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use opsync::app::{self, OnceOptions};
use opsync::connect::model::{Category, Field, FieldType, Item, SecretString};
use opsync::connect_dev::Seed;
use sync_support::*;

fn routes(dir: &Path) -> String {
    format!(
        "{}{}{}",
        file_plugin(dir, "prod-files", "prod", ""),
        file_plugin(dir, "staging-files", "staging", ""),
        r#"
[[route]]
name = "prod"
vaults = ["Production"]
destinations = ["prod-files"]
on_delete = "delete"

[[route]]
name = "staging"
vaults = ["Staging"]
destinations = ["staging-files"]
on_delete = "retain"
fields = ["password", "username"]
"#
    )
}

/// Every file under `root`, relative path to content.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_updated_deleted_reach_each_route_under_its_policy() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!("{}{}", base_config(&server, "1s"), routes(dir));

    let first = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("first cycle");
    assert_eq!(first.exit_code(), 0, "{}", first.text());
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    let staging = client.find_vault_by_name("Staging").await.expect("Staging");
    let prod_items = client.list_items(&prod.id, None).await.expect("items");
    let staging_items = client.list_items(&staging.id, None).await.expect("items");
    assert_eq!(
        first.delivery.delivered as usize,
        prod_items.len() + staging_items.len()
    );
    for item in &prod_items {
        let path = item_file(&dir.join("prod"), "Production", &item.id);
        assert_eq!(
            delivered_version(&path),
            Some(item.version),
            "{}",
            path.display()
        );
    }
    // The Shared vault is in no route.
    assert!(
        !tree(&dir.join("prod"))
            .keys()
            .any(|k| k.starts_with("Shared"))
    );
    // The staging route sends only the selected fields.
    let staging_db = staging_items
        .iter()
        .find(|i| i.title == "Orders database")
        .expect("item");
    let text = std::fs::read_to_string(item_file(&dir.join("staging"), "Staging", &staging_db.id))
        .expect("staging file");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let keys: Vec<&String> = value["fields"]
        .as_object()
        .expect("fields")
        .keys()
        .collect();
    assert_eq!(keys, ["password", "username"], "{text}");

    // Update, create and delete in Production; delete in Staging (retained there).
    // The update changes a concealed value, not the title: a title change would be a rename,
    // which deletes the old key too and (2 of 6 keys) trips the mass-deletion guard.
    let mut target = None;
    for summary in &prod_items {
        let item = client.get_item(&prod.id, &summary.id).await.expect("item");
        let concealed = item
            .fields
            .iter()
            .flatten()
            .any(|f| f.field_type == FieldType::Concealed);
        if concealed {
            target = Some(summary);
            break;
        }
    }
    let target = target.expect("a Production item with a concealed field");
    let updated = set_secret(&client, &prod.id, &target.id, "rotated-value-1").await;
    let mut new_item = Item::new("Brand new key", Category::Password);
    new_item.fields = Some(vec![Field {
        id: "password".into(),
        field_type: FieldType::Concealed,
        section: None,
        purpose: None,
        label: Some("password".into()),
        value: Some(SecretString::new("fresh-secret")),
        generate: false,
        recipe: None,
        entropy: None,
        totp: None,
    }]);
    let created = client
        .create_item(&prod.id, &new_item)
        .await
        .expect("create");
    let doomed = prod_items
        .iter()
        .find(|i| i.id != target.id)
        .expect("a second Production item");
    client
        .delete_item(&prod.id, &doomed.id)
        .await
        .expect("delete prod");
    client
        .delete_item(&staging.id, &staging_db.id)
        .await
        .expect("delete staging");

    let second = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("second cycle");
    assert_eq!(second.exit_code(), 0, "{}", second.text());
    let (c, u, d) = second.poll.counts();
    assert_eq!((c, u, d), (1, 1, 1), "{}", second.text());
    let prod_root = dir.join("prod");
    let path = item_file(&prod_root, "Production", &target.id);
    assert_eq!(delivered_version(&path), Some(updated.version));
    assert!(
        std::fs::read_to_string(&path)
            .expect("updated")
            .contains("rotated-value-1")
    );
    assert_eq!(
        delivered_version(&item_file(&prod_root, "Production", &created.id)),
        Some(created.version)
    );
    assert!(
        !item_file(&prod_root, "Production", &doomed.id).exists(),
        "on_delete = delete"
    );
    assert!(
        item_file(&dir.join("staging"), "Staging", &staging_db.id).exists(),
        "on_delete = retain keeps the destination's copy"
    );

    // A third cycle with nothing changed delivers nothing and costs one request.
    let third = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("idle cycle");
    assert_eq!(third.poll.requests, 1, "{}", third.text());
    assert_eq!(third.delivery, Default::default());

    // Status names both routes, nothing pending, nothing dead.
    let status = app::status(&settings(dir, &config).local(), chrono::Utc::now()).expect("status");
    assert!(
        status.contains("prod") && status.contains("staging"),
        "{status}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failing_for_a_while_then_catch_up_with_nothing_missed() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!("{}{}", base_config(&server, "100ms"), routes(dir));
    let settings = settings(dir, &config);
    let (trigger, shutdown) = opsync::shutdown::channel();
    let daemon = tokio::spawn(app::run(settings, app::RunOptions::default(), shutdown));

    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    let items = client.list_items(&prod.id, None).await.expect("items");
    let root = dir.join("prod");
    eventually(20, "the first sync", || {
        items
            .iter()
            .all(|i| delivered_version(&item_file(&root, "Production", &i.id)) == Some(i.version))
    })
    .await;

    // Connect fails most requests (500s) and is slow; meanwhile every item changes.
    server.set_faults(Duration::from_millis(20), 0.7);
    let mut latest = BTreeMap::new();
    for (n, item) in items.iter().enumerate() {
        let changed = set_secret(&client, &prod.id, &item.id, &format!("during-outage-{n}")).await;
        latest.insert(item.id.clone(), changed.version);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.set_faults(Duration::ZERO, 0.0);
    eventually(30, "catch-up after the outage", || {
        latest
            .iter()
            .all(|(id, v)| delivered_version(&item_file(&root, "Production", id)) == Some(*v))
    })
    .await;
    trigger.trigger();
    let summary = daemon.await.expect("joined").expect("daemon ran");
    assert!(
        summary.poll_failures > 0,
        "the outage was seen: {summary:?}"
    );
    assert_eq!(
        summary.delivery.dead, 0,
        "nothing dead-lettered for an outage"
    );
    let store = opsync::store::Store::open(&dir.join("state.db")).expect("state");
    assert!(store.dead_letters(None).expect("dead letters").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_failing_destination_dead_letters_while_other_routes_go_on() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("broken")).expect("dir");
    let config = format!(
        "{}{}{}",
        base_config(&server, "1s"),
        file_plugin(dir, "good-files", "good", ""),
        r#"
[plugins.broken-files]
builtin = "file"
config = { format = "raw", field = "no-such-field", name = "{{id}}.txt" }
grants = { dirs = [{ host = "broken" }] }

[[route]]
name = "good"
vaults = ["Shared"]
destinations = ["good-files"]

[[route]]
name = "broken"
vaults = ["Shared"]
destinations = ["broken-files"]
"#
    );
    let summary = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("cycle");
    assert_eq!(summary.exit_code(), 1, "{}", summary.text());
    let shared = client.find_vault_by_name("Shared").await.expect("Shared");
    let items = client.list_items(&shared.id, None).await.expect("items");
    assert_eq!(
        summary.delivery.dead as usize,
        items.len(),
        "{}",
        summary.text()
    );
    assert_eq!(
        summary.delivery.delivered as usize,
        items.len(),
        "the good route went on"
    );
    for item in &items {
        assert_eq!(
            delivered_version(&item_file(&dir.join("good"), "Shared", &item.id)),
            Some(item.version)
        );
    }
    let s = settings(dir, &config).local();
    let list = app::dead_letters(&s, Some("broken")).expect("list");
    assert!(list.contains("has no field `no-such-field`"), "{list}");
    assert!(list.contains("permanent"), "{list}");
    assert_eq!(
        app::dead_letters(&s, Some("good")).expect("list"),
        "no dead letters\n"
    );
    let status = app::status(&s, chrono::Utc::now()).expect("status");
    let broken_line = status
        .lines()
        .find(|l| l.starts_with("broken"))
        .expect("row");
    assert!(
        broken_line.contains(&format!(" {} ", items.len())),
        "{status}"
    );

    // Retrying re-queues them with a fresh budget; they fail again, with the same reason.
    assert_eq!(
        app::retry_dead_letters(&s, Some("broken"), None).expect("retry"),
        items.len()
    );
    let again = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("cycle");
    assert_eq!(
        again.delivery.dead as usize,
        items.len(),
        "{}",
        again.text()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_keys_and_masked_values_and_writes_nothing() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!("{}{}", base_config(&server, "1s"), routes(dir));
    let settings_now = settings(dir, &config);
    let before = tree(dir);
    let plan = app::plan(settings_now).await.expect("plan");
    assert!(plan.has_changes());
    assert_eq!(tree(dir), before, "plan wrote something");
    assert!(!dir.join("state.db").exists());
    assert!(
        plan.text.contains("route prod -> prod-files"),
        "{}",
        plan.text
    );
    assert!(plan.text.contains("+ create"), "{}", plan.text);
    assert!(
        plan.text.contains(&format!("password = {}", app::MASK)),
        "{}",
        plan.text
    );
    assert!(plan.text.contains("Nothing was written."), "{}", plan.text);
    // No secret value of the demo data shows.
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    for summary in client.list_items(&prod.id, None).await.expect("items") {
        let item = client.get_item(&prod.id, &summary.id).await.expect("item");
        for f in item.fields.iter().flatten() {
            if let Some(v) = &f.value
                && f.field_type == FieldType::Concealed
                && v.expose().len() > 3
            {
                assert!(
                    !plan.text.contains(v.expose()),
                    "a secret value leaked into the plan"
                );
            }
        }
    }

    // After a real cycle, the plan (read from a copy of the state) has nothing to do, and
    // the state database is byte-for-byte untouched.
    app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("cycle");
    let db = std::fs::read(dir.join("state.db")).expect("db");
    let idle = app::plan(settings(dir, &config)).await.expect("plan");
    assert!(!idle.has_changes(), "{}", idle.text);
    assert_eq!(std::fs::read(dir.join("state.db")).expect("db"), db);
    server.shutdown().await;
}

/// Reads lines from the child's stdout until one starts with `prefix`.
fn line_starting(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    prefix: &str,
) -> String {
    for line in lines.by_ref() {
        let line = line.expect("stdout line");
        if line.starts_with(prefix) {
            return line;
        }
    }
    panic!("no line starting with {prefix:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_command_syncs_the_demo_data_and_answers_health_checks() {
    use std::io::BufRead as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let demo_dir = tmp.path().join("opsync-demo");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opsync"))
        .current_dir(tmp.path())
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("OPSYNC_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("opsync demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let host = line_starting(&mut lines, "OP_CONNECT_HOST=");
    let token = line_starting(&mut lines, "OP_CONNECT_TOKEN=");
    assert!(
        host.starts_with("OP_CONNECT_HOST=http://127.0.0.1:"),
        "{host}"
    );
    assert!(token.len() > "OP_CONNECT_TOKEN=".len() + 100, "{token}");
    let curl = line_starting(&mut lines, "#   curl -s -X PATCH");
    assert!(curl.contains("$OP_CONNECT_HOST/v1/vaults/"), "{curl}");
    let page = line_starting(&mut lines, "# status page: http://");
    let metrics = line_starting(&mut lines, "# metrics and health: http://");
    let admin = metrics
        .trim_start_matches("# metrics and health: http://")
        .split('/')
        .next()
        .expect("address")
        .to_owned();

    let files = demo_dir.join("files");
    let count = || {
        ["Production", "Staging", "Shared"]
            .iter()
            .filter_map(|v| std::fs::read_dir(files.join(v)).ok())
            .map(|d| d.count())
            .sum::<usize>()
    };
    eventually(30, "the demo items in opsync-demo/files", || count() >= 10).await;
    assert!(page.contains(&format!("http://{admin}/ ")), "{page}");
    let status = reqwest::get(format!("http://{admin}/status"))
        .await
        .expect("status");
    assert_eq!(status.status().as_u16(), 200);
    let doc: serde_json::Value = status.json().await.expect("JSON");
    assert_eq!(doc["routes"][0]["name"], "demo");
    let ready = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(
        ready.text().await.expect("body"),
        "ready\nconnect: ok\nstate: ok\n"
    );
    // A file is on disk before its delivery is recorded (after the flush): the counter follows.
    let delivered =
        "opsync_deliveries_total{route=\"demo\",plugin=\"files\",outcome=\"delivered\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        if text.contains(delivered) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(text.contains(delivered), "{text}");
    assert!(
        text.contains("opsync_poll_duration_seconds_bucket"),
        "{text}"
    );
    // What the file plugin wrote was flushed to disk before it was recorded.
    assert!(
        text.contains("opsync_plugin_dir_flushes_total{plugin=\"files\",result=\"ok\"}"),
        "{text}"
    );

    // The config it wrote works for the other commands.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_opsync"))
        .current_dir(tmp.path())
        .args(["--config", "opsync-demo/config.toml", "status"])
        .output()
        .expect("status runs");
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{out}");
    assert!(out.lines().any(|l| l.starts_with("demo ")), "{out}");

    // SAFETY: our own child, not yet reaped.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = child.wait().expect("demo exits");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_and_plan_exit_codes_from_the_binary() {
    let server = connect(Seed::Demo).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}\n[log]\nlevel = \"warn\"\n{}",
        base_config(&server, "1s"),
        routes(dir)
    );
    settings(dir, &config);
    let opsync = |args: &[&str]| opsync_in(dir, args);
    let plan = opsync(&["plan"]);
    assert_eq!(plan.status.code(), Some(2), "changes to make");
    assert!(!dir.join("state.db").exists(), "plan wrote nothing");
    let once = opsync(&["once"]);
    let out = String::from_utf8_lossy(&once.stdout);
    assert_eq!(once.status.code(), Some(0), "{out}");
    assert!(out.starts_with("detected: "), "{out}");
    assert_eq!(
        opsync(&["plan"]).status.code(),
        Some(0),
        "nothing left to do"
    );
    let list = opsync(&["deadletter", "list"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout), "no dead letters\n");
    let retry = opsync(&["deadletter", "retry"]);
    assert_eq!(
        retry.status.code(),
        Some(2),
        "retry needs --id, --route or --all"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_without_routes_or_sinks_says_so_and_creates_no_state() {
    let server = connect(Seed::Demo).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    settings(dir, &base_config(&server, "1s"));
    let once = opsync_in(dir, &["once"]);
    let err = String::from_utf8_lossy(&once.stderr);
    assert_eq!(once.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nothing to do") && err.contains("[[route]]"),
        "{err}"
    );
    assert!(
        !dir.join("state.db").exists(),
        "no state for a config with nothing to do"
    );
    server.shutdown().await;
}

/// `opsync ARGS` with `dir/config.toml`, without the process's Connect variables.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_counts_held_deletions_and_exits_2_like_once() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}\n[log]\nlevel = \"warn\"\n{}",
        base_config(&server, "1s"),
        routes(dir)
    );
    settings(dir, &config);
    let first = opsync_in(dir, &["once"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // Two of Production's keys go: past the prod route's max_delete_ratio (default 0.2).
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    let items = client.list_items(&prod.id, None).await.expect("items");
    assert!(
        (3..10).contains(&items.len()),
        "2 deletions must exceed 20% of the route's {} keys",
        items.len()
    );
    for doomed in &items[..2] {
        client
            .delete_item(&prod.id, &doomed.id)
            .await
            .expect("delete");
    }

    let plan = opsync_in(dir, &["plan"]);
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert_eq!(
        plan.status.code(),
        Some(2),
        "held deletions: {}",
        text(&plan)
    );
    assert!(out.contains("! held: 2 deletions of "), "{out}");
    assert!(
        out.contains(
            "Plan: 0 to create, 0 to update, 0 to delete, 2 held by the mass-delete breaker \
             (run with --allow-mass-delete). Nothing was written."
        ),
        "{out}"
    );
    // `once` agrees: it holds them and exits 2, and nothing is deleted at the destination.
    let once = opsync_in(dir, &["once"]);
    assert_eq!(once.status.code(), Some(2), "{}", text(&once));
    for doomed in &items[..2] {
        assert!(item_file(&dir.join("prod"), "Production", &doomed.id).exists());
    }
    let again = opsync_in(dir, &["plan"]);
    assert_eq!(again.status.code(), Some(2), "still held: {}", text(&again));

    // Allowed, the deletions are made; then there is nothing left to do.
    let allowed = opsync_in(dir, &["once", "--allow-mass-delete"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    for doomed in &items[..2] {
        assert!(!item_file(&dir.join("prod"), "Production", &doomed.id).exists());
    }
    let idle = opsync_in(dir, &["plan"]);
    let out = String::from_utf8_lossy(&idle.stdout).to_string();
    assert_eq!(idle.status.code(), Some(0), "{}", text(&idle));
    assert!(!out.contains("held"), "{out}");
    server.shutdown().await;
}

/// A route's reads from Connect stay within its `concurrency` while several batches read their
/// items at once, as the server itself counts them; and every item still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_from_connect_within_the_route_concurrency() {
    let server = connect(Seed::Bulk {
        vaults: 2,
        items_per_vault: 60,
    })
    .await;
    // Slow answers keep reads overlapping, so a batch reading ahead would show.
    server.set_faults(Duration::from_millis(15), 0.0);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}{}{}",
        base_config(&server, "1s"),
        file_plugin(dir, "files", "out", ""),
        r#"
[[route]]
name = "all"
destinations = ["files"]
concurrency = 3
batch_size = 16
"#
    );
    settings(dir, &config);
    let once = opsync_in(dir, &["once", "--no-progress"]);
    assert_eq!(once.status.code(), Some(0), "{}", text(&once));
    assert_eq!(
        files_under(&dir.join("out")).len(),
        120,
        "every item arrived"
    );
    let metrics = metrics(&server.addr().to_string()).await;
    let peak: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("connect_dev_http_requests_in_flight_peak "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {metrics}"));
    // The poll lists the two vaults at once before any delivery starts.
    assert!(
        (2..=3).contains(&peak),
        "requests at once: {peak}, route concurrency 3"
    );
    server.shutdown().await;
}
