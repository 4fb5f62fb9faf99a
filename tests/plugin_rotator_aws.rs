//! The built-in `aws-iam-access-key` rotator end to end, through the sandbox, against a real moto
//! server checking SigV4 signatures and IAM policies: alternating keys over repeat rotations
//! (never more than two), replays of every step, an orphan from an interrupted `create`, a failed
//! `test` and the host's rollback, wrong admin credentials, and no secret in logs or errors.

mod peers;
mod plugin_support;

use opsync::connect::model::{Category, IdRef, Item};
use opsync::plugin::{FailureKind, NewValue, Plugin, Rotation, RotationStep, VaultRef};
use peers::{AccessKey, Moto, failure, rotator};
use plugin_support::{field, host, secret, with_logs};

const USER: &str = "app";
const ADMIN: &str = "opsync-admin";
/// Calls moto takes unsigned before it checks every signature: the set-up below.
const SETUP_CALLS: u32 = 5;

/// Moto with an admin user allowed `iam:*` and user `app` holding one key; from then on moto
/// checks every signature and policy. Returns (moto, admin key, app's first key).
async fn moto() -> (Moto, AccessKey, AccessKey) {
    let moto = Moto::start_with_no_auth_calls(SETUP_CALLS).await;
    let admin = moto.user_with_key(ADMIN).await;
    moto.allow(ADMIN, &["iam:*"]).await;
    let first = moto.user_with_key(USER).await;
    (moto, admin, first)
}

fn plugin(moto: &Moto, admin: (&str, &str), extra: &[(&str, &str)]) -> Plugin {
    let mut pairs = vec![
        ("endpoint", moto.endpoint.as_str()),
        ("access-key-id", admin.0),
        ("secret-access-key", admin.1),
        ("user-name", USER),
    ];
    pairs.extend_from_slice(extra);
    rotator(&host(), "aws-iam-access-key", &pairs, &moto.endpoint)
}

/// An API credential item holding `key` as its current values.
fn item_with(key: &AccessKey) -> Item {
    let mut item = Item::new("app key", Category::from("API_CREDENTIAL"));
    item.id = "itm0000000000000000000000k".into();
    item.vault = IdRef {
        id: "vlt0000000000000000000000a".into(),
    };
    item.version = 4;
    item.fields = Some(vec![
        field("keyid", "access key id", &key.id),
        field("keysecret", "secret access key", &key.secret),
    ]);
    item
}

fn rotation(idempotency_key: &str, item: Item, pending: Vec<NewValue>) -> Rotation {
    Rotation {
        idempotency_key: idempotency_key.to_string(),
        vault: VaultRef {
            id: item.vault.id.clone(),
            name: "Prod".into(),
        },
        item,
        pending,
    }
}

/// The pending values for `key`, addressed by field id as the host does with `create`'s output.
fn values_of(key: &AccessKey) -> Vec<NewValue> {
    vec![
        NewValue {
            field: "keyid".into(),
            value: secret(&key.id),
        },
        NewValue {
            field: "keysecret".into(),
            value: secret(&key.secret),
        },
    ]
}

/// The key `create` returned.
fn key_from(made: &[NewValue]) -> AccessKey {
    assert_eq!(made.len(), 2, "create returns key id and secret");
    assert_eq!(made[0].field, "keyid", "addressed by the item's field id");
    assert_eq!(made[1].field, "keysecret");
    AccessKey {
        id: made[0].value.expose().to_string(),
        secret: made[1].value.expose().to_string(),
    }
}

async fn step(plugin: &Plugin, step: RotationStep, rotation: &Rotation) -> Vec<NewValue> {
    plugin
        .rotate(step, rotation)
        .await
        .unwrap_or_else(|e| panic!("{step:?}: {e}"))
}

fn keys(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = pairs
        .iter()
        .map(|(id, status)| (id.to_string(), status.to_string()))
        .collect();
    keys.sort();
    keys
}

/// One full rotation from `current`: returns the new key, checking the key states after each
/// step.
async fn rotate(moto: &Moto, plugin: &Plugin, key: &str, current: &AccessKey) -> AccessKey {
    let made = step(
        plugin,
        RotationStep::Create,
        &rotation(key, item_with(current), Vec::new()),
    )
    .await;
    let new = key_from(&made);
    assert_ne!(new.id, current.id);
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&current.id, "Active"), (&new.id, "Active")]),
        "create leaves the current key and the new one"
    );
    let pending = rotation(key, item_with(current), values_of(&new));
    for s in [RotationStep::Set, RotationStep::Test] {
        step(plugin, s, &pending).await;
        step(plugin, s, &pending).await;
    }
    // Finish sees the promoted values as pending, whatever the item shows by then.
    step(plugin, RotationStep::Finish, &pending).await;
    step(
        plugin,
        RotationStep::Finish,
        &rotation(key, item_with(&new), values_of(&new)),
    )
    .await;
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&current.id, "Inactive"), (&new.id, "Active")]),
        "finish deactivates the previous key"
    );
    new
}

#[test]
fn keys_alternate_over_rotations_never_more_than_two_and_no_secret_is_logged() {
    let (secrets, logs) = with_logs(async {
        let (moto, admin, first) = moto().await;
        let plugin = plugin(&moto, (&admin.id, &admin.secret), &[]);
        plugin.validate().await.expect("valid config");

        let second = rotate(&moto, &plugin, "rotation-1", &first).await;
        // The next create deletes the inactive previous key before making one.
        let third = rotate(&moto, &plugin, "rotation-2", &second).await;
        assert!(
            !moto
                .access_keys(USER)
                .await
                .iter()
                .any(|(id, _)| *id == first.id),
            "the oldest key is gone"
        );
        let fourth = rotate(&moto, &plugin, "rotation-3", &third).await;
        vec![
            admin.secret,
            first.secret,
            second.secret,
            third.secret,
            fourth.secret,
        ]
    });
    assert!(
        logs.contains("deactivated the previous access key"),
        "{logs}"
    );
    assert!(logs.contains("(inactive: the previous key)"), "{logs}");
    for value in &secrets {
        assert!(
            !logs.contains(value.as_str()),
            "a secret reached the logs:\n{logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_repeated_after_a_crash_deletes_its_orphan_and_stays_at_two_keys() {
    let (moto, admin, first) = moto().await;
    let plugin = plugin(&moto, (&admin.id, &admin.secret), &[]);
    let r = rotation("rotation-1", item_with(&first), Vec::new());
    // The host died before storing what create made: create runs again, same key.
    let orphan = key_from(&step(&plugin, RotationStep::Create, &r).await);
    let made = key_from(&step(&plugin, RotationStep::Create, &r).await);
    assert_ne!(made.id, orphan.id);
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&first.id, "Active"), (&made.id, "Active")]),
        "the orphan is deleted, the current key kept"
    );
    let pending = rotation("rotation-1", item_with(&first), values_of(&made));
    for s in [RotationStep::Set, RotationStep::Test, RotationStep::Finish] {
        step(&plugin, s, &pending).await;
    }
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&first.id, "Inactive"), (&made.id, "Active")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_test_is_permanent_and_the_rollback_deletes_the_new_key() {
    let (moto, admin, first) = moto().await;
    let plugin = plugin(&moto, (&admin.id, &admin.secret), &[]);
    let second = rotate(&moto, &plugin, "rotation-1", &first).await;

    let made = key_from(
        &step(
            &plugin,
            RotationStep::Create,
            &rotation("rotation-2", item_with(&second), Vec::new()),
        )
        .await,
    );
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&second.id, "Active"), (&made.id, "Active")]),
        "the inactive previous key made room"
    );
    // A pending secret that does not match its key: STS refuses the signature.
    let broken = AccessKey {
        id: made.id.clone(),
        secret: format!("{}x", made.secret),
    };
    let pending = rotation("rotation-2", item_with(&second), values_of(&broken));
    step(&plugin, RotationStep::Set, &pending).await;
    let (kind, message) = failure(
        plugin
            .rotate(RotationStep::Test, &pending)
            .await
            .expect_err("the signature is refused"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("STS GetCallerIdentity"), "{message}");
    assert!(
        message.contains(&format!("POST {}/", moto.endpoint)),
        "{message}"
    );
    assert!(message.contains("status 403"), "{message}");
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains(&made.secret), "{message}");

    // The host's rollback: `set` with the item's current values, under `<key>:rollback`.
    let back = rotation(
        "rotation-2:rollback",
        item_with(&second),
        values_of(&second),
    );
    step(&plugin, RotationStep::Set, &back).await;
    step(&plugin, RotationStep::Set, &back).await;
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&second.id, "Active")]),
        "the key create made is deleted, the current one kept"
    );
    // The current key still signs.
    step(
        &plugin,
        RotationStep::Test,
        &rotation("check", item_with(&second), values_of(&second)),
    )
    .await;

    // A rollback to a key that is gone deletes nothing.
    let (kind, message) = failure(
        plugin
            .rotate(
                RotationStep::Set,
                &rotation("rotation-3:rollback", item_with(&first), values_of(&first)),
            )
            .await
            .expect_err("the first key is gone"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("cannot roll back"), "{message}");
    assert_eq!(
        moto.access_keys(USER).await,
        keys(&[(&second.id, "Active")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_credentials_unknown_keys_and_bad_config_are_clear_errors() {
    let (moto, admin, first) = moto().await;
    let r = rotation("rotation-1", item_with(&first), Vec::new());

    let wrong = format!("{}x", admin.secret);
    let (kind, message) = failure(
        plugin(&moto, (&admin.id, &wrong), &[])
            .rotate(RotationStep::Create, &r)
            .await
            .expect_err("bad signature"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(
        message.contains(&format!("IAM ListAccessKeys (POST {}/)", moto.endpoint)),
        "{message}"
    );
    assert!(message.contains("status 403"), "{message}");
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(!message.contains(&wrong), "{message}");
    assert!(!message.contains(&admin.secret), "{message}");

    // A key that is not the admin's at all.
    let (kind, message) = failure(
        plugin(&moto, ("AKIAIOSFODNN7EXAMPLE", &admin.secret), &[])
            .rotate(RotationStep::Create, &r)
            .await
            .expect_err("unknown key"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("InvalidClientTokenId"), "{message}");

    let admin_plugin = plugin(&moto, (&admin.id, &admin.secret), &[]);
    let ghost = plugin(&moto, (&admin.id, &admin.secret), &[("user-name", "ghost")]);
    let (kind, message) = failure(
        ghost
            .rotate(RotationStep::Create, &r)
            .await
            .expect_err("no such user"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("status 404"), "{message}");
    assert!(message.contains("NoSuchEntity"), "{message}");

    // Pending values that name no key of the user change nothing.
    let stranger = AccessKey {
        id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    };
    let pending = rotation("rotation-1", item_with(&first), values_of(&stranger));
    for s in [RotationStep::Set, RotationStep::Finish] {
        let (kind, message) = failure(
            admin_plugin
                .rotate(s, &pending)
                .await
                .expect_err("not a key"),
        );
        assert_eq!(kind, FailureKind::Permanent, "{message}");
        assert!(
            message.contains("is not an access key of IAM user `app`"),
            "{message}"
        );
    }
    let (kind, message) = failure(
        admin_plugin
            .rotate(RotationStep::Test, &pending)
            .await
            .expect_err("unknown to STS"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("InvalidClientTokenId"), "{message}");
    let (kind, message) = failure(
        admin_plugin
            .rotate(
                RotationStep::Set,
                &rotation("rotation-1", item_with(&first), Vec::new()),
            )
            .await
            .expect_err("nothing pending"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(
        message.contains("no pending value for `access key id`"),
        "{message}"
    );
    assert_eq!(moto.access_keys(USER).await, keys(&[(&first.id, "Active")]));

    for (pairs, expected) in [
        (
            vec![("user-name", "not a user!")],
            "is not an IAM user name",
        ),
        (vec![("region", "EU")], "`region` `EU` is not an AWS region"),
        (
            vec![("secret-field", "Access Key ID")],
            "name the same field",
        ),
        (vec![("propagation-seconds", "-1")], "`propagation-seconds`"),
        (
            vec![("acces-key-id", "x")],
            "unknown config key `acces-key-id`",
        ),
    ] {
        let (kind, message) = failure(
            plugin(&moto, (&admin.id, &admin.secret), &pairs)
                .validate()
                .await
                .expect_err("bad config"),
        );
        assert_eq!(kind, FailureKind::Misconfigured, "{message}");
        assert!(message.contains(expected), "{message}");
    }
}
