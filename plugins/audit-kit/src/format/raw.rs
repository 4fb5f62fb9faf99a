//! The `raw` format: the record in the shape of Connect's `/v1/activity` JSON (`APIRequest`).

use serde_json::{Map, Value, json};

use crate::AuditEvent;

/// `event` as Connect would have sent it: `requestId`, `timestamp`, `action`, `result`, `actor`,
/// and `resource` when the record has a target.
pub fn render(event: &AuditEvent) -> Value {
    let mut doc = json!({
        "requestId": event.request_id,
        "timestamp": event.timestamp,
        "action": event.action,
        "result": event.outcome,
        "actor": {
            "id": event.actor.id,
            "account": event.actor.account,
            "jti": event.actor.jti,
            "userAgent": event.actor.user_agent,
            "requestIp": event.actor.request_ip,
        },
    });
    if let (Some(target), Value::Object(doc)) = (&event.target, &mut doc) {
        let mut resource = Map::new();
        resource.insert("type".into(), json!(target.kind));
        if let Some(vault) = &target.vault_id {
            resource.insert("vault".into(), json!({ "id": vault }));
        }
        if let Some(item) = &target.item_id {
            resource.insert("item".into(), json!({ "id": item }));
        }
        if let Some(version) = target.item_version {
            resource.insert("itemVersion".into(), json!(version));
        }
        doc.insert("resource".into(), Value::Object(resource));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;

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
}
