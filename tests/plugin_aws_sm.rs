//! The built-in `aws-secrets-manager` destination end to end, through the sandbox, against a real
//! moto server: SigV4 checked by moto's IAM auth, tags marking managed secrets, field selection,
//! replays without new versions, untagged secrets and deletions.

mod peers;
mod plugin_support;

use opsync::connect::model::Item;
use opsync::plugin::{ChangeKind, FailureKind, Plugin};
use peers::{Moto, destination, failure};
use plugin_support::{event, host, item};
use serde_json::{Value, json};

fn aws(moto: &Moto, key: (&str, &str), extra: &[(&str, &str)]) -> Plugin {
    let mut pairs = vec![
        ("region", "us-east-1"),
        ("endpoint", moto.endpoint.as_str()),
        ("access-key-id", key.0),
        ("secret-access-key", key.1),
    ];
    pairs.extend_from_slice(extra);
    destination(&host(), "aws-secrets-manager", &pairs, &moto.endpoint)
}

/// Any key: moto started without auth takes every signature.
const ANY_KEY: (&str, &str) = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");

fn version(version: u64, password: &str) -> Item {
    let mut changed = item("db");
    changed.version = version;
    if let Some(f) = changed.fields.as_mut().and_then(|f| f.get_mut(1)) {
        f.value = Some(plugin_support::secret(password));
    }
    changed
}

async fn value_of(moto: &Moto, name: &str) -> Option<String> {
    let (status, body) = moto.sm("GetSecretValue", json!({ "SecretId": name })).await;
    (status == 200).then(|| {
        body["SecretString"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

async fn describe(moto: &Moto, name: &str) -> Option<Value> {
    let (status, body) = moto.sm("DescribeSecret", json!({ "SecretId": name })).await;
    (status == 200).then_some(body)
}

async fn version_count(moto: &Moto, name: &str) -> usize {
    let (status, body) = moto
        .sm("ListSecretVersionIds", json!({ "SecretId": name }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["Versions"].as_array().map_or(0, Vec::len)
}

fn tag<'a>(description: &'a Value, key: &str) -> Option<&'a str> {
    description["Tags"]
        .as_array()?
        .iter()
        .find(|t| t["Key"] == key)
        .and_then(|t| t["Value"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_pass_moto_iam_auth_and_a_wrong_secret_key_is_misconfigured() {
    let (moto, key) = Moto::start_with_auth().await;
    let plugin = aws(&moto, (&key.id, &key.secret), &[]);
    plugin.validate().await.expect("valid config");
    let ev = event(item("db"), ChangeKind::Created);
    let receipt = plugin.deliver(&ev).await.expect("signed calls accepted");
    assert!(
        receipt
            .location
            .starts_with("arn:aws:secretsmanager:us-east-1:"),
        "{}",
        receipt.location
    );
    assert!(
        receipt.location.contains(":secret:Prod/db"),
        "{}",
        receipt.location
    );
    assert!(!receipt.unchanged);
    // The replay is signed too, and finds its version already there.
    assert!(plugin.deliver(&ev).await.expect("replayed").unchanged);

    let wrong = format!("{}x", key.secret);
    let (kind, message) = failure(
        aws(&moto, (&key.id, &wrong), &[])
            .deliver(&ev)
            .await
            .expect_err("bad signature"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains(&key.secret), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_tagged_secrets_and_replays_add_no_version() {
    let moto = Moto::start().await;
    let plugin = aws(&moto, ANY_KEY, &[]);
    let ev = event(item("db"), ChangeKind::Created);
    let receipt = plugin.deliver(&ev).await.expect("created");
    let first_version = receipt.destination_version.clone().expect("a version id");
    assert_eq!(first_version.len(), 36, "UUID-shaped ClientRequestToken");
    let value: Value =
        serde_json::from_str(&value_of(&moto, "Prod/db").await.expect("value")).expect("JSON");
    assert_eq!(
        value,
        json!({ "username": "alice", "password": "hunter2-s3cret" })
    );
    let description = describe(&moto, "Prod/db").await.expect("exists");
    assert_eq!(tag(&description, "managed-by"), Some("opsync"));
    assert_eq!(
        tag(&description, "opsync:item-id"),
        Some(ev.item.id.as_str())
    );
    assert_eq!(
        tag(&description, "opsync:vault-id"),
        Some(ev.vault.id.as_str())
    );

    let again = plugin.deliver(&ev).await.expect("replayed");
    assert!(again.unchanged);
    assert_eq!(again.destination_version, Some(first_version.clone()));
    assert_eq!(version_count(&moto, "Prod/db").await, 1);

    let newer = event(version(4, "n3w-pass"), ChangeKind::Updated);
    let receipt = plugin.deliver(&newer).await.expect("updated");
    assert!(!receipt.unchanged);
    assert_ne!(receipt.destination_version, Some(first_version));
    assert_eq!(version_count(&moto, "Prod/db").await, 2);
    assert!(plugin.deliver(&newer).await.expect("replayed").unchanged);
    assert_eq!(version_count(&moto, "Prod/db").await, 2);

    // A late replay of the older version neither adds a version nor rolls the value back.
    assert!(plugin.deliver(&ev).await.expect("late replay").unchanged);
    assert_eq!(version_count(&moto, "Prod/db").await, 2);
    let value: Value =
        serde_json::from_str(&value_of(&moto, "Prod/db").await.expect("value")).expect("JSON");
    assert_eq!(value["password"], "n3w-pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_listed_fields_one_raw_field_and_whole_item_documents() {
    let moto = Moto::start().await;
    aws(
        &moto,
        ANY_KEY,
        &[("name", "prod/{{vault}}/{{title}}"), ("fields", "password")],
    )
    .deliver(&event(item("My DB"), ChangeKind::Created))
    .await
    .expect("listed");
    assert_eq!(
        value_of(&moto, "prod/Prod/My_DB").await.as_deref(),
        Some(r#"{"password":"hunter2-s3cret"}"#)
    );

    aws(
        &moto,
        ANY_KEY,
        &[
            ("name", "raw/{{title}}"),
            ("format", "raw"),
            ("field", "password"),
        ],
    )
    .deliver(&event(item("db"), ChangeKind::Created))
    .await
    .expect("raw");
    assert_eq!(
        value_of(&moto, "raw/db").await.as_deref(),
        Some("hunter2-s3cret")
    );

    aws(
        &moto,
        ANY_KEY,
        &[("name", "items/{{id}}"), ("format", "item-json")],
    )
    .deliver(&event(item("db"), ChangeKind::Created))
    .await
    .expect("item-json");
    let doc: Value = serde_json::from_str(
        &value_of(&moto, "items/itm0000000000000000000000a")
            .await
            .expect("value"),
    )
    .expect("JSON");
    assert_eq!(doc["title"], "db");
    assert_eq!(doc["category"], "LOGIN");
    assert_eq!(doc["vault"]["id"], "vlt0000000000000000000000a");
    assert_eq!(
        doc["fields"],
        json!({ "username": "alice", "password": "hunter2-s3cret" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_secrets_are_not_overwritten_unless_config_says_so() {
    let moto = Moto::start().await;
    let (status, body) = moto
        .sm(
            "CreateSecret",
            json!({ "Name": "Prod/db", "SecretString": "hand-made" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ev = event(item("db"), ChangeKind::Created);
    let (kind, message) = failure(
        aws(&moto, ANY_KEY, &[])
            .deliver(&ev)
            .await
            .expect_err("untagged"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("managed-by=opsync"), "{message}");
    assert_eq!(
        value_of(&moto, "Prod/db").await.as_deref(),
        Some("hand-made")
    );

    aws(&moto, ANY_KEY, &[("overwrite-unmanaged", "true")])
        .deliver(&ev)
        .await
        .expect("taken over");
    let description = describe(&moto, "Prod/db").await.expect("exists");
    assert_eq!(tag(&description, "managed-by"), Some("opsync"));
    assert_ne!(
        value_of(&moto, "Prod/db").await.as_deref(),
        Some("hand-made")
    );

    // Another item rendering to the same name does not take it over.
    let mut other = item("db");
    other.id = "itm0000000000000000000000b".into();
    let (kind, message) = failure(
        aws(&moto, ANY_KEY, &[])
            .deliver(&event(other, ChangeKind::Created))
            .await
            .expect_err("two items, one name"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("same name"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_follow_on_delete_and_a_returning_item_is_restored() {
    let moto = Moto::start().await;
    aws(&moto, ANY_KEY, &[])
        .deliver(&event(item("db"), ChangeKind::Created))
        .await
        .expect("created");
    let deleted = event(item("db"), ChangeKind::Deleted);

    assert!(
        aws(&moto, ANY_KEY, &[])
            .deliver(&deleted)
            .await
            .expect("kept")
            .unchanged
    );
    assert!(describe(&moto, "Prod/db").await.expect("exists")["DeletedDate"].is_null());

    let scheduled = aws(
        &moto,
        ANY_KEY,
        &[("on-delete", "delete"), ("recovery-window-days", "7")],
    );
    assert!(
        !scheduled
            .deliver(&deleted)
            .await
            .expect("scheduled")
            .unchanged
    );
    assert!(!describe(&moto, "Prod/db").await.expect("still there")["DeletedDate"].is_null());
    assert!(
        scheduled
            .deliver(&deleted)
            .await
            .expect("replayed")
            .unchanged
    );

    // The item comes back with a new version: the secret is restored and updated.
    aws(&moto, ANY_KEY, &[])
        .deliver(&event(version(5, "back-again"), ChangeKind::Created))
        .await
        .expect("restored");
    assert!(describe(&moto, "Prod/db").await.expect("exists")["DeletedDate"].is_null());
    let value: Value =
        serde_json::from_str(&value_of(&moto, "Prod/db").await.expect("value")).expect("JSON");
    assert_eq!(value["password"], "back-again");

    let forced = aws(&moto, ANY_KEY, &[("on-delete", "force-delete")]);
    assert!(!forced.deliver(&deleted).await.expect("deleted").unchanged);
    assert!(describe(&moto, "Prod/db").await.is_none());
    assert!(
        forced
            .deliver(&deleted)
            .await
            .expect("already gone")
            .unchanged
    );

    // Something opsync did not write is never deleted.
    moto.sm(
        "CreateSecret",
        json!({ "Name": "Prod/db", "SecretString": "hand-made" }),
    )
    .await;
    let (kind, message) = failure(forced.deliver(&deleted).await.expect_err("not ours"));
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert_eq!(
        value_of(&moto, "Prod/db").await.as_deref(),
        Some("hand-made")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_misconfigured() {
    let host = host();
    let allowed = "http://127.0.0.1:9";
    let base = [
        ("region", "us-east-1"),
        ("endpoint", allowed),
        ("access-key-id", "AKID"),
        ("secret-access-key", "secret"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        pairs
    };
    for pairs in [
        base[1..].to_vec(),
        base[..3].to_vec(),
        with(&[("region", "US East")]),
        with(&[("format", "raw")]),
        with(&[("format", "raw"), ("field", "password"), ("fields", "a")]),
        with(&[("field", "password")]),
        with(&[("on-delete", "purge")]),
        with(&[("recovery-window-days", "3")]),
        with(&[("overwrite-unmanaged", "yes")]),
        with(&[("name", "{{title}}/{{nope}}")]),
        with(&[("colour", "blue")]),
    ] {
        // A key given twice keeps its last value.
        let plugin = destination(&host, "aws-secrets-manager", &pairs, allowed);
        let (kind, message) = failure(plugin.validate().await.expect_err("invalid"));
        assert_eq!(kind, FailureKind::Misconfigured, "{pairs:?}: {message}");
    }
}
