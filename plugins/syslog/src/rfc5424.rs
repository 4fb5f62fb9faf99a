//! RFC 5424 messages and RFC 6587 octet-counted frames: the header (PRI, VERSION, TIMESTAMP,
//! HOSTNAME, APP-NAME, PROCID, MSGID), one structured-data element with the record's key fields
//! (and, for an Events API record, its stream as `source`), and the formatted record as a UTF-8
//! MSG (with BOM).

use serde::Serialize;

use opsync_audit_kit::source::Source;
use opsync_audit_kit::timestamp::Timestamp;
use opsync_audit_kit::{AuditEvent, PluginError, permanent};

const NIL: &str = "-";
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Severity 6 (informational); 4 (warning) for a denied request.
const INFO: u8 = 6;
const WARNING: u8 = 4;

/// The parts of the header that come from config, checked once.
pub struct Header {
    hostname: String,
    app_name: String,
    facility: u8,
    sd_id: String,
}

/// `true` when `s` is 1..=`max` printable US-ASCII characters (RFC 5424 PRINTUSASCII).
fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

/// `true` for an SD-NAME: printable, without `=`, `]`, `"`.
fn sd_name(s: &str) -> bool {
    printable(s, 32) && !s.contains(['=', ']', '"'])
}

impl Header {
    pub fn new(hostname: &str, app_name: &str, facility: u8, sd_id: &str) -> Result<Self, String> {
        if !printable(hostname, 255) {
            return Err(format!(
                "`hostname` is `{hostname}`: 1-255 printable ASCII characters, no spaces"
            ));
        }
        if !printable(app_name, 48) {
            return Err(format!(
                "`app-name` is `{app_name}`: 1-48 printable ASCII characters, no spaces"
            ));
        }
        let (name, pen) = sd_id.split_once('@').unwrap_or((sd_id, ""));
        if !sd_name(sd_id)
            || !sd_name(name)
            || pen.is_empty()
            || !pen.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return Err(format!(
                "`sd-id` is `{sd_id}`: write name@<enterprise number>, e.g. opconnect@32473"
            ));
        }
        Ok(Self {
            hostname: hostname.into(),
            app_name: app_name.into(),
            facility,
            sd_id: sd_id.into(),
        })
    }

    /// The RFC 5424 message for `event`, whose formatted record is `doc`. MSGID is the action;
    /// the structured data has `requestId` (the key to dedupe on), then for an Events API record
    /// `source` (its stream), then `action`, `result`, the actor and the resource.
    pub fn message(
        &self,
        event: &AuditEvent,
        doc: &impl Serialize,
    ) -> Result<Vec<u8>, PluginError> {
        let time = Timestamp::of(event)?;
        let severity = if event.outcome == "DENY" {
            WARNING
        } else {
            INFO
        };
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        let msgid = if printable(&event.action, 32) {
            event.action.as_str()
        } else {
            NIL
        };
        let mut params: Vec<(&str, &str)> = vec![("requestId", &event.request_id)];
        if let Source::Events(stream) = Source::of(event)? {
            params.push(("source", stream.as_str()));
        }
        params.extend([
            ("action", event.action.as_str()),
            ("result", &event.outcome),
            ("actor", &event.actor.id),
            ("account", &event.actor.account),
            ("jti", &event.actor.jti),
            ("ip", &event.actor.request_ip),
        ]);
        if let Some(t) = &event.target {
            params.push(("resource", &t.kind));
            if let Some(v) = &t.vault_id {
                params.push(("vault", v));
            }
            if let Some(i) = &t.item_id {
                params.push(("item", i));
            }
        }
        let version = event
            .target
            .as_ref()
            .and_then(|t| t.item_version)
            .map(|v| v.to_string());
        if let Some(v) = &version {
            params.push(("itemVersion", v));
        }
        let mut sd = format!("[{}", self.sd_id);
        for (name, value) in params.into_iter().filter(|(_, v)| !v.is_empty()) {
            sd.push_str(&format!(" {name}=\"{}\"", escape(value)));
        }
        sd.push(']');
        let mut out = format!(
            "<{pri}>1 {} {} {} {NIL} {msgid} {sd} ",
            time.rfc3339_micros(),
            self.hostname,
            self.app_name
        )
        .into_bytes();
        out.extend_from_slice(BOM);
        serde_json::to_writer(&mut out, doc)
            .map_err(|e| permanent(format!("record {}: cannot render: {e}", event.request_id)))?;
        Ok(out)
    }
}

/// An SD-PARAM value with `"`, `\` and `]` escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Appends `MSG-LEN SP SYSLOG-MSG` to `out`.
pub fn frame(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_audit_kit::{AuditActor, AuditResource};
    use serde_json::json;

    fn event(outcome: &str) -> AuditEvent {
        AuditEvent {
            request_id: "3f1c".into(),
            timestamp: "2024-05-01T12:00:00.123456Z".into(),
            action: "READ".into(),
            outcome: outcome.into(),
            actor: AuditActor {
                id: "actor".into(),
                account: String::new(),
                jti: "abc\"q]x".into(),
                user_agent: "ua".into(),
                request_ip: "192.0.2.7".into(),
            },
            target: Some(AuditResource {
                kind: "ITEM".into(),
                vault_id: Some("v".into()),
                item_id: Some("i".into()),
                item_version: Some(4),
            }),
            source: "activity".into(),
            detail: None,
        }
    }

    fn header() -> Header {
        Header::new("connect-host", "op-audit", 13, "opconnect@32473").expect("valid")
    }

    #[test]
    fn a_denied_read_is_a_warning_with_escaped_structured_data() {
        let msg = header()
            .message(&event("DENY"), &json!({"a": 1}))
            .expect("renders");
        let mut expected = b"<108>1 2024-05-01T12:00:00.123456Z connect-host op-audit - READ \
[opconnect@32473 requestId=\"3f1c\" action=\"READ\" result=\"DENY\" actor=\"actor\" \
jti=\"abc\\\"q\\]x\" ip=\"192.0.2.7\" resource=\"ITEM\" vault=\"v\" item=\"i\" itemVersion=\"4\"] "
            .to_vec();
        expected.extend_from_slice(BOM);
        expected.extend_from_slice(br#"{"a":1}"#);
        assert_eq!(
            String::from_utf8_lossy(&msg),
            String::from_utf8_lossy(&expected)
        );
        assert!(
            header()
                .message(&event("SUCCESS"), &json!({}))
                .expect("renders")
                .starts_with(b"<110>1 ")
        );
    }

    #[test]
    fn an_events_record_names_its_stream_and_keeps_its_request_id() {
        let detail = r#"{"uuid":"56YE2TYN2VFYRLNSHKPW5NVT5E","category":"credentials_failed"}"#;
        let e = AuditEvent {
            request_id: "56YE2TYN2VFYRLNSHKPW5NVT5E".into(),
            action: "signin".into(),
            actor: AuditActor {
                id: "IR7VJHJ36JHINBFAD7V2T5MP3E".into(),
                account: "VZSYVT2LGHTBWBQGUJAIZVRABM".into(),
                jti: String::new(),
                user_agent: "1Password Browser Extension/20184".into(),
                request_ip: "192.0.2.10".into(),
            },
            target: None,
            source: "signinattempts".into(),
            detail: Some(detail.into()),
            ..event("DENY")
        };
        let doc = opsync_audit_kit::format::Format::Raw
            .render(&e)
            .expect("renders");
        let msg = header().message(&e, &doc).expect("renders");
        let mut expected = b"<108>1 2024-05-01T12:00:00.123456Z connect-host op-audit - signin \
[opconnect@32473 requestId=\"56YE2TYN2VFYRLNSHKPW5NVT5E\" source=\"signinattempts\" \
action=\"signin\" result=\"DENY\" actor=\"IR7VJHJ36JHINBFAD7V2T5MP3E\" \
account=\"VZSYVT2LGHTBWBQGUJAIZVRABM\" ip=\"192.0.2.10\"] "
            .to_vec();
        expected.extend_from_slice(BOM);
        expected.extend_from_slice(detail.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&msg),
            String::from_utf8_lossy(&expected)
        );
        let mut unknown = e.clone();
        unknown.source = "elsewhere".into();
        assert!(matches!(
            header().message(&unknown, &doc),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn frames_count_octets() {
        let mut out = Vec::new();
        frame(&mut out, "héllo\nworld".as_bytes());
        frame(&mut out, b"x");
        assert_eq!(out, "12 héllo\nworld1 x".as_bytes());
    }

    #[test]
    fn unknown_actions_become_msgid_or_nil() {
        let mut e = event("SUCCESS");
        e.action = "DEAD_LETTER".into();
        e.target = None;
        let msg = header().message(&e, &json!({})).expect("renders");
        assert!(String::from_utf8_lossy(&msg).contains(" - DEAD_LETTER [opconnect@32473 "));
        e.action = "has space".into();
        let msg = header().message(&e, &json!({})).expect("renders");
        assert!(String::from_utf8_lossy(&msg).contains("op-audit - - [opconnect@32473 "));
    }

    #[test]
    fn bad_header_config_is_refused() {
        assert!(Header::new("two words", "a", 13, "x@1").is_err());
        assert!(Header::new("h", &"a".repeat(49), 13, "x@1").is_err());
        assert!(Header::new("h", "a", 13, "noat").is_err());
        assert!(Header::new("h", "a", 13, "a=b@1").is_err());
    }
}
