//! Records as the reference's JSON objects: v1 shapes, and v2 with the account fields (`account_uuid`, `actor_type`, `actor_account_uuid`, `user_type`, `user_account_uuid`).
//!
//! Connect ids (vaults, items) are shown as Connect shows them (lowercase), so a record can be
//! matched with the Connect request that made it; every other UUID has 1Password's uppercase
//! base32 shape. Timestamps are RFC 3339 in UTC with nanoseconds.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use super::records::{Actor, Client, Feed, ItemRef, LOWER, Person, Place, Record, What, mix};
use super::{Stream, Version};

/// One record, in the shape of its stream.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Rendered<'a> {
    Audit(Box<AuditEvent<'a>>),
    Usage(Box<ItemUsage<'a>>),
    SignIn(Box<SignInAttempt<'a>>),
}

#[derive(Serialize)]
pub struct User<'a> {
    uuid: &'a str,
    name: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_account_uuid: Option<&'a str>,
}

#[derive(Serialize)]
pub struct SessionOut<'a> {
    uuid: &'a str,
    login_time: String,
    device_uuid: &'a str,
    ip: &'a str,
}

#[derive(Serialize)]
pub struct AuditEvent<'a> {
    uuid: String,
    timestamp: String,
    actor_uuid: &'a str,
    actor_details: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_account_uuid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_uuid: Option<&'a str>,
    action: &'static str,
    object_type: &'static str,
    object_uuid: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_details: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_uuid: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_details: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_info: Option<&'static str>,
    session: SessionOut<'a>,
    location: &'a Place,
}

#[derive(Serialize)]
pub struct ItemUsage<'a> {
    uuid: String,
    timestamp: String,
    used_version: u64,
    vault_uuid: Cow<'a, str>,
    item_uuid: Cow<'a, str>,
    action: &'static str,
    user: User<'a>,
    client: &'a Client,
    location: &'a Place,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_uuid: Option<&'a str>,
}

#[derive(Serialize)]
pub struct SignInAttempt<'a> {
    uuid: String,
    session_uuid: &'a str,
    timestamp: String,
    category: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    country: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    target_user: User<'a>,
    client: &'a Client,
    location: &'a Place,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_uuid: Option<&'a str>,
}

#[derive(Serialize)]
pub struct Details {
    value: &'static str,
}

/// Item actions of seeded item usages, `reveal` most often.
const USAGE_ACTIONS: [&str; 8] = [
    "reveal",
    "reveal",
    "reveal",
    "reveal",
    "fill",
    "secure-copy",
    "server-fetch",
    "enter-item-edit-mode",
];
/// Seeded vaults and items per vault.
const SEEDED_VAULTS: u64 = 4;
const SEEDED_ITEMS: u64 = 500;
const VAULT_IDS: u64 = 0x0076_6175_6C74;
const ITEM_IDS: u64 = 0x0000_6974_656D;
const GROUP_IDS: u64 = 0x0067_726F_7570;

/// What rendering needs besides the record.
pub struct Context<'a> {
    pub feed: &'a Feed,
    pub version: Version,
    /// The seeded team members.
    pub members: &'a [Person],
}

impl<'a> Context<'a> {
    pub fn render(&self, stream: Stream, seq: u64, record: &'a Record) -> Rendered<'a> {
        match stream {
            Stream::AuditEvents => Rendered::Audit(Box::new(self.audit_event(seq, record))),
            Stream::ItemUsages => Rendered::Usage(Box::new(self.item_usage(seq, record))),
            Stream::SignInAttempts => Rendered::SignIn(Box::new(self.sign_in(seq, record))),
        }
    }

    fn v2<T>(&self, value: T) -> Option<T> {
        (self.version == Version::V2).then_some(value)
    }

    fn account(&self) -> Option<&'a str> {
        self.v2(&*self.feed.account)
    }

    /// A user object; v2 adds its type and account.
    fn user(&self, person: &'a Person, user_type: &'a str) -> User<'a> {
        User {
            uuid: &person.uuid,
            name: &person.name,
            email: &person.email,
            user_type: self.v2(user_type),
            user_account_uuid: self.account(),
        }
    }

    /// `actor_details`, `object_details` and `aux_details`: uuid, name and email only.
    fn details(person: &'a Person) -> User<'a> {
        User {
            uuid: &person.uuid,
            name: &person.name,
            email: &person.email,
            user_type: None,
            user_account_uuid: None,
        }
    }

    fn audit_event(&self, seq: u64, record: &'a Record) -> AuditEvent<'a> {
        let actor: &'a Actor = &record.actor;
        let mut event = AuditEvent {
            uuid: self.feed.record_uuid(Stream::AuditEvents, seq),
            timestamp: timestamp(record.at),
            actor_uuid: &actor.user.uuid,
            actor_details: Self::details(&actor.user),
            actor_type: self.v2(actor.user_type),
            actor_account_uuid: self.account(),
            account_uuid: self.account(),
            action: "update",
            object_type: "item",
            object_uuid: Cow::Borrowed(""),
            object_details: None,
            aux_id: None,
            aux_uuid: None,
            aux_details: None,
            aux_info: None,
            session: SessionOut {
                uuid: &actor.session.uuid,
                login_time: timestamp(actor.session.login_time),
                device_uuid: &actor.session.device_uuid,
                ip: &actor.session.ip,
            },
            location: actor.location,
        };
        match &record.what {
            What::ItemWrite(action, item) => {
                event.action = action.name();
                Self::item_object(&mut event, item);
            }
            _ => self.seeded_audit(&mut event, seq),
        }
        event
    }

    fn item_object(event: &mut AuditEvent<'a>, item: &'a ItemRef) {
        event.object_type = "item";
        event.object_uuid = Cow::Borrowed(item.item.as_str());
        event.aux_uuid = Some(Cow::Borrowed(item.vault.as_str()));
        event.aux_id = Some(item.version);
    }

    /// Seeded audit events: mostly item changes, some vault, group and access changes.
    fn seeded_audit(&self, event: &mut AuditEvent<'a>, seq: u64) {
        let value = self.feed.seeded_value(Stream::AuditEvents, seq);
        let member = &self.members[(value >> 40) as usize % self.members.len()];
        let vault = seeded_vault(self.feed.key, value);
        match (value >> 8) % 20 {
            0..=11 => self.seeded_item(event, value, "update"),
            12..=14 => self.seeded_item(event, value, "create"),
            15 => self.seeded_item(event, value, "delete"),
            16 => {
                event.action = "grant";
                event.object_type = "uva";
                event.object_uuid = Cow::Owned(vault);
                event.aux_uuid = Some(Cow::Borrowed(&member.uuid));
                event.aux_details = Some(Self::details(member));
                event.aux_info = Some("allow_viewing,allow_editing");
            }
            17 => {
                event.action = "suspend";
                event.object_type = "user";
                event.object_uuid = Cow::Borrowed(&member.uuid);
                event.object_details = Some(Self::details(member));
            }
            18 => {
                event.action = "join";
                event.object_type = "gm";
                event.object_uuid = Cow::Owned(super::records::derived_id(
                    super::records::UPPER,
                    mix(self.feed.key ^ GROUP_IDS),
                    (value >> 16) % 3,
                ));
                event.aux_uuid = Some(Cow::Borrowed(&member.uuid));
                event.aux_details = Some(Self::details(member));
            }
            _ => {
                event.action = "create";
                event.object_type = "vault";
                event.object_uuid = Cow::Owned(vault);
            }
        }
    }

    fn seeded_item(&self, event: &mut AuditEvent<'a>, value: u64, action: &'static str) {
        event.action = action;
        let (vault, item, version) = seeded_item(self.feed.key, value);
        event.object_type = "item";
        event.object_uuid = Cow::Owned(item);
        event.aux_uuid = Some(Cow::Owned(vault));
        event.aux_id = Some(version);
    }

    fn item_usage(&self, seq: u64, record: &'a Record) -> ItemUsage<'a> {
        let actor: &'a Actor = &record.actor;
        let (vault, item, version, action) = match &record.what {
            What::Reveal(item) => (
                Cow::Borrowed(item.vault.as_str()),
                Cow::Borrowed(item.item.as_str()),
                item.version,
                "reveal",
            ),
            _ => {
                let value = self.feed.seeded_value(Stream::ItemUsages, seq);
                let (vault, item, version) = seeded_item(self.feed.key, value);
                let action = USAGE_ACTIONS[(value >> 32) as usize % USAGE_ACTIONS.len()];
                (Cow::Owned(vault), Cow::Owned(item), version, action)
            }
        };
        ItemUsage {
            uuid: self.feed.record_uuid(Stream::ItemUsages, seq),
            timestamp: timestamp(record.at),
            used_version: version,
            vault_uuid: vault,
            item_uuid: item,
            action,
            user: self.user(&actor.user, actor.user_type),
            client: &actor.client,
            location: actor.location,
            account_uuid: self.account(),
        }
    }

    fn sign_in(&self, seq: u64, record: &'a Record) -> SignInAttempt<'a> {
        let actor: &'a Actor = &record.actor;
        let (category, kind, details) = match &record.what {
            What::SignIn { ok: true } => ("success", "credentials_ok", None),
            What::SignIn { ok: false } => ("credentials_failed", "password_secret_bad", None),
            _ => match self.feed.seeded_value(Stream::SignInAttempts, seq) % 100 {
                0..=84 => ("success", "credentials_ok", None),
                85..=92 => ("credentials_failed", "password_secret_bad", None),
                93..=96 => ("mfa_failed", "totp_bad", None),
                _ => (
                    "firewall_failed",
                    "continent_blocked",
                    Some(Details { value: "Europe" }),
                ),
            },
        };
        SignInAttempt {
            uuid: self.feed.record_uuid(Stream::SignInAttempts, seq),
            session_uuid: &actor.session.uuid,
            timestamp: timestamp(record.at),
            category,
            kind,
            country: actor.location.country,
            details,
            target_user: self.user(&actor.user, actor.user_type),
            client: &actor.client,
            location: actor.location,
            account_uuid: self.account(),
        }
    }
}

/// A seeded vault id (Connect's shape).
fn seeded_vault(key: u64, value: u64) -> String {
    super::records::derived_id(LOWER, mix(key ^ VAULT_IDS), (value >> 12) % SEEDED_VAULTS)
}

/// A seeded vault id, item id and item version.
fn seeded_item(key: u64, value: u64) -> (String, String, u64) {
    let vault = (value >> 12) % SEEDED_VAULTS;
    let item = (value >> 16) % SEEDED_ITEMS;
    let version = 1 + (value >> 48) % 40;
    (
        super::records::derived_id(LOWER, mix(key ^ VAULT_IDS), vault),
        super::records::derived_id(LOWER, mix(key ^ ITEM_IDS ^ vault), item),
        version,
    )
}

/// RFC 3339, UTC, with nanoseconds.
pub fn timestamp(nanos: i64) -> String {
    DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::generate;
    use super::super::records::Window;
    use super::*;

    fn rendered(feed: &Feed, stream: Stream, version: Version) -> Vec<serde_json::Value> {
        let members = generate::members(feed.key);
        let context = Context {
            feed,
            version,
            members: &members,
        };
        let page = feed.read(stream).page(
            Window {
                position: 0,
                start: i64::MIN,
                end: i64::MAX,
            },
            1000,
        );
        page.records
            .iter()
            .map(|(seq, record)| {
                serde_json::to_value(context.render(stream, *seq, record)).expect("serialises")
            })
            .collect()
    }

    #[test]
    fn seeded_records_have_every_field_and_v1_lacks_the_account() {
        let feed = Feed::new(Arc::from("ACCOUNTUUID"), 10_000);
        generate::seed(&feed, 1000);
        let audit = rendered(&feed, Stream::AuditEvents, Version::V2);
        for key in [
            "uuid",
            "timestamp",
            "actor_uuid",
            "actor_details",
            "actor_type",
            "actor_account_uuid",
            "account_uuid",
            "action",
            "object_type",
            "object_uuid",
            "session",
            "location",
        ] {
            assert!(audit.iter().all(|e| e.get(key).is_some()), "{key}");
        }
        for key in ["object_details", "aux_details", "aux_info", "aux_id"] {
            assert!(audit.iter().any(|e| e.get(key).is_some()), "{key}");
        }
        let v1 = rendered(&feed, Stream::AuditEvents, Version::V1);
        assert!(v1.iter().all(|e| e.get("account_uuid").is_none()));
        assert!(v1.iter().all(|e| e.get("actor_type").is_none()));
        assert_eq!(v1[0]["uuid"], audit[0]["uuid"]);

        let usages = rendered(&feed, Stream::ItemUsages, Version::V2);
        assert_eq!(usages[0]["account_uuid"], "ACCOUNTUUID");
        assert_eq!(usages[0]["user"]["user_account_uuid"], "ACCOUNTUUID");
        assert!(usages[0]["client"]["app_name"].is_string());
        assert!(usages[0]["location"]["latitude"].is_number());
        let v1 = rendered(&feed, Stream::ItemUsages, Version::V1);
        assert!(v1[0]["user"].get("user_type").is_none());

        let sign_ins = rendered(&feed, Stream::SignInAttempts, Version::V2);
        assert!(sign_ins.iter().any(|s| s["category"] == "success"));
        assert!(
            sign_ins
                .iter()
                .any(|s| s["category"] == "firewall_failed" && s["details"]["value"] == "Europe")
        );
        let stamp = sign_ins[0]["timestamp"].as_str().expect("timestamp");
        assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok());
        assert_eq!(
            stamp.len(),
            "2024-01-01T00:00:00.000000000Z".len(),
            "{stamp}"
        );
    }
}
