//! The sync engine as a user runs it (the `opsync` binary: `plan`, `once`, `status`) against real
//! peers: the `vault-kv` destination on an OpenBao dev server and `aws-secrets-manager` on a moto
//! server, both naming keys by the route's `name_template`. Items created, updated, renamed and
//! deleted in the embedded Connect server reach each route's destination under its `on_delete`
//! policy, checked by reading OpenBao and moto directly; `plan` prints the very keys written; a
//! rename deletes the old key where the route deletes; `status` and `deadletter list` need only
//! `[state] path`.

mod peers;
mod plugin_support;
mod sync_support;

use std::path::Path;
use std::process::Output;

use opsync::connect::model::{PatchOp, PatchOpKind};
use opsync::connect_dev::Seed;
use peers::{Bao, Moto};
use serde_json::{Value, json};
use sync_support::*;

/// Runs the binary (`$OPSYNC_BIN`, else the one cargo built for this test) with `args`,
/// without the SDK's environment variables.
async fn opsync(config: &Path, args: &[&str]) -> Output {
    let bin = std::env::var_os("OPSYNC_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_opsync").into());
    tokio::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OP_CONNECT_HOST")
        .env_remove("OP_CONNECT_TOKEN")
        .env_remove("OPSYNC_CONFIG")
        .env_remove("OPSYNC_BIN")
        .output()
        .await
        .expect("run opsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The current `SecretString` of a moto secret, if it exists and is not deleted.
async fn aws_value(moto: &Moto, name: &str) -> Option<Value> {
    let (status, body) = moto.sm("GetSecretValue", json!({ "SecretId": name })).await;
    if status != 200 {
        return None;
    }
    serde_json::from_str(body["SecretString"].as_str()?).ok()
}

/// The concealed field value an item holds now.
async fn secret_of(
    client: &opsync::connect::client::ConnectClient,
    vault: &str,
    item: &str,
) -> String {
    let item = client.get_item(vault, item).await.expect("item");
    item.fields
        .iter()
        .flatten()
        .find(|f| f.field_type == opsync::connect::model::FieldType::Concealed)
        .and_then(|f| f.value.as_ref())
        .map(|v| v.expose().to_owned())
        .expect("a concealed value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_delivers_creates_updates_renames_and_deletes_to_openbao_and_moto() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[log]
level = "warn"

[plugins.bao]
builtin = "vault-kv"
config = {{ address = "{bao}", token = "root", on-delete = "delete" }}
grants = {{ http = ["{bao}"] }}

[plugins.aws]
builtin = "aws-secrets-manager"
config = {{ region = "us-east-1", endpoint = "{moto}", access-key-id = "AKIDEXAMPLE", secret-access-key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", format = "item-json", on-delete = "force-delete" }}
grants = {{ http = ["{moto}"] }}

[[route]]
name = "prod-bao"
vaults = ["Production"]
destinations = ["bao"]
name_template = "opsync/{{vault}}/{{title}}"
on_delete = "delete"
max_delete_ratio = 0.5

[[route]]
name = "prod-aws-keep"
vaults = ["Production"]
destinations = ["aws"]
name_template = "keep/{{item_id}}"
on_delete = "retain"

[[route]]
name = "staging-aws"
vaults = ["Staging"]
destinations = ["aws"]
name_template = "staging/{{item_id}}"
on_delete = "delete"
max_delete_ratio = 0.5
"#,
        base = base_config(&server, "1s"),
        bao = bao.address,
        moto = moto.endpoint,
    );
    settings(dir, &config); // checks the config and writes config.toml
    let config_path = dir.join("config.toml");

    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("Production");
    let staging = client.find_vault_by_name("Staging").await.expect("Staging");
    let orders = client
        .find_item_by_title(&prod.id, "Orders database")
        .await
        .expect("item");
    let deploy = client
        .find_item_by_title(&prod.id, "Deploy key")
        .await
        .expect("item");
    let bastion = client
        .find_item_by_title(&prod.id, "Bastion host")
        .await
        .expect("item");
    let ci_token = client
        .find_item_by_title(&staging.id, "CI deploy token")
        .await
        .expect("item");
    let staging_orders = client
        .find_item_by_title(&staging.id, "Orders database")
        .await
        .expect("item");

    // plan: the keys it prints are the keys written below.
    let plan = opsync(&config_path, &["plan"]).await;
    let plan_text = text(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{plan_text}{}",
        text(&plan.stderr)
    );
    for key in [
        "opsync/Production/Orders database".to_owned(),
        format!("keep/{}", orders.id),
        format!("staging/{}", ci_token.id),
    ] {
        assert!(
            plan_text.contains(&format!("+ create {key} ")),
            "{key}: {plan_text}"
        );
    }

    let first = opsync(&config_path, &["once", "--no-progress"]).await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}{}",
        text(&first.stdout),
        text(&first.stderr)
    );
    let orders_secret = secret_of(&client, &prod.id, &orders.id).await;
    let data = bao
        .data("opsync/Production/Orders database")
        .await
        .expect("written at the plan's key");
    assert!(data.to_string().contains(&orders_secret), "{data}");
    let meta = bao
        .metadata("opsync/Production/Orders database")
        .await
        .expect("metadata");
    assert_eq!(
        meta["custom_metadata"]["opsync-item-id"],
        orders.id.as_str()
    );
    for (name, item) in [
        (format!("keep/{}", orders.id), &orders),
        (format!("keep/{}", bastion.id), &bastion),
        (format!("staging/{}", ci_token.id), &ci_token),
    ] {
        let doc = aws_value(&moto, &name)
            .await
            .expect("secret at the plan's key");
        assert_eq!(doc["id"], item.id.as_str(), "{name}");
        assert_eq!(doc["version"], item.version, "{name}");
    }

    // Update, rename, delete in Production; delete and update in Staging.
    let updated = set_secret(&client, &prod.id, &orders.id, "rotated-by-the-peer-test").await;
    let renamed = client
        .patch_item(
            &prod.id,
            &deploy.id,
            &[PatchOp {
                op: PatchOpKind::Replace,
                path: "/title".into(),
                value: Some(Value::String("Deploy key v2".into())),
            }],
        )
        .await
        .expect("rename");
    client
        .delete_item(&prod.id, &bastion.id)
        .await
        .expect("delete");
    client
        .delete_item(&staging.id, &ci_token.id)
        .await
        .expect("delete");
    let staging_updated =
        set_secret(&client, &staging.id, &staging_orders.id, "staging-rotated").await;

    let second = opsync(&config_path, &["once", "--no-progress"]).await;
    let second_text = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{second_text}{}",
        text(&second.stderr)
    );

    // OpenBao (on_delete = delete): the update, the rename (old path deleted), the deletion.
    let data = bao
        .data("opsync/Production/Orders database")
        .await
        .expect("still there");
    assert!(
        data.to_string().contains("rotated-by-the-peer-test"),
        "{data}"
    );
    assert!(
        bao.data("opsync/Production/Deploy key v2").await.is_some(),
        "the renamed item is written under its new path"
    );
    assert!(
        bao.data("opsync/Production/Deploy key").await.is_none(),
        "the old path of the renamed item is deleted"
    );
    assert!(
        bao.data("opsync/Production/Bastion host").await.is_none(),
        "the deleted item is deleted"
    );

    // moto: retain keeps the deleted item; the id-named key of the renamed item is updated in place.
    let kept = aws_value(&moto, &format!("keep/{}", bastion.id))
        .await
        .expect("on_delete = retain keeps it");
    assert_eq!(kept["id"], bastion.id.as_str());
    let doc = aws_value(&moto, &format!("keep/{}", deploy.id))
        .await
        .expect("same key");
    assert_eq!(doc["title"], "Deploy key v2");
    assert_eq!(doc["version"], renamed.version);
    let doc = aws_value(&moto, &format!("keep/{}", orders.id))
        .await
        .expect("updated");
    assert_eq!(doc["version"], updated.version);
    assert!(doc.to_string().contains("rotated-by-the-peer-test"));
    // Staging (on_delete = delete, force-delete at the plugin): gone; the update arrived.
    let (status, body) = moto
        .sm(
            "DescribeSecret",
            json!({ "SecretId": format!("staging/{}", ci_token.id) }),
        )
        .await;
    assert!(
        status >= 400 && body.to_string().contains("ResourceNotFoundException"),
        "force-deleted in moto: {status} {body}"
    );
    let doc = aws_value(&moto, &format!("staging/{}", staging_orders.id))
        .await
        .expect("updated");
    assert_eq!(doc["version"], staging_updated.version);
    assert!(doc.to_string().contains("staging-rotated"));

    // A third cycle has nothing to do.
    let idle = opsync(&config_path, &["plan"]).await;
    assert_eq!(idle.status.code(), Some(0), "{}", text(&idle.stdout));

    // status and deadletter read the state database with nothing but [state] path.
    let local = tempfile::tempdir().expect("tempdir");
    let state_only = local.path().join("state-only.toml");
    std::fs::write(
        &state_only,
        format!("[state]\npath = {:?}\n", dir.join("state.db")),
    )
    .expect("write");
    let status = opsync(&state_only, &["status"]).await;
    let status_text = text(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    for route in ["prod-bao", "prod-aws-keep", "staging-aws"] {
        assert!(status_text.contains(route), "{status_text}");
    }
    let empty = local.path().join("empty.toml");
    std::fs::write(&empty, "").expect("write");
    let listed = opsync(
        &empty,
        &[
            "deadletter",
            "list",
            "--state",
            &dir.join("state.db").display().to_string(),
        ],
    )
    .await;
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout), "no dead letters\n");
    server.shutdown().await;
}
