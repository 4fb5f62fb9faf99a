//! The `gitlab-ci` destination through the real binary, against the fake GitLab of
//! tests/gitlab_fake (proven with python-gitlab in gitlab_fake_clients.rs): items become masked
//! project variables, are updated and deleted; group variables of file type, several per item; a value GitLab could not mask is refused before
//! anything is sent; a key that breaks GitLab's rule fails its item; a variable opsync does not
//! manage is left alone; a rate limit loses nothing and does not storm; an expired token pauses
//! the destination instead of dead-lettering; drift is repaired.

mod gitlab_fake;
mod sync_support;

use std::time::Duration;

use gitlab_fake::{GitLabFake, Role, Scope};
use opsync::connect::model::Item;
use opsync::connect_dev::{DevServer, Seed};
use serde_json::{Value, json};
use sync_support::{base_config, client, connect, free_port, opsync_in, run_daemon, text, until};

const TOKEN: &str = "glpat-opsync-0123456789";
const PROJECT: Scope = Scope::Project(7);
/// The Production items with a concealed field.
const CATEGORIES: &str = r#"categories = ["LOGIN", "DATABASE", "API_CREDENTIAL", "SERVER"]"#;

/// A GitLab with the project `acme/web` (id 7) and a Maintainer token for it.
async fn gitlab() -> GitLabFake {
    let fake = GitLabFake::start().await;
    fake.add_project(7, "acme/web");
    fake.add_token(TOKEN, Role::Maintainer);
    fake
}

/// A config with a `gitlab-ci` instance `ci` (extra plugin config `extra`) and one route over
/// the Production vault (`filter`, `route_extra`).
fn config(
    server: &DevServer,
    fake: &GitLabFake,
    extra: &str,
    filter: &str,
    route_extra: &str,
) -> String {
    format!(
        r#"{base}
[plugins.ci]
builtin = "gitlab-ci"
config = {{ api-url = "{url}", token = "{TOKEN}", project = "acme/web"{extra} }}
grants = {{ http = ["{url}"] }}

[[route]]
name = "ci"
destinations = ["ci"]
vaults = ["Production"]
on_delete = "delete"
{filter}
{route_extra}
"#,
        base = base_config(server, "500ms"),
        url = fake.url(),
    )
}

fn value(variable: &Value) -> Option<&str> {
    variable["value"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_become_masked_variables_and_follow_updates_and_deletes() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let fake = gitlab().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let extra = r#", masked = true, protected = true, environment-scope = "production""#;
    std::fs::write(
        dir.join("config.toml"),
        config(&server, &fake, extra, CATEGORIES, ""),
    )
    .expect("config");

    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    let orders = fake
        .variable(PROJECT, "ORDERS_DATABASE", "production")
        .expect("the item's variable, keyed by its title");
    assert_eq!(value(&orders), Some("demo-db-password-not-real"));
    assert_eq!(orders["masked"], true);
    assert_eq!(orders["protected"], true);
    assert_eq!(orders["raw"], true);
    assert!(
        orders["description"]
            .as_str()
            .is_some_and(|d| d.contains("managed by opsync")),
        "{orders}"
    );
    assert_eq!(
        fake.variables(PROJECT).len(),
        4,
        "{:?}",
        fake.variables(PROJECT)
    );
    assert!(!text(&out).contains(TOKEN));

    // Nothing changed: no request at all.
    fake.reset_requests();
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests().len());

    // An update, then a deletion.
    let (prod, item) = sync_support::production_item(&client, "Orders database").await;
    sync_support::set_secret(&client, &prod, &item.id, "rotated-db-password-42").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    let orders = fake
        .variable(PROJECT, "ORDERS_DATABASE", "production")
        .expect("still there");
    assert_eq!(value(&orders), Some("rotated-db-password-42"));
    client.delete_item(&prod, &item.id).await.expect("deleted");
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        fake.variable(PROJECT, "ORDERS_DATABASE", "production")
            .is_none()
    );
    assert_eq!(fake.variables(PROJECT).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_variables_of_file_type_with_several_keys_per_item() {
    let server = connect(Seed::Demo).await;
    let fake = gitlab().await;
    fake.add_group(3, "acme");
    // Group variables need the Owner role.
    let owner = "glpat-group-owner-0123456789";
    fake.add_token(owner, Role::Owner);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[plugins.group]
builtin = "gitlab-ci"
config = {{ api-url = "{url}", token = "{owner}", group = "acme", variable-type = "file", environment-scope = "staging", fields = "username=DB_USER,password=DB_PASSWORD" }}
grants = {{ http = ["{url}"] }}

[[route]]
name = "group"
destinations = ["group"]
vaults = ["Production"]
title = "Orders database"
"#,
        base = base_config(&server, "500ms"),
        url = fake.url(),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    let group = Scope::Group(3);
    let password = fake
        .variable(group, "DB_PASSWORD", "staging")
        .expect("the password variable");
    assert_eq!(value(&password), Some("demo-db-password-not-real"));
    assert_eq!(password["variable_type"], "file");
    let user = fake
        .variable(group, "DB_USER", "staging")
        .expect("the user");
    assert!(value(&user).is_some_and(|u| !u.is_empty()), "{user}");
    assert!(fake.variables(PROJECT).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmaskable_values_and_bad_keys_are_refused_and_foreign_variables_kept() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let fake = gitlab().await;
    let (prod, _) = sync_support::production_item(&client, "Orders database").await;
    let short: Item = serde_json::from_value(json!({
        "vault": { "id": prod },
        "title": "Short pin",
        "category": "PASSWORD",
        "fields": [{ "id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password", "value": "12 34" }]
    }))
    .expect("an item");
    client.create_item(&prod, &short).await.expect("created");
    // Someone's own variable, at the key opsync would write for the Admin Console.
    fake.insert_variable(
        PROJECT,
        json!({ "key": "ADMIN_CONSOLE", "value": "set-in-the-ui-by-hand", "environment_scope": "*" }),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // Two instances: masked values for the pin and the login; keys straight from titles.
    let mut config = config(
        &server,
        &fake,
        ", masked = true",
        r#"categories = ["PASSWORD", "LOGIN"]"#,
        "",
    );
    config.push_str(&format!(
        r#"
[plugins.raw-titles]
builtin = "gitlab-ci"
config = {{ api-url = "{url}", token = "{TOKEN}", project = "7", key = "{{{{title}}}}" }}
grants = {{ http = ["{url}"] }}

[[route]]
name = "raw-titles"
destinations = ["raw-titles"]
vaults = ["Production"]
title = "Payments API"
"#,
        url = fake.url()
    ));
    std::fs::write(dir.join("config.toml"), config).expect("config");

    let out = opsync_in(dir, &["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The pin is never sent: not even an unmasked copy.
    assert!(
        fake.variables(PROJECT)
            .iter()
            .all(|v| v["key"] != "SHORT_PIN"),
        "{:?}",
        fake.variables(PROJECT)
    );
    // The foreign variable is untouched.
    let admin = fake.variable(PROJECT, "ADMIN_CONSOLE", "*").expect("kept");
    assert_eq!(value(&admin), Some("set-in-the-ui-by-hand"));
    let report = sync_support::status_json(dir).to_string();
    for expected in ["mask", "adopt", "Payments API"] {
        assert!(report.contains(expected), "{expected}: {report}");
    }
    for secret in ["12 34", "set-in-the-ui-by-hand", TOKEN] {
        assert!(!report.contains(secret), "{secret}: {report}");
        assert!(!text(&out).contains(secret), "{secret}: {}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_loses_nothing_and_sends_nothing_while_it_lasts() {
    let server = connect(Seed::Demo).await;
    let fake = gitlab().await;
    // Four requests per 2 s: two items' GET and POST, then 429s until the window ends.
    fake.set_rate_limit(4, Duration::from_secs(2));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // Enough attempts that only a retry sent too early could use them up.
    let config = config(&server, &fake, "", CATEGORIES, "batch_size = 8")
        .replace("max_attempts = 3", "max_attempts = 10");
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let daemon = run_daemon(dir, &admin);
    until("every variable", async || {
        fake.variables(PROJECT).len() == 4
    })
    .await;
    drop(daemon);
    let requests = fake.requests();
    let limited = requests.iter().filter(|r| r.status == 429).count();
    // A throttled call stops at its first 429 and every change waits the asked delay: a few
    // 429s in all. Retries at the host's own 20-200 ms backoff would meet the limit again and
    // again within each 2 s window.
    assert!(limited >= 1, "the limit was hit: {requests:?}");
    assert!(
        limited <= 8,
        "{limited} answers of 429 in {} requests",
        requests.len()
    );
    let report = sync_support::status_json(dir);
    assert_eq!(
        report["dead_letters"]["total"].as_u64(),
        Some(0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_the_whole_destination_not_each_change_in_turn() {
    const ITEMS: usize = 60;
    let server = connect(Seed::Bulk {
        vaults: 1,
        items_per_vault: ITEMS,
    })
    .await;
    let fake = gitlab().await;
    fake.set_rate_limit(30, Duration::from_secs(2));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config = format!(
        r#"{base}
[plugins.ci]
builtin = "gitlab-ci"
config = {{ api-url = "{url}", token = "{TOKEN}", project = "acme/web" }}
grants = {{ http = ["{url}"] }}

[[route]]
name = "ci"
destinations = ["ci"]
batch_size = 8
"#,
        base = base_config(&server, "500ms").replace("max_attempts = 3", "max_attempts = 20"),
        url = fake.url(),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let daemon = run_daemon(dir, &admin);
    until("every variable", async || {
        fake.variables(PROJECT).len() == ITEMS
    })
    .await;
    drop(daemon);
    // Each change that met the limit waits the asked delay, and so do the destination's other
    // changes: a few refusals per window. Were each change retried on its own hint, every one
    // of them would meet the limit at least once (about one refusal per item, measured).
    let requests = fake.requests();
    let limited = requests.iter().filter(|r| r.status == 429).count();
    assert!(limited >= 1, "the limit was hit");
    assert!(
        limited < ITEMS * 2 / 3,
        "{limited} refusals for {ITEMS} items in {} requests",
        requests.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_pauses_and_the_next_token_goes_on() {
    let server = connect(Seed::Demo).await;
    let fake = gitlab().await;
    fake.expire_token(TOKEN);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(
        dir.join("config.toml"),
        config(&server, &fake, "", r#"title = "Orders database""#, ""),
    )
    .expect("config");

    let out = opsync_in(dir, &["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = sync_support::status_json(dir);
    assert_eq!(
        report["dead_letters"]["total"].as_u64(),
        Some(0),
        "{report}"
    );
    assert!(report.to_string().contains("401"), "{report}");
    assert!(fake.variables(PROJECT).is_empty());

    // A new token is issued (here: the same one made valid again); the paused change goes on.
    fake.add_token(TOKEN, Role::Maintainer);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.variable(PROJECT, "ORDERS_DATABASE", "*").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_edited_in_gitlab_is_repaired() {
    let server = connect(Seed::Demo).await;
    let fake = gitlab().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(
        dir.join("config.toml"),
        config(
            &server,
            &fake,
            "",
            r#"title = "Orders database""#,
            "drift_check = \"1s\"\non_drift = \"repair\"",
        ),
    )
    .expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let _daemon = run_daemon(dir, &admin);
    until("the first delivery", async || {
        fake.variable(PROJECT, "ORDERS_DATABASE", "*").is_some()
    })
    .await;
    fake.set_variable(PROJECT, "ORDERS_DATABASE", "*", "edited-in-the-ui");
    until("the repair", async || {
        fake.variable(PROJECT, "ORDERS_DATABASE", "*")
            .is_some_and(|v| value(&v) == Some("demo-db-password-not-real"))
    })
    .await;
    until("the drift metric", async || {
        sync_support::metrics(&admin)
            .await
            .contains(r#"opsync_drift_detected_total{route="ci",plugin="ci",kind="changed"}"#)
    })
    .await;
}
