//! The `ecs` format: Elastic Common Schema 8.11. A Connect activity record is `event.category`
//! `api`, `event.type` `access`/`creation`/`change`/`deletion` by action (`info` for others) plus
//! `allowed`/`denied` by result, and what ECS has no field for goes under `onepassword.connect.*`.
//! Events API records are mapped in [`events`].

pub mod events;

use serde::Serialize;

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

/// One ECS document, borrowing the record's strings (serialized straight into the request body).
#[derive(Debug, Serialize)]
pub struct EcsDoc<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: Version,
    event: Event<'a>,
    user: Id<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<Original<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Ip<'a>>,
    related: Related<'a>,
    observer: Observer,
    onepassword: OnePassword<'a>,
}

#[derive(Debug, Serialize)]
struct Version {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct Event<'a> {
    id: &'a str,
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    types: Vec<&'static str>,
    action: String,
    outcome: &'static str,
    provider: &'static str,
    dataset: &'static str,
}

#[derive(Debug, Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Debug, Serialize)]
struct Original<'a> {
    original: &'a str,
}

#[derive(Debug, Serialize)]
struct Ip<'a> {
    ip: &'a str,
}

#[derive(Debug, Serialize)]
struct Related<'a> {
    user: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<[&'a str; 1]>,
}

#[derive(Debug, Serialize)]
struct Observer {
    vendor: &'static str,
    product: &'static str,
}

#[derive(Debug, Serialize)]
struct OnePassword<'a> {
    connect: ConnectFields<'a>,
}

/// What ECS has no field for.
#[derive(Debug, Serialize)]
struct ConnectFields<'a> {
    action: &'a str,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_version: Option<u64>,
}

pub fn render(event: &AuditEvent) -> Result<EcsDoc<'_>, PluginError> {
    let time = Timestamp::of(event)?;
    let action = match &event.target {
        Some(t) => format!("{}-{}", lower(&t.kind), lower(&event.action)),
        None => lower(&event.action),
    };
    let target = event.target.as_ref();
    let ip = non_empty(&event.actor.request_ip);
    Ok(EcsDoc {
        timestamp: time.rfc3339_millis(),
        ecs: Version {
            version: ECS_VERSION,
        },
        event: Event {
            id: &event.request_id,
            kind: "event",
            category: ["api"],
            types: event_types(&event.action, &event.outcome),
            action,
            outcome: event_outcome(&event.outcome),
            provider: "1password-connect",
            dataset: DATASET,
        },
        user: Id {
            id: &event.actor.id,
        },
        organization: non_empty(&event.actor.account).map(|id| Id { id }),
        user_agent: non_empty(&event.actor.user_agent).map(|original| Original { original }),
        source: ip.map(|ip| Ip { ip }),
        related: Related {
            user: [&event.actor.id],
            ip: ip.map(|ip| [ip]),
        },
        observer: Observer {
            vendor: "1Password",
            product: "Connect",
        },
        onepassword: OnePassword {
            connect: ConnectFields {
                action: &event.action,
                result: &event.outcome,
                token_jti: non_empty(&event.actor.jti),
                resource_type: target.map(|t| t.kind.as_str()),
                vault_id: target.and_then(|t| t.vault_id.as_deref()),
                item_id: target.and_then(|t| t.item_id.as_deref()),
                item_version: target.and_then(|t| t.item_version),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;
    use serde_json::{Value, json};

    fn render(event: &AuditEvent) -> Result<Value, PluginError> {
        Ok(serde_json::to_value(super::render(event)?).expect("serializes"))
    }

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
