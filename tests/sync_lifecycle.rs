//! An item's life at a destination beyond create and update, through `opsync once` in process
//! with the built-in `file` plugin: a rename deletes the old key where the route deletes (and
//! never the current file of a plugin that names files by id; renames past max_delete_ratio
//! write the new key and hold the old key's deletion); the deletion of an item already
//! gone from Connect carries its real category and tags; delivered ledger rows are pruned after
//! `[state] ledger_retention` while dead letters stay.

mod sync_support;

use std::time::Duration;

use opsync::app::{self, OnceOptions};
use opsync::connect::client::ConnectClient;
use opsync::connect::model::{Item, PatchOp, PatchOpKind};
use opsync::connect_dev::Seed;
use opsync::store::Store;
use serde_json::Value;
use sync_support::*;

async fn rename(client: &ConnectClient, vault: &str, item: &str, title: &str) -> Item {
    client
        .patch_item(
            vault,
            item,
            &[PatchOp {
                op: PatchOpKind::Replace,
                path: "/title".into(),
                value: Some(Value::String(title.into())),
            }],
        )
        .await
        .expect("rename")
}

/// A `file` plugin instance with `config` (inline TOML table body) writing into `dir/<sub>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_deletes_the_old_key_where_the_route_deletes() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}{}{}{}{}",
        base_config(&server, "1s"),
        // Named by the route's key (no `name`): `{vault}/{title}` + `.json`.
        file_instance(
            dir,
            "by-key",
            "by-key",
            r#"format = "item-json", on-delete = "delete""#
        ),
        // Named by id with its own template: a rename changes nothing there.
        file_instance(
            dir,
            "by-id",
            "by-id",
            r#"format = "item-json", name = "{{id}}.json", on-delete = "delete""#
        ),
        file_instance(
            dir,
            "kept",
            "kept",
            r#"format = "item-json", on-delete = "delete""#
        ),
        r#"
[[route]]
name = "deleting"
vaults = ["Production"]
destinations = ["by-key", "by-id"]
on_delete = "delete"

[[route]]
name = "retaining"
vaults = ["Production"]
destinations = ["kept"]
on_delete = "retain"
"#
    );
    let first = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("first cycle");
    assert_eq!(first.exit_code(), 0, "{}", first.text());
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    let item = client
        .find_item_by_title(&prod.id, "Payments API")
        .await
        .expect("item");
    let old = dir.join("by-key/Production/Payments API.json");
    assert!(old.exists(), "written under the route's key");
    assert!(dir.join(format!("by-id/{}.json", item.id)).exists());
    assert!(dir.join("kept/Production/Payments API.json").exists());

    let renamed = rename(&client, &prod.id, &item.id, "Payments API v2").await;
    let plan = app::plan(settings(dir, &config)).await.expect("plan");
    assert!(
        plan.text
            .contains("- delete Production/Payments API  (Payments API in Production"),
        "{}",
        plan.text
    );
    assert!(
        plan.text.contains(
            "+ create Production/Payments API v2  (Payments API v2 in Production, version "
        ) && plan
            .text
            .contains(", renamed from Production/Payments API)"),
        "{}",
        plan.text
    );
    let second = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("second cycle");
    assert_eq!(second.exit_code(), 0, "{}", second.text());
    let new = dir.join("by-key/Production/Payments API v2.json");
    assert!(!old.exists(), "the old key is deleted");
    assert_eq!(delivered_version(&new), Some(renamed.version));
    // The id-named file is the item's only file: updated, never deleted.
    assert_eq!(
        delivered_version(&dir.join(format!("by-id/{}.json", item.id))),
        Some(renamed.version)
    );
    // The retaining route writes the new key and leaves the old one.
    assert!(dir.join("kept/Production/Payments API.json").exists());
    assert!(dir.join("kept/Production/Payments API v2.json").exists());

    // Renamed back: the second name goes, the first comes back.
    let back = rename(&client, &prod.id, &item.id, "Payments API").await;
    let third = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("third cycle");
    assert_eq!(third.exit_code(), 0, "{}", third.text());
    assert!(!new.exists());
    assert_eq!(delivered_version(&old), Some(back.version));

    // Two renames at once are 2 of the route's 6 keys, past max_delete_ratio 0.2: the new keys
    // are written, the old ones wait for --allow-mass-delete.
    let admin = client
        .find_item_by_title(&prod.id, "Admin Console")
        .await
        .expect("item");
    let a = rename(&client, &prod.id, &admin.id, "Admin Console 2").await;
    let b = rename(&client, &prod.id, &item.id, "Payments API 3").await;
    let held = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("held cycle");
    assert_eq!(held.exit_code(), 2, "{}", held.text());
    let by_key = dir.join("by-key/Production");
    assert_eq!(
        delivered_version(&by_key.join("Admin Console 2.json")),
        Some(a.version)
    );
    assert_eq!(
        delivered_version(&by_key.join("Payments API 3.json")),
        Some(b.version)
    );
    assert!(by_key.join("Admin Console.json").exists(), "held");
    assert!(by_key.join("Payments API.json").exists(), "held");
    let allowed = app::once(
        settings(dir, &config),
        OnceOptions {
            allow_mass_delete: true,
            allow_unusable_plugins: false,
            progress: false,
        },
    )
    .await
    .expect("allowed cycle");
    assert_eq!(allowed.exit_code(), 0, "{}", allowed.text());
    assert!(!by_key.join("Admin Console.json").exists());
    assert!(!by_key.join("Payments API.json").exists());
    assert!(by_key.join("Admin Console 2.json").exists());
    assert!(by_key.join("Payments API 3.json").exists());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_of_an_item_already_gone_carries_its_category_and_tags() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // The file name holds the category: a deletion that said CUSTOM would miss the file.
    let config = format!(
        "{}{}{}",
        base_config(&server, "1s"),
        file_instance(
            dir,
            "by-category",
            "out",
            r#"format = "item-json", name = "{{category}}/{{id}}.json", on-delete = "delete""#
        ),
        r#"
[[route]]
name = "staging"
vaults = ["Staging"]
destinations = ["by-category"]
on_delete = "delete"
"#
    );
    let first = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("first cycle");
    assert_eq!(first.exit_code(), 0, "{}", first.text());
    let staging = client.find_vault_by_name("Staging").await.expect("Staging");
    let token = client
        .find_item_by_title(&staging.id, "CI deploy token")
        .await
        .expect("item");
    let file = dir.join(format!("out/password/{}.json", token.id));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    assert_eq!(written["tags"], serde_json::json!(["staging", "ci"]));
    assert!(
        written["updated_at"].is_string(),
        "item-json has updated_at"
    );

    client
        .delete_item(&staging.id, &token.id)
        .await
        .expect("delete");
    let second = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("second cycle");
    assert_eq!(second.exit_code(), 0, "{}", second.text());
    assert_eq!(second.poll.counts(), (0, 0, 1), "{}", second.text());
    assert!(
        !file.exists(),
        "the deletion named the file by the item's real category"
    );
    assert!(!dir.join(format!("out/custom/{}.json", token.id)).exists());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_rows_are_pruned_after_the_retention_and_dead_letters_stay() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}{}{}{}",
        base_config(&server, "1s").replace(
            "[state]\npath = \"state.db\"",
            "[state]\npath = \"state.db\"\nledger_retention = \"1s\""
        ),
        file_instance(dir, "good", "good", r#"format = "item-json""#),
        file_instance(
            dir,
            "broken",
            "broken",
            r#"format = "raw", field = "no-such-field", name = "{{id}}.txt""#
        ),
        r#"
[[route]]
name = "good"
vaults = ["Shared"]
destinations = ["good"]

[[route]]
name = "broken"
vaults = ["Shared"]
destinations = ["broken"]
"#
    );
    let first = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("first cycle");
    assert_eq!(first.exit_code(), 1, "the broken route dead-letters");
    let shared = client.find_vault_by_name("Shared").await.expect("Shared");
    let items = client.list_items(&shared.id, None).await.expect("items");
    let store = Store::open(&dir.join("state.db")).expect("state");
    let (pending, delivered, dead, _) = store.counts().expect("counts");
    assert_eq!(
        (pending, delivered, dead),
        (0, items.len() as u64, items.len() as u64)
    );
    drop(store);

    // Past the retention, the next cycle prunes every delivered row but the route's latest.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    set_secret(&client, &shared.id, &items[0].id, "changed-for-pruning").await;
    let second = app::once(settings(dir, &config), OnceOptions::default())
        .await
        .expect("second cycle");
    assert_eq!(second.delivery.delivered, 1, "{}", second.text());
    let store = Store::open(&dir.join("state.db")).expect("state");
    let (pending, delivered, dead, superseded) = store.counts().expect("counts");
    assert_eq!(pending, 0);
    assert_eq!(delivered, 1, "only the new delivery is left");
    assert_eq!(superseded, 0);
    // Dead letters stay, with their reason, until retried (and the new version dead-lettered too).
    assert_eq!(dead, items.len() as u64 + 1);
    let letters = store.dead_letters(Some("broken")).expect("dead letters");
    assert!(letters.iter().all(|d| d.reason.contains("no-such-field")));
    server.shutdown().await;
}
