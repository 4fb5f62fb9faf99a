//! The `ocsf` format (OCSF 1.3). A Connect activity record is an API Activity (class 6003,
//! category 6 Application Activity): Connect's action gives `activity_id` (CREATE 1, READ 2,
//! UPDATE 3, DELETE 4, anything else 99 Other with the action kept as `activity_name`);
//! SUCCESS/DENY give `status_id` 1/2; DENY is severity 3 (Medium) so it can alert, the rest 1
//! (Informational). Events API records map to the Identity & Access Management classes in
//! [`authentication`] and [`entity`].

pub mod authentication;
pub mod entity;
mod parts;

use serde::Serialize;

use super::{lower, non_empty};
use crate::timestamp::Timestamp;
use crate::{AuditEvent, PluginError};

pub const CLASS_UID: u32 = 6003;
pub const CATEGORY_UID: u32 = 6;
/// The OCSF schema version the documents follow.
pub const SCHEMA_VERSION: &str = "1.3.0";
pub const SERVICE: &str = "1Password Connect";

/// `(activity_id, activity_name)` for a Connect action.
pub fn activity(action: &str) -> (u32, String) {
    match action {
        "CREATE" => (1, "Create".into()),
        "READ" => (2, "Read".into()),
        "UPDATE" => (3, "Update".into()),
        "DELETE" => (4, "Delete".into()),
        other => (99, other.to_string()),
    }
}

/// `(status_id, status)` for a Connect result.
pub fn status(outcome: &str) -> (u32, &'static str) {
    match outcome {
        "SUCCESS" => (1, "Success"),
        "DENY" => (2, "Failure"),
        _ => (99, "Other"),
    }
}

/// One OCSF API Activity event, borrowing the record's strings.
#[derive(Debug, Serialize)]
pub struct OcsfDoc<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: String,
    type_uid: u32,
    type_name: String,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    status_detail: &'a str,
    time: i64,
    metadata: Metadata<'a>,
    actor: Actor<'a>,
    api: Api<'a>,
    src_endpoint: Endpoint<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<[Resource<'a>; 1]>,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    version: &'static str,
    uid: &'a str,
    original_time: &'a str,
    log_name: &'static str,
    product: Product,
}

#[derive(Debug, Serialize)]
struct Product {
    vendor_name: &'static str,
    name: &'static str,
}

#[derive(Debug, Serialize)]
struct Actor<'a> {
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<Session<'a>>,
}

#[derive(Debug, Serialize)]
struct User<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Uid<'a>>,
}

#[derive(Debug, Serialize)]
struct Uid<'a> {
    uid: &'a str,
}

#[derive(Debug, Serialize)]
struct Session<'a> {
    credential_uid: &'a str,
}

#[derive(Debug, Serialize)]
struct Api<'a> {
    operation: String,
    request: Uid<'a>,
    service: Name,
}

#[derive(Debug, Serialize)]
struct Name {
    name: &'static str,
}

#[derive(Debug, Serialize)]
struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct HttpRequest<'a> {
    user_agent: &'a str,
}

#[derive(Debug, Serialize)]
struct Resource<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<Uid<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

pub fn render(event: &AuditEvent) -> Result<OcsfDoc<'_>, PluginError> {
    let time = Timestamp::of(event)?;
    let (activity_id, activity_name) = activity(&event.action);
    let (status_id, status_name) = status(&event.outcome);
    let denied = event.outcome == "DENY";
    let resource_kind = event
        .target
        .as_ref()
        .map(|t| lower(&t.kind))
        .unwrap_or_else(|| "opsync".into());
    let resources = event.target.as_ref().map(|target| {
        [Resource {
            kind: lower(&target.kind),
            uid: target.item_id.as_deref().or(target.vault_id.as_deref()),
            group: match (&target.item_id, &target.vault_id) {
                (Some(_), Some(vault)) => Some(Uid { uid: vault }),
                _ => None,
            },
            version: target.item_version.map(|v| v.to_string()),
        }]
    });
    Ok(OcsfDoc {
        class_uid: CLASS_UID,
        class_name: "API Activity",
        category_uid: CATEGORY_UID,
        category_name: "Application Activity",
        activity_id,
        type_uid: CLASS_UID * 100 + activity_id,
        type_name: format!("API Activity: {activity_name}"),
        activity_name,
        severity_id: if denied { 3 } else { 1 },
        severity: if denied { "Medium" } else { "Informational" },
        status_id,
        status: status_name,
        status_detail: &event.outcome,
        time: time.unix_millis(),
        metadata: Metadata {
            version: SCHEMA_VERSION,
            uid: &event.request_id,
            original_time: &event.timestamp,
            log_name: "activity",
            product: Product {
                vendor_name: "1Password",
                name: SERVICE,
            },
        },
        actor: Actor {
            user: User {
                uid: &event.actor.id,
                account: non_empty(&event.actor.account).map(|uid| Uid { uid }),
            },
            session: non_empty(&event.actor.jti).map(|credential_uid| Session { credential_uid }),
        },
        api: Api {
            operation: format!("{resource_kind}.{}", lower(&event.action)),
            request: Uid {
                uid: &event.request_id,
            },
            service: Name { name: SERVICE },
        },
        src_endpoint: Endpoint {
            ip: non_empty(&event.actor.request_ip),
        },
        http_request: non_empty(&event.actor.user_agent)
            .map(|user_agent| HttpRequest { user_agent }),
        resources,
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
                "class_uid": 6003,
                "class_name": "API Activity",
                "category_uid": 6,
                "category_name": "Application Activity",
                "activity_id": 2,
                "activity_name": "Read",
                "type_uid": 600302,
                "type_name": "API Activity: Read",
                "severity_id": 3,
                "severity": "Medium",
                "status_id": 2,
                "status": "Failure",
                "status_detail": "DENY",
                "time": 1_714_564_800_123_i64,
                "metadata": {
                    "version": "1.3.0",
                    "uid": "3f1c2d4e-0000-4000-8000-000000000001",
                    "original_time": "2024-05-01T12:00:00.123+00:00",
                    "log_name": "activity",
                    "product": {"vendor_name": "1Password", "name": "1Password Connect"},
                },
                "actor": {
                    "user": {"uid": "actor-uuid", "account": {"uid": "ACCOUNT1"}},
                    "session": {"credential_uid": "token-jti"},
                },
                "api": {
                    "operation": "item.read",
                    "request": {"uid": "3f1c2d4e-0000-4000-8000-000000000001"},
                    "service": {"name": "1Password Connect"},
                },
                "src_endpoint": {"ip": "192.0.2.7"},
                "http_request": {"user_agent": "curl/8.0"},
                "resources": [{
                    "type": "item",
                    "uid": "h2x6h2x6h2x6h2x6h2x6h2x6h2",
                    "group": {"uid": "ftz4ftz4ftz4ftz4ftz4ftz4ft"},
                    "version": "4",
                }],
            })
        );
    }

    #[test]
    fn activities_and_statuses() {
        assert_eq!(activity("CREATE"), (1, "Create".into()));
        assert_eq!(activity("UPDATE"), (3, "Update".into()));
        assert_eq!(activity("DELETE"), (4, "Delete".into()));
        assert_eq!(status("SUCCESS"), (1, "Success"));
        assert_eq!(status("MAYBE"), (99, "Other"));
    }

    #[test]
    fn unknown_actions_pass_through_as_other() {
        let doc = render(&sample::daemon_event()).expect("renders");
        assert_eq!(doc["activity_id"], 99);
        assert_eq!(doc["activity_name"], "DEAD_LETTER");
        assert_eq!(doc["type_uid"], 600399);
        assert_eq!(doc["severity_id"], 1);
        assert_eq!(doc["status_id"], 1);
        assert_eq!(doc["api"]["operation"], "opsync.dead_letter");
        assert_eq!(doc["src_endpoint"], json!({}));
        assert_eq!(doc["actor"], json!({"user": {"uid": "opsync"}}));
        assert!(doc.get("resources").is_none());
        assert!(doc.get("http_request").is_none());
    }

    #[test]
    fn a_vault_resource_has_no_group() {
        let mut event = sample::denied_read();
        if let Some(t) = event.target.as_mut() {
            t.kind = "VAULT".into();
            t.item_id = None;
            t.item_version = None;
        }
        let doc = render(&event).expect("renders");
        assert_eq!(
            doc["resources"],
            json!([{"type": "vault", "uid": "ftz4ftz4ftz4ftz4ftz4ftz4ft"}])
        );
        assert_eq!(doc["api"]["operation"], "vault.read");
    }
}
