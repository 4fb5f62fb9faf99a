//! The `github-actions` destination through the real binary, against the fake GitHub of
//! tests/github_fake (proven with PyGithub in github_fake_clients.rs; it opens every sealed box
//! with PyNaCl): items become repository secrets, are updated and deleted; a GitHub App writes
//! environment, organisation and Dependabot secrets and mints a new token when the old one
//! expired; names that break GitHub's rules and values above 48 KB are refused; a secondary rate limit loses nothing and does not
//! storm; a revoked token pauses the destination instead of dead-lettering; drift is repaired.

mod github_fake;
mod sync_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use github_fake::{GitHubFake, Grant, Scope};
use opsync::connect::model::Item;
use opsync::connect_dev::{DevServer, Seed};
use serde_json::json;
use sync_support::{base_config, client, connect, free_port, opsync_in, run_daemon, text, until};

const TOKEN: &str = "github_pat_opsync_0123456789";
const REPO: Scope = Scope::Repo("acme/web");
/// The Production items with a concealed field.
const CATEGORIES: &str = r#"categories = ["LOGIN", "DATABASE", "API_CREDENTIAL", "SERVER"]"#;

/// A GitHub with the repository `acme/web` and a token that may write its secrets.
async fn github() -> GitHubFake {
    let fake = GitHubFake::start().await;
    fake.add_repo("acme/web");
    fake.add_token(TOKEN, &[Grant::Repo("acme/web")]);
    fake
}

/// A `github-actions` instance `name` with `config` (after `api-url`).
fn plugin(name: &str, fake: &GitHubFake, config: &str) -> String {
    format!(
        r#"
[plugins.{name}]
builtin = "github-actions"
config = {{ api-url = "{url}", {config} }}
grants = {{ http = ["{url}"] }}
"#,
        url = fake.url(),
    )
}

/// A route `name` over the Production vault to `destination`.
fn route(name: &str, destination: &str, filter: &str, extra: &str) -> String {
    format!(
        r#"
[[route]]
name = "{name}"
destinations = ["{destination}"]
vaults = ["Production"]
on_delete = "delete"
{filter}
{extra}
"#
    )
}

fn write_config(dir: &Path, server: &DevServer, parts: &[String]) {
    let config = format!("{}{}", base_config(server, "500ms"), parts.concat());
    std::fs::write(dir.join("config.toml"), config).expect("config");
}

/// A secret's value as PyNaCl opens it.
fn opened(fake: &GitHubFake, scope: Scope, name: &str) -> Option<String> {
    fake.secret_value(scope, name)
        .unwrap_or_else(|e| panic!("{name} does not open: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_become_sealed_repository_secrets_and_follow_updates_and_deletes() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let fake = github().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(
        dir,
        &server,
        &[
            plugin(
                "gh",
                &fake,
                &format!(r#"token = "{TOKEN}", repository = "acme/web""#),
            ),
            route("gh", "gh", CATEGORIES, ""),
        ],
    );

    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fake.secret_names(REPO),
        [
            "ADMIN_CONSOLE",
            "BASTION_HOST",
            "ORDERS_DATABASE",
            "PAYMENTS_API"
        ]
    );
    assert_eq!(
        opened(&fake, REPO, "ORDERS_DATABASE").as_deref(),
        Some("demo-db-password-not-real")
    );
    // The public key is fetched once per call, not once per secret.
    let key_reads = fake
        .requests()
        .iter()
        .filter(|(method, path, _)| method == "GET" && path.ends_with("/public-key"))
        .count();
    assert!((1..4).contains(&key_reads), "{key_reads} public-key reads");
    assert!(!text(&out).contains(TOKEN));

    // Nothing changed: no request.
    fake.reset_requests();
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    let (prod, item) = sync_support::production_item(&client, "Orders database").await;
    sync_support::set_secret(&client, &prod, &item.id, "rotated-db-password-42").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        opened(&fake, REPO, "ORDERS_DATABASE").as_deref(),
        Some("rotated-db-password-42")
    );
    client.delete_item(&prod, &item.id).await.expect("deleted");
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.secret(REPO, "ORDERS_DATABASE").is_none());
    assert_eq!(fake.secret_names(REPO).len(), 3);
}

/// An RSA key pair made by openssl in `dir`: (private PEM, public PEM).
fn rsa_key(dir: &Path) -> (String, String) {
    let private = dir.join("app.pem");
    let public = dir.join("app.pub.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "{}", text(&out));
    };
    let (private_s, public_s) = (
        private.to_str().expect("path"),
        public.to_str().expect("path"),
    );
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private_s,
    ]);
    run(&["pkey", "-in", private_s, "-pubout", "-out", public_s]);
    (
        std::fs::read_to_string(private).expect("private key"),
        std::fs::read_to_string(public).expect("public key"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_writes_environment_and_organisation_secrets_across_token_expiry() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let fake = github().await;
    let repo_id = fake.add_repo("acme/api");
    fake.add_environment("acme/web", "production");
    fake.add_org("acme");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (private_pem, public_pem) = rsa_key(dir);
    fake.add_app(
        4242,
        &public_pem,
        777,
        &[Grant::Repo("acme/web"), Grant::Org("acme")],
    );
    let app = format!(
        r#"app-id = "4242", installation-id = "777", private-key = "{}""#,
        private_pem.trim().replace('\n', "\\n")
    );
    write_config(
        dir,
        &server,
        &[
            plugin(
                "env",
                &fake,
                &format!(
                    r#"{app}, target = "environment", repository = "acme/web", environment = "production""#
                ),
            ),
            plugin(
                "org",
                &fake,
                &format!(
                    r#"{app}, target = "organization", organization = "acme", visibility = "selected", selected-repository-ids = "{repo_id}", fields = "password=ADMIN_PASSWORD,username=ADMIN_USER""#
                ),
            ),
            plugin(
                "bot",
                &fake,
                &format!(r#"{app}, target = "dependabot", repository = "acme/web""#),
            ),
            route("env", "env", r#"title = "Payments API""#, ""),
            route("org", "org", r#"title = "Admin Console""#, ""),
            route("bot", "bot", r#"title = "Bastion host""#, ""),
        ],
    );

    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    let env = Scope::Environment("acme/web", "production");
    assert!(opened(&fake, env, "PAYMENTS_API").is_some());
    let org = Scope::Org("acme");
    assert_eq!(
        opened(&fake, org, "ADMIN_PASSWORD").as_deref(),
        Some("demo-admin-password-not-real")
    );
    assert_eq!(
        opened(&fake, org, "ADMIN_USER").as_deref(),
        Some("admin@example.com")
    );
    assert_eq!(
        opened(&fake, Scope::Dependabot("acme/web"), "BASTION_HOST").as_deref(),
        Some("demo-bastion-password-not-real")
    );
    let view = fake.secret(org, "ADMIN_PASSWORD").expect("org secret");
    assert_eq!(view.visibility.as_deref(), Some("selected"));
    assert_eq!(view.selected_repository_ids, [repo_id]);
    let all = text(&out);
    assert!(
        !all.contains("BEGIN PRIVATE KEY") && !all.contains("ghs_"),
        "{all}"
    );

    // The installation tokens expire; the next call mints a new one from a new JWT.
    fake.expire_installation_tokens();
    let (prod, payments) = sync_support::production_item(&client, "Payments API").await;
    sync_support::set_secret(&client, &prod, &payments.id, "rotated-api-credential").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        opened(&fake, env, "PAYMENTS_API").as_deref(),
        Some("rotated-api-credential")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_break_githubs_rules_are_refused() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let fake = github().await;
    let (prod, _) = sync_support::production_item(&client, "Orders database").await;
    let codes: Item = serde_json::from_value(json!({
        "vault": { "id": prod },
        "title": "2FA backup codes",
        "category": "PASSWORD",
        "fields": [{ "id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password", "value": "backup-codes-not-real" }]
    }))
    .expect("an item");
    client.create_item(&prod, &codes).await.expect("created");
    let big: Item = serde_json::from_value(json!({
        "vault": { "id": prod },
        "title": "Large blob",
        "category": "PASSWORD",
        "fields": [{ "id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password", "value": "x".repeat(49 * 1024) }]
    }))
    .expect("an item");
    client.create_item(&prod, &big).await.expect("created");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // A literal name GitHub reserves: refused when the config loads.
    write_config(
        dir,
        &server,
        &[
            plugin(
                "gh",
                &fake,
                &format!(
                    r#"token = "{TOKEN}", repository = "acme/web", fields = "password=GITHUB_TOKEN""#
                ),
            ),
            route("gh", "gh", r#"title = "Admin Console""#, ""),
        ],
    );
    let out = opsync_in(dir, &["plugin", "check"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("GITHUB_") && text(&out).contains("fields"),
        "{}",
        text(&out)
    );

    // A rendered name starting with a digit, and a value above 48 KB: those items fail before
    // anything is sent, the others go through.
    write_config(
        dir,
        &server,
        &[
            plugin(
                "gh",
                &fake,
                &format!(r#"token = "{TOKEN}", repository = "acme/web""#),
            ),
            route("gh", "gh", r#"categories = ["PASSWORD", "LOGIN"]"#, ""),
        ],
    );
    let out = opsync_in(dir, &["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(fake.secret_names(REPO), ["ADMIN_CONSOLE"]);
    let report = sync_support::status_json(dir).to_string();
    assert!(report.contains("2FA_BACKUP_CODES"), "{report}");
    assert!(
        report.contains("Large blob") && report.contains("48"),
        "{report}"
    );
    assert!(!report.contains("xxxxxxxx"), "{report}");
    assert!(
        fake.requests()
            .iter()
            .all(|(method, path, _)| !(method == "PUT" && path.contains("LARGE_BLOB"))),
        "nothing sent for the large value"
    );
    assert!(!report.contains("backup-codes-not-real"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_loses_nothing_and_sends_nothing_while_it_lasts() {
    let server = connect(Seed::Demo).await;
    let fake = github().await;
    // Eight requests per 2 s sliding window; an item takes three (the public key, once per
    // call, the PUT and the GET of its `updated_at`).
    fake.set_secondary_limit(8, Duration::from_secs(2), 2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        "{}{}{}",
        base_config(&server, "500ms"),
        plugin(
            "gh",
            &fake,
            &format!(r#"token = "{TOKEN}", repository = "acme/web""#)
        ),
        route("gh", "gh", CATEGORIES, "batch_size = 8"),
    )
    // Enough attempts that only a retry sent too early could use them up.
    .replace("max_attempts = 3", "max_attempts = 10");
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let daemon = run_daemon(dir, &admin);
    until("every secret", async || fake.secret_names(REPO).len() == 4).await;
    drop(daemon);
    let requests = fake.requests();
    let limited = requests
        .iter()
        .filter(|(_, _, status)| *status == 403 || *status == 429)
        .count();
    // A throttled call stops at its first refusal and every change waits the asked 2 s: a few
    // refusals in all. Retries at the host's own 20-200 ms backoff would meet the limit again
    // and again within each window.
    assert!(limited >= 1, "the limit was hit: {requests:?}");
    assert!(
        limited <= 8,
        "{limited} refusals in {} requests",
        requests.len()
    );
    assert_eq!(
        sync_support::status_json(dir)["dead_letters"]["total"].as_u64(),
        Some(0)
    );
    for name in [
        "ADMIN_CONSOLE",
        "BASTION_HOST",
        "ORDERS_DATABASE",
        "PAYMENTS_API",
    ] {
        assert!(opened(&fake, REPO, name).is_some(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_pauses_and_a_valid_one_goes_on() {
    let server = connect(Seed::Demo).await;
    let fake = github().await;
    fake.revoke_token(TOKEN);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(
        dir,
        &server,
        &[
            plugin(
                "gh",
                &fake,
                &format!(r#"token = "{TOKEN}", repository = "acme/web""#),
            ),
            route("gh", "gh", r#"title = "Orders database""#, ""),
        ],
    );
    let out = opsync_in(dir, &["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = sync_support::status_json(dir);
    assert_eq!(
        report["dead_letters"]["total"].as_u64(),
        Some(0),
        "{report}"
    );
    assert!(report.to_string().contains("Bad credentials"), "{report}");
    assert!(!report.to_string().contains(TOKEN), "{report}");

    fake.add_token(TOKEN, &[Grant::Repo("acme/web")]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.secret(REPO, "ORDERS_DATABASE").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_changed_or_deleted_at_github_is_written_again() {
    let server = connect(Seed::Demo).await;
    let fake = github().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_config(
        dir,
        &server,
        &[
            plugin(
                "gh",
                &fake,
                &format!(r#"token = "{TOKEN}", repository = "acme/web""#),
            ),
            route(
                "gh",
                "gh",
                r#"title = "Orders database""#,
                "drift_check = \"1s\"\non_drift = \"repair\"",
            ),
        ],
    );
    let admin = format!("127.0.0.1:{}", free_port());
    let _daemon = run_daemon(dir, &admin);
    until("the first delivery", async || {
        fake.secret(REPO, "ORDERS_DATABASE").is_some()
    })
    .await;
    fake.touch_secret(REPO, "ORDERS_DATABASE", "set-by-hand");
    until("the repair", async || {
        opened(&fake, REPO, "ORDERS_DATABASE").as_deref() == Some("demo-db-password-not-real")
    })
    .await;
    assert!(fake.delete_secret(REPO, "ORDERS_DATABASE"));
    until("the recreation", async || {
        fake.secret(REPO, "ORDERS_DATABASE").is_some()
    })
    .await;
    until("the drift metric", async || {
        let metrics = sync_support::metrics(&admin).await;
        metrics.contains(r#"opsync_drift_detected_total{route="gh",plugin="gh",kind="changed"}"#)
            && metrics
                .contains(r#"opsync_drift_detected_total{route="gh",plugin="gh",kind="missing"}"#)
    })
    .await;
}
