//! The built-in `webhook-audit` sink: POSTs each audit batch as one JSON document to `url`,
//! signed exactly like the `webhook` destination (Standard Webhooks: `webhook-id`,
//! `webhook-timestamp`, `webhook-signature`; both sign with `opsync-webhook-sign`).
//! A 2xx is the acknowledgement.
//!
//! Config: `url` (required; grant its host:port), `secret` (required, `whsec_<base64>`, usually an
//! `op://` reference), `format` (`raw` default, `ocsf`, `ecs`), `max-body-bytes` (default 900000:
//! a larger batch goes as several POSTs, each with its own id; the sandbox caps a body at 1 MiB).
//! The body is
//! `{"type": "audit.batch", "timestamp", "data": {"format", "count", "events": [...]}}`, keys
//! sorted; a body holding Events API records also has `data.sources`, the `source` of each event
//! in order (`activity`, `auditevents`, `itemusages`, `signinattempts`), since a `raw` Events API
//! record is the object the API returned (its `uuid` is the request-id), not self-describing.
//! `webhook-id` is `audit_` + a hash of the batch's request ids, the same on every retry of the
//! batch, so receivers drop replays.

use opsync_audit_kit::clock::Instant;
use opsync_audit_kit::format::{Doc, Format};
use opsync_audit_kit::http::{self, Endpoint, Request};
use opsync_audit_kit::settings::{self, check_keys, required};
use opsync_audit_kit::source::ACTIVITY;
use opsync_audit_kit::split;
use opsync_audit_kit::{AuditEvent, Guest, PluginError, permanent};
use opsync_webhook_sign::SigningKey;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

const KNOWN_KEYS: &[&str] = &["url", "secret", "format", "max-body-bytes"];

struct Settings {
    url: Endpoint,
    key: SigningKey,
    format: Format,
    max_body_bytes: u32,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let url = Endpoint::parse("url", &required("url")?)?;
        Ok(Self {
            url,
            key: SigningKey::from_config("secret")?,
            format: Format::load(Format::Raw)?,
            max_body_bytes: settings::number("max-body-bytes", 4_096..=100_000_000, 900_000)?,
        })
    }
}

/// `audit_` + 32 hex digits of SHA-256 over the batch's request ids: stable across retries.
pub fn batch_id(batch: &[AuditEvent]) -> String {
    let mut hash = Sha256::new();
    for event in batch {
        hash.update(event.request_id.as_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("audit_{hex}")
}

/// A formatted record as the JSON text the body holds: an Events API record's `raw` document
/// verbatim, any other with its keys sorted (the body has always been written that way).
fn encode(doc: &Doc<'_>) -> Result<Box<RawValue>, serde_json::Error> {
    match doc {
        Doc::Verbatim(raw) => Ok((*raw).to_owned()),
        other => serde_json::value::to_raw_value(&serde_json::to_value(other)?),
    }
}

/// The body; fields in key order.
#[derive(Serialize)]
struct Body<'a> {
    data: Data<'a>,
    timestamp: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Data<'a> {
    count: usize,
    events: &'a [Box<RawValue>],
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<&'a str>>,
}

/// The body of one POST of `events` (the encoded `batch`), written at `timestamp`.
fn body(
    format: Format,
    timestamp: &str,
    batch: &[AuditEvent],
    events: &[Box<RawValue>],
) -> Result<Vec<u8>, PluginError> {
    let sources = batch
        .iter()
        .any(|e| e.source != ACTIVITY)
        .then(|| batch.iter().map(|e| e.source.as_str()).collect());
    serde_json::to_vec(&Body {
        data: Data {
            count: events.len(),
            events,
            format: format.as_str(),
            sources,
        },
        timestamp,
        kind: "audit.batch",
    })
    .map_err(|e| permanent(format!("cannot render the payload: {e}")))
}

/// What each of `events` (the encoded `batch`) adds to a body: itself and its comma and, in a
/// batch with Events API records, its entry in `sources` (quoted, and its comma).
fn sizes(batch: &[AuditEvent], events: &[Box<RawValue>]) -> Vec<usize> {
    let listed = batch.iter().any(|e| e.source != ACTIVITY);
    events
        .iter()
        .zip(batch)
        .map(|(doc, e)| doc.get().len() + 1 + if listed { e.source.len() + 3 } else { 0 })
        .collect()
}

struct WebhookAudit;

impl Guest for WebhookAudit {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        if batch.is_empty() {
            return Ok(());
        }
        let settings = Settings::load()?;
        let mut events = Vec::with_capacity(batch.len());
        for event in &batch {
            let doc = settings.format.render(event)?;
            events.push(encode(&doc).map_err(|e| {
                permanent(format!("record {}: cannot render: {e}", event.request_id))
            })?);
        }
        let sizes = sizes(&batch, &events);
        // The envelope around the events takes well under 1 KiB.
        let budget = (settings.max_body_bytes as usize).saturating_sub(1024);
        for range in split::by_size(&sizes, budget) {
            post(&settings, &batch[range.clone()], &events[range])?;
        }
        Ok(())
    }
}

/// One signed POST of `events` (the encoded `batch`).
fn post(
    settings: &Settings,
    batch: &[AuditEvent],
    events: &[Box<RawValue>],
) -> Result<(), PluginError> {
    let at = Instant::now();
    let id = batch_id(batch);
    let body = body(settings.format, &at.rfc3339(), batch, events)?;
    let signature = settings.key.sign(&id, at.unix(), &body);
    let response = http::send(Request {
        method: "POST",
        endpoint: &settings.url,
        path: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "opsync-webhook-audit".into()),
            ("webhook-id".into(), id),
            ("webhook-timestamp".into(), at.unix().to_string()),
            ("webhook-signature".into(), signature),
        ],
        body: Some(body),
    })?;
    if !response.is_success() {
        return Err(response.error(
            &format!(
                "webhook-audit POST {}{}",
                settings.url.origin(),
                settings.url.base_path
            ),
            "",
        ));
    }
    Ok(())
}

opsync_audit_kit::export_audit_sink!(WebhookAudit);

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_audit_kit::AuditActor;
    use serde_json::{Value, json};

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            request_id: id.into(),
            timestamp: "2024-05-01T12:00:00Z".into(),
            action: "READ".into(),
            outcome: "SUCCESS".into(),
            actor: AuditActor {
                id: "a".into(),
                account: String::new(),
                jti: String::new(),
                user_agent: String::new(),
                request_ip: String::new(),
            },
            target: None,
            source: "activity".into(),
            detail: None,
        }
    }

    fn encoded(format: Format, batch: &[AuditEvent]) -> Vec<Box<RawValue>> {
        batch
            .iter()
            .map(|e| encode(&format.render(e).expect("renders")).expect("encodes"))
            .collect()
    }

    #[test]
    fn an_activity_body_is_written_as_it_always_was() {
        let batch = [event("r1"), event("r2")];
        for format in [Format::Raw, Format::Ocsf, Format::Ecs] {
            let docs: Vec<Doc<'_>> = batch
                .iter()
                .map(|e| format.render(e).expect("renders"))
                .collect();
            let before = serde_json::to_vec(&json!({
                "type": "audit.batch",
                "timestamp": "2024-05-01T12:00:00Z",
                "data": {"format": format.as_str(), "count": docs.len(), "events": docs},
            }))
            .expect("json");
            let now = body(
                format,
                "2024-05-01T12:00:00Z",
                &batch,
                &encoded(format, &batch),
            )
            .expect("renders");
            assert_eq!(
                String::from_utf8_lossy(&now),
                String::from_utf8_lossy(&before),
                "{}",
                format.as_str()
            );
        }
    }

    #[test]
    fn events_records_go_verbatim_in_raw_with_their_sources() {
        let detail =
            r#"{"uuid": "MCQODWN6NJC5VLCQIRWQTZXF4Q", "used_version": 3, "action": "reveal"}"#;
        let usage = AuditEvent {
            action: "reveal".into(),
            source: "itemusages".into(),
            detail: Some(detail.into()),
            ..event("MCQODWN6NJC5VLCQIRWQTZXF4Q")
        };
        let batch = [event("r1"), usage];
        let out = body(Format::Raw, "T", &batch, &encoded(Format::Raw, &batch)).expect("renders");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains(&format!(",{detail}],")), "{text}");
        let json: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["data"]["sources"], json!(["activity", "itemusages"]));
        assert_eq!(json["data"]["count"], 2);
        assert_eq!(json["data"]["events"][0]["requestId"], "r1");
        assert_eq!(
            json["data"]["events"][1]["uuid"],
            "MCQODWN6NJC5VLCQIRWQTZXF4Q"
        );

        let out = body(Format::Ocsf, "T", &batch, &encoded(Format::Ocsf, &batch)).expect("renders");
        let json: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            json["data"]["events"][1]["metadata"]["uid"],
            "MCQODWN6NJC5VLCQIRWQTZXF4Q"
        );
        assert_eq!(json["data"]["events"][1]["class_uid"], 3004);
    }

    #[test]
    fn sizes_count_what_each_event_adds_to_the_body() {
        let usage = AuditEvent {
            source: "itemusages".into(),
            detail: Some(r#"{"uuid": "u1"}"#.into()),
            ..event("u1")
        };
        for batch in [vec![event("r1"), event("r2")], vec![event("r1"), usage]] {
            let events = encoded(Format::Raw, &batch);
            let total: usize = sizes(&batch, &events).iter().sum();
            let with = body(Format::Raw, "T", &batch, &events)
                .expect("renders")
                .len();
            let without = body(Format::Raw, "T", &[], &[]).expect("renders").len();
            // The last entry of each list has no comma; `sources` itself is the envelope's
            // (within its 1 KiB).
            let (lists, envelope) = if batch.iter().any(|e| e.source != ACTIVITY) {
                (2, ",\"sources\":[]".len())
            } else {
                (1, 0)
            };
            assert_eq!(with - without + lists, total + envelope, "{batch:?}");
        }
    }

    #[test]
    fn batch_ids_are_stable_and_differ_by_content() {
        let a = batch_id(&[event("r1"), event("r2")]);
        assert_eq!(a, batch_id(&[event("r1"), event("r2")]));
        assert_ne!(a, batch_id(&[event("r1")]));
        assert_eq!(a.len(), "audit_".len() + 32);
    }
}
