//! Plugin network access through wasi:http: the allow-list, redirects re-checked hop by hop, the
//! per-call request budget and the response size cap, against a local HTTP server.

mod plugin_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use opsync::plugin::{ChangeKind, FailureKind, Grants, HttpPolicy, Limits, PluginError};
use plugin_support::{event, guest_spec, host, item, tight_limits};

struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn server() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/ok",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "fine" }
            }),
        )
        .route(
            "/to-other-host",
            get(move || async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("http://localhost:{port}/ok"))],
                )
                    .into_response()
            }),
        )
        .route(
            "/to-same-host",
            get(move || async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("http://127.0.0.1:{port}/ok"))],
                )
                    .into_response()
            }),
        )
        .route("/big", get(|| async { "y".repeat(64 << 10) }));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Server {
        port,
        hits,
        shutdown: Some(tx),
    }
}

fn grants(port: u16) -> Grants {
    Grants {
        http: HttpPolicy {
            allowed: vec![format!("http://127.0.0.1:{port}").parse().expect("rule")],
            tls: None,
        },
        ..Grants::default()
    }
}

async fn run(
    mode: &str,
    url: String,
    limits: Limits,
    grants: Grants,
) -> Result<opsync::plugin::Receipt, PluginError> {
    let host = host();
    let plugin = host
        .load(guest_spec(
            "fetcher",
            &[("mode", mode), ("url", &url)],
            limits,
            grants,
        ))
        .expect("loads");
    plugin.deliver(&event(item("x"), ChangeKind::Updated)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_is_reached() {
    let s = server().await;
    let receipt = run(
        "http",
        format!("http://127.0.0.1:{}/ok", s.port),
        tight_limits(),
        grants(s.port),
    )
    .await
    .expect("allowed");
    assert_eq!(receipt.location, "status 200 (4 bytes)");
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_in_the_allow_list_is_denied() {
    let s = server().await;
    for url in [
        format!("http://localhost:{}/ok", s.port),
        format!("http://127.0.0.1:{}/ok", s.port + 1),
    ] {
        let err = run("http", url.clone(), tight_limits(), grants(s.port))
            .await
            .expect_err("denied");
        assert!(
            matches!(&err, PluginError::Failed { failure, .. } if failure.kind == FailureKind::Retryable),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("plugin `fetcher`"), "{text}");
        assert!(text.contains("HttpRequestDenied"), "{url}: {text}");
    }
    // Without any grant, even the server's own address is out of reach.
    let err = run(
        "http",
        format!("http://127.0.0.1:{}/ok", s.port),
        tight_limits(),
        Grants::default(),
    )
    .await
    .expect_err("no grant");
    assert!(err.to_string().contains("HttpRequestDenied"), "{err}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_host_not_allowed_is_denied_at_the_next_hop() {
    let s = server().await;
    let err = run(
        "redirect",
        format!("http://127.0.0.1:{}/to-other-host", s.port),
        tight_limits(),
        grants(s.port),
    )
    .await
    .expect_err("second hop denied");
    let text = err.to_string();
    assert!(text.contains("following redirect"), "{text}");
    assert!(text.contains("HttpRequestDenied"), "{text}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 0);

    let receipt = run(
        "redirect",
        format!("http://127.0.0.1:{}/to-same-host", s.port),
        tight_limits(),
        grants(s.port),
    )
    .await
    .expect("allowed hop");
    assert_eq!(receipt.location, "followed to status 200");
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_budget_of_a_call_is_enforced() {
    let s = server().await;
    let limits = Limits {
        http_requests_per_call: 1,
        ..tight_limits()
    };
    let err = run(
        "redirect",
        format!("http://127.0.0.1:{}/to-same-host", s.port),
        limits,
        grants(s.port),
    )
    .await
    .expect_err("second request over budget");
    assert!(err.to_string().contains("HttpRequestDenied"), "{err}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_over_the_limit_fails_the_read() {
    let s = server().await;
    let url = format!("http://127.0.0.1:{}/big", s.port);
    let receipt = run("http", url.clone(), tight_limits(), grants(s.port))
        .await
        .expect("under the default limit");
    assert_eq!(receipt.location, format!("status 200 ({} bytes)", 64 << 10));
    let limits = Limits {
        http_response_body_bytes: 1024,
        ..tight_limits()
    };
    let err = run("http", url, limits, grants(s.port))
        .await
        .expect_err("body over the limit");
    assert!(err.to_string().contains("reading the body"), "{err}");
}
