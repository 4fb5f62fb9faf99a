//! The `ocsf` format: OCSF API Activity (class 6003, category 6 Application Activity). Connect's
//! action gives `activity_id` (CREATE 1, READ 2, UPDATE 3, DELETE 4, anything else 99 Other with
//! the action kept as `activity_name`); SUCCESS/DENY give `status_id` 1/2; DENY is severity 3
//! (Medium) so it can alert, the rest 1 (Informational).

use serde_json::{Map, Value, json};

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

pub fn render(event: &AuditEvent) -> Result<Value, PluginError> {
    let time = Timestamp::of(event)?;
    let (activity_id, activity_name) = activity(&event.action);
    let (status_id, status_name) = status(&event.outcome);
    let denied = event.outcome == "DENY";
    let resource_kind = event
        .target
        .as_ref()
        .map(|t| lower(&t.kind))
        .unwrap_or_else(|| "opsync".into());
    let mut actor_user = json!({ "uid": event.actor.id });
    if let (Some(account), Value::Object(user)) = (non_empty(&event.actor.account), &mut actor_user)
    {
        user.insert("account".into(), json!({ "uid": account }));
    }
    let mut actor = json!({ "user": actor_user });
    if let (Some(jti), Value::Object(actor)) = (non_empty(&event.actor.jti), &mut actor) {
        actor.insert("session".into(), json!({ "credential_uid": jti }));
    }
    let mut src_endpoint = Map::new();
    if let Some(ip) = non_empty(&event.actor.request_ip) {
        src_endpoint.insert("ip".into(), json!(ip));
    }
    let mut doc = json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("API Activity: {activity_name}"),
        "severity_id": if denied { 3 } else { 1 },
        "severity": if denied { "Medium" } else { "Informational" },
        "status_id": status_id,
        "status": status_name,
        "status_detail": event.outcome,
        "time": time.unix_millis(),
        "metadata": {
            "version": SCHEMA_VERSION,
            "uid": event.request_id,
            "original_time": event.timestamp,
            "log_name": "activity",
            "product": { "vendor_name": "1Password", "name": SERVICE },
        },
        "actor": actor,
        "api": {
            "operation": format!("{resource_kind}.{}", lower(&event.action)),
            "request": { "uid": event.request_id },
            "service": { "name": SERVICE },
        },
        "src_endpoint": Value::Object(src_endpoint),
    });
    let Value::Object(map) = &mut doc else {
        return Ok(doc);
    };
    if let Some(agent) = non_empty(&event.actor.user_agent) {
        map.insert("http_request".into(), json!({ "user_agent": agent }));
    }
    if let Some(target) = &event.target {
        let mut resource = Map::new();
        resource.insert("type".into(), json!(lower(&target.kind)));
        let uid = target.item_id.as_ref().or(target.vault_id.as_ref());
        if let Some(uid) = uid {
            resource.insert("uid".into(), json!(uid));
        }
        if let (Some(_), Some(vault)) = (&target.item_id, &target.vault_id) {
            resource.insert("group".into(), json!({ "uid": vault }));
        }
        if let Some(version) = target.item_version {
            resource.insert("version".into(), json!(version.to_string()));
        }
        map.insert("resources".into(), json!([resource]));
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
