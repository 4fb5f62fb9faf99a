//! The built-in `elasticsearch` audit sink end to end, through the sandbox, against the `_bulk`
//! fake (tests/sink_fakes/es.rs): `create` with `_id` = request id, only 429/5xx items re-sent,
//! 409 counted as delivered, and errors that name the status and path.

mod peers;
mod plugin_support;
mod sink_fakes;

use opsync::plugin::{FailureKind, Grants};
use peers::failure;
use plugin_support::host;
use sink_fakes::{EsFailure, EsFake, audit_sink, daemon_record, http_grant, records};

const INDEX: &str = "logs-onepassword_connect.activity-default";

fn ids(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("req-{i:05}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_201_409_429_resends_only_the_failed_items_and_never_duplicates() {
    let es = EsFake::start(Some("key-1")).await;
    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[
            ("url", &es.url()),
            ("api-key", "key-1"),
            ("retry-backoff-ms", "10"),
        ],
        http_grant(&es.url()),
    );
    let batch = records(1, 4);
    // req-00002 is already stored (409 next time); 00003 gets a 429 once, 00004 a 503 once.
    sink.ingest(&batch[1..2]).await.expect("first record ships");
    es.script_item("req-00003", &[429]);
    es.script_item("req-00004", &[503]);

    sink.ingest(&batch).await.expect("the batch ships");
    assert_eq!(
        es.requests(),
        [ids(2..=2), ids(1..=4), ids(3..=4)],
        "only the 429/5xx items are sent again"
    );
    let docs = es.documents();
    assert_eq!(docs.len(), 4);
    let doc = &docs[&(INDEX.to_string(), "req-00001".to_string())];
    assert_eq!(doc["event"]["id"], "req-00001", "ECS by default: {doc}");
    assert_eq!(doc["event"]["action"], "item-update");
    assert_eq!(doc["source"]["ip"], "192.0.2.7");

    // A replay of the whole batch (a crash before the cursor moved) creates nothing new.
    sink.ingest(&batch)
        .await
        .expect("the replay is acknowledged");
    assert_eq!(es.documents().len(), 4);
    assert_eq!(es.requests().len(), 4);
    assert_eq!(es.requests()[3], ids(1..=4));
    es.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_still_throttled_after_the_retries_make_the_batch_retryable() {
    let es = EsFake::start(None).await;
    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[
            ("url", &es.url()),
            ("max-retries", "2"),
            ("retry-backoff-ms", "5"),
        ],
        http_grant(&es.url()),
    );
    es.script_item("req-00002", &[429, 429, 429, 429]);
    let err = sink.ingest(&records(1, 3)).await.expect_err("throttled");
    let (kind, message) = failure(err);
    assert_eq!(kind, FailureKind::Retryable, "{message}");
    assert!(message.contains("to-elasticsearch"), "{message}");
    assert!(
        message.contains("1 of 3 records not acknowledged after 3 attempts"),
        "{message}"
    );
    assert!(message.contains("/_bulk"), "{message}");
    assert!(
        message.contains("record req-00002 answered status 429"),
        "{message}"
    );
    assert_eq!(
        es.requests(),
        [ids(1..=3), ids(2..=2), ids(2..=2)],
        "bounded: three attempts, the later ones only for the throttled item"
    );
    // The host retries the batch later: the stored two come back 409, the third is created.
    sink.ingest(&records(1, 3)).await.expect("the retry ships");
    assert_eq!(es.documents().len(), 3);
    es.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_document_is_permanent_and_names_the_record() {
    let es = EsFake::start(None).await;
    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[("url", &es.url()), ("format", "ocsf")],
        http_grant(&es.url()),
    );
    es.script_item("req-00002", &[400]);
    let (kind, message) = failure(sink.ingest(&records(1, 3)).await.expect_err("rejected"));
    assert_eq!(kind, FailureKind::Permanent, "{message}");
    assert!(
        message.contains("record req-00002 status 400: mapper_parsing_exception"),
        "{message}"
    );
    assert_eq!(es.documents().len(), 2, "the other records are stored");
    let doc = &es.documents()[&(INDEX.to_string(), "req-00001".to_string())];
    assert_eq!(doc["class_uid"], 6003, "OCSF when asked: {doc}");
    es.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_level_failures_map_to_error_kinds_naming_status_and_path() {
    let es = EsFake::start(Some("right")).await;
    let load = |key: &str, retries: &str| {
        audit_sink(
            &host(),
            "elasticsearch",
            &[
                ("url", &es.url()),
                ("api-key", key),
                ("max-retries", retries),
                ("retry-backoff-ms", "5"),
            ],
            http_grant(&es.url()),
        )
    };
    let (kind, message) = failure(
        load("wrong", "3")
            .ingest(&records(1, 1))
            .await
            .expect_err("403"),
    );
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(
        message.contains(&format!("POST {}/_bulk: status 403", es.url())),
        "{message}"
    );
    assert!(message.contains("security_exception"), "{message}");
    assert!(
        !message.contains("wrong"),
        "the key stays out of messages: {message}"
    );

    es.set_failure_mode(EsFailure::Status(503));
    let (kind, message) = failure(
        load("right", "1")
            .ingest(&records(1, 1))
            .await
            .expect_err("503"),
    );
    assert_eq!(kind, FailureKind::Retryable, "{message}");
    assert!(message.contains("status 503"), "{message}");
    assert!(es.documents().is_empty());

    es.set_failure_mode(EsFailure::None);
    load("right", "1")
        .ingest(&records(1, 1))
        .await
        .expect("ships once the peer recovers");
    assert_eq!(es.documents().len(), 1);
    es.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_records_pass_through_and_a_dead_peer_is_retryable() {
    let es = EsFake::start(None).await;
    let url = es.url();
    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[
            ("url", &url),
            ("retry-backoff-ms", "5"),
            ("max-retries", "1"),
        ],
        http_grant(&url),
    );
    sink.ingest(&[daemon_record("opsync-dead-letter-1", "DEAD_LETTER")])
        .await
        .expect("ships");
    let docs = es.documents();
    let doc = &docs[&(INDEX.to_string(), "opsync-dead-letter-1".to_string())];
    assert_eq!(doc["event"]["action"], "dead_letter");
    assert_eq!(doc["onepassword"]["connect"]["action"], "DEAD_LETTER");
    es.stop().await;

    let (kind, message) = failure(sink.ingest(&records(1, 1)).await.expect_err("peer down"));
    assert_eq!(kind, FailureKind::Retryable, "{message}");
}

#[tokio::test]
async fn bad_config_and_missing_grants_are_misconfigured() {
    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[("url", "http://127.0.0.1:9"), ("format", "xml")],
        Grants::default(),
    );
    let (kind, message) = failure(sink.validate().await.expect_err("bad format"));
    assert_eq!(kind, FailureKind::Misconfigured);
    assert!(
        message.contains("`format` is `xml`, not one of raw, ocsf, ecs"),
        "{message}"
    );

    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[("url", "http://127.0.0.1:9")],
        Grants::default(),
    );
    let (kind, message) = failure(sink.ingest(&records(1, 1)).await.expect_err("no grant"));
    assert_eq!(kind, FailureKind::Misconfigured, "{message}");
    assert!(message.contains("allowed hosts"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_max_bulk_bytes_goes_in_several_requests_each_record_once() {
    let es = EsFake::start(None).await;
    let sink = audit_sink(
        &host(),
        "elasticsearch",
        &[
            ("url", &es.url()),
            ("max-bulk-bytes", "4096"),
            ("retry-backoff-ms", "5"),
        ],
        http_grant(&es.url()),
    );
    es.script_item("req-00010", &[429]);
    sink.ingest(&records(1, 12)).await.expect("ships");
    let requests = es.requests();
    assert!(requests.len() >= 4, "split: {requests:?}");
    let (retry, first_pass) = requests.split_last().expect("requests");
    assert_eq!(retry, &ids(10..=10), "only the throttled item again");
    assert_eq!(
        first_pass.concat(),
        ids(1..=12),
        "each record once, in order"
    );
    assert_eq!(es.documents().len(), 12);
    es.stop().await;
}

/// The fake itself answers as `_bulk` does, so the sink tests above exercise real behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_like_bulk() {
    let es = EsFake::start(None).await;
    let client = reqwest::Client::new();
    let bulk = |body: &'static str| {
        let request = client.post(format!("{}/_bulk", es.url())).body(body);
        async move {
            let response = request.send().await.expect("the fake answers");
            let status = response.status().as_u16();
            let json: serde_json::Value = response.json().await.expect("JSON");
            (status, json)
        }
    };
    let (status, _) = bulk("{\"create\":{\"_id\":\"a\"}}\n{}").await;
    assert_eq!(status, 400, "the body must end with a newline");
    let (status, _) = bulk("{\"create\":{\"_id\":\"a\"}}\n").await;
    assert_eq!(status, 400, "a source line is missing");
    let (status, json) = bulk("{\"create\":{\"_id\":\"a\"}}\n{\"n\":1}\n").await;
    assert_eq!((status, json["errors"].as_bool()), (200, Some(false)));
    let (status, json) =
        bulk("{\"create\":{\"_id\":\"a\"}}\n{\"n\":1}\n{\"create\":{\"_id\":\"b\"}}\n{\"n\":2}\n")
            .await;
    assert_eq!((status, json["errors"].as_bool()), (200, Some(true)));
    assert_eq!(json["items"][0]["create"]["status"], 409);
    assert_eq!(json["items"][1]["create"]["status"], 201);
    assert_eq!(es.documents().len(), 2);
    es.stop().await;
}
