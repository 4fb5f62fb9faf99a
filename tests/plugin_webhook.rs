//! The built-in `webhook` destination end to end, through the sandbox, against a local receiver
//! that checks the Standard Webhooks signature on its own (HMAC computed here).

mod peers;
mod plugin_support;

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
use opsync::plugin::{ChangeKind, FailureKind, ItemEvent, Plugin};
use peers::{destination, failure};
use plugin_support::{event, host, item};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Clone, Default)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    /// The status to answer with (0: 200).
    status: Arc<AtomicU16>,
}

impl Inbox {
    fn all(&self) -> Vec<Received> {
        self.received.lock().expect("inbox lock").clone()
    }
}

struct Receiver {
    port: u16,
    inbox: Inbox,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    inbox.received.lock().expect("inbox lock").push(Received {
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

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/hooks/opsync", post(receive))
        .with_state(inbox.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Receiver {
        port,
        inbox,
        shutdown: Some(tx),
    }
}

/// The signature a receiver expects, computed independently of the plugin.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn verify(r: &Received) {
    assert_eq!(
        r.signature,
        expected_signature(SECRET, &r.id, &r.timestamp, &r.body),
        "the signature verifies"
    );
    let sent: i64 = r.timestamp.parse().expect("Unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - sent).abs() < 120,
        "timestamp {sent} is about now ({now})"
    );
}

fn webhook(r: &Receiver, extra: &[(&str, &str)]) -> Plugin {
    let url = format!("http://127.0.0.1:{}/hooks/opsync", r.port);
    let mut pairs = vec![("url", url.as_str()), ("secret", SECRET)];
    pairs.extend_from_slice(extra);
    destination(
        &host(),
        "webhook",
        &pairs,
        &format!("http://127.0.0.1:{}", r.port),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_a_signed_json_event_and_replays_carry_the_same_id() {
    let r = receiver().await;
    let plugin = webhook(&r, &[]);
    plugin.validate().await.expect("valid config");
    let ev = event(item("db"), ChangeKind::Created);
    let receipt = plugin.deliver(&ev).await.expect("delivered");
    assert!(!receipt.unchanged);
    assert!(receipt.location.contains("Prod/db"), "{}", receipt.location);

    let got = r.inbox.all();
    assert_eq!(got.len(), 1);
    let first = &got[0];
    verify(first);
    assert_eq!(first.id, ev.idempotency_key);
    let body = first.json();
    assert_eq!(body["type"], "item.created");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    let data = &body["data"];
    assert_eq!(data["name"], "Prod/db");
    assert_eq!(data["kind"], "created");
    assert_eq!(data["idempotency_key"], ev.idempotency_key.as_str());
    assert_eq!(data["item"]["id"], ev.item.id.as_str());
    assert_eq!(data["item"]["version"], 3);
    assert_eq!(data["item"]["vault"]["name"], "Prod");
    assert!(
        data["item"].get("fields").is_none(),
        "no values in the summary"
    );
    assert_eq!(
        data["values"],
        json!({ "username": "alice", "password": "hunter2-s3cret" })
    );

    // A replay of the same (item, version) carries the same webhook-id, so the receiver can
    // drop it; it is signed afresh.
    plugin.deliver(&ev).await.expect("replayed");
    let got = r.inbox.all();
    assert_eq!(got.len(), 2);
    verify(&got[1]);
    assert_eq!(got[1].id, first.id);

    // A different key does not verify: the check above is a real one.
    assert_ne!(
        first.signature,
        expected_signature(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &first.id,
            &first.timestamp,
            &first.body
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_fields_and_the_whole_item_as_one_document() {
    let r = receiver().await;
    let listed = webhook(&r, &[("fields", "password"), ("name", "prod/{{title}}")]);
    listed
        .deliver(&event(item("db"), ChangeKind::Updated))
        .await
        .expect("delivered");
    let whole = webhook(&r, &[("format", "item-json")]);
    whole
        .deliver(&event(item("db"), ChangeKind::Updated))
        .await
        .expect("delivered");
    let got = r.inbox.all();
    assert_eq!(got.len(), 2);
    got.iter().for_each(verify);
    let listed = got[0].json();
    assert_eq!(listed["data"]["name"], "prod/db");
    assert_eq!(
        listed["data"]["values"],
        json!({ "password": "hunter2-s3cret" })
    );
    let whole = got[1].json();
    assert!(whole["data"].get("values").is_none());
    let doc = &whole["data"]["item"];
    assert_eq!(doc["title"], "db");
    assert_eq!(doc["category"], "LOGIN");
    assert_eq!(doc["tags"], json!(["prod"]));
    assert_eq!(
        doc["fields"],
        json!({ "username": "alice", "password": "hunter2-s3cret" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_are_sent_without_values_or_skipped_when_told() {
    let r = receiver().await;
    let ev = event(item("db"), ChangeKind::Deleted);
    webhook(&r, &[]).deliver(&ev).await.expect("sent");
    let got = r.inbox.all();
    assert_eq!(got.len(), 1);
    verify(&got[0]);
    let body = got[0].json();
    assert_eq!(body["type"], "item.deleted");
    assert!(body["data"].get("values").is_none());
    assert_eq!(body["data"]["item"]["id"], ev.item.id.as_str());

    let receipt = webhook(&r, &[("on-delete", "skip")])
        .deliver(&ev)
        .await
        .expect("skipped");
    assert!(receipt.unchanged);
    assert_eq!(r.inbox.all().len(), 1, "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_statuses_decide_retry_dead_letter_or_stop() {
    let r = receiver().await;
    let plugin = webhook(&r, &[]);
    let ev: ItemEvent = event(item("db"), ChangeKind::Updated);
    for (status, kind) in [
        (500, FailureKind::Retryable),
        (503, FailureKind::Retryable),
        (429, FailureKind::Retryable),
        (400, FailureKind::Permanent),
        (410, FailureKind::Permanent),
        (401, FailureKind::Misconfigured),
        (403, FailureKind::Misconfigured),
    ] {
        r.inbox.status.store(status, Ordering::SeqCst);
        let (got, message) = failure(plugin.deliver(&ev).await.expect_err("refused"));
        assert_eq!(got, kind, "status {status}: {message}");
        assert!(message.contains(&status.to_string()), "{message}");
        assert!(
            !message.contains("hunter2"),
            "no values in errors: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_outside_the_grant_is_refused_by_the_host() {
    let r = receiver().await;
    let other = receiver().await;
    let url = format!("http://127.0.0.1:{}/hooks/opsync", r.port);
    let plugin = destination(
        &host(),
        "webhook",
        &[("url", &url), ("secret", SECRET)],
        &format!("http://127.0.0.1:{}", other.port),
    );
    let (kind, message) = failure(
        plugin
            .deliver(&event(item("db"), ChangeKind::Created))
            .await
            .expect_err("not granted"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("allowed hosts"), "{message}");
    assert!(r.inbox.all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_misconfigured() {
    let host = host();
    let allowed = "http://127.0.0.1:9";
    for pairs in [
        &[("secret", SECRET)][..],
        &[("url", "http://127.0.0.1:9/x")][..],
        &[("url", "127.0.0.1:9"), ("secret", SECRET)][..],
        &[("url", "http://127.0.0.1:9/x"), ("secret", "not-base64!")][..],
        &[
            ("url", "http://127.0.0.1:9/x"),
            ("secret", SECRET),
            ("colour", "blue"),
        ][..],
        &[
            ("url", "http://127.0.0.1:9/x"),
            ("secret", SECRET),
            ("format", "raw"),
        ][..],
        &[
            ("url", "http://127.0.0.1:9/x"),
            ("secret", SECRET),
            ("name", "{{nope}}"),
        ][..],
        &[
            ("url", "http://127.0.0.1:9/x"),
            ("secret", SECRET),
            ("on-delete", "maybe"),
        ][..],
    ] {
        let plugin = destination(&host, "webhook", pairs, allowed);
        let (kind, message) = failure(plugin.validate().await.expect_err("invalid"));
        assert_eq!(kind, FailureKind::Misconfigured, "{pairs:?}: {message}");
        assert!(
            !message.contains("MfKQ9r8"),
            "no secret in errors: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_whole_and_bodies_past_the_limit_are_refused() {
    let r = receiver().await;
    let plugin = webhook(&r, &[]);
    let mut big = item("db");
    let value = "v".repeat(300 << 10);
    if let Some(f) = big.fields.as_mut().and_then(|f| f.get_mut(1)) {
        f.value = Some(plugin_support::secret(&value));
    }
    plugin
        .deliver(&event(big.clone(), ChangeKind::Updated))
        .await
        .expect("delivered");
    let got = r.inbox.all();
    assert_eq!(got.len(), 1);
    verify(&got[0]);
    assert_eq!(got[0].json()["data"]["values"]["password"], value.as_str());

    // Past the plugin's request body limit (1 MiB by default) the host refuses to send it.
    let value = "v".repeat(2 << 20);
    if let Some(f) = big.fields.as_mut().and_then(|f| f.get_mut(1)) {
        f.value = Some(plugin_support::secret(&value));
    }
    let (kind, message) = failure(
        plugin
            .deliver(&event(big, ChangeKind::Updated))
            .await
            .expect_err("too big"),
    );
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(message.contains("size limit"), "{message}");
    assert_eq!(r.inbox.all().len(), 1, "nothing more arrived");
}
