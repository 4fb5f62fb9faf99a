//! The built-in `openbao-userpass` rotator end to end, through the sandbox, against a real OpenBao
//! dev server: a full create-set-test-finish, replays of every step, repeat rotations, a failed
//! login and the host's rollback, a wrong admin token, and no secret in logs or errors.

mod peers;
mod plugin_support;

use opsync::connect::model::{Category, IdRef, Item};
use opsync::plugin::{FailureKind, NewValue, Plugin, Rotation, RotationStep, VaultRef};
use peers::{Bao, failure, rotator};
use plugin_support::{field, host, secret, with_logs};
use serde_json::json;

const USER: &str = "alice";
const FIRST: &str = "hunter2-s3cret";

/// OpenBao with userpass at `userpass/`, user `alice` (password [`FIRST`]), and an admin token
/// that may only manage userpass users (not the root token).
async fn openbao() -> (Bao, String) {
    let bao = Bao::start().await;
    let (status, body) = bao
        .call(
            "POST",
            "sys/auth/userpass",
            Some(json!({ "type": "userpass" })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = bao
        .call(
            "POST",
            &format!("auth/userpass/users/{USER}"),
            Some(json!({ "password": FIRST, "token_policies": "default" })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let policy = r#"path "auth/userpass/users/*" { capabilities = ["read", "create", "update"] }"#;
    let (status, body) = bao
        .call(
            "PUT",
            "sys/policies/acl/rotate-userpass",
            Some(json!({ "policy": policy })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = bao
        .call(
            "POST",
            "auth/token/create",
            Some(json!({ "policies": ["rotate-userpass"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"]
        .as_str()
        .expect("a token")
        .to_string();
    (bao, token)
}

fn plugin(bao: &Bao, token: &str, extra: &[(&str, &str)]) -> Plugin {
    let mut pairs = vec![("address", bao.address.as_str()), ("token", token)];
    pairs.extend_from_slice(extra);
    rotator(&host(), "openbao-userpass", &pairs, &bao.address)
}

/// A login item for `alice` whose current password is `password`.
fn login_item(password: &str) -> Item {
    let mut item = Item::new("bao alice", Category::from("LOGIN"));
    item.id = "itm0000000000000000000000u".into();
    item.vault = IdRef {
        id: "vlt0000000000000000000000a".into(),
    };
    item.version = 7;
    item.fields = Some(vec![
        field("username", "username", USER),
        field("password", "password", password),
    ]);
    item
}

/// The same with other labels, found through their purposes.
fn purposed_item(password: &str) -> Item {
    let mut item = login_item(password);
    let purposed = |id: &str, label: &str, purpose: &str, value: &str| {
        serde_json::from_value(json!({
            "id": id, "type": "CONCEALED", "label": label, "purpose": purpose, "value": value,
        }))
        .expect("field")
    };
    item.fields = Some(vec![
        purposed("f1", "login", "USERNAME", USER),
        purposed("f2", "secret", "PASSWORD", password),
    ]);
    item
}

fn rotation(key: &str, item: Item, pending: &[(&str, &str)]) -> Rotation {
    Rotation {
        idempotency_key: key.to_string(),
        vault: VaultRef {
            id: item.vault.id.clone(),
            name: "Prod".into(),
        },
        item,
        pending: pending
            .iter()
            .map(|(field, value)| NewValue {
                field: field.to_string(),
                value: secret(value),
            })
            .collect(),
    }
}

/// The status of logging in as `alice` with `password`, straight to OpenBao.
async fn login(bao: &Bao, password: &str) -> u16 {
    bao.call(
        "POST",
        &format!("auth/userpass/login/{USER}"),
        Some(json!({ "password": password })),
    )
    .await
    .0
}

/// How many tokens OpenBao holds.
async fn tokens(bao: &Bao) -> usize {
    let (status, body) = bao.call("LIST", "auth/token/accessors", None).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["keys"].as_array().map_or(0, Vec::len)
}

async fn step(plugin: &Plugin, step: RotationStep, rotation: &Rotation) -> Vec<NewValue> {
    plugin
        .rotate(step, rotation)
        .await
        .unwrap_or_else(|e| panic!("{step:?}: {e}"))
}

#[test]
fn rotates_the_password_every_step_replays_and_no_secret_is_logged() {
    let second = "N3w-generated-pass-1";
    let third = "N3w-generated-pass-2";
    let (token, logs) = with_logs(async {
        let (bao, token) = openbao().await;
        let plugin = plugin(&bao, &token, &[]);
        plugin.validate().await.expect("valid config");

        // Create makes nothing: the host generates the password.
        let made = step(
            &plugin,
            RotationStep::Create,
            &rotation("r1", login_item(FIRST), &[]),
        )
        .await;
        assert!(made.is_empty());

        let r1 = rotation("r1", login_item(FIRST), &[("password", second)]);
        step(&plugin, RotationStep::Set, &r1).await;
        assert_eq!(login(&bao, second).await, 200);
        assert_eq!(login(&bao, FIRST).await, 400, "the old password is gone");
        step(&plugin, RotationStep::Set, &r1).await;
        assert_eq!(
            login(&bao, second).await,
            200,
            "a replayed set changes nothing"
        );

        // Test logs in, twice, and revokes the tokens its logins made.
        let before = tokens(&bao).await;
        step(&plugin, RotationStep::Test, &r1).await;
        step(&plugin, RotationStep::Test, &r1).await;
        assert_eq!(tokens(&bao).await, before, "test tokens are revoked");

        // Finish runs after the promotion; the item may already show the new password.
        step(&plugin, RotationStep::Finish, &r1).await;
        let promoted = rotation("r1", login_item(second), &[("password", second)]);
        step(&plugin, RotationStep::Finish, &promoted).await;
        assert_eq!(login(&bao, second).await, 200);

        // The next rotation, on an item whose fields are found by purpose and addressed by id.
        let r2 = rotation("r2", purposed_item(second), &[("f2", third)]);
        for s in [
            RotationStep::Create,
            RotationStep::Set,
            RotationStep::Test,
            RotationStep::Finish,
        ] {
            step(&plugin, s, &r2).await;
        }
        assert_eq!(login(&bao, third).await, 200);
        assert_eq!(login(&bao, second).await, 400);
        token
    });
    // The user name came from the item, so it was revealed and is redacted too.
    assert!(
        logs.contains("logged in as `[REDACTED]` with the pending password"),
        "{logs}"
    );
    assert!(
        logs.contains("user `[REDACTED]` set to the pending password"),
        "{logs}"
    );
    for value in [FIRST, second, third, token.as_str()] {
        assert!(!logs.contains(value), "a secret reached the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_is_permanent_and_the_rollback_sets_the_current_password_back() {
    let (bao, token) = openbao().await;
    // A user name from config is not a revealed value, so messages show it.
    let plugin = plugin(&bao, &token, &[("username", USER)]);
    let pending = "N3w-generated-pass-9";
    let r = rotation("r9", login_item(FIRST), &[("password", pending)]);
    step(&plugin, RotationStep::Set, &r).await;
    // Someone changes the password behind opsync's back: the pending one no longer works.
    let (status, _) = bao
        .call(
            "POST",
            &format!("auth/userpass/users/{USER}/password"),
            Some(json!({ "password": "changed-by-hand" })),
        )
        .await;
    assert_eq!(status, 204);
    let (kind, message) = failure(
        plugin
            .rotate(RotationStep::Test, &r)
            .await
            .expect_err("the login fails"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("status 400"), "{message}");
    assert!(
        message.contains(&format!(
            "POST {}/v1/auth/userpass/login/alice",
            bao.address
        )),
        "{message}"
    );
    assert!(
        message.contains("invalid username or password"),
        "{message}"
    );
    assert!(!message.contains(pending), "{message}");

    // The host's rollback: `set` with the item's current values, under `<key>:rollback`.
    let back = rotation("r9:rollback", login_item(FIRST), &[("password", FIRST)]);
    step(&plugin, RotationStep::Set, &back).await;
    step(&plugin, RotationStep::Set, &back).await;
    assert_eq!(login(&bao, FIRST).await, 200);
    assert_eq!(login(&bao, pending).await, 400);
    assert_eq!(login(&bao, "changed-by-hand").await, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_token_is_misconfigured_and_names_status_and_path() {
    let (bao, _) = openbao().await;
    let wrong = "s.NotTheAdminTokenAtAll";
    let plugin = plugin(&bao, wrong, &[("username", USER)]);
    let r = rotation(
        "r3",
        login_item(FIRST),
        &[("password", "N3w-generated-pass-3")],
    );
    for s in [RotationStep::Create, RotationStep::Set] {
        let (kind, message) = failure(plugin.rotate(s, &r).await.expect_err("403"));
        assert_eq!(kind, FailureKind::Misconfigured, "{message}");
        assert!(message.contains("status 403"), "{message}");
        assert!(message.contains("permission denied"), "{message}");
        assert!(
            message.contains(&format!("GET {}/v1/auth/userpass/users/alice", bao.address)),
            "{message}"
        );
        assert!(!message.contains(wrong), "{message}");
        assert!(!message.contains("N3w-generated-pass-3"), "{message}");
    }
    assert_eq!(login(&bao, FIRST).await, 200, "nothing changed");

    // A user name read from the item was revealed, so the host redacts it from the message.
    let (kind, message) = failure(
        self::plugin(&bao, wrong, &[])
            .rotate(RotationStep::Create, &r)
            .await
            .expect_err("403"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(
        message.contains("/v1/auth/userpass/users/[REDACTED]: status 403"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_users_pending_values_and_bad_config_are_clear_errors() {
    let (bao, token) = openbao().await;
    let r = rotation(
        "r4",
        login_item(FIRST),
        &[("password", "N3w-generated-pass-4")],
    );

    let nobody = plugin(&bao, &token, &[("username", "nobody")]);
    let (kind, message) = failure(
        nobody
            .rotate(RotationStep::Set, &r)
            .await
            .expect_err("no such user"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(
        message.contains("user `nobody` does not exist in auth mount `userpass`"),
        "{message}"
    );
    assert!(message.contains("status 404"), "{message}");

    let plugin = plugin(&bao, &token, &[]);
    let (kind, message) = failure(
        plugin
            .rotate(
                RotationStep::Set,
                &rotation("r4", login_item(FIRST), &[("other", "x")]),
            )
            .await
            .expect_err("no pending password"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(
        message.contains("no pending value for the password field `password`"),
        "{message}"
    );
    assert!(message.contains("(pending: other)"), "{message}");

    let mut anonymous = login_item(FIRST);
    anonymous.fields = Some(vec![field("password", "password", FIRST)]);
    let (kind, message) = failure(
        plugin
            .rotate(RotationStep::Create, &rotation("r4", anonymous, &[]))
            .await
            .expect_err("no username"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(
        message.contains("has no USERNAME field (or field labelled `username`) with a value"),
        "{message}"
    );

    for (pairs, expected) in [
        (
            vec![("pasword-field", "x")],
            "unknown config key `pasword-field`",
        ),
        (vec![("mount", "/")], "`mount` `` is not an auth mount path"),
        (
            vec![("username", "alice"), ("username-field", "login")],
            "set `username` or `username-field`, not both",
        ),
    ] {
        let (kind, message) = failure(
            self::plugin(&bao, &token, &pairs)
                .validate()
                .await
                .expect_err("bad config"),
        );
        assert_eq!(kind, FailureKind::Misconfigured, "{message}");
        assert!(message.contains(expected), "{message}");
    }
    let (kind, message) = failure(
        rotator(
            &host(),
            "openbao-userpass",
            &[("address", "127.0.0.1:8200"), ("token", &token)],
            &bao.address,
        )
        .validate()
        .await
        .expect_err("no scheme"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("`address`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_scopes_every_call() {
    let bao = Bao::start().await;
    let (status, body) = bao.call("POST", "sys/namespaces/team", None).await;
    assert_eq!(status, 200, "{body}");
    let in_team = |method: &'static str, path: &'static str, body: serde_json::Value| {
        let client = reqwest::Client::new();
        let url = format!("{}/v1/{path}", bao.address);
        async move {
            let response = client
                .request(method.parse().expect("method"), url)
                .header("x-vault-token", Bao::TOKEN)
                .header("x-vault-namespace", "team")
                .json(&body)
                .send()
                .await
                .expect("OpenBao answers");
            response.status().as_u16()
        }
    };
    assert_eq!(
        in_team("POST", "sys/auth/userpass", json!({ "type": "userpass" })).await,
        204
    );
    assert_eq!(
        in_team(
            "POST",
            "auth/userpass/users/alice",
            json!({ "password": FIRST })
        )
        .await,
        204
    );
    let plugin = plugin(&bao, Bao::TOKEN, &[("namespace", "team")]);
    let next = "N3w-generated-pass-ns";
    let r = rotation("rns", login_item(FIRST), &[("password", next)]);
    for s in [
        RotationStep::Create,
        RotationStep::Set,
        RotationStep::Test,
        RotationStep::Finish,
    ] {
        step(&plugin, s, &r).await;
    }
    assert_eq!(
        in_team(
            "POST",
            "auth/userpass/login/alice",
            json!({ "password": next })
        )
        .await,
        200
    );
    // The root namespace has no userpass mount: without the namespace the user is not found.
    let (kind, message) = failure(
        self::plugin(&bao, Bao::TOKEN, &[("username", USER)])
            .rotate(RotationStep::Create, &r)
            .await
            .expect_err("no userpass in the root namespace"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("does not exist"), "{message}");
}
