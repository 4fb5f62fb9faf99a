//! Audit events and item usages as OCSF Entity Management (class 3004).
//!
//! The acting user is `actor.user`, the object acted on `entity`. An audit event's activity comes
//! from its action (create 1, read/view 2, update/edit 3, delete/purge 4, anything else 99 Other
//! named by the action); an item usage is 2 Read, named by its action.

use serde::Serialize;

use super::parts::{
    CATEGORY_NAME, CATEGORY_UID, Endpoint, HttpRequest, Metadata, SEVERITY, SEVERITY_ID, Session,
    Uid, User, time,
};
use crate::events::{AuditEventRecord, ItemUsage, Text};
use crate::format::verb::Verb;
use crate::source::Stream;
use crate::{AuditEvent, PluginError};

/// Entity Management.
pub const CLASS_UID: u32 = 3004;

/// One OCSF Entity Management event.
#[derive(Debug, Serialize)]
pub struct EntityDoc<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: String,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    time: i64,
    metadata: Metadata<'a>,
    actor: Actor<'a>,
    entity: Entity<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
}

#[derive(Debug, Serialize)]
struct Actor<'a> {
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<Session<'a>>,
}

/// The managed entity: an item's vault is its `group` (as in the API Activity mapping).
#[derive(Debug, Serialize)]
struct Entity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Text<'a>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<Uid<'a>>,
}

/// `(activity_id, caption, type_name)` of a verb.
fn activity(verb: Verb) -> (u32, &'static str, &'static str) {
    match verb {
        Verb::Create => (1, "Create", "Entity Management: Create"),
        Verb::Read => (2, "Read", "Entity Management: Read"),
        Verb::Update => (3, "Update", "Entity Management: Update"),
        Verb::Delete => (4, "Delete", "Entity Management: Delete"),
        Verb::Other => (99, "Other", "Entity Management: Other"),
    }
}

/// The fields every Entity Management document of a record has the same way.
struct Head {
    activity_id: u32,
    activity_name: String,
    type_name: &'static str,
}

fn document<'a>(
    event: &'a AuditEvent,
    head: Head,
    metadata: Metadata<'a>,
    actor: Actor<'a>,
    entity: Entity<'a>,
    src_endpoint: Option<Endpoint<'a>>,
    http_request: Option<HttpRequest<'a>>,
) -> Result<EntityDoc<'a>, PluginError> {
    let (status_id, status) = super::status(&event.outcome);
    Ok(EntityDoc {
        class_uid: CLASS_UID,
        class_name: "Entity Management",
        category_uid: CATEGORY_UID,
        category_name: CATEGORY_NAME,
        activity_id: head.activity_id,
        activity_name: head.activity_name,
        type_uid: CLASS_UID * 100 + head.activity_id,
        type_name: head.type_name,
        severity_id: SEVERITY_ID,
        severity: SEVERITY,
        status_id,
        status,
        time: time(event)?,
        metadata,
        actor,
        entity,
        src_endpoint,
        http_request,
    })
}

/// The host's `action`, unless empty.
fn action(event: &AuditEvent) -> Option<Text<'_>> {
    crate::events::or_common(None, &event.action)
}

/// An `auditevents` record: `actor_details` (or `actor_uuid`) act on `object_uuid`, an
/// `object_type` named in `object_details`, in `session` from `session.ip` and its device.
// Closest class: an audit event is a CRUD-like action on a managed object (user, vault, group...).
pub fn audit_event<'a>(
    event: &'a AuditEvent,
    record: AuditEventRecord<'a>,
) -> Result<EntityDoc<'a>, PluginError> {
    let verb = Verb::of(&event.action);
    let (activity_id, caption, type_name) = activity(verb);
    let head = Head {
        activity_id,
        activity_name: match verb {
            Verb::Other => event.action.clone(),
            _ => caption.to_string(),
        },
        type_name,
    };
    let session = record.session.unwrap_or_default();
    let actor = Actor {
        user: User::new(event, record.actor_details, record.actor_uuid)
            .with_account(record.actor_account_uuid),
        session: Session::new(session.uuid, session.login_time.as_ref().map(Text::as_str)),
    };
    let entity = Entity {
        uid: record.object_uuid,
        name: record.object_details.and_then(|d| d.name),
        kind: record.object_type,
        version: None,
        group: None,
    };
    document(
        event,
        head,
        Metadata::new(
            event,
            Stream::AuditEvents,
            action(event),
            record.account_uuid,
        ),
        actor,
        entity,
        Endpoint::new(
            event,
            session.device_uuid,
            session.ip,
            record.location,
            None,
            None,
        ),
        HttpRequest::new(event, None),
    )
}

/// An `itemusages` record: `user` read version `used_version` of `item_uuid` in `vault_uuid`,
/// from `client`.
// Closest class: an item usage is a read of a managed object, the item; no logon, no API call.
pub fn item_usage<'a>(
    event: &'a AuditEvent,
    record: ItemUsage<'a>,
) -> Result<EntityDoc<'a>, PluginError> {
    let (activity_id, caption, type_name) = activity(Verb::Read);
    let head = Head {
        activity_id,
        activity_name: match event.action.as_str() {
            "" => caption.to_string(),
            action => action.to_string(),
        },
        type_name,
    };
    let actor = Actor {
        user: User::new(event, record.user, None),
        session: None,
    };
    let entity = Entity {
        uid: record.item_uuid,
        name: None,
        kind: Some(Text::borrowed("item")),
        version: record.used_version.map(|v| v.to_string()),
        group: record.vault_uuid.map(|uid| Uid { uid }),
    };
    let http_request = HttpRequest::new(event, record.client.as_ref());
    let ip = record.client.as_ref().and_then(|c| c.ip_address.clone());
    document(
        event,
        head,
        Metadata::new(
            event,
            Stream::ItemUsages,
            action(event),
            record.account_uuid,
        ),
        actor,
        entity,
        Endpoint::new(event, None, ip, record.location, None, record.client),
        http_request,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Detail, Record};
    use crate::format::sample;
    use crate::source::Source;
    use serde_json::{Value, json};

    fn render(event: &AuditEvent) -> Value {
        let stream = Source::of(event)
            .ok()
            .and_then(Source::stream)
            .expect("an Events API record");
        let doc = match Detail::read(event, stream).expect("reads").record {
            Record::AuditEvent(r) => audit_event(event, r),
            Record::ItemUsage(r) => item_usage(event, r),
            Record::SignInAttempt(_) => panic!("not an entity record"),
        };
        serde_json::to_value(doc.expect("renders")).expect("serializes")
    }

    #[test]
    fn an_audit_event_maps_field_by_field() {
        assert_eq!(
            render(&sample::audit_event()),
            json!({
                "class_uid": 3004,
                "class_name": "Entity Management",
                "category_uid": 3,
                "category_name": "Identity & Access Management",
                "activity_id": 99,
                "activity_name": "suspend",
                "type_uid": 300499,
                "type_name": "Entity Management: Other",
                "severity_id": 1,
                "severity": "Informational",
                "status_id": 1,
                "status": "Success",
                "time": 1_714_564_800_123_i64,
                "metadata": {
                    "version": "1.3.0",
                    "uid": "3Z5ZEF4NFBC4BHNKFHMCFZPM6U",
                    "original_time": "2024-05-01T12:00:00.123Z",
                    "log_name": "auditevents",
                    "event_code": "suspend",
                    "tenant_uid": "VZSYVT2LGHTBWBQGUJAIZVRABM",
                    "product": {
                        "name": "1Password",
                        "vendor_name": "1Password",
                        "feature": {"name": "Events API"},
                    },
                },
                "actor": {
                    "user": {
                        "uid": "FAKXLLFHFZEBVP5D6OBBY6NFQE",
                        "name": "Admin Appleseed",
                        "email_addr": "admin@example.com",
                        "account": {"uid": "VZSYVT2LGHTBWBQGUJAIZVRABM"},
                    },
                    "session": {
                        "uid": "ODOHXUYQCJBUJKRGZNNPBJURPE",
                        "created_time": 1_714_564_681_500_i64,
                    },
                },
                "entity": {
                    "uid": "IR7VJHJ36JHINBFAD7V2T5MP3E",
                    "name": "Wendy Appleseed",
                    "type": "user",
                },
                "src_endpoint": {
                    "uid": "rqtd557fn2husnstp5nc66w2xa",
                    "ip": "203.0.113.5",
                    "location": {
                        "country": "CA",
                        "region": "Ontario",
                        "city": "Toronto",
                        "lat": 43.6532,
                        "long": -79.3832,
                    },
                },
            })
        );
    }

    #[test]
    fn audit_event_actions_give_the_activity() {
        for (action, id, name) in [
            ("create", 1, "Create"),
            ("view", 2, "Read"),
            ("edit", 3, "Update"),
            ("update", 3, "Update"),
            ("delete", 4, "Delete"),
            ("purge", 4, "Delete"),
            ("grant", 99, "grant"),
        ] {
            let mut event = sample::audit_event();
            event.action = action.into();
            let doc = render(&event);
            assert_eq!(doc["activity_id"], id, "{action}");
            assert_eq!(doc["activity_name"], name, "{action}");
            assert_eq!(doc["type_uid"], 300400 + id, "{action}");
            assert_eq!(doc["metadata"]["event_code"], action);
        }
    }

    #[test]
    fn a_sparse_audit_event_keeps_only_what_it_has() {
        let doc = render(&sample::audit_event_sparse());
        assert_eq!(doc["activity_id"], 1);
        assert_eq!(doc["type_name"], "Entity Management: Create");
        assert_eq!(doc["metadata"]["uid"], "WQJ5QHXJWZGBLL7OQBOKQ6AP6U");
        assert_eq!(
            doc["actor"],
            json!({"user": {"uid": "FAKXLLFHFZEBVP5D6OBBY6NFQE"}})
        );
        assert_eq!(doc["entity"], json!({"type": "vault"}));
        assert!(doc.get("src_endpoint").is_none());
        assert!(doc.get("http_request").is_none());
        assert!(doc["metadata"].get("tenant_uid").is_none());
    }

    #[test]
    fn an_item_usage_maps_field_by_field() {
        let doc = render(&sample::item_usage());
        assert_eq!(doc["class_uid"], 3004);
        assert_eq!(doc["activity_id"], 2);
        assert_eq!(doc["activity_name"], "reveal");
        assert_eq!(doc["type_uid"], 300402);
        assert_eq!(doc["type_name"], "Entity Management: Read");
        assert_eq!(doc["metadata"]["log_name"], "itemusages");
        assert_eq!(doc["metadata"]["uid"], "MCQODWN6NJC5VLCQIRWQTZXF4Q");
        assert_eq!(doc["metadata"]["event_code"], "reveal");
        assert_eq!(
            doc["entity"],
            json!({
                "uid": "fdalkrf4myfn3z4a3oasavexam",
                "type": "item",
                "version": "3",
                "group": {"uid": "jaqxqf5qylslqiitnduawrndc5"},
            })
        );
        assert_eq!(
            doc["actor"],
            json!({"user": {
                "uid": "IR7VJHJ36JHINBFAD7V2T5MP3E",
                "name": "Wendy Appleseed",
                "email_addr": "wendy@example.com",
            }})
        );
        assert_eq!(doc["src_endpoint"]["ip"], "198.51.100.23");
        assert_eq!(doc["src_endpoint"]["location"]["city"], "San Francisco");
        assert_eq!(
            doc["src_endpoint"]["os"],
            json!({"name": "MacOSX", "type_id": 300, "version": "14.4.1"})
        );
        assert_eq!(
            doc["http_request"],
            json!({"user_agent": "1Password for Mac/81043004"})
        );
    }

    #[test]
    fn a_sparse_item_usage_keeps_only_what_it_has() {
        let doc = render(&sample::item_usage_sparse());
        assert_eq!(doc["activity_id"], 2);
        assert_eq!(doc["activity_name"], "secure-copy");
        assert_eq!(
            doc["entity"],
            json!({"uid": "fdalkrf4myfn3z4a3oasavexam", "type": "item"})
        );
        assert_eq!(doc["actor"], json!({"user": {}}));
        for absent in ["src_endpoint", "http_request"] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
    }
}
