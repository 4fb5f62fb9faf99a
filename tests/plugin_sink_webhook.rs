//! The built-in `webhook-audit` sink end to end, through the sandbox, against a local receiver
//! that checks the Standard Webhooks signature on its own (HMAC computed here): one signed POST
//! per batch, the same `webhook-id` on a retry of the batch, statuses mapped to error kinds.

mod peers;
mod plugin_support;
mod sink_fakes;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use opsync::plugin::FailureKind;
use peers::failure;
use plugin_support::host;
use serde_json::Value;
use sha2::Sha256;
use sink_fakes::{Server, audit_sink, daemon_record, http_grant, records};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    inbox.received.lock().expect("inbox").push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    match inbox.status.load(Ordering::SeqCst) {
        0 => StatusCode::OK,
        code => StatusCode::from_u16(code).expect("status"),
    }
}

fn signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_signed_post_and_a_retry_carries_the_same_id() {
    let inbox = Inbox::default();
    let server = Server::start(
        Router::new()
            .route("/hooks/audit", post(receive))
            .with_state(inbox.clone()),
    )
    .await;
    let url = format!("{}/hooks/audit", server.url());
    let sink = audit_sink(
        &host(),
        "webhook-audit",
        &[("url", &url), ("secret", SECRET), ("format", "ecs")],
        http_grant(&server.url()),
    );
    sink.validate().await.expect("valid config");
    let mut batch = records(1, 3);
    batch.push(daemon_record("opsync-deliver-4", "DELIVER"));

    inbox.status.store(503, Ordering::SeqCst);
    let (kind, message) = failure(sink.ingest(&batch).await.expect_err("503"));
    assert_eq!(kind, FailureKind::Retryable, "{message}");
    assert!(
        message.contains(&format!("POST {url}: status 503")),
        "{message}"
    );

    inbox.status.store(0, Ordering::SeqCst);
    sink.ingest(&batch).await.expect("ships");
    let got = inbox.received.lock().expect("inbox").clone();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(
            r.signature,
            signature(&r.id, &r.timestamp, &r.body),
            "verifies"
        );
        assert_ne!(
            r.signature,
            signature(&format!("{}x", r.id), &r.timestamp, &r.body),
            "the check is a real one"
        );
    }
    assert_eq!(got[0].id, got[1].id, "a retry keeps its webhook-id");
    assert!(got[0].id.starts_with("audit_"), "{}", got[0].id);
    let body: Value = serde_json::from_slice(&got[1].body).expect("JSON");
    assert_eq!(body["type"], "audit.batch");
    assert_eq!(body["data"]["format"], "ecs");
    assert_eq!(body["data"]["count"], 4);
    let events = body["data"]["events"].as_array().expect("events");
    assert_eq!(events[0]["event"]["id"], "req-00001");
    assert_eq!(events[3]["event"]["action"], "deliver");

    inbox.status.store(401, Ordering::SeqCst);
    let (kind, message) = failure(sink.ingest(&batch).await.expect_err("401"));
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    inbox.status.store(400, Ordering::SeqCst);
    let (kind, _) = failure(sink.ingest(&batch).await.expect_err("400"));
    assert_eq!(kind, FailureKind::Permanent);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_max_body_bytes_goes_as_several_signed_posts() {
    let inbox = Inbox::default();
    let server = Server::start(
        Router::new()
            .route("/hooks/audit", post(receive))
            .with_state(inbox.clone()),
    )
    .await;
    let url = format!("{}/hooks/audit", server.url());
    let sink = audit_sink(
        &host(),
        "webhook-audit",
        &[
            ("url", &url),
            ("secret", SECRET),
            ("max-body-bytes", "4096"),
        ],
        http_grant(&server.url()),
    );
    sink.ingest(&records(1, 20)).await.expect("ships");
    let got = inbox.received.lock().expect("inbox").clone();
    assert!(got.len() >= 3, "split into {} posts", got.len());
    let mut ids = Vec::new();
    let mut seen = Vec::new();
    for r in &got {
        assert!(r.body.len() <= 4096, "{} bytes", r.body.len());
        assert_eq!(
            r.signature,
            signature(&r.id, &r.timestamp, &r.body),
            "verifies"
        );
        ids.push(r.id.clone());
        let body: Value = serde_json::from_slice(&r.body).expect("JSON");
        for e in body["data"]["events"].as_array().expect("events") {
            seen.push(e["requestId"].as_str().expect("id").to_string());
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each post has its own id");
    let expected: Vec<String> = (1..=20).map(|i| format!("req-{i:05}")).collect();
    assert_eq!(seen, expected, "every record once, in order");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_secret_is_misconfigured_without_echoing_it() {
    let sink = audit_sink(
        &host(),
        "webhook-audit",
        &[("url", "http://127.0.0.1:9/x"), ("secret", "whsec_short!")],
        opsync::plugin::Grants::default(),
    );
    let (kind, message) = failure(sink.validate().await.expect_err("bad secret"));
    assert_eq!(kind, FailureKind::Misconfigured);
    assert!(
        message.contains("`secret` is not a webhook signing secret"),
        "{message}"
    );
    assert!(!message.contains("short!"), "{message}");
}
