//! Drift checks through the real binary: the daemon reads back what the built-in `file`
//! destination holds (ABI 0.2.0 read-back, keyed fingerprints) every `drift_check`; a file
//! edited or deleted behind opsync's back is written again under `on_drift = "repair"`, and
//! counted, logged and shown on the status page under `on_drift = "report"`.

mod sync_support;

use std::path::Path;

use opsync::connect_dev::Seed;
use serde_json::Value;
use sync_support::{
    base_config, client, connect, file_instance, files_under, free_port, run_daemon, until,
};

/// The item version a delivered file holds, if it is a delivered file.
fn version_in(path: &Path) -> Option<u64> {
    let doc: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    doc["version"].as_u64()
}

async fn status(admin: &str) -> Value {
    let text = reqwest::get(format!("http://{admin}/status"))
        .await
        .expect("status")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_and_deleted_files_are_repaired_or_reported() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let files_config = r#"format = "item-json", name = "{{id}}.json""#;
    let config = format!(
        r#"{base}
{fix}
{watch}
[[route]]
name = "repaired"
vaults = ["Production"]
destinations = ["fix-files"]
drift_check = "1s"
on_drift = "repair"
drift_rate = 200

[[route]]
name = "reported"
vaults = ["Staging"]
destinations = ["watch-files"]
drift_check = "1s"
drift_rate = 200
"#,
        base = base_config(&server, "500ms"),
        fix = file_instance(&dir, "fix-files", "fix", files_config),
        watch = file_instance(&dir, "watch-files", "watch", files_config),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let _daemon = run_daemon(&dir, &admin);
    let count = |vault: &str| {
        let client = client.clone();
        let vault = vault.to_owned();
        async move {
            let v = client.find_vault_by_name(&vault).await.expect("vault");
            client.list_items(&v.id, None).await.expect("items").len()
        }
    };
    let (prod, staging) = (count("Production").await, count("Staging").await);
    until("the first delivery", async || {
        files_under(&dir.join("fix")).len() == prod
            && files_under(&dir.join("watch")).len() == staging
    })
    .await;

    // Behind opsync's back: one file edited and one deleted in each destination.
    let fixed = files_under(&dir.join("fix"));
    let watched = files_under(&dir.join("watch"));
    let (edited, deleted) = (&fixed[0], &fixed[1]);
    let delivered = version_in(edited).expect("a delivered file");
    std::fs::write(edited, b"{\"tampered\": true}").expect("edit");
    std::fs::remove_file(deleted).expect("delete");
    std::fs::write(&watched[0], b"{\"tampered\": true}").expect("edit");

    // repair: both are written again with what was delivered.
    until("the repair", async || {
        version_in(edited) == Some(delivered) && deleted.exists()
    })
    .await;

    // report: the file stays as it was made, the status page shows it.
    let report_admin = admin.clone();
    until("the report", async || {
        let doc = status(&report_admin).await;
        let route = doc["routes"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "reported"))
            .cloned()
            .unwrap_or_default();
        route["destinations"][0]["state"] == "drifted" && route["destinations"][0]["drifted"] == 1
    })
    .await;
    assert_eq!(
        std::fs::read(&watched[0]).expect("still there"),
        b"{\"tampered\": true}"
    );
    let metrics = sync_support::metrics(&admin).await;
    for needle in [
        r#"opsync_drift_detected_total{route="repaired",plugin="fix-files",kind="changed"}"#,
        r#"opsync_drift_detected_total{route="repaired",plugin="fix-files",kind="missing"}"#,
        r#"opsync_drift_detected_total{route="reported",plugin="watch-files",kind="changed"}"#,
        r#"opsync_drift_repairs_total{route="repaired",plugin="fix-files"}"#,
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    // Once repaired, the repaired route reads back clean.
    until("a clean pass", async || {
        let doc = status(&admin).await;
        doc["routes"][0]["destinations"][0]["drifted"] == 0
            && doc["routes"][0]["destinations"][0]["state"] == "synced"
    })
    .await;
}
