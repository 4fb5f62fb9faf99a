//! The built-in `splunk-hec` audit sink end to end, through the sandbox, against the HEC fake
//! (tests/sink_fakes/hec.rs): envelopes on the event endpoint with a request channel, `ok` only
//! once `/services/collector/ack` confirms every ack id, and HEC's codes mapped to error kinds.

mod peers;
mod plugin_support;
mod sink_fakes;

use opsync::plugin::FailureKind;
use peers::failure;
use plugin_support::host;
use sink_fakes::{HecFailure, HecFake, audit_sink, daemon_record, http_grant, records};

const TOKEN: &str = "11111111-2222-4333-8444-555555555555";

fn sink(hec: &HecFake, extra: &[(&str, &str)]) -> opsync::plugin::Plugin {
    let url = hec.url();
    let mut pairs = vec![
        ("url", url.as_str()),
        ("token", TOKEN),
        ("ack-poll-ms", "20"),
        ("ack-timeout-ms", "500"),
    ];
    pairs.extend_from_slice(extra);
    audit_sink(&host(), "splunk-hec", &pairs, http_grant(&url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_ok_only_after_every_ack_id_is_confirmed() {
    let hec = HecFake::start(TOKEN).await;
    hec.set_ack_after_polls(2);
    // 2 KiB bodies: 10 records of ~700 bytes make several posts, hence several ack ids.
    let sink = sink(&hec, &[("max-batch-bytes", "2048"), ("index", "security")]);
    sink.ingest(&records(1, 10)).await.expect("ships");
    assert!(
        hec.event_posts() >= 3,
        "split by size: {} posts",
        hec.event_posts()
    );
    assert!(
        hec.ack_polls() >= 3,
        "polled until confirmed: {}",
        hec.ack_polls()
    );
    assert_eq!(hec.channels().len(), 1, "one channel per call");
    let events = hec.events();
    assert_eq!(events.len(), 10, "every record confirmed as indexed");
    let first = &events[0];
    assert_eq!(first["index"], "security");
    assert_eq!(first["sourcetype"], "1password:connect:activity");
    assert_eq!(first["time"], 1_714_564_801.123);
    assert_eq!(first["fields"]["request_id"], "req-00001");
    assert_eq!(
        first["event"]["requestId"], "req-00001",
        "raw by default: {first}"
    );
    assert_eq!(first["event"]["result"], "SUCCESS");
    assert_eq!(hec.documents()[9]["requestId"], "req-00010");

    // Daemon records pass through in any format.
    let sink = self::sink(&hec, &[("format", "ocsf")]);
    sink.ingest(&[daemon_record("opsync-rotate-1", "ROTATE")])
        .await
        .expect("ships");
    let last = hec.events().pop().expect("an event");
    assert_eq!(last["event"]["activity_name"], "ROTATE");
    assert_eq!(last["fields"]["action"], "ROTATE");
    hec.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_acks_are_retryable_within_the_wait() {
    let hec = HecFake::start(TOKEN).await;
    hec.set_failure_mode(HecFailure::NeverAck);
    let started = std::time::Instant::now();
    let (kind, message) = failure(
        sink(&hec, &[])
            .ingest(&records(1, 3))
            .await
            .expect_err("no ack"),
    );
    assert_eq!(kind, FailureKind::Retryable, "{message}");
    assert!(message.contains("/services/collector/ack"), "{message}");
    assert!(
        message.contains("1 ack ids not confirmed within 500 ms"),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(hec.events().is_empty());
    assert_eq!(hec.received().len(), 3, "received but never confirmed");
    assert!(
        (2..=10).contains(&hec.ack_polls()),
        "polled a bounded number of times: {}",
        hec.ack_polls()
    );
    hec.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_codes_map_to_error_kinds_naming_status_and_path() {
    let hec = HecFake::start(TOKEN).await;
    let url = hec.url();

    let wrong = audit_sink(
        &host(),
        "splunk-hec",
        &[("url", &url), ("token", "not-the-token")],
        http_grant(&url),
    );
    let (kind, message) = failure(wrong.ingest(&records(1, 1)).await.expect_err("403"));
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(
        message.contains(&format!(
            "POST {url}/services/collector/event: status 403: Invalid token (code 4)"
        )),
        "{message}"
    );
    assert!(!message.contains("not-the-token"), "{message}");

    hec.set_failure_mode(HecFailure::Busy);
    let (kind, message) = failure(
        sink(&hec, &[])
            .ingest(&records(1, 1))
            .await
            .expect_err("busy"),
    );
    assert_eq!(kind, FailureKind::Retryable, "{message}");
    assert!(
        message.contains("status 503: Server is busy (code 9)"),
        "{message}"
    );

    hec.set_failure_mode(HecFailure::AckDisabled);
    let (kind, message) = failure(
        sink(&hec, &[])
            .ingest(&records(1, 1))
            .await
            .expect_err("ack off"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(
        message.contains("without an ackId, so indexer acknowledgement is off"),
        "{message}"
    );
    // With `ack = false` the same token works: a 200 is taken as delivered.
    hec.set_failure_mode(HecFailure::NoAckIds);
    let before = hec.events().len();
    sink(&hec, &[("ack", "false")])
        .ingest(&records(1, 2))
        .await
        .expect("ships without acks");
    assert_eq!(hec.events().len(), before + 2);
    hec.stop().await;

    let (kind, message) = failure(
        sink_for_dead_peer(&url)
            .ingest(&records(1, 1))
            .await
            .expect_err("down"),
    );
    assert_eq!(kind, FailureKind::Retryable, "{message}");
}

fn sink_for_dead_peer(url: &str) -> opsync::plugin::Plugin {
    audit_sink(
        &host(),
        "splunk-hec",
        &[("url", url), ("token", TOKEN)],
        http_grant(url),
    )
}

#[tokio::test]
async fn a_missing_token_is_misconfigured() {
    let sink = audit_sink(
        &host(),
        "splunk-hec",
        &[("url", "http://127.0.0.1:9")],
        opsync::plugin::Grants::default(),
    );
    let (kind, message) = failure(sink.validate().await.expect_err("no token"));
    assert_eq!(kind, FailureKind::Misconfigured);
    assert!(message.contains("`token` is required"), "{message}");
}

/// The fake itself answers as HEC documents it, so the sink tests above exercise real codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_with_hecs_codes() {
    let hec = HecFake::start(TOKEN).await;
    let client = reqwest::Client::new();
    let url = format!("{}/services/collector/event", hec.url());
    let post = |auth: Option<&str>, channel: Option<&str>, body: &'static str| {
        let mut request = client.post(&url).body(body);
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        if let Some(c) = channel {
            request = request.header("x-splunk-request-channel", c);
        }
        async move {
            let response = request.send().await.expect("the fake answers");
            let status = response.status().as_u16();
            let json: serde_json::Value = response.json().await.expect("JSON");
            (status, json["code"].as_u64(), json)
        }
    };
    let auth = format!("Splunk {TOKEN}");
    let channel = Some("0b7e3f4c-1111-4222-8333-444455556666");
    assert_eq!(post(None, channel, "{}").await.1, Some(2));
    assert_eq!(post(Some("Bearer x"), channel, "{}").await.1, Some(3));
    let (status, code, _) = post(Some("Splunk wrong"), channel, "{}").await;
    assert_eq!((status, code), (403, Some(4)));
    let (status, code, _) = post(Some(&auth), None, r#"{"event":"x"}"#).await;
    assert_eq!((status, code), (400, Some(10)));
    let (status, code, json) = post(Some(&auth), channel, r#"{"event":"a"}{"event":"#).await;
    assert_eq!((status, code), (400, Some(6)));
    assert_eq!(json["invalid-event-number"], 1);
    let (status, code, _) = post(Some(&auth), channel, r#"{"fields":{}}"#).await;
    assert_eq!((status, code), (400, Some(12)));
    let (status, code, json) = post(Some(&auth), channel, r#"{"event":"a"} {"event":"b"}"#).await;
    assert_eq!((status, code), (200, Some(0)));
    assert!(json["ackId"].is_u64(), "{json}");
    hec.stop().await;
}
