//! The `kubernetes-secret` destination through the real binary, against the fake API server of
//! tests/kube_fake (proven with the official Python client and kubectl in kube_fake_clients.rs):
//! items become Secrets over TLS verified with a granted cluster CA, authenticated by a service
//! account token read from a projected-volume layout and re-read when it rotates; workloads are
//! restarted after a change; dockerconfigjson and tls types, one of them with the token in its
//! config as from outside a cluster; tls Secrets from an item's files (two files, or one bundle); foreign Secrets are left alone unless adopted; server-side
//! apply conflicts are reported, or forced; deletions follow `on-delete`; an RBAC refusal names
//! the rule; drift is repaired or reported; a bad CA grant is named.

mod kube_fake;
mod sync_support;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube_fake::{KubeFake, KubeOptions};
use opsync::connect::model::Item;
use opsync::connect_dev::Seed;
use serde_json::{Value, json};
use sync_support::{base_config, client, connect, free_port, opsync_in, run_daemon, text, until};

/// The service account token of every test but the rotation test.
const TOKEN: &str = "token-0123456789abcdef";
const SA_GUEST: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A service account directory laid out as the kubelet projects one: the files live in a
/// timestamped directory, `..data` links to it, and `token` and `ca.crt` link through `..data`;
/// a rotation writes a new directory and swaps `..data` atomically.
struct ServiceAccount {
    dir: PathBuf,
    generation: u32,
}

impl ServiceAccount {
    fn new(dir: &Path, token: &str, ca_pem: &str) -> Self {
        std::fs::create_dir_all(dir).expect("service account dir");
        let mut sa = Self {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        sa.project(token, ca_pem);
        for file in ["token", "ca.crt"] {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).expect("link");
        }
        sa
    }

    /// Writes a new generation of the files and points `..data` at it.
    fn project(&mut self, token: &str, ca_pem: &str) {
        self.generation += 1;
        let generation = format!("..2026_12_07_{:02}", self.generation);
        let files = self.dir.join(&generation);
        std::fs::create_dir(&files).expect("generation dir");
        std::fs::write(files.join("token"), token).expect("token");
        std::fs::write(files.join("ca.crt"), ca_pem).expect("ca");
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&generation, &tmp).expect("link");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

/// A `kubernetes-secret` instance `name` writing to `namespace` of `fake`, in-cluster style: the
/// token from the service account directory (granted read-only), the cluster CA granted.
fn in_cluster_plugin(name: &str, fake: &KubeFake, sa: &ServiceAccount, config: &str) -> String {
    format!(
        r#"
[plugins.{name}]
builtin = "kubernetes-secret"
config = {{ server = "{url}", {config} }}
grants = {{ http = ["{url}"], tls_ca = ["{ca}"], dirs = [{{ host = "{sa}", guest = "{SA_GUEST}", read_only = true }}] }}
"#,
        url = fake.url(),
        ca = sa.ca().display(),
        sa = sa.dir.display(),
    )
}

/// A `kubernetes-secret` instance as from outside a cluster: the token in its config (where an
/// `op://` reference usually stands), the CA a file next to the config, no directory granted.
fn token_plugin(name: &str, fake: &KubeFake, ca: &Path, config: &str) -> String {
    format!(
        r#"
[plugins.{name}]
builtin = "kubernetes-secret"
config = {{ server = "{url}", token = "{TOKEN}", {config} }}
grants = {{ http = ["{url}"], tls_ca = ["{ca}"] }}
"#,
        url = fake.url(),
        ca = ca.display(),
    )
}

fn route(name: &str, destination: &str, filter: &str, extra: &str) -> String {
    format!(
        r#"
[[route]]
name = "{name}"
destinations = ["{destination}"]
vaults = ["Production"]
{filter}
{extra}
"#
    )
}

/// A Secret's `data[key]`, decoded.
fn data(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret["data"][key].as_str()?;
    let bytes = STANDARD.decode(encoded).expect("base64 data");
    Some(String::from_utf8(bytes).expect("UTF-8 value"))
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn restarted_at(fake: &KubeFake, namespace: &str, name: &str) -> Option<String> {
    let workload = fake.workload("deployments", namespace, name)?;
    workload["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .map(str::to_owned)
}

/// An API server with TLS, a token for the `opsync` service account that may use Secrets and
/// patch workloads in `namespaces`, and that account's projected directory under `dir`.
fn cluster(dir: &Path, token: &str, namespaces: &[&str]) -> (KubeFake, ServiceAccount) {
    let fake = KubeFake::start(KubeOptions { tls: true });
    let user = "system:serviceaccount:opsync:opsync";
    fake.add_token(token, user);
    for ns in namespaces {
        fake.allow(user, &["get", "create", "patch", "delete"], "secrets", ns);
        fake.allow(user, &["patch"], "deployments", ns);
    }
    let sa = ServiceAccount::new(&dir.join("serviceaccount"), token, &fake.ca_pem());
    (fake, sa)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_become_secrets_and_a_rotated_token_is_picked_up() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (fake, mut sa) = cluster(dir, "first-token-0123456789", &["apps"]);
    fake.add_workload("deployments", "apps", "web");
    let config = format!(
        "{}{}{}",
        base_config(&server, "1s"),
        in_cluster_plugin(
            "apps",
            &fake,
            &sa,
            r#"namespace = "apps", restart = "deployment/web""#
        ),
        route("apps", "apps", "", ""),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");

    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    let (prod, orders) = sync_support::production_item(&client, "Orders database").await;
    let secret = fake
        .secret("apps", "orders-database")
        .expect("the item is a Secret named by its title");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        data(&secret, "server").as_deref(),
        Some("db.prod.example.internal")
    );
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "opsync"
    );
    assert_eq!(
        annotation(&secret, "opsync.io/item-id"),
        Some(orders.id.as_str())
    );
    assert_eq!(
        annotation(&secret, "opsync.io/item-version"),
        Some(orders.version.to_string().as_str())
    );
    let managers: Vec<(&str, &str)> = secret["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or_default(),
                m["operation"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("opsync", "Apply")],
        "server-side apply as opsync"
    );
    // Labels with spaces become valid keys.
    let admin = fake.secret("apps", "admin-console").expect("the login");
    assert!(data(&admin, "one-time_password").is_some(), "{admin}");
    assert_eq!(fake.secrets("apps").len(), 6, "every Production item");
    let first_restart = restarted_at(&fake, "apps", "web").expect("web was restarted");

    // The kubelet rotates the token; the old one stops working.
    fake.remove_token("first-token-0123456789");
    fake.add_token(
        "second-token-0123456789",
        "system:serviceaccount:opsync:opsync",
    );
    sa.project("second-token-0123456789", &fake.ca_pem());
    sync_support::set_secret(&client, &prod, &orders.id, "rotated-password").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    let secret = fake.secret("apps", "orders-database").expect("secret");
    assert_eq!(
        data(&secret, "password").as_deref(),
        Some("rotated-password")
    );
    let second_restart = restarted_at(&fake, "apps", "web").expect("restarted");
    assert_ne!(first_restart, second_restart, "a change restarts web again");
    let all = text(&out);
    for secret_text in ["rotated-password", "second-token-0123456789"] {
        assert!(!all.contains(secret_text), "{all}");
    }

    // Nothing changed: an idle poll writes nothing and restarts nothing.
    fake.reset_requests();
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fake.requests(), Vec::<(String, String)>::new());
    assert_eq!(restarted_at(&fake, "apps", "web"), Some(second_restart));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_logins_and_certificates_become_typed_secrets() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (fake, sa) = cluster(dir, TOKEN, &["apps"]);
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("vault");
    let cert: Item = serde_json::from_value(json!({
        "vault": { "id": prod.id },
        "title": "Ingress TLS",
        "category": "SECURE_NOTE",
        "fields": [
            { "id": "certificate", "type": "STRING", "label": "certificate",
              "value": "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n" },
            { "id": "key", "type": "CONCEALED", "label": "private key",
              "value": "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n" }
        ]
    }))
    .expect("an item");
    client.create_item(&prod.id, &cert).await.expect("created");
    let config = format!(
        "{}{}{}{}{}",
        base_config(&server, "1s"),
        token_plugin(
            "registry",
            &fake,
            &sa.ca(),
            r#"namespace = "apps", type = "kubernetes.io/dockerconfigjson", registry = "registry.example.com", name = "pull-{{title | slug}}""#
        ),
        in_cluster_plugin(
            "certs",
            &fake,
            &sa,
            r#"namespace = "apps", type = "kubernetes.io/tls""#
        ),
        route("logins", "registry", r#"title = "Admin Console""#, ""),
        route("certs", "certs", r#"title = "Ingress TLS""#, ""),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");

    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(TOKEN), "{}", text(&out));
    let pull = fake
        .secret("apps", "pull-admin-console")
        .expect("pull secret");
    assert_eq!(pull["type"], "kubernetes.io/dockerconfigjson");
    let docker: Value =
        serde_json::from_str(&data(&pull, ".dockerconfigjson").expect("key")).expect("JSON");
    let auth = &docker["auths"]["registry.example.com"];
    assert_eq!(auth["username"], "admin@example.com");
    assert_eq!(auth["password"], "demo-admin-password-not-real");
    assert_eq!(
        auth["auth"].as_str(),
        Some(
            STANDARD
                .encode("admin@example.com:demo-admin-password-not-real")
                .as_str()
        )
    );
    let tls = fake.secret("apps", "ingress-tls").expect("tls secret");
    assert_eq!(tls["type"], "kubernetes.io/tls");
    assert!(
        data(&tls, "tls.crt")
            .expect("crt")
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        data(&tls, "tls.key")
            .expect("key")
            .contains("BEGIN PRIVATE KEY")
    );
}

/// A certificate, its CA and a key, PEM-framed around text that says they are fake (the plugin
/// checks the framing and the base64, as a controller reading them would).
fn pem(label: &str, text: &str) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        STANDARD.encode(text)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_in_item_files_become_tls_secrets() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (fake, sa) = cluster(dir, TOKEN, &["apps", "plain"]);
    let prod = client
        .find_vault_by_name("Production")
        .await
        .expect("vault");
    // A Document item holding one combined bundle: preamble text (past the 100 KiB Connect
    // inlines), the leaf, the key, the CA.
    let (leaf, key, ca) = (
        pem("CERTIFICATE", "fake leaf for api.example.com"),
        pem("PRIVATE KEY", "fake key for api.example.com"),
        pem("CERTIFICATE", "fake CA for api.example.com"),
    );
    let preamble = "# issued for api.example.com\n".repeat(4096);
    let bundle = format!("{preamble}{leaf}{key}\n{ca}");
    let document: Item = serde_json::from_value(json!({
        "title": "API bundle", "category": "DOCUMENT", "tags": ["tls"]
    }))
    .expect("an item");
    server
        .create_item_with_files(&prod.id, document, &[("bundle.pem", bundle.as_bytes())])
        .expect("document stored");
    // A file above what a route hands to its destinations is refused by name, unread.
    let huge: Item = serde_json::from_value(json!({
        "title": "Huge bundle", "category": "DOCUMENT", "tags": ["tls"]
    }))
    .expect("an item");
    let huge_content = vec![b'#'; 4 * 1024 * 1024 + 1];
    server
        .create_item_with_files(&prod.id, huge, &[("huge.pem", &huge_content)])
        .expect("document stored");
    let tls = r#"namespace = "apps", type = "kubernetes.io/tls""#;
    let config = format!(
        "{}{}{}{}{}",
        base_config(&server, "1s"),
        in_cluster_plugin("certs", &fake, &sa, tls),
        in_cluster_plugin(
            "plain",
            &fake,
            &sa,
            r#"namespace = "plain", type = "kubernetes.io/tls""#
        ),
        // The demo's "Web TLS certificate" holds `tls.crt` and `tls.key` as two files.
        route("certs", "certs", r#"tags = ["tls"]"#, "files = true"),
        route("plain", "plain", r#"title = "API bundle""#, ""),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");

    let out = opsync_in(dir, &["once"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "two items dead-letter: {shown}");
    for secret in [&leaf, &key, &ca] {
        let body = secret.lines().nth(1).expect("base64 line");
        assert!(
            !shown.contains(body),
            "a file's content in the output: {shown}"
        );
    }

    let web = fake.secret("apps", "web-tls-certificate").expect("web tls");
    assert_eq!(web["type"], "kubernetes.io/tls");
    let (demo_crt, demo_key) = (
        data(&web, "tls.crt").expect("crt"),
        data(&web, "tls.key").expect("key"),
    );
    assert!(
        demo_crt.starts_with("-----BEGIN CERTIFICATE-----\n"),
        "{demo_crt}"
    );
    assert!(
        demo_key.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{demo_key}"
    );
    let api = fake.secret("apps", "api-bundle").expect("bundle tls");
    assert_eq!(
        data(&api, "tls.crt").as_deref(),
        Some(format!("{leaf}{ca}").as_str())
    );
    assert_eq!(data(&api, "tls.key").as_deref(), Some(key.as_str()));

    // Without `files = true` the plugin sees the file but not its content, and says what to set.
    assert!(fake.secrets("plain").is_empty());
    let letters = opsync_in(dir, &["deadletter", "list"]);
    let listed = text(&letters);
    assert!(
        listed.contains("bundle.pem") && listed.contains("set `files = true` on the route"),
        "{listed}"
    );
    assert!(
        listed.contains("the file `huge.pem`") && listed.contains("4194305 bytes"),
        "{listed}"
    );
    assert!(fake.secret("apps", "huge-bundle").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_secrets_need_adopt_conflicts_need_force_and_deletes_follow_on_delete() {
    let server = connect(Seed::Demo).await;
    let client = client(&server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (fake, sa) = cluster(dir, TOKEN, &["strict", "adopting", "keeping"]);
    let foreign = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "orders-database" },
        "type": "Opaque",
        "data": { "password": STANDARD.encode("set-by-hand") }
    });
    fake.put_secret(
        "strict",
        "orders-database",
        "kubectl-create",
        foreign.clone(),
    );
    fake.put_secret("adopting", "orders-database", "kubectl-create", foreign);
    let orders_only = r#"title = "Orders database""#;
    let deletes = r#"on_delete = "delete""#;
    let config = format!(
        "{}{}{}{}{}{}{}",
        base_config(&server, "1s"),
        in_cluster_plugin("strict", &fake, &sa, r#"namespace = "strict""#),
        in_cluster_plugin(
            "adopting",
            &fake,
            &sa,
            r#"namespace = "adopting", adopt = true, force = true"#
        ),
        in_cluster_plugin(
            "keeping",
            &fake,
            &sa,
            r#"namespace = "keeping", on-delete = "keep""#
        ),
        route("strict", "strict", orders_only, deletes),
        route("adopting", "adopting", orders_only, deletes),
        route("keeping", "keeping", orders_only, deletes),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");

    let out = opsync_in(dir, &["once"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one route failed: {}",
        text(&out)
    );
    // Not ours, not adopted: untouched, and the error says why and what to set.
    let strict = fake
        .secret("strict", "orders-database")
        .expect("still there");
    assert_eq!(data(&strict, "password").as_deref(), Some("set-by-hand"));
    let status = opsync_in(dir, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let letters = status["dead_letters"].to_string();
    assert!(letters.contains("adopt"), "{letters}");
    assert!(!letters.contains("set-by-hand"), "{letters}");
    // Adopted, its field taken over by force.
    let adopted = fake.secret("adopting", "orders-database").expect("adopted");
    assert_eq!(
        data(&adopted, "server").as_deref(),
        Some("db.prod.example.internal")
    );
    assert_ne!(data(&adopted, "password").as_deref(), Some("set-by-hand"));
    assert!(fake.secret("keeping", "orders-database").is_some());

    // A deletion: `delete` removes opsync's Secret, `keep` marks it orphaned.
    let (prod, orders) = sync_support::production_item(&client, "Orders database").await;
    client
        .delete_item(&prod, &orders.id)
        .await
        .expect("deleted");
    opsync_in(dir, &["once"]);
    assert!(fake.secret("adopting", "orders-database").is_none());
    let kept = fake.secret("keeping", "orders-database").expect("kept");
    assert_eq!(annotation(&kept, "opsync.io/orphaned"), Some("true"));
    let strict = fake
        .secret("strict", "orders-database")
        .expect("not ours: never deleted");
    assert_eq!(data(&strict, "password").as_deref(), Some("set-by-hand"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rbac_refusal_names_the_rule_and_pauses_instead_of_dead_lettering() {
    let server = connect(Seed::Demo).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // The token may use Secrets in `apps` only.
    let (fake, sa) = cluster(dir, TOKEN, &["apps"]);
    let config = format!(
        "{}{}{}",
        base_config(&server, "1s"),
        in_cluster_plugin("locked", &fake, &sa, r#"namespace = "locked""#),
        route("locked", "locked", r#"title = "Orders database""#, ""),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");

    let out = opsync_in(dir, &["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(fake.secrets("locked").is_empty());
    let status = opsync_in(dir, &["status", "--json"]);
    let report = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        report.contains("forbidden") && report.contains("RBAC"),
        "{report}"
    );
    let status: Value = serde_json::from_str(&report).expect("status JSON");
    assert_eq!(
        status["dead_letters"]["total"].as_u64(),
        Some(0),
        "a refusal waits for the Role to be fixed: {report}"
    );

    // The Role is fixed: the next run delivers.
    fake.allow(
        "system:serviceaccount:opsync:opsync",
        &["get", "create", "patch", "delete"],
        "secrets",
        "locked",
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = opsync_in(dir, &["once"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.secret("locked", "orders-database").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_at_the_api_server_is_repaired_or_reported() {
    let server = connect(Seed::Demo).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (fake, sa) = cluster(dir, TOKEN, &["repairing", "reporting"]);
    let orders_only = r#"title = "Orders database""#;
    let config = format!(
        "{}{}{}{}{}",
        base_config(&server, "500ms"),
        in_cluster_plugin(
            "repairing",
            &fake,
            &sa,
            r#"namespace = "repairing", force = true"#
        ),
        in_cluster_plugin("reporting", &fake, &sa, r#"namespace = "reporting""#),
        route(
            "repairing",
            "repairing",
            orders_only,
            "drift_check = \"1s\"\non_drift = \"repair\""
        ),
        route(
            "reporting",
            "reporting",
            orders_only,
            "drift_check = \"1s\"\non_drift = \"report\""
        ),
    );
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let admin = format!("127.0.0.1:{}", free_port());
    let _daemon = run_daemon(dir, &admin);
    until("the first delivery", async || {
        fake.secret("repairing", "orders-database").is_some()
            && fake.secret("reporting", "orders-database").is_some()
    })
    .await;
    let delivered = fake
        .secret("repairing", "orders-database")
        .expect("delivered");
    let password = data(&delivered, "password").expect("a password");

    // Someone runs `kubectl edit` on both.
    fake.edit_secret_data(
        "repairing",
        "orders-database",
        "password",
        b"edited",
        "kubectl-edit",
    );
    fake.edit_secret_data(
        "reporting",
        "orders-database",
        "password",
        b"edited",
        "kubectl-edit",
    );
    until("the repair", async || {
        fake.secret("repairing", "orders-database")
            .and_then(|s| data(&s, "password"))
            .as_deref()
            == Some(password.as_str())
    })
    .await;
    until("the report", async || {
        sync_support::metrics(&admin).await.contains(
            r#"opsync_drift_detected_total{route="reporting",plugin="reporting",kind="changed"}"#,
        )
    })
    .await;
    let reported = fake.secret("reporting", "orders-database").expect("there");
    assert_eq!(data(&reported, "password").as_deref(), Some("edited"));

    // Deleted by hand: recreated.
    assert!(fake.delete_secret("repairing", "orders-database"));
    until("the recreation", async || {
        fake.secret("repairing", "orders-database").is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_grant_is_named_and_plan_shows_the_secret_names() {
    let server = connect(Seed::Demo).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (fake, sa) = cluster(dir, TOKEN, &["apps"]);
    let config = format!(
        "{}{}{}",
        base_config(&server, "1s"),
        in_cluster_plugin("apps", &fake, &sa, r#"namespace = "apps""#),
        route("apps", "apps", r#"title = "Orders database""#, ""),
    );
    std::fs::write(dir.join("config.toml"), &config).expect("config");
    let plan = opsync_in(dir, &["plan"]);
    let shown = text(&plan);
    assert!(
        shown.contains("names keys with its own template `{{title | slug}}`"),
        "{shown}"
    );
    assert!(fake.secrets("apps").is_empty(), "plan writes nothing");

    std::fs::write(
        sa.dir.join("..data").join("ca.crt"),
        "no certificate here\n",
    )
    .expect("ca");
    let out = opsync_in(dir, &["check-config"]);
    assert!(!out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("grants.tls_ca") && shown.contains("holds no PEM certificate"),
        "{shown}"
    );
    std::fs::remove_file(sa.dir.join("..data").join("ca.crt")).expect("rm");
    let shown = text(&opsync_in(dir, &["check-config"]));
    assert!(
        shown.contains("grants.tls_ca") && shown.contains("cannot read CA bundle"),
        "{shown}"
    );
}
