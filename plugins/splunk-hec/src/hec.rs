//! The HEC wire format: event envelopes, splitting a batch into bodies under a byte budget, the
//! request channel, and reading HEC's answers (`{"text", "code", "ackId"}` and
//! `{"acks": {"<id>": bool}}`) into plugin errors.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use serde::Serialize;
use serde_json::Value;

use opsync_audit_kit::http::status_error;
use opsync_audit_kit::timestamp::Timestamp;
use opsync_audit_kit::{AuditEvent, PluginError, misconfigured, permanent};

/// The envelope fields every event of a sink shares.
pub struct Envelope {
    pub index: Option<String>,
    pub source: String,
    pub sourcetype: String,
    pub host: Option<String>,
}

impl Envelope {
    /// One event as a JSON line: `time`, `source`, `sourcetype`, [`index`, `host`], `event` (the
    /// formatted record) and indexed `fields` (`request_id`, `action`, `result`).
    pub fn line(&self, event: &AuditEvent, doc: &impl Serialize) -> Result<Vec<u8>, PluginError> {
        let line = Line {
            time: Timestamp::of(event)?.unix_seconds(),
            source: &self.source,
            sourcetype: &self.sourcetype,
            index: self.index.as_deref(),
            host: self.host.as_deref(),
            event: doc,
            fields: Fields {
                request_id: &event.request_id,
                action: &event.action,
                result: &event.outcome,
            },
        };
        let mut out = serde_json::to_vec(&line)
            .map_err(|e| permanent(format!("record {}: cannot render: {e}", event.request_id)))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// One HEC event line.
#[derive(Serialize)]
struct Line<'a, D: Serialize> {
    time: f64,
    source: &'a str,
    sourcetype: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    event: &'a D,
    fields: Fields<'a>,
}

/// HEC's indexed fields.
#[derive(Serialize)]
struct Fields<'a> {
    request_id: &'a str,
    action: &'a str,
    result: &'a str,
}

/// A random v4 UUID for this call's request channel (HEC ack ids are per channel, and a call
/// waits for its own acks, so every call takes a fresh one).
pub fn channel() -> String {
    let word = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.finish()
    };
    let (hi, lo) = (word(1), word(2));
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// How a failed HEC answer should be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// By HTTP status (401/403 misconfigured, 408/429/5xx retryable, others permanent).
    Status,
    /// The token or index setup is wrong whatever the status says.
    Misconfigured,
}

/// What HEC said to an event post.
#[derive(Debug, PartialEq, Eq)]
pub enum EventAnswer {
    /// Accepted, with the ack id when indexer acknowledgement is on.
    Accepted(Option<u64>),
    /// Refused: how to report it, HEC's text and code, and the index of the refused event.
    Failed(Kind, String, Option<usize>),
}

fn text_and_code(json: &Value) -> (String, Option<u64>) {
    let text = json["text"].as_str().unwrap_or("no text").to_string();
    (text, json["code"].as_u64())
}

pub fn event_answer(status: u16, body: &[u8]) -> EventAnswer {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (text, code) = text_and_code(&json);
    if (200..300).contains(&status) && code.unwrap_or(0) == 0 {
        return EventAnswer::Accepted(json["ackId"].as_u64());
    }
    let detail = match code {
        Some(c) => format!("{text} (code {c})"),
        None => text,
    };
    let kind = match code {
        // Token disabled or invalid, incorrect index, ack disabled, channel refused.
        Some(1 | 4 | 7 | 10 | 11 | 14) => Kind::Misconfigured,
        _ => Kind::Status,
    };
    let invalid = json["invalid-event-number"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok());
    EventAnswer::Failed(kind, detail, invalid)
}

/// The ack ids HEC confirms, or how the ack query failed.
pub fn ack_answer(status: u16, body: &[u8]) -> Result<Vec<u64>, (Kind, String)> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let (text, code) = text_and_code(&json);
        let kind = match code {
            Some(1 | 4 | 10 | 11 | 14) => Kind::Misconfigured,
            _ => Kind::Status,
        };
        let detail = code.map_or(text.clone(), |c| format!("{text} (code {c})"));
        return Err((kind, detail));
    }
    let acks = json["acks"]
        .as_object()
        .ok_or((Kind::Status, "the answer has no `acks` object".to_string()))?;
    Ok(acks
        .iter()
        .filter(|(_, done)| done.as_bool() == Some(true))
        .filter_map(|(id, _)| id.parse().ok())
        .collect())
}

/// The plugin error for a refused HEC call to `what`.
pub fn error(kind: Kind, what: &str, status: u16, detail: &str) -> PluginError {
    match kind {
        Kind::Misconfigured => misconfigured(format!("{what}: status {status}: {detail}")),
        // A 200 with a non-zero code is still a refusal of the data.
        Kind::Status if (200..300).contains(&status) => {
            permanent(format!("{what}: status {status}: {detail}"))
        }
        Kind::Status => status_error(what, status, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_audit_kit::AuditActor;
    use serde_json::json;

    fn event() -> AuditEvent {
        AuditEvent {
            request_id: "r1".into(),
            timestamp: "2024-05-01T12:00:00.123Z".into(),
            action: "READ".into(),
            outcome: "DENY".into(),
            actor: AuditActor {
                id: "a".into(),
                account: String::new(),
                jti: String::new(),
                user_agent: String::new(),
                request_ip: String::new(),
            },
            target: None,
        }
    }

    #[test]
    fn an_envelope_carries_time_metadata_event_and_indexed_fields() {
        let envelope = Envelope {
            index: Some("security".into()),
            source: "src".into(),
            sourcetype: "st".into(),
            host: None,
        };
        let line = envelope.line(&event(), &json!({"x": 1})).expect("renders");
        assert_eq!(line.last(), Some(&b'\n'));
        let json: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            json,
            json!({"time": 1_714_564_800.123, "source": "src", "sourcetype": "st",
                   "index": "security", "event": {"x": 1},
                   "fields": {"request_id": "r1", "action": "READ", "result": "DENY"}})
        );
    }

    #[test]
    fn channels_are_v4_uuids_and_differ() {
        let (a, b) = (channel(), channel());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(
            event_answer(200, br#"{"text":"Success","code":0,"ackId":7}"#),
            EventAnswer::Accepted(Some(7))
        );
        assert_eq!(
            event_answer(200, br#"{"text":"Success","code":0}"#),
            EventAnswer::Accepted(None)
        );
        assert_eq!(
            event_answer(400, br#"{"text":"ACK is disabled","code":14}"#),
            EventAnswer::Failed(
                Kind::Misconfigured,
                "ACK is disabled (code 14)".into(),
                None
            )
        );
        assert_eq!(
            event_answer(
                400,
                br#"{"text":"Invalid data format","code":6,"invalid-event-number":2}"#
            ),
            EventAnswer::Failed(Kind::Status, "Invalid data format (code 6)".into(), Some(2))
        );
        let busy = event_answer(503, br#"{"text":"Server is busy","code":9}"#);
        let EventAnswer::Failed(kind, detail, _) = busy else {
            panic!("busy is a failure")
        };
        assert!(
            matches!(error(kind, "w", 503, &detail), PluginError::Retryable(r) if r.message == "w: status 503: Server is busy (code 9)")
        );
        assert!(matches!(
            error(Kind::Status, "w", 403, "Invalid token (code 4)"),
            PluginError::Misconfigured(_)
        ));
        assert!(matches!(
            error(Kind::Status, "w", 400, "bad (code 6)"),
            PluginError::Permanent(_)
        ));
    }

    #[test]
    fn ack_answers_list_confirmed_ids() {
        let mut got =
            ack_answer(200, br#"{"acks":{"0":true,"1":false,"2":true}}"#).expect("parses");
        got.sort_unstable();
        assert_eq!(got, [0, 2]);
        assert_eq!(
            ack_answer(400, br#"{"text":"ACK is disabled","code":14}"#),
            Err((Kind::Misconfigured, "ACK is disabled (code 14)".into()))
        );
        assert!(ack_answer(200, b"{}").is_err());
    }
}
