//! The `raw` format: a Connect activity record in the shape of Connect's `/v1/activity` JSON
//! (`APIRequest`). An Events API record is its `detail` as it came ([`super::Doc::Verbatim`]).

use serde::Serialize;

use crate::AuditEvent;

/// A record in Connect's `APIRequest` shape, borrowing the record's strings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawDoc<'a> {
    request_id: &'a str,
    timestamp: &'a str,
    action: &'a str,
    result: &'a str,
    actor: Actor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Resource<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Actor<'a> {
    id: &'a str,
    account: &'a str,
    jti: &'a str,
    user_agent: &'a str,
    request_ip: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_version: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Id<'a> {
    id: &'a str,
}

/// `event` as Connect would have sent it: `requestId`, `timestamp`, `action`, `result`, `actor`,
/// and `resource` when the record has a target.
pub fn render(event: &AuditEvent) -> RawDoc<'_> {
    RawDoc {
        request_id: &event.request_id,
        timestamp: &event.timestamp,
        action: &event.action,
        result: &event.outcome,
        actor: Actor {
            id: &event.actor.id,
            account: &event.actor.account,
            jti: &event.actor.jti,
            user_agent: &event.actor.user_agent,
            request_ip: &event.actor.request_ip,
        },
        resource: event.target.as_ref().map(|t| Resource {
            kind: &t.kind,
            vault: t.vault_id.as_deref().map(|id| Id { id }),
            item: t.item_id.as_deref().map(|id| Id { id }),
            item_version: t.item_version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;
    use serde_json::{Value, json};

    fn render(event: &AuditEvent) -> Value {
        serde_json::to_value(super::render(event)).expect("serializes")
    }

    #[test]
    fn has_connects_shape_field_by_field() {
        let doc = render(&sample::denied_read());
        assert_eq!(
            doc,
            json!({
                "requestId": "3f1c2d4e-0000-4000-8000-000000000001",
                "timestamp": "2024-05-01T12:00:00.123+00:00",
                "action": "READ",
                "result": "DENY",
                "actor": {
                    "id": "actor-uuid",
                    "account": "ACCOUNT1",
                    "jti": "token-jti",
                    "userAgent": "curl/8.0",
                    "requestIp": "192.0.2.7",
                },
                "resource": {
                    "type": "ITEM",
                    "vault": {"id": "ftz4ftz4ftz4ftz4ftz4ftz4ft"},
                    "item": {"id": "h2x6h2x6h2x6h2x6h2x6h2x6h2"},
                    "itemVersion": 4,
                },
            })
        );
    }

    #[test]
    fn daemon_records_pass_through_without_a_resource() {
        let doc = render(&sample::daemon_event());
        assert_eq!(doc["action"], "DEAD_LETTER");
        assert_eq!(doc["requestId"], "opsync-deliver-17");
        assert!(doc.get("resource").is_none());
    }

    #[test]
    fn events_records_are_their_detail_byte_for_byte() {
        for (event, detail) in [
            (sample::sign_in_failed(), sample::SIGN_IN_FAILED),
            (sample::item_usage(), sample::ITEM_USAGE),
            (sample::audit_event(), sample::AUDIT_EVENT),
        ] {
            let doc = crate::format::Format::Raw.render(&event).expect("renders");
            assert!(matches!(doc, crate::format::Doc::Verbatim(_)));
            assert_eq!(serde_json::to_string(&doc).expect("serializes"), detail);
        }
    }

    #[test]
    fn a_sparse_events_record_is_its_detail_too() {
        for event in [
            sample::sign_in_sparse(),
            sample::item_usage_sparse(),
            sample::audit_event_sparse(),
        ] {
            let doc = crate::format::Format::Raw.render(&event).expect("renders");
            assert_eq!(
                Some(serde_json::to_string(&doc).expect("serializes")),
                event.detail
            );
        }
    }
}
