//! The admin listener on port 0: `/metrics` passes `promtool check metrics` after real Connect
//! requests and deliveries were recorded, `/healthz` answers, `/readyz` reports each check, and a
//! configured token guards the pages and `/metrics` (unless opened) but never the health checks.
//! (The refusal beyond loopback without a token is unit-tested: test servers bind loopback only.)

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use metrics_exporter_prometheus::PrometheusHandle;
use url::Url;

use opsync::config::ConnectSettings;
use opsync::connect::client::ConnectClient;
use opsync::connect_dev::{DevServer, DevServerOptions};
use opsync::telemetry::{self, AdminOptions, AdminServer, Readiness, names};

/// The recorder of this test binary: installed by the first test that asks, shared by the rest.
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| telemetry::install().expect("no other recorder in this test binary"))
        .clone()
}

async fn admin(readiness: Readiness) -> AdminServer {
    AdminServer::start(
        "127.0.0.1:0".parse().expect("address"),
        AdminOptions::new(recorder()).readiness(readiness),
    )
    .await
    .expect("admin listener starts on port 0")
}

async fn get(server: &AdminServer, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("http://{}{path}", server.addr()))
        .await
        .expect("admin listener answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Runs `promtool check metrics` on `text`; fails the test, naming the setup script, when
/// promtool is not installed.
fn promtool_check(text: &str) -> (bool, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is not installed ({e}); run scripts/setup-system.sh \
             (it installs the Debian package `prometheus`)"
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[tokio::test]
async fn metrics_pass_promtool_and_probes_answer() {
    let connect = DevServer::start(DevServerOptions::default())
        .await
        .expect("connect-dev starts");
    recorder();
    let client = ConnectClient::new(&ConnectSettings::new(
        Url::parse(&connect.base_url()).expect("url"),
        connect.token(),
    ))
    .expect("client");
    // Real requests, so the client's own metrics are in the exposition, errors included.
    let vaults = client.list_vaults(None).await.expect("vaults");
    assert!(!vaults.is_empty());
    let _ = client.get_vault("aaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    // The engine's own metrics, with the labels the daemon uses.
    metrics::counter!(names::DELIVERIES_TOTAL, "route" => "prod", "plugin" => "files",
        "outcome" => "delivered")
    .increment(3);
    metrics::histogram!(names::DELIVERY_LATENCY_SECONDS, "route" => "prod").record(0.42);
    metrics::histogram!(names::POLL_DURATION_SECONDS, "full" => "false").record(0.01);
    metrics::counter!(names::CHANGES_DETECTED_TOTAL, "kind" => "created").increment(2);
    metrics::counter!(names::DEAD_LETTERS_TOTAL, "route" => "prod", "plugin" => "files")
        .increment(1);
    metrics::gauge!(names::CONNECT_TOKEN_EXPIRY_SECONDS).set(3600.0);

    let server = admin(
        Readiness::new()
            .with_check("connect", || Box::pin(async { Ok(()) }))
            .with_check("state", || Box::pin(async { Ok(()) })),
    )
    .await;

    let (status, text) = get(&server, "/metrics").await;
    assert_eq!(status, 200);

    for needle in [
        "# HELP opsync_deliveries_total",
        "# TYPE opsync_deliveries_total counter",
        r#"opsync_deliveries_total{route="prod",plugin="files",outcome="delivered"} 3"#,
        "# TYPE opsync_delivery_latency_seconds histogram",
        r#"opsync_delivery_latency_seconds_bucket{route="prod",le="0.5"} 1"#,
        r#"opsync_connect_requests_total{endpoint="/v1/vaults",method="GET",status="200"}"#,
        r#"status="404""#,
        "opsync_connect_token_expiry_seconds 3600",
        "opsync_build_info{version=",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        !text.contains(connect.token()),
        "the token leaked into /metrics"
    );
    let (ok, report) = promtool_check(&text);
    assert!(
        ok,
        "promtool check metrics failed:\n{report}\n--- exposition:\n{text}"
    );

    assert_eq!(get(&server, "/healthz").await, (200, "ok\n".to_string()));
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "ready\nconnect: ok\nstate: ok\n")
    );

    server.shutdown().await;
    connect.shutdown().await;
}

#[tokio::test]
async fn readyz_names_the_failing_check() {
    let server = admin(
        Readiness::new()
            .with_check("connect", || {
                Box::pin(async { Err("GET /heartbeat: could not connect".to_string()) })
            })
            .with_check("state", || Box::pin(async { Ok(()) })),
    )
    .await;
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready\nconnect: GET /heartbeat: could not connect\nstate: ok\n"
    );
    // Still alive while not ready.
    assert_eq!(get(&server, "/healthz").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn promtool_rejects_a_broken_exposition() {
    // The check is real: a counter without `_total` and a duplicate TYPE line are refused.
    let (ok, report) = promtool_check(
        "# HELP a_counter x\n# TYPE a_counter counter\na_counter 1\n# TYPE a_counter counter\n",
    );
    assert!(!ok, "promtool accepted a broken exposition: {report}");
}

const TOKEN: &str = "admin-token-for-this-test-0123";

/// A listener with a token and one page (`/page`), `/metrics` open or not.
async fn guarded(open_metrics: bool) -> AdminServer {
    let pages = axum::Router::new().route("/page", axum::routing::get(|| async { "the page" }));
    AdminServer::start(
        "127.0.0.1:0".parse().expect("address"),
        AdminOptions::new(recorder())
            .pages(pages)
            .token(Some(TOKEN))
            .open_metrics(open_metrics),
    )
    .await
    .expect("admin listener starts on port 0")
}

async fn get_with(server: &AdminServer, path: &str, auth: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("http://{}{path}", server.addr()));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.expect("admin listener answers")
}

#[tokio::test]
async fn a_configured_token_guards_pages_and_metrics_but_not_health() {
    let server = guarded(false).await;
    for open in ["/healthz", "/readyz"] {
        assert_eq!(get_with(&server, open, None).await.status(), 200, "{open}");
    }
    for path in ["/page", "/metrics"] {
        let refused = get_with(&server, path, None).await;
        assert_eq!(refused.status(), 401, "{path}");
        let challenges: Vec<_> = refused
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer ")),
            "{challenges:?}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic ")),
            "{challenges:?}"
        );
        let body = refused.text().await.expect("body");
        assert!(!body.contains(TOKEN), "{body}");
        let wrong = get_with(&server, path, Some("Bearer admin-token-for-this-test-0124")).await;
        assert_eq!(wrong.status(), 401, "{path}");
        let ok = get_with(&server, path, Some(&format!("Bearer {TOKEN}"))).await;
        assert_eq!(ok.status(), 200, "{path}");
    }
    // A browser's prompt sends Basic: any user name, the token as password.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ops:{TOKEN}"));
    let ok = get_with(&server, "/page", Some(&format!("Basic {basic}"))).await;
    assert_eq!(ok.status(), 200);
    let headers = ok.headers().clone();
    assert_eq!(ok.text().await.expect("body"), "the page");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    server.shutdown().await;
}

#[tokio::test]
async fn open_metrics_serves_metrics_without_the_token_and_still_guards_pages() {
    let server = guarded(true).await;
    assert_eq!(get_with(&server, "/metrics", None).await.status(), 200);
    assert_eq!(get_with(&server, "/page", None).await.status(), 401);
    server.shutdown().await;
}
