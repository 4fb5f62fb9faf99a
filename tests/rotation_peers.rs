//! Rotation against real peers, through the `opsync` binary and the embedded Connect server:
//! the built-in `openbao-userpass` rotator on an OpenBao dev server and `aws-iam-access-key` on
//! moto, killed with SIGKILL between every pair of steps and restarted (1Password and the target
//! agree afterwards, no credential lost); a failing test step rolls OpenBao back; and the rotated
//! OpenBao password reaching an AWS Secrets Manager destination on moto through a route.

mod peers;
mod plugin_support;
mod sync_support;

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use opsync::connect::client::ConnectClient;
use opsync::connect::model::{Category, Field, FieldPurpose, FieldType, Item};
use opsync::connect_dev::{DevServer, Seed};
use peers::{Bao, Moto};
use serde_json::{Value, json};
use sync_support::{base_config, client, connect, text, value};

const VAULT: &str = "Bulk 01";
const TITLE: &str = "Login 00001";
const USER: &str = "user1-1";
const ORIGINAL: &str = "bulk-password-1-1-not-real";
/// The destination's name template `rotated/{{title}}`, with the space made safe.
const SECRET_NAME: &str = "rotated/Login_00001";

/// Every point between two steps (and between a step's effect and its record).
const KILL_POINTS: &[&str] = &[
    "create-unrecorded",
    "create",
    "set-unrecorded",
    "set",
    "test-unrecorded",
    "test",
    "promote-unrecorded",
    "promote",
    "finish-unrecorded",
];

struct Env {
    server: DevServer,
    client: ConnectClient,
    tmp: tempfile::TempDir,
    vault_id: String,
}

impl Env {
    async fn new() -> Self {
        let server = connect(Seed::Bulk {
            vaults: 1,
            items_per_vault: 1,
        })
        .await;
        let client = client(&server);
        let vault = client.find_vault_by_name(VAULT).await.expect("vault");
        Self {
            server,
            client,
            tmp: tempfile::tempdir().expect("tmp"),
            vault_id: vault.id,
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn config(&self) -> PathBuf {
        self.dir().join("config.toml")
    }

    fn write_config(&self, rest: &str) {
        let text = format!(
            "{}\n[log]\nlevel = \"info\"\n{rest}",
            base_config(&self.server, "200ms")
        );
        std::fs::write(self.config(), text).expect("config");
    }

    fn opsync(&self, args: &[&str], hook: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsync"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("OP_CONNECT_HOST")
            .env_remove("OP_CONNECT_TOKEN")
            .env_remove(opsync::rotation::KILL_HOOK_ENV)
            .stdin(Stdio::null());
        if let Some(h) = hook {
            cmd.env(opsync::rotation::KILL_HOOK_ENV, h);
        }
        cmd.output().expect("run opsync")
    }

    async fn item(&self, title: &str) -> Item {
        self.client
            .find_item_by_title(&self.vault_id, title)
            .await
            .expect("item")
    }
}

/// Nothing pending in the item.
fn settled(item: &Item) -> bool {
    item.fields
        .iter()
        .flatten()
        .all(|f| !f.id.starts_with("opsync_pending_") && f.id != "opsync_rotation_key")
}

// ---- OpenBao ----

async fn bao_userpass(bao: &Bao) {
    let (status, body) = bao
        .call(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert!(
        status == 204 || status == 200 || status == 400,
        "{status} {body}"
    );
}

async fn bao_set_user(bao: &Bao, password: &str, extra: Value) {
    let mut body = json!({ "password": password, "token_policies": ["default"] });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let (status, body) = bao
        .call("POST", &format!("auth/userpass/users/{USER}"), Some(body))
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
}

/// Whether `password` logs `USER` in.
async fn bao_login(bao: &Bao, password: &str) -> bool {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/auth/userpass/login/{USER}", bao.address))
        .json(&json!({ "password": password }))
        .send()
        .await
        .expect("OpenBao answers");
    response.status().is_success()
}

fn bao_job(bao: &Bao) -> String {
    format!(
        r#"
[plugins.bao]
builtin = "openbao-userpass"
world = "rotator"
config = {{ address = "{addr}", token = "{token}" }}
grants = {{ http = ["{addr}"] }}

[[rotation]]
name = "bao"
item = "op://{VAULT}/{TITLE}"
plugin = "bao"
schedule = "@yearly"
recipe = {{ length = 30, character_sets = ["LETTERS", "DIGITS"] }}
"#,
        addr = bao.address,
        token = Bao::TOKEN,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_sigkill_between_every_pair_of_steps_completes_with_both_agreeing() {
    let bao = Bao::start().await;
    bao_userpass(&bao).await;
    for point in KILL_POINTS {
        bao_set_user(&bao, ORIGINAL, json!({})).await;
        let env = Env::new().await;
        env.write_config(&bao_job(&bao));
        let out = env.opsync(&["rotate", "now", "bao"], Some(point));
        assert_eq!(out.status.signal(), Some(9), "{point}: {}", text(&out));
        let out = env.opsync(&["rotate", "now", "bao"], None);
        assert!(out.status.success(), "{point}: {}", text(&out));
        let item = env.item(TITLE).await;
        let current = value(&item, "password").expect("password");
        assert_ne!(current, ORIGINAL, "{point}");
        assert!(settled(&item), "{point}");
        assert_eq!(
            value(&item, "opsync_previous_password").as_deref(),
            Some(ORIGINAL),
            "{point}: rotated once"
        );
        assert!(
            bao_login(&bao, &current).await,
            "{point}: OpenBao takes 1Password's password"
        );
        assert!(
            !bao_login(&bao, ORIGINAL).await,
            "{point}: the old one is gone"
        );
        env.server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_a_failing_login_test_rolls_the_password_back() {
    let bao = Bao::start().await;
    bao_userpass(&bao).await;
    // Logins are only allowed from a network the test is not on: `set` works (admin token),
    // the login in `test` does not.
    bao_set_user(
        &bao,
        ORIGINAL,
        json!({ "token_bound_cidrs": ["10.255.255.0/24"] }),
    )
    .await;
    let env = Env::new().await;
    env.write_config(&bao_job(&bao));
    let out = env.opsync(&["rotate", "now", "bao"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rolled back"),
        "{}",
        text(&out)
    );
    let item = env.item(TITLE).await;
    assert_eq!(value(&item, "password").as_deref(), Some(ORIGINAL));
    assert!(settled(&item));
    // Open the network again: the original password is the one OpenBao holds.
    bao_set_user(&bao, ORIGINAL, json!({ "token_bound_cidrs": [] })).await;
    let (status, body) = bao
        .call("GET", &format!("auth/userpass/users/{USER}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(bao_login(&bao, ORIGINAL).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_openbao_password_reaches_aws_secrets_manager() {
    let bao = Bao::start().await;
    bao_userpass(&bao).await;
    bao_set_user(&bao, ORIGINAL, json!({})).await;
    let moto = Moto::start().await;
    let env = Env::new().await;
    env.write_config(&format!(
        r#"{job}
[plugins.sm]
builtin = "aws-secrets-manager"
world = "destination"
config = {{ region = "us-east-1", endpoint = "{moto}", access-key-id = "AKIDEXAMPLE", secret-access-key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", name = "rotated/{{{{title}}}}", format = "json", fields = "password" }}
grants = {{ http = ["{moto}"] }}

[[route]]
name = "to-aws"
vaults = ["{VAULT}"]
destinations = ["sm"]
"#,
        job = bao_job(&bao),
        moto = moto.endpoint,
    ));
    // The original reaches AWS first.
    let out = env.opsync(&["once"], None);
    assert!(out.status.success(), "{}", text(&out));
    let secret = |body: &Value| body["SecretString"].as_str().unwrap_or("").to_owned();
    let (status, body) = moto
        .sm("GetSecretValue", json!({"SecretId": SECRET_NAME}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(secret(&body).contains(ORIGINAL), "{body}");

    let out = env.opsync(&["rotate", "now", "bao"], None);
    assert!(out.status.success(), "{}", text(&out));
    let current = value(&env.item(TITLE).await, "password").expect("password");
    assert!(bao_login(&bao, &current).await);

    // Normal detection fans the rotated item out.
    let out = env.opsync(&["once"], None);
    assert!(out.status.success(), "{}", text(&out));
    let (status, body) = moto
        .sm("GetSecretValue", json!({"SecretId": SECRET_NAME}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        secret(&body).contains(&current),
        "AWS holds the rotated password"
    );
    assert!(!secret(&body).contains(ORIGINAL));
}

// ---- moto IAM ----

const KEY_ID: &str = "access key id";
const SECRET: &str = "secret access key";
const IAM_TITLE: &str = "svc keys";

fn xml_all(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .map(str::to_owned)
        .collect()
}

/// (key id, status) of `user`'s access keys.
async fn keys(moto: &Moto, user: &str) -> Vec<(String, String)> {
    let xml = moto
        .iam(&[("Action", "ListAccessKeys"), ("UserName", user)])
        .await;
    xml_all(&xml, "AccessKeyId")
        .into_iter()
        .zip(xml_all(&xml, "Status"))
        .collect()
}

fn concealed(label: &str, value: &str) -> Field {
    Field {
        id: String::new(),
        field_type: FieldType::Concealed,
        section: None,
        purpose: None,
        label: Some(label.into()),
        value: Some(value.into()),
        generate: false,
        recipe: None,
        entropy: None,
        totp: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_iam_sigkill_between_every_pair_of_steps_keeps_the_current_key_valid() {
    let moto = Moto::start().await;
    for (n, point) in KILL_POINTS.iter().enumerate() {
        let user = format!("svc{n}");
        moto.iam(&[("Action", "CreateUser"), ("UserName", &user)])
            .await;
        let xml = moto
            .iam(&[("Action", "CreateAccessKey"), ("UserName", &user)])
            .await;
        let first_id = xml_all(&xml, "AccessKeyId").remove(0);
        let first_secret = xml_all(&xml, "SecretAccessKey").remove(0);
        let env = Env::new().await;
        let mut item = Item::new(IAM_TITLE, Category::ApiCredential);
        item.fields = Some(vec![
            concealed(KEY_ID, &first_id),
            concealed(SECRET, &first_secret),
            Field {
                purpose: Some(FieldPurpose::Notes),
                field_type: FieldType::String,
                ..concealed("notesPlain", "rotated by opsync")
            },
        ]);
        env.client
            .create_item(&env.vault_id, &item)
            .await
            .expect("create item");
        env.write_config(&format!(
            r#"
[plugins.iam]
builtin = "aws-iam-access-key"
world = "rotator"
config = {{ user-name = "{user}", access-key-id = "AKIDEXAMPLE", secret-access-key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", endpoint = "{moto}", propagation-seconds = "0" }}
grants = {{ http = ["{moto}"] }}

[[rotation]]
name = "iam"
item = "op://{VAULT}/{IAM_TITLE}"
plugin = "iam"
schedule = "@yearly"
fields = ["{KEY_ID}", "{SECRET}"]
"#,
            moto = moto.endpoint,
        ));
        let out = env.opsync(&["rotate", "now", "iam"], Some(point));
        assert_eq!(out.status.signal(), Some(9), "{point}: {}", text(&out));
        let out = env.opsync(&["rotate", "now", "iam"], None);
        assert!(out.status.success(), "{point}: {}", text(&out));
        let item = env.item(IAM_TITLE).await;
        assert!(settled(&item), "{point}");
        let current = value(&item, KEY_ID).expect("key id");
        assert_ne!(current, first_id, "{point}");
        let on_aws = keys(&moto, &user).await;
        assert!(
            on_aws.contains(&(current.clone(), "Active".into())),
            "{point}: the key 1Password holds is active: {on_aws:?}"
        );
        assert!(on_aws.len() <= 2, "{point}: {on_aws:?}");
        let previous = item
            .fields
            .iter()
            .flatten()
            .find(|f| f.label.as_deref() == Some(&format!("previous {KEY_ID}")))
            .and_then(|f| f.value.as_ref())
            .map(|v| v.expose().to_owned());
        assert_eq!(previous.as_deref(), Some(first_id.as_str()), "{point}");
        env.server.shutdown().await;
    }
}
