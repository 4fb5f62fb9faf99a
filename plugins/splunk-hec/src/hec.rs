//! The HEC wire format: event envelopes, splitting a batch into bodies under a byte budget, the
//! request channel, and reading HEC's answers (`{"text", "code", "ackId"}` and
//! `{"acks": {"<id>": bool}}`) into plugin errors.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use serde::Serialize;
use serde_json::Value;

use opsync_audit_kit::http::status_error;
use opsync_audit_kit::source::Source;
use opsync_audit_kit::timestamp::Timestamp;
use opsync_audit_kit::{AuditEvent, PluginError, misconfigured, permanent};

/// `source` of a Connect activity record when the config sets none.
pub const ACTIVITY_SOURCE: &str = "op-connect:activity";
/// `sourcetype` of a Connect activity record when the config sets none.
pub const ACTIVITY_SOURCETYPE: &str = "1password:connect:activity";

/// The envelope fields every event of a sink shares; `source` and `sourcetype` are the
/// configured ones, or (none configured) the defaults of the record's log.
pub struct Envelope {
    pub index: Option<String>,
    pub source: Option<String>,
    pub sourcetype: Option<String>,
    pub host: Option<String>,
}

impl Envelope {
    /// `(source, sourcetype)` of `event`: the configured values for every record; unset, those of
    /// its log: `op-connect:activity` and `1password:connect:activity` for Connect's activity,
    /// `op-events:<stream>` and `1password:<stream>` for an Events API record.
    pub fn labels(&self, event: &AuditEvent) -> Result<(Cow<'_, str>, Cow<'_, str>), PluginError> {
        let (source, sourcetype) = match Source::of(event)? {
            Source::Activity => (
                Cow::Borrowed(ACTIVITY_SOURCE),
                Cow::Borrowed(ACTIVITY_SOURCETYPE),
            ),
            Source::Events(stream) => (
                Cow::Owned(format!("op-events:{stream}")),
                Cow::Owned(format!("1password:{stream}")),
            ),
        };
        Ok((
            self.source.as_deref().map_or(source, Cow::Borrowed),
            self.sourcetype.as_deref().map_or(sourcetype, Cow::Borrowed),
        ))
    }

    /// One event as a JSON line: `time`, `source`, `sourcetype`, [`index`, `host`], `event` (the
    /// formatted record) and indexed `fields` (`request_id`, `action`, `result`).
    pub fn line(&self, event: &AuditEvent, doc: &impl Serialize) -> Result<Vec<u8>, PluginError> {
        let (source, sourcetype) = self.labels(event)?;
        let line = Line {
            time: Timestamp::of(event)?.unix_seconds(),
            source: &source,
            sourcetype: &sourcetype,
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
    use opsync_audit_kit::format::Format;
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
            source: "activity".into(),
            detail: None,
        }
    }

    /// A failed sign-in attempt from the Events API.
    fn sign_in() -> AuditEvent {
        AuditEvent {
            request_id: "56YE2TYN2VFYRLNSHKPW5NVT5E".into(),
            action: "signin".into(),
            source: "signinattempts".into(),
            detail: Some(
                r#"{"uuid": "56YE2TYN2VFYRLNSHKPW5NVT5E", "category": "credentials_failed"}"#
                    .into(),
            ),
            ..event()
        }
    }

    fn unset() -> Envelope {
        Envelope {
            index: None,
            source: None,
            sourcetype: None,
            host: None,
        }
    }

    #[test]
    fn an_envelope_carries_time_metadata_event_and_indexed_fields() {
        let envelope = Envelope {
            index: Some("security".into()),
            source: Some("src".into()),
            sourcetype: Some("st".into()),
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
    fn unset_labels_follow_the_records_log() {
        let line = |event: &AuditEvent| -> Value {
            let doc = Format::Raw.render(event).expect("renders");
            let line = unset().line(event, &doc).expect("renders");
            serde_json::from_slice(&line).expect("json")
        };
        let activity = line(&event());
        assert_eq!(activity["source"], "op-connect:activity");
        assert_eq!(activity["sourcetype"], "1password:connect:activity");
        let events = line(&sign_in());
        assert_eq!(events["source"], "op-events:signinattempts");
        assert_eq!(events["sourcetype"], "1password:signinattempts");
        assert_eq!(
            events["fields"],
            json!({"request_id": "56YE2TYN2VFYRLNSHKPW5NVT5E", "action": "signin", "result": "DENY"})
        );
        // `raw`: the record as the Events API returned it, request-id in its `uuid`.
        assert_eq!(events["event"]["uuid"], "56YE2TYN2VFYRLNSHKPW5NVT5E");
        assert_eq!(events["event"]["category"], "credentials_failed");
    }

    #[test]
    fn configured_labels_apply_to_every_record() {
        let envelope = Envelope {
            source: Some("opsync".into()),
            sourcetype: Some("opsync:json".into()),
            ..unset()
        };
        for event in [event(), sign_in()] {
            let (source, sourcetype) = envelope.labels(&event).expect("known source");
            assert_eq!((&*source, &*sourcetype), ("opsync", "opsync:json"));
        }
        let mut unknown = sign_in();
        unknown.source = "elsewhere".into();
        assert!(matches!(
            envelope.labels(&unknown),
            Err(PluginError::Permanent(_))
        ));
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
