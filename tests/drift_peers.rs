//! Drift against real peers, through the real binary: the daemon delivers to OpenBao
//! (`vault-kv`) and to moto (`aws-secrets-manager`), reads both back every second, and when a
//! secret is overwritten or deleted at the peer behind opsync's back it writes the delivered
//! version again (`on_drift = "repair"`), or only reports it (`on_drift = "report"`).

mod peers;
mod plugin_support;
mod sync_support;

use opsync::connect_dev::Seed;
use peers::{Bao, Moto};
use serde_json::{Value, json};
use sync_support::{base_config, client, connect, free_port, run_daemon, until};

/// The current `SecretString` of a moto secret, if it exists and is not deleted.
async fn aws_value(moto: &Moto, name: &str) -> Option<String> {
    let (status, body) = moto.sm("GetSecretValue", json!({ "SecretId": name })).await;
    (status == 200).then(|| body["SecretString"].as_str().map(str::to_owned))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_changed_at_openbao_and_moto_are_repaired_or_reported() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[plugins.bao]
builtin = "vault-kv"
config = {{ address = "{bao}", token = "root" }}
grants = {{ http = ["{bao}"] }}

[plugins.aws]
builtin = "aws-secrets-manager"
config = {{ region = "us-east-1", endpoint = "{moto}", access-key-id = "AKIDEXAMPLE", secret-access-key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", format = "item-json" }}
grants = {{ http = ["{moto}"] }}

[[route]]
name = "bao"
vaults = ["Production"]
title = "Orders database"
destinations = ["bao"]
name_template = "opsync/{{title}}"
drift_check = "1s"
on_drift = "repair"

[[route]]
name = "aws"
vaults = ["Production"]
title = "Orders database"
destinations = ["aws"]
name_template = "opsync/{{item_id}}"
drift_check = "1s"
on_drift = "repair"

[[route]]
name = "aws-watch"
vaults = ["Staging"]
title = "CI deploy token"
destinations = ["aws"]
name_template = "watch/{{item_id}}"
drift_check = "1s"
"#,
        base = base_config(&server, "500ms"),
        bao = bao.address,
        moto = moto.endpoint,
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("vault");
    let staging = client.find_vault_by_name("Staging").await.expect("vault");
    let orders = client
        .find_item_by_title(&prod.id, "Orders database")
        .await
        .expect("item");
    let ci = client
        .find_item_by_title(&staging.id, "CI deploy token")
        .await
        .expect("item");
    let (aws_key, watch_key) = (format!("opsync/{}", orders.id), format!("watch/{}", ci.id));

    let admin = format!("127.0.0.1:{}", free_port());
    let _daemon = run_daemon(dir, &admin);
    until("the first delivery", async || {
        bao.data("opsync/Orders database").await.is_some()
            && aws_value(&moto, &aws_key).await.is_some()
            && aws_value(&moto, &watch_key).await.is_some()
    })
    .await;
    let delivered_bao: Value = bao.data("opsync/Orders database").await.expect("delivered");
    let delivered_aws = aws_value(&moto, &aws_key).await.expect("delivered");

    // Behind opsync's back: OpenBao's secret gets a new version, moto's is deleted for good,
    // and the watched one is overwritten.
    let (status, _) = bao
        .call(
            "POST",
            "secret/data/opsync/Orders database",
            Some(json!({ "data": { "password": "changed-by-hand" } })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = moto
        .sm(
            "DeleteSecret",
            json!({ "SecretId": aws_key, "ForceDeleteWithoutRecovery": true }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = moto
        .sm(
            "PutSecretValue",
            json!({ "SecretId": watch_key, "SecretString": "changed-by-hand" }),
        )
        .await;
    assert_eq!(status, 200);

    until("the repairs", async || {
        bao.data("opsync/Orders database").await.as_ref() == Some(&delivered_bao)
            && aws_value(&moto, &aws_key).await.as_deref() == Some(delivered_aws.as_str())
    })
    .await;
    until("the report", async || {
        sync_support::metrics(&admin).await.contains(
            r#"opsync_drift_detected_total{route="aws-watch",plugin="aws",kind="changed"}"#,
        )
    })
    .await;
    assert_eq!(
        aws_value(&moto, &watch_key).await.as_deref(),
        Some("changed-by-hand"),
        "report changes nothing"
    );
}
