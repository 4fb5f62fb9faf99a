//! An Events API record as every sink receives it: the common fields of an audit record (id,
//! time, action, outcome, actor, target) taken from the stream's own shape, and the record
//! itself, unchanged, as its detail.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::EventStream;
use crate::connect::model::{
    ActivityAction, ActivityActor, ActivityResource, ActivityResult, ApiRequest, IdRef,
    ResourceType,
};
use crate::store::NewRecord;

/// The fields of the three streams' records that the common fields come from (v1 and v2; every
/// one but `uuid` and `timestamp` may be missing).
#[derive(Deserialize)]
struct Fields {
    uuid: String,
    timestamp: DateTime<Utc>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    account_uuid: Option<String>,
    #[serde(default)]
    actor_uuid: Option<String>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    target_user: Option<User>,
    #[serde(default)]
    client: Option<Client>,
    #[serde(default)]
    session: Option<Session>,
    #[serde(default)]
    object_type: Option<String>,
    #[serde(default)]
    object_uuid: Option<String>,
    #[serde(default)]
    vault_uuid: Option<String>,
    #[serde(default)]
    item_uuid: Option<String>,
    #[serde(default)]
    used_version: Option<u64>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    uuid: Option<String>,
}

#[derive(Deserialize)]
struct Client {
    #[serde(default)]
    app_name: Option<String>,
    #[serde(default)]
    app_version: Option<String>,
    #[serde(default)]
    ip_address: Option<String>,
}

#[derive(Deserialize)]
struct Session {
    #[serde(default)]
    ip: Option<String>,
}

/// Why a record of the API could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("{stream} record {position} of the page: {source}")]
pub struct BadRecord {
    stream: EventStream,
    /// 1-based position in the page.
    position: usize,
    #[source]
    source: serde_json::Error,
}

/// `raw` (one item of a page of `stream`) as an outbox record.
pub fn normalize(
    stream: EventStream,
    raw: &RawValue,
    position: usize,
) -> Result<NewRecord, BadRecord> {
    let f: Fields = serde_json::from_str(raw.get()).map_err(|source| BadRecord {
        stream,
        position,
        source,
    })?;
    let request = match stream {
        EventStream::AuditEvents => audit_event(f),
        EventStream::ItemUsages => item_usage(f),
        EventStream::SignInAttempts => sign_in(f),
    };
    Ok(NewRecord {
        record: request,
        source: stream.as_str().to_owned(),
        detail: Some(raw.get().to_owned()),
    })
}

/// An action in the account: `action` verbatim, by `actor_uuid`, on `object_type`/`object_uuid`.
fn audit_event(f: Fields) -> ApiRequest {
    let ip = f.session.as_ref().and_then(|s| s.ip.clone());
    let target = f.object_type.clone().map(|kind| {
        let id = f.object_uuid.clone().map(|id| IdRef { id });
        let (vault, item) = match kind.as_str() {
            "vault" => (id, None),
            "item" => (None, id),
            _ => (None, None),
        };
        ActivityResource {
            resource_type: ResourceType::from(kind),
            vault,
            item,
            item_version: None,
        }
    });
    ApiRequest {
        request_id: f.uuid,
        timestamp: f.timestamp,
        action: ActivityAction::from(f.action.unwrap_or_default()),
        result: ActivityResult::Success,
        actor: actor(f.actor_uuid, f.account_uuid, f.client.as_ref(), ip),
        resource: target,
    }
}

/// A use of an item: `action` verbatim (`reveal`, `secure-copy`, `fill`, ...), by `user`.
fn item_usage(f: Fields) -> ApiRequest {
    let user = f.user.and_then(|u| u.uuid);
    ApiRequest {
        request_id: f.uuid,
        timestamp: f.timestamp,
        action: ActivityAction::from(f.action.unwrap_or_default()),
        result: ActivityResult::Success,
        actor: actor(user, f.account_uuid, f.client.as_ref(), None),
        resource: Some(ActivityResource {
            resource_type: ResourceType::Item,
            vault: f.vault_uuid.map(|id| IdRef { id }),
            item: f.item_uuid.map(|id| IdRef { id }),
            item_version: f.used_version,
        }),
    }
}

/// A sign-in attempt: action `signin`, `SUCCESS` only when `category` is `success`.
fn sign_in(f: Fields) -> ApiRequest {
    let result = if f.category.as_deref() == Some("success") {
        ActivityResult::Success
    } else {
        ActivityResult::Deny
    };
    let user = f.target_user.and_then(|u| u.uuid);
    ApiRequest {
        request_id: f.uuid,
        timestamp: f.timestamp,
        action: ActivityAction::from("signin".to_owned()),
        result,
        actor: actor(user, f.account_uuid, f.client.as_ref(), None),
        resource: None,
    }
}

/// Who acted: the user, the account, the client as `app/version` and its address (the
/// client's, else the session's).
fn actor(
    id: Option<String>,
    account: Option<String>,
    client: Option<&Client>,
    session_ip: Option<String>,
) -> ActivityActor {
    let user_agent = client
        .and_then(|c| c.app_name.as_deref())
        .map(|app| match client.and_then(|c| c.app_version.as_deref()) {
            Some(version) if !version.is_empty() => format!("{app}/{version}"),
            _ => app.to_owned(),
        })
        .unwrap_or_default();
    let ip = client
        .and_then(|c| c.ip_address.clone())
        .or(session_ip)
        .unwrap_or_default();
    ActivityActor {
        id: id.unwrap_or_default(),
        account: account.unwrap_or_default(),
        jti: String::new(),
        user_agent,
        request_ip: ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("json")
    }

    #[test]
    fn a_sign_in_failure_is_denied_and_keeps_its_record() {
        let text = r#"{"uuid":"56YE2TYN2VFYRLNSHKPW5NVT5E","session_uuid":"A5K6COGVRVEJXJW3XQZGS7VAMM",
            "timestamp":"2026-11-30T16:32:50-03:00","category":"credentials_failed",
            "type":"password_secret_bad","country":"CA",
            "target_user":{"uuid":"IR7VJHJ36JHINBFAD7V2T5MP3E","name":"Jo","email":"jo@example.com"},
            "client":{"app_name":"1Password Browser Extension","app_version":"20240","ip_address":"192.0.2.4"}}"#;
        let r = normalize(EventStream::SignInAttempts, &raw(text), 1).expect("record");
        assert_eq!(r.source, "signinattempts");
        assert_eq!(r.detail.as_deref(), Some(text));
        let q = &r.record;
        assert_eq!(q.request_id, "56YE2TYN2VFYRLNSHKPW5NVT5E");
        assert_eq!(q.action.as_str(), "signin");
        assert_eq!(q.result, ActivityResult::Deny);
        assert_eq!(q.actor.id, "IR7VJHJ36JHINBFAD7V2T5MP3E");
        assert_eq!(q.actor.user_agent, "1Password Browser Extension/20240");
        assert_eq!(q.actor.request_ip, "192.0.2.4");
        assert_eq!(q.timestamp.to_rfc3339(), "2026-11-30T19:32:50+00:00");
    }

    #[test]
    fn an_item_usage_names_the_item_and_its_version() {
        let text = r#"{"uuid":"u1","timestamp":"2026-11-30T10:00:00Z","used_version":7,
            "vault_uuid":"v1","item_uuid":"i1","action":"secure-copy",
            "user":{"uuid":"USER1"},"account_uuid":"ACC"}"#;
        let q = normalize(EventStream::ItemUsages, &raw(text), 1)
            .expect("record")
            .record;
        assert_eq!(q.action.as_str(), "secure-copy");
        assert_eq!(q.result, ActivityResult::Success);
        assert_eq!(q.actor.account, "ACC");
        let target = q.resource.expect("the item");
        assert_eq!(target.item.map(|i| i.id).as_deref(), Some("i1"));
        assert_eq!(target.vault.map(|v| v.id).as_deref(), Some("v1"));
        assert_eq!(target.item_version, Some(7));
    }

    #[test]
    fn an_audit_event_targets_its_object_and_takes_the_session_address() {
        let text = r#"{"uuid":"a1","timestamp":"2026-11-30T10:00:00Z","actor_uuid":"ACTOR",
            "action":"grant","object_type":"vault","object_uuid":"VAULT",
            "session":{"uuid":"s","ip":"198.51.100.2"}}"#;
        let q = normalize(EventStream::AuditEvents, &raw(text), 1)
            .expect("record")
            .record;
        assert_eq!(q.action.as_str(), "grant");
        assert_eq!(q.actor.id, "ACTOR");
        assert_eq!(q.actor.request_ip, "198.51.100.2");
        let target = q.resource.expect("the vault");
        assert_eq!(target.resource_type.as_str(), "vault");
        assert_eq!(target.vault.map(|v| v.id).as_deref(), Some("VAULT"));
    }

    #[test]
    fn a_record_without_an_id_is_refused_with_its_place() {
        let e = normalize(
            EventStream::AuditEvents,
            &raw(r#"{"timestamp":"2026-11-30T10:00:00Z"}"#),
            3,
        )
        .expect_err("no uuid");
        assert!(
            e.to_string()
                .starts_with("auditevents record 3 of the page"),
            "{e}"
        );
    }
}
