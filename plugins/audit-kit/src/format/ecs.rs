//! The `ecs` format: Elastic Common Schema 8.11. `event.category` is `api`; `event.type` is
//! `access`/`creation`/`change`/`deletion` by action (`info` for others) plus `allowed`/`denied`
//! by result; what ECS has no field for goes under `onepassword.connect.*`.

use serde_json::{Map, Value, json};

use super::{lower, non_empty};
use crate::timestamp::Timestamp;
use crate::{AuditEvent, PluginError};

pub const ECS_VERSION: &str = "8.11.0";
pub const DATASET: &str = "onepassword_connect.activity";

/// ECS `event.type` values for a Connect action and result.
pub fn event_types(action: &str, outcome: &str) -> Vec<&'static str> {
    let mut types = vec![match action {
        "READ" => "access",
        "CREATE" => "creation",
        "UPDATE" => "change",
        "DELETE" => "deletion",
        _ => "info",
    }];
    match outcome {
        "SUCCESS" => types.push("allowed"),
        "DENY" => types.push("denied"),
        _ => {}
    }
    types
}

/// ECS `event.outcome` for a Connect result.
pub fn event_outcome(outcome: &str) -> &'static str {
    match outcome {
        "SUCCESS" => "success",
        "DENY" => "failure",
        _ => "unknown",
    }
}

pub fn render(event: &AuditEvent) -> Result<Value, PluginError> {
    let time = Timestamp::of(event)?;
    let action = match &event.target {
        Some(t) => format!("{}-{}", lower(&t.kind), lower(&event.action)),
        None => lower(&event.action),
    };
    let mut connect = Map::new();
    connect.insert("action".into(), json!(event.action));
    connect.insert("result".into(), json!(event.outcome));
    if let Some(jti) = non_empty(&event.actor.jti) {
        connect.insert("token_jti".into(), json!(jti));
    }
    if let Some(t) = &event.target {
        connect.insert("resource_type".into(), json!(t.kind));
        if let Some(v) = &t.vault_id {
            connect.insert("vault_id".into(), json!(v));
        }
        if let Some(i) = &t.item_id {
            connect.insert("item_id".into(), json!(i));
        }
        if let Some(n) = t.item_version {
            connect.insert("item_version".into(), json!(n));
        }
    }
    let mut doc = json!({
        "@timestamp": time.rfc3339_millis(),
        "ecs": { "version": ECS_VERSION },
        "event": {
            "id": event.request_id,
            "kind": "event",
            "category": ["api"],
            "type": event_types(&event.action, &event.outcome),
            "action": action,
            "outcome": event_outcome(&event.outcome),
            "provider": "1password-connect",
            "dataset": DATASET,
        },
        "user": { "id": event.actor.id },
        "observer": { "vendor": "1Password", "product": "Connect" },
        "related": { "user": [event.actor.id] },
        "onepassword": { "connect": connect },
    });
    let Value::Object(map) = &mut doc else {
        return Ok(doc);
    };
    if let Some(account) = non_empty(&event.actor.account) {
        map.insert("organization".into(), json!({ "id": account }));
    }
    if let Some(agent) = non_empty(&event.actor.user_agent) {
        map.insert("user_agent".into(), json!({ "original": agent }));
    }
    if let Some(ip) = non_empty(&event.actor.request_ip) {
        map.insert("source".into(), json!({ "ip": ip }));
        map.insert(
            "related".into(),
            json!({ "user": [event.actor.id], "ip": [ip] }),
        );
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;

    #[test]
    fn a_denied_read_maps_field_by_field() {
        let doc = render(&sample::denied_read()).expect("renders");
        assert_eq!(
            doc,
            json!({
                "@timestamp": "2024-05-01T12:00:00.123Z",
                "ecs": {"version": "8.11.0"},
                "event": {
                    "id": "3f1c2d4e-0000-4000-8000-000000000001",
                    "kind": "event",
                    "category": ["api"],
                    "type": ["access", "denied"],
                    "action": "item-read",
                    "outcome": "failure",
                    "provider": "1password-connect",
                    "dataset": "onepassword_connect.activity",
                },
                "user": {"id": "actor-uuid"},
                "organization": {"id": "ACCOUNT1"},
                "user_agent": {"original": "curl/8.0"},
                "source": {"ip": "192.0.2.7"},
                "related": {"user": ["actor-uuid"], "ip": ["192.0.2.7"]},
                "observer": {"vendor": "1Password", "product": "Connect"},
                "onepassword": {"connect": {
                    "action": "READ",
                    "result": "DENY",
                    "token_jti": "token-jti",
                    "resource_type": "ITEM",
                    "vault_id": "ftz4ftz4ftz4ftz4ftz4ftz4ft",
                    "item_id": "h2x6h2x6h2x6h2x6h2x6h2x6h2",
                    "item_version": 4,
                }},
            })
        );
    }

    #[test]
    fn types_by_action_and_result() {
        assert_eq!(event_types("CREATE", "SUCCESS"), ["creation", "allowed"]);
        assert_eq!(event_types("UPDATE", "SUCCESS"), ["change", "allowed"]);
        assert_eq!(event_types("DELETE", "DENY"), ["deletion", "denied"]);
        assert_eq!(event_types("ROTATE", "OTHER"), ["info"]);
        assert_eq!(event_outcome("SUCCESS"), "success");
        assert_eq!(event_outcome("OTHER"), "unknown");
    }

    #[test]
    fn daemon_records_pass_through_and_empty_fields_are_left_out() {
        let doc = render(&sample::daemon_event()).expect("renders");
        assert_eq!(doc["event"]["action"], "dead_letter");
        assert_eq!(doc["event"]["type"], json!(["info", "allowed"]));
        assert_eq!(doc["onepassword"]["connect"]["action"], "DEAD_LETTER");
        assert_eq!(doc["@timestamp"], "2024-05-01T12:00:01.000Z");
        for absent in ["source", "organization", "user_agent"] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
        assert_eq!(doc["related"], json!({"user": ["opsync"]}));
    }
}
