//! The Connect client against the embedded server (`DevServer` on port 0): every endpoint,
//! every error class, and that the token never shows.
//!
//! 429 with `Retry-After`, non-JSON error bodies and malformed success bodies are things
//! connect-dev never sends, so a few tests use a tiny axum server that answers just that.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reqwest::Method;
use url::Url;

use opsync::config::ConnectSettings;
use opsync::connect::client::{ConnectClient, ContentRange};
use opsync::connect::error::ConnectError;
use opsync::connect::filter::Filter;
use opsync::connect::model::{Category, FieldType, Item, PatchOp, PatchOpKind};
use opsync::connect::token::Access;
use opsync::connect_dev::{DevServer, DevServerOptions};

const MISSING_ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";

async fn dev_server() -> DevServer {
    DevServer::start(DevServerOptions::default())
        .await
        .expect("connect-dev starts on port 0")
}

fn settings(base: &str, token: &str) -> ConnectSettings {
    ConnectSettings::new(Url::parse(base).expect("base URL parses"), token)
}

fn client_for(base: &str, token: &str) -> ConnectClient {
    ConnectClient::new(&settings(base, token)).expect("client builds")
}

fn client(server: &DevServer) -> ConnectClient {
    client_for(&server.base_url(), server.token())
}

/// Asserts `err` is a `Status` error with this code and a message containing `needle`.
fn assert_status(err: &ConnectError, code: u16, needle: &str) {
    match err {
        ConnectError::Status {
            status, message, ..
        } => {
            assert_eq!(status.as_u16(), code, "{err}");
            assert!(message.contains(needle), "{err}");
        }
        other => panic!("expected a {code} status error, got {other:?}"),
    }
}

/// Asserts neither the error's `Display` nor its `Debug` holds the token.
fn assert_no_token(err: &ConnectError, token: &str) {
    assert!(!err.to_string().contains(token), "token in Display: {err}");
    assert!(!format!("{err:?}").contains(token), "token in Debug");
}

fn new_login(title: &str) -> Item {
    let mut item = Item::new(title, Category::Login);
    item.fields = Some(
        serde_json::from_value(serde_json::json!([
            {"id": "username", "type": "STRING", "purpose": "USERNAME", "label": "username", "value": "ops"},
            {"id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password", "value": "first-secret"},
            {"id": "future", "type": "BRAND_NEW_TYPE", "label": "from a newer server", "value": "x"}
        ]))
        .expect("fields parse"),
    );
    item
}

#[tokio::test]
async fn vaults_list_filter_get_and_find() {
    let server = dev_server().await;
    let client = client(&server);

    let vaults = client.list_vaults(None).await.expect("lists vaults");
    let mut names: Vec<&str> = vaults.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Production", "Shared", "Staging"]);

    let filtered = client
        .list_vaults(Some(&Filter::name_eq("production")))
        .await
        .expect("filters vaults");
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].name, "Production");

    let prod = client.get_vault(&filtered[0].id).await.expect("gets vault");
    assert_eq!(prod.id, filtered[0].id);
    assert!(prod.items > 0);

    let found = client
        .find_vault_by_name("Staging")
        .await
        .expect("finds vault");
    assert_eq!(found.name, "Staging");
    // Connect compares case-insensitively; the lookup insists on the exact name.
    let err = client
        .find_vault_by_name("staging")
        .await
        .expect_err("exact match only");
    assert!(matches!(err, ConnectError::NotFound { .. }), "{err}");
    assert_eq!(err.to_string(), r#"no vault named "staging""#);
    server.shutdown().await;
}

#[tokio::test]
async fn items_create_get_list_replace_patch_delete() {
    let server = dev_server().await;
    let client = client(&server);
    let vault = client
        .find_vault_by_name("Staging")
        .await
        .expect("staging exists")
        .id;

    let created = client
        .create_item(&vault, &new_login("opsync client test"))
        .await
        .expect("creates");
    assert_eq!(created.version, 1);
    assert_eq!(created.vault.id, vault);
    assert!(opsync::connect::model::is_connect_id(&created.id));
    // A field type this opsync does not know survives the round trip.
    let future = created.field("future").expect("unknown-typed field kept");
    assert_eq!(
        future.field_type,
        FieldType::Other("BRAND_NEW_TYPE".to_owned())
    );

    let fetched = client.get_item(&vault, &created.id).await.expect("gets");
    assert_eq!(
        fetched
            .field("password")
            .and_then(|f| f.value.as_ref())
            .map(|v| v.expose()),
        Some("first-secret")
    );

    let listed = client
        .list_items(&vault, Some(&Filter::title_eq("opsync client test")))
        .await
        .expect("lists with a filter");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].fields.is_none(), "list returns summaries");

    let mut replacement = fetched.clone();
    replacement.title = "opsync client test (renamed)".to_owned();
    let replaced = client
        .replace_item(&vault, &created.id, &replacement)
        .await
        .expect("replaces");
    assert_eq!(replaced.title, "opsync client test (renamed)");
    assert_eq!(replaced.version, 2);

    let patched = client
        .patch_item(
            &vault,
            &created.id,
            &[PatchOp {
                op: PatchOpKind::Replace,
                path: "/fields/password/value".to_owned(),
                value: Some(serde_json::json!("second-secret")),
            }],
        )
        .await
        .expect("patches");
    assert_eq!(patched.version, 3);
    let by_title = client
        .find_item_by_title(&vault, "opsync client test (renamed)")
        .await
        .expect("finds by title");
    assert_eq!(
        by_title
            .field("password")
            .and_then(|f| f.value.as_ref())
            .map(|v| v.expose()),
        Some("second-secret")
    );

    client
        .delete_item(&vault, &created.id)
        .await
        .expect("deletes");
    let err = client
        .get_item(&vault, &created.id)
        .await
        .expect_err("gone after delete");
    assert_status(&err, 404, "not found");
    assert!(!err.is_retryable());
    server.shutdown().await;
}

#[tokio::test]
async fn files_list_get_inline_and_content() {
    let server = dev_server().await;
    let client = client(&server);
    let vault = client
        .find_vault_by_name("Production")
        .await
        .expect("production exists")
        .id;
    let item = client
        .find_item_by_title(&vault, "Web TLS certificate")
        .await
        .expect("demo item exists");

    let files = client
        .list_files(&vault, &item.id, false)
        .await
        .expect("lists files");
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.content.is_none()));
    let crt = files
        .iter()
        .find(|f| f.name == "tls.crt")
        .expect("tls.crt listed");
    let expected = b"-----BEGIN CERTIFICATE-----\nb3BzeW5jIGRlbW86IGEgZmFrZSBjZXJ0aWZpY2F0ZSBmb3Igd3d3LmV4YW1wbGUu\nY29tLCBub3QgYSByZWFsIG9uZQ==\n-----END CERTIFICATE-----\n";
    assert_eq!(crt.size, expected.len() as u64);
    assert_eq!(
        crt.content_path.as_deref(),
        Some(
            format!(
                "/v1/vaults/{vault}/items/{}/files/{}/content",
                item.id, crt.id
            )
            .as_str()
        )
    );

    let inlined = client
        .list_files(&vault, &item.id, true)
        .await
        .expect("lists inline");
    assert!(inlined.iter().all(|f| f.content.is_some()));

    let one = client
        .get_file(&vault, &item.id, &crt.id, true)
        .await
        .expect("gets file inline");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(one.content.as_ref().expect("inlined").expose())
        .expect("base64 content");
    assert_eq!(decoded, expected);
    let plain = client
        .get_file(&vault, &item.id, &crt.id, false)
        .await
        .expect("gets file");
    assert!(plain.content.is_none());

    let bytes = client
        .get_file_content(&vault, &item.id, &crt.id)
        .await
        .expect("downloads content");
    assert_eq!(bytes, expected);

    let err = client
        .get_file_content(&vault, &item.id, MISSING_ID)
        .await
        .expect_err("unknown file");
    assert_status(&err, 404, "not found");
    server.shutdown().await;
}

#[tokio::test]
async fn activity_pages_carry_content_range() {
    let server = dev_server().await;
    let client = client(&server);
    for _ in 0..3 {
        client.list_vaults(None).await.expect("lists vaults");
    }
    let page = client.activity(2, 0).await.expect("reads activity");
    assert_eq!(page.records.len(), 2);
    let range = page.range.expect("Content-Range parsed");
    assert_eq!((range.start, range.end), (1, 2));
    let total = range.total.expect("a total");
    assert!(total >= 3, "{range:?}");

    let next = client.activity(2, 2).await.expect("reads the next page");
    let next_range = next.range.expect("Content-Range parsed");
    assert_eq!((next_range.start, next_range.end), (3, total.min(4)));
    assert_ne!(page.records[0].request_id, next.records[0].request_id);
    server.shutdown().await;
}

#[tokio::test]
async fn heartbeat_health_and_metrics() {
    let server = dev_server().await;
    let client = client(&server);
    client.heartbeat().await.expect("heartbeat");
    let health = client.health().await.expect("health");
    assert!(!health.name.is_empty());
    assert!(!health.version.is_empty());
    let text = client.metrics().await.expect("metrics");
    assert!(text.contains("# TYPE"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn permanent_errors_keep_method_path_status_and_message() {
    let server = dev_server().await;
    let full = client(&server);
    let prod = full
        .find_vault_by_name("Production")
        .await
        .expect("prod")
        .id;
    let staging = full
        .find_vault_by_name("Staging")
        .await
        .expect("staging")
        .id;

    // 400: a malformed id, percent-encoded in the path.
    let err = full.get_vault("not an id").await.expect_err("400");
    assert_status(&err, 400, "Invalid Vault UUID");
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("GET /v1/vaults/not%20an%20id: 400 Bad Request: "),
        "{err}"
    );
    // A slash in an id stays inside its segment.
    let err = full.get_item(&prod, "a/b").await.expect_err("400");
    assert_status(&err, 400, "Invalid Item UUID");
    assert!(err.to_string().contains("/items/a%2Fb"), "{err}");

    // 404, with the exact Display form.
    let err = full.get_item(&prod, MISSING_ID).await.expect_err("404");
    assert_eq!(
        err.to_string(),
        format!(
            "GET /v1/vaults/{prod}/items/{MISSING_ID}: 404 Not Found: item {MISSING_ID} not found"
        )
    );
    assert!(!err.is_retryable());

    // 401: a token the server cannot read.
    let bad_token = "not-a-jwt-but-still-secret";
    let err = client_for(&server.base_url(), bad_token)
        .list_vaults(None)
        .await
        .expect_err("401");
    assert_status(&err, 401, "");
    assert!(!err.is_retryable());
    assert_no_token(&err, bad_token);

    // 403 and 401 with a read-only token for one vault.
    let read_only = server
        .mint_token(&[("Production".to_owned(), Access::Read)], None)
        .expect("mints");
    let narrow = client_for(&server.base_url(), &read_only);
    let err = narrow.get_vault(&staging).await.expect_err("403");
    assert_status(&err, 403, "not in scope");
    assert!(!err.is_retryable());
    assert_no_token(&err, &read_only);
    let err = narrow
        .create_item(&prod, &new_login("not allowed"))
        .await
        .expect_err("401 on write");
    assert_status(&err, 401, "write access");
    match &err {
        ConnectError::Status { method, path, .. } => {
            assert_eq!(method, Method::POST);
            assert_eq!(path, &format!("/v1/vaults/{prod}/items"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_no_token(&err, &read_only);
    server.shutdown().await;
}

#[tokio::test]
async fn retryable_errors_5xx_timeout_and_refused() {
    let server = dev_server().await;
    let token = server.token().to_owned();

    server.set_faults(Duration::ZERO, 1.0);
    let err = client(&server).list_vaults(None).await.expect_err("500");
    assert_status(&err, 500, "Something went wrong");
    assert!(err.is_retryable());
    assert_no_token(&err, &token);

    server.set_faults(Duration::from_millis(800), 0.0);
    let mut impatient = settings(&server.base_url(), &token);
    impatient.timeout = Duration::from_millis(150);
    let err = ConnectClient::new(&impatient)
        .expect("client builds")
        .list_vaults(None)
        .await
        .expect_err("times out");
    assert!(matches!(err, ConnectError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "GET /v1/vaults: timed out after 150ms");
    assert_no_token(&err, &token);
    server.set_faults(Duration::ZERO, 0.0);
    server.shutdown().await;

    // Nothing listens on a port we just released.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("has an address")
    };
    let err = client_for(&format!("http://{closed}"), &token)
        .heartbeat()
        .await
        .expect_err("refused");
    assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("GET /heartbeat: could not connect"),
        "{err}"
    );
    assert_no_token(&err, &token);
}

/// Answers what connect-dev never does: 429 and 503 with `Retry-After`, HTML error pages,
/// success bodies of the wrong shape, and a unit-prefixed `Content-Range`.
async fn odd_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/v1/vaults",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "7")],
                    axum::Json(serde_json::json!({"status": 429, "message": "slow down"})),
                )
            }),
        )
        .route(
            "/v1/vaults/{vault}",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "Fri, 01 Jan 2100 00:00:00 GMT")],
                    "<html><body>upstream unavailable</body></html>",
                )
            }),
        )
        .route(
            "/v1/vaults/{vault}/items",
            get(|| async { axum::Json(serde_json::json!([{"id": "x", "title": "no category"}])) }),
        )
        .route(
            "/v1/activity",
            get(|headers: HeaderMap| async move {
                let authorised = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    == Some("Bearer odd-token");
                let status = if authorised {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                };
                (
                    status,
                    [(header::CONTENT_RANGE, "items 0-0/0")],
                    axum::Json(serde_json::json!([])),
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("has an address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

#[tokio::test]
async fn rate_limits_html_errors_and_bad_bodies() {
    let (addr, task) = odd_server().await;
    let client = client_for(&format!("http://{addr}"), "odd-token");

    let err = client.list_vaults(None).await.expect_err("429");
    assert_status(&err, 429, "slow down");
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

    let err = client.get_vault(MISSING_ID).await.expect_err("503");
    assert_status(&err, 503, "upstream unavailable");
    assert!(err.is_retryable());
    let wait = err.retry_after().expect("HTTP-date Retry-After parsed");
    assert!(wait > Duration::from_secs(365 * 24 * 3600), "{wait:?}");

    let err = client
        .list_items(MISSING_ID, None)
        .await
        .expect_err("missing category");
    match &err {
        ConnectError::Decode { detail, path, .. } => {
            assert_eq!(path, &format!("/v1/vaults/{MISSING_ID}/items"));
            assert!(detail.contains("a list of items"), "{detail}");
            assert!(detail.contains("[0]"), "{detail}");
            assert!(detail.contains("category"), "{detail}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(!err.is_retryable());

    let page = client.activity(10, 0).await.expect("empty page");
    assert!(page.records.is_empty());
    assert_eq!(
        page.range,
        Some(ContentRange {
            start: 0,
            end: 0,
            total: Some(0)
        })
    );
    task.abort();
}

#[tokio::test]
async fn the_token_never_shows_in_debug() {
    let server = dev_server().await;
    let client = client(&server);
    let dbg = format!("{client:?}");
    assert!(!dbg.contains(server.token()), "{dbg}");
    let settings = settings(&server.base_url(), server.token());
    assert!(!format!("{settings:?}").contains(server.token()));
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_hosts_and_tokens_are_refused_up_front() {
    let err = ConnectClient::new(&settings("ftp://example.com", "t")).expect_err("scheme");
    assert!(matches!(err, ConnectError::InvalidHost { .. }), "{err}");
    let err = ConnectClient::new(&settings("http://user:hunter2@example.com", "t"))
        .expect_err("credentials");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = ConnectClient::new(&settings("http://example.com", "line\nbreak"))
        .expect_err("header-unsafe token");
    assert!(matches!(err, ConnectError::InvalidToken));
    assert!(!err.to_string().contains("line"));
}

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("the only global recorder in this test binary")
    })
}

#[tokio::test]
async fn requests_are_counted_by_route_template_not_id() {
    let handle = recorder();
    let server = dev_server().await;
    let client = client(&server);
    let vault = client
        .find_vault_by_name("Shared")
        .await
        .expect("shared")
        .id;
    client.get_vault(&vault).await.expect("gets vault");
    let _ = client.get_item(&vault, MISSING_ID).await;

    let text = handle.render();
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("opsync_connect_"))
        .collect();
    assert!(
        ours.iter().any(|l| l.starts_with(
            r#"opsync_connect_requests_total{endpoint="/v1/vaults/{vault}",method="GET",status="200"}"#
        )),
        "{text}"
    );
    assert!(
        ours.iter().any(|l| l.starts_with(
            r#"opsync_connect_requests_total{endpoint="/v1/vaults/{vault}/items/{item}",method="GET",status="404"}"#
        )),
        "{text}"
    );
    assert!(
        ours.iter()
            .any(|l| l.starts_with("opsync_connect_request_duration_seconds")),
        "{text}"
    );
    for line in &ours {
        assert!(!line.contains(&vault), "an id in a label: {line}");
        assert!(!line.contains(MISSING_ID), "an id in a label: {line}");
    }
    server.shutdown().await;
}
