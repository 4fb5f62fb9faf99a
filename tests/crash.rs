//! Crash safety: `opsync run` (the real binary) is killed with SIGKILL at random points while it
//! delivers about 1,500 changes (1,000 items, two routes), several times, with items changing in
//! between. After a last restart every (route, item, latest version) is at its destination, and
//! SIGTERM then stops the daemon cleanly.

mod sync_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use opsync::connect_dev::Seed;
use sync_support::*;

const KILLS: usize = 8;

fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_opsync"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start opsync run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_no_change() {
    let server = connect(Seed::Bulk {
        vaults: 2,
        items_per_vault: 500,
    })
    .await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}{}{}{}",
        base_config(&server, "200ms"),
        "\n[log]\nlevel = \"warn\"\n",
        file_plugin(dir, "all-files", "all", "") + &file_plugin(dir, "first-files", "first", ""),
        r#"
[[route]]
name = "all"
destinations = ["all-files"]
concurrency = 8

[[route]]
name = "first"
vaults = ["Bulk 01"]
destinations = ["first-files"]
concurrency = 4

# opsync's own DELIVER events, kept in the outbox: the sink is down for the whole test.
[plugins.siem]
builtin = "webhook-audit"
world = "audit-sink"
config = { url = "http://127.0.0.1:9/audit", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
grants = { http = ["http://127.0.0.1:9"] }

[audit]
poll_interval = "1s"

[[audit.sink]]
plugin = "siem"
include_own_events = true
"#
    );
    settings(dir, &config); // checks the config and writes config.toml
    let config_path = dir.join("config.toml");
    let log = dir.join("opsync.log");

    let vaults = client.list_vaults(None).await.expect("vaults");
    let mut items = Vec::new();
    for v in &vaults {
        for i in client.list_items(&v.id, None).await.expect("items") {
            items.push((v.clone(), i.id.clone()));
        }
    }
    assert_eq!(items.len(), 1000);

    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..KILLS {
        let mut child = start(&config_path, &log);
        let wait = rng.gen_range(900..2600);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        // Items change while the daemon is down.
        for _ in 0..20 {
            let (vault, id) = &items[rng.gen_range(0..items.len())];
            set_secret(
                &client,
                &vault.id,
                id,
                &format!("round-{round}-{}", rng.r#gen::<u32>()),
            )
            .await;
        }
        let delivered = items
            .iter()
            .filter(|(v, id)| item_file(&dir.join("all"), &v.name, id).exists())
            .count();
        eprintln!("round {round}: killed after {wait} ms, {delivered}/1000 items at route `all`");
    }

    // The last start runs until every route has every item at its latest version.
    let mut child = start(&config_path, &log);
    let mut expected = Vec::new();
    for (vault, id) in &items {
        let latest = client.get_item(&vault.id, id).await.expect("item").version;
        expected.push((dir.join("all"), vault.name.clone(), id.clone(), latest));
        if vault.name == "Bulk 01" {
            expected.push((dir.join("first"), vault.name.clone(), id.clone(), latest));
        }
    }
    assert_eq!(expected.len(), 1500);
    let complete = || {
        expected
            .iter()
            .all(|(root, vault, id, v)| delivered_version(&item_file(root, vault, id)) == Some(*v))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while !complete() {
        if std::time::Instant::now() > deadline {
            let missing: Vec<_> = expected
                .iter()
                .filter(|(root, vault, id, v)| {
                    delivered_version(&item_file(root, vault, id)) != Some(*v)
                })
                .take(5)
                .collect();
            let _ = child.kill();
            panic!(
                "not delivered after the last restart, e.g. {missing:?}\nlog:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM: a clean, prompt stop.
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM did not stop the daemon"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");

    let store = opsync::store::Store::open(&dir.join("state.db")).expect("state");
    assert!(store.dead_letters(None).expect("dead letters").is_empty());
    drop(store);

    // Each delivery's own DELIVER event committed with its ledger row: across eight SIGKILLs
    // none is lost and none reports a delivery the ledger does not hold.
    let db = rusqlite::Connection::open(dir.join("state.db")).expect("state database");
    let mut rows = db
        .prepare("SELECT route, item_id, version FROM ledger WHERE status = 'delivered'")
        .expect("ledger query");
    let delivered: std::collections::BTreeSet<(String, String, i64)> = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("ledger rows")
        .map(|r| r.expect("ledger row"))
        .collect();
    let mut rows = db
        .prepare("SELECT record FROM audit_outbox WHERE own = 1")
        .expect("outbox query");
    let mut events = std::collections::BTreeSet::new();
    for record in rows
        .query_map([], |r| r.get::<_, String>(0))
        .expect("outbox rows")
    {
        let record: opsync::connect::model::ApiRequest =
            serde_json::from_str(&record.expect("outbox row")).expect("an activity record");
        if record.action.as_str() != "DELIVER" {
            continue;
        }
        let resource = record.resource.expect("a target");
        events.insert((
            record.actor.account,
            resource.item.expect("an item").id,
            resource.item_version.expect("a version") as i64,
        ));
    }
    assert!(
        delivered.len() >= 1500,
        "{} delivered rows",
        delivered.len()
    );
    let missing: Vec<_> = delivered.difference(&events).take(5).collect();
    let phantom: Vec<_> = events.difference(&delivered).take(5).collect();
    assert!(
        missing.is_empty() && phantom.is_empty(),
        "delivered without an event: {missing:?}; an event without a delivered row: {phantom:?}"
    );
    server.shutdown().await;
}
