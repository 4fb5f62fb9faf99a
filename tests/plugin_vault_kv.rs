//! The built-in `vault-kv` destination end to end, through the sandbox, against a real OpenBao dev
//! server (KV v2): paths, field selection, opsync's custom metadata, idempotent replays,
//! unmanaged secrets, deletions and credential errors.

mod peers;
mod plugin_support;

use opsync::connect::model::Item;
use opsync::plugin::{ChangeKind, FailureKind, Plugin};
use peers::{Bao, destination, failure};
use plugin_support::{event, host, item};
use serde_json::json;

fn vault_kv(bao: &Bao, extra: &[(&str, &str)]) -> Plugin {
    let mut pairs = vec![("address", bao.address.as_str()), ("token", Bao::TOKEN)];
    pairs.extend_from_slice(extra);
    destination(&host(), "vault-kv", &pairs, &bao.address)
}

/// `item("db")` at `version`, with a new password.
fn version(version: u64, password: &str) -> Item {
    let mut changed = item("db");
    changed.version = version;
    if let Some(f) = changed.fields.as_mut().and_then(|f| f.get_mut(1)) {
        f.value = Some(plugin_support::secret(password));
    }
    changed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_kv_v2_marks_it_and_replays_add_no_version() {
    let bao = Bao::start().await;
    let plugin = vault_kv(&bao, &[]);
    plugin.validate().await.expect("valid config");
    let ev = event(item("db"), ChangeKind::Created);
    let receipt = plugin.deliver(&ev).await.expect("written");
    assert_eq!(receipt.location, "secret/Prod/db");
    assert_eq!(receipt.destination_version.as_deref(), Some("1"));
    assert!(!receipt.unchanged);
    assert_eq!(
        bao.data("Prod/db").await,
        Some(json!({ "username": "alice", "password": "hunter2-s3cret" }))
    );
    let meta = bao.metadata("Prod/db").await.expect("metadata");
    let custom = &meta["custom_metadata"];
    assert_eq!(custom["opsync-managed"], "true");
    assert_eq!(custom["opsync-item-id"], ev.item.id.as_str());
    assert_eq!(custom["opsync-vault-id"], ev.vault.id.as_str());
    assert_eq!(custom["opsync-item-version"], "3");
    assert_eq!(
        custom["opsync-idempotency-key"],
        ev.idempotency_key.as_str()
    );

    // Replaying the same (item, version) writes nothing.
    let again = plugin.deliver(&ev).await.expect("replayed");
    assert!(again.unchanged);
    assert_eq!(again.destination_version.as_deref(), Some("1"));
    let meta = bao.metadata("Prod/db").await.expect("metadata");
    assert_eq!(meta["current_version"], 1);

    // A new item version is a new KV version.
    let next = plugin
        .deliver(&event(version(4, "n3w-pass"), ChangeKind::Updated))
        .await
        .expect("updated");
    assert_eq!(next.destination_version.as_deref(), Some("2"));
    assert!(!next.unchanged);
    assert_eq!(
        bao.data("Prod/db").await,
        Some(json!({ "username": "alice", "password": "n3w-pass" }))
    );
    let meta = bao.metadata("Prod/db").await.expect("metadata");
    assert_eq!(meta["custom_metadata"]["opsync-item-version"], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_data_and_metadata_is_healed_without_a_new_version() {
    let bao = Bao::start().await;
    let plugin = vault_kv(&bao, &[]);
    let ev = event(item("db"), ChangeKind::Updated);
    plugin.deliver(&ev).await.expect("written");
    // As if the daemon died after writing the data and before recording the version.
    let (status, _) = bao
        .call(
            "POST",
            "secret/metadata/Prod/db",
            Some(json!({ "custom_metadata": {
                "opsync-managed": "true",
                "opsync-item-id": ev.item.id,
                "opsync-item-version": "2",
            }})),
        )
        .await;
    assert_eq!(status, 204);
    let receipt = plugin.deliver(&ev).await.expect("replayed");
    assert!(receipt.unchanged);
    let meta = bao.metadata("Prod/db").await.expect("metadata");
    assert_eq!(meta["current_version"], 1, "no new version");
    assert_eq!(meta["custom_metadata"]["opsync-item-version"], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_path_templates_listed_fields_and_whole_item_documents() {
    let bao = Bao::start().await;
    let (status, body) = bao
        .call(
            "POST",
            "sys/mounts/apps",
            Some(json!({ "type": "kv", "options": { "version": "2" } })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let listed = vault_kv(
        &bao,
        &[
            ("mount", "apps"),
            ("path", "prod/{{vault}}/{{title}}"),
            ("fields", "password"),
        ],
    );
    let receipt = listed
        .deliver(&event(item("My DB"), ChangeKind::Created))
        .await
        .expect("written");
    assert_eq!(receipt.location, "apps/prod/Prod/My_DB");
    let (status, body) = bao.call("GET", "apps/data/prod/Prod/My_DB", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["data"],
        json!({ "password": "hunter2-s3cret" })
    );

    let whole = vault_kv(&bao, &[("format", "item-json"), ("path", "items/{{id}}")]);
    whole
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("written");
    let doc = bao
        .data("items/itm0000000000000000000000a")
        .await
        .expect("document");
    assert_eq!(doc["title"], "db");
    assert_eq!(doc["version"], 3);
    assert_eq!(doc["vault"]["name"], "Prod");
    assert_eq!(doc["tags"], json!(["prod"]));
    assert_eq!(
        doc["fields"],
        json!({ "username": "alice", "password": "hunter2-s3cret" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmanaged_secrets_are_left_alone_unless_adoption_is_configured() {
    let bao = Bao::start().await;
    let (status, _) = bao
        .call(
            "POST",
            "secret/data/Prod/db",
            Some(json!({ "data": { "hand": "made" } })),
        )
        .await;
    assert_eq!(status, 200);
    bao.call(
        "POST",
        "secret/metadata/Prod/db",
        Some(json!({ "custom_metadata": { "owner": "team-a" } })),
    )
    .await;
    let ev = event(item("db"), ChangeKind::Created);
    let (kind, message) = failure(
        vault_kv(&bao, &[])
            .deliver(&ev)
            .await
            .expect_err("not managed"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("not managed by opsync"), "{message}");
    assert_eq!(bao.data("Prod/db").await, Some(json!({ "hand": "made" })));

    let receipt = vault_kv(&bao, &[("adopt-unmanaged", "true")])
        .deliver(&ev)
        .await
        .expect("adopted");
    assert_eq!(receipt.destination_version.as_deref(), Some("2"));
    let meta = bao.metadata("Prod/db").await.expect("metadata");
    assert_eq!(meta["custom_metadata"]["opsync-managed"], "true");
    assert_eq!(
        meta["custom_metadata"]["owner"], "team-a",
        "other metadata stays"
    );

    // Another item rendering to the same path does not take it over.
    let mut other = item("db");
    other.id = "itm0000000000000000000000b".into();
    let (kind, message) = failure(
        vault_kv(&bao, &[])
            .deliver(&event(other, ChangeKind::Created))
            .await
            .expect_err("two items, one path"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("same path"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_follow_on_delete() {
    let bao = Bao::start().await;
    vault_kv(&bao, &[])
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("written");
    let deleted = event(item("db"), ChangeKind::Deleted);

    let kept = vault_kv(&bao, &[]).deliver(&deleted).await.expect("kept");
    assert!(kept.unchanged);
    assert!(bao.data("Prod/db").await.is_some());

    let soft = vault_kv(&bao, &[("on-delete", "delete")]);
    let receipt = soft.deliver(&deleted).await.expect("deleted");
    assert!(!receipt.unchanged);
    assert_eq!(bao.data("Prod/db").await, None);
    let meta = bao.metadata("Prod/db").await.expect("versions stay");
    assert_ne!(meta["versions"]["1"]["deletion_time"], "");
    assert!(soft.deliver(&deleted).await.expect("replayed").unchanged);

    let destroy = vault_kv(&bao, &[("on-delete", "destroy")]);
    destroy.deliver(&deleted).await.expect("destroyed");
    assert!(bao.metadata("Prod/db").await.is_none());
    assert!(
        destroy
            .deliver(&deleted)
            .await
            .expect("already gone")
            .unchanged
    );

    // Something opsync did not write is never deleted.
    bao.call(
        "POST",
        "secret/data/Prod/db",
        Some(json!({ "data": { "hand": "made" } })),
    )
    .await;
    let (kind, message) = failure(destroy.deliver(&deleted).await.expect_err("not ours"));
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(bao.data("Prod/db").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_missing_grants_are_misconfigured_without_leaking_the_token() {
    let bao = Bao::start().await;
    let token = "s.not-the-root-token";
    let plugin = destination(
        &host(),
        "vault-kv",
        &[("address", &bao.address), ("token", token)],
        &bao.address,
    );
    let (kind, message) = failure(
        plugin
            .deliver(&event(item("db"), ChangeKind::Created))
            .await
            .expect_err("bad token"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("403"), "{message}");
    assert!(!message.contains(token), "{message}");

    let ungranted = destination(
        &host(),
        "vault-kv",
        &[("address", &bao.address), ("token", Bao::TOKEN)],
        "http://127.0.0.1:9",
    );
    let (kind, message) = failure(
        ungranted
            .deliver(&event(item("db"), ChangeKind::Created))
            .await
            .expect_err("not granted"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(bao.metadata("Prod/db").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_misconfigured() {
    let host = host();
    let address = "http://127.0.0.1:9";
    for pairs in [
        &[("token", "t")][..],
        &[("address", address)][..],
        &[("address", address), ("token", "t"), ("mount", "a//b")][..],
        &[("address", address), ("token", "t"), ("path", "/abs")][..],
        &[("address", address), ("token", "t"), ("path", "a/../b")][..],
        &[("address", address), ("token", "t"), ("format", "raw")][..],
        &[("address", address), ("token", "t"), ("on-delete", "purge")][..],
        &[
            ("address", address),
            ("token", "t"),
            ("adopt-unmanaged", "yes"),
        ][..],
        &[("address", address), ("token", "t"), ("colour", "blue")][..],
    ] {
        let plugin = destination(&host, "vault-kv", pairs, address);
        let (kind, message) = failure(plugin.validate().await.expect_err("invalid"));
        assert_eq!(kind, FailureKind::Misconfigured, "{pairs:?}: {message}");
    }
}
