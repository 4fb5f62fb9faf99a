//! Events API records as ECS documents, `event.dataset` `1password.<stream>`.
//!
//! `event.module` is `1password`; the user, the client's address, geolocation and user agent get
//! their ECS fields, and what ECS has no field for goes under `onepassword.*`.

use serde::Serialize;

use super::{ECS_VERSION, Observer, Version, event_outcome};
use crate::events::{
    self, AuditEventRecord, Client, ItemUsage, Location, Named, SignInAttempt, Text, or_common,
};
use crate::format::verb::Verb;
use crate::source::Stream;
use crate::timestamp::Timestamp;
use crate::{AuditEvent, PluginError};

pub const MODULE: &str = "1password";

/// `event.dataset` of a stream's records.
pub fn dataset(stream: Stream) -> &'static str {
    match stream {
        Stream::AuditEvents => "1password.auditevents",
        Stream::ItemUsages => "1password.itemusages",
        Stream::SignInAttempts => "1password.signinattempts",
    }
}

/// ECS `event.type` of an audit event's action (`iam` allows no `access`: a read is `info`).
pub fn iam_type(action: &str) -> &'static str {
    match Verb::of(action) {
        Verb::Create => "creation",
        Verb::Update => "change",
        Verb::Delete => "deletion",
        Verb::Read | Verb::Other => "info",
    }
}

/// One ECS document of an Events API record.
#[derive(Debug, Serialize)]
pub struct EventsDoc<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: Version,
    event: Event<'a>,
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourceFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<UserAgent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    related: Option<Related<'a>>,
    observer: Observer,
    onepassword: Extra<'a>,
}

#[derive(Debug, Serialize)]
struct Event<'a> {
    id: &'a str,
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    types: [&'static str; 1],
    action: Text<'a>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Text<'a>>,
    module: &'static str,
    dataset: &'static str,
    provider: &'static str,
}

/// A user: `id`, `name` and `full_name` (both the name 1Password shows), `email`.
#[derive(Debug, Default, Serialize)]
struct Person<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Text<'a>>,
}

impl<'a> Person<'a> {
    /// The user `named` describes, `id` standing in for a missing `uuid`.
    fn new(named: Option<Named<'a>>, id: Option<Text<'a>>) -> Self {
        let named = named.unwrap_or_default();
        Self {
            id: named.uuid.or(id),
            full_name: named.name.clone(),
            name: named.name,
            email: named.email,
        }
    }
}

/// `user`, and `user.target` for an audit event on a user.
#[derive(Debug, Serialize)]
struct User<'a> {
    #[serde(flatten)]
    person: Person<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Person<'a>>,
}

#[derive(Debug, Serialize)]
struct Id<'a> {
    id: Text<'a>,
}

#[derive(Debug, Serialize)]
struct SourceFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    geo: Option<Geo<'a>>,
}

#[derive(Debug, Serialize)]
struct Geo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    country_iso_code: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region_name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city_name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<GeoPoint>,
}

#[derive(Debug, Serialize)]
struct GeoPoint {
    lat: f64,
    lon: f64,
}

/// `source`: the address (the host's `actor.request-ip` when the record has none) and its
/// geolocation (`country` standing in for a missing `location.country`).
fn source<'a>(
    event: &'a AuditEvent,
    ip: Option<Text<'a>>,
    location: Option<Location<'a>>,
    country: Option<Text<'a>>,
) -> Option<SourceFields<'a>> {
    let ip = or_common(ip, &event.actor.request_ip);
    let l = location.unwrap_or_default();
    let geo = Geo {
        country_iso_code: l.country.or(country),
        region_name: l.region,
        city_name: l.city,
        location: l
            .latitude
            .zip(l.longitude)
            .map(|(lat, lon)| GeoPoint { lat, lon }),
    };
    let geo = (geo.country_iso_code.is_some()
        || geo.region_name.is_some()
        || geo.city_name.is_some()
        || geo.location.is_some())
    .then_some(geo);
    (ip.is_some() || geo.is_some()).then_some(SourceFields { ip, geo })
}

/// `user_agent`: the client app (`original` as the host writes it, `name`, `version`) and the
/// operating system it ran on.
#[derive(Debug, Serialize)]
struct UserAgent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<Os<'a>>,
}

#[derive(Debug, Serialize)]
struct Os<'a> {
    name: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Text<'a>>,
}

/// The user agent of `client` (the host's for a record without one), and the platform the
/// client ran in (for `onepassword.client`).
fn user_agent<'a>(
    event: &'a AuditEvent,
    client: Option<Client<'a>>,
) -> (Option<UserAgent<'a>>, Option<Platform<'a>>) {
    let original = events::user_agent(event, client.as_ref());
    let client = client.unwrap_or_default();
    let os = client.os_name.map(|name| Os {
        name,
        version: client.os_version,
    });
    let agent = UserAgent {
        original,
        name: client.app_name,
        version: client.app_version,
        os,
    };
    let any = agent.original.is_some()
        || agent.name.is_some()
        || agent.version.is_some()
        || agent.os.is_some();
    let platform = Platform {
        platform_name: client.platform_name,
        platform_version: client.platform_version,
    };
    let known = platform.platform_name.is_some() || platform.platform_version.is_some();
    (any.then_some(agent), known.then_some(platform))
}

#[derive(Debug, Serialize)]
struct Related<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user: Vec<Text<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ip: Vec<Text<'a>>,
}

/// `related.user` (the user, and the target user) and `related.ip` (the source address).
fn related<'a>(user: &User<'a>, source: Option<&SourceFields<'a>>) -> Option<Related<'a>> {
    let target = user.target.as_ref().and_then(|t| t.id.clone());
    let user: Vec<Text<'a>> = user.person.id.clone().into_iter().chain(target).collect();
    let ip: Vec<Text<'a>> = source.and_then(|s| s.ip.clone()).into_iter().collect();
    (!user.is_empty() || !ip.is_empty()).then_some(Related { user, ip })
}

/// `onepassword.*`: the record's fields ECS has no place for, by stream.
#[derive(Debug, Default, Serialize)]
struct Extra<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<Text<'a>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    used_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault_uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_type: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_account_uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_type: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux_info: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<ExtraSession<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<Platform<'a>>,
}

#[derive(Debug, Serialize)]
struct Details<'a> {
    value: Text<'a>,
}

#[derive(Debug, Serialize)]
struct ExtraSession<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uuid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_time: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_uuid: Option<Text<'a>>,
}

/// The browser or platform the client app ran in.
#[derive(Debug, Serialize)]
struct Platform<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_version: Option<Text<'a>>,
}

/// What differs between the streams' documents.
struct Parts<'a> {
    stream: Stream,
    category: &'static str,
    kind: &'static str,
    action: Text<'a>,
    outcome: &'static str,
    reason: Option<Text<'a>>,
    user: User<'a>,
    account: Option<Text<'a>>,
    source: Option<SourceFields<'a>>,
    user_agent: Option<UserAgent<'a>>,
    extra: Extra<'a>,
}

fn document<'a>(event: &'a AuditEvent, parts: Parts<'a>) -> Result<EventsDoc<'a>, PluginError> {
    let time = Timestamp::of(event)?;
    let related = related(&parts.user, parts.source.as_ref());
    Ok(EventsDoc {
        timestamp: time.rfc3339_millis(),
        ecs: Version {
            version: ECS_VERSION,
        },
        event: Event {
            id: &event.request_id,
            kind: "event",
            category: [parts.category],
            types: [parts.kind],
            action: parts.action,
            outcome: parts.outcome,
            reason: parts.reason,
            module: MODULE,
            dataset: dataset(parts.stream),
            provider: "1password-events-api",
        },
        user: parts.user,
        organization: or_common(parts.account, &event.actor.account).map(|id| Id { id }),
        source: parts.source,
        user_agent: parts.user_agent,
        related,
        observer: Observer {
            vendor: "1Password",
            product: "Events API",
        },
        onepassword: parts.extra,
    })
}

/// The host's `action`, verbatim.
fn action(event: &AuditEvent) -> Text<'_> {
    Text::borrowed(&event.action)
}

/// A `signinattempts` record: `authentication`/`start`, the action its `category`, the reason
/// its `type`, the user who tried to sign in.
pub fn sign_in_attempt<'a>(
    event: &'a AuditEvent,
    attempt: SignInAttempt<'a>,
) -> Result<EventsDoc<'a>, PluginError> {
    let outcome = match attempt.succeeded() {
        Some(true) => "success",
        Some(false) => "failure",
        None => event_outcome(&event.outcome),
    };
    let ip = attempt.client.as_ref().and_then(|c| c.ip_address.clone());
    let (user_agent, platform) = user_agent(event, attempt.client);
    let user = User {
        person: Person::new(attempt.target_user, or_common(None, &event.actor.id)),
        target: None,
    };
    document(
        event,
        Parts {
            stream: Stream::SignInAttempts,
            category: "authentication",
            kind: "start",
            action: attempt.category.clone().unwrap_or_else(|| action(event)),
            outcome,
            reason: attempt.kind.clone(),
            user,
            account: attempt.account_uuid,
            source: source(event, ip, attempt.location, attempt.country),
            user_agent,
            extra: Extra {
                category: attempt.category,
                kind: attempt.kind,
                details: attempt
                    .details
                    .and_then(|d| d.value)
                    .map(|value| Details { value }),
                session_uuid: attempt.session_uuid,
                client: platform,
                ..Extra::default()
            },
        },
    )
}

/// An `itemusages` record: `database`/`access`, the action verbatim, the user who used the item.
pub fn item_usage<'a>(
    event: &'a AuditEvent,
    usage: ItemUsage<'a>,
) -> Result<EventsDoc<'a>, PluginError> {
    let ip = usage.client.as_ref().and_then(|c| c.ip_address.clone());
    let (user_agent, platform) = user_agent(event, usage.client);
    let user = User {
        person: Person::new(usage.user, or_common(None, &event.actor.id)),
        target: None,
    };
    document(
        event,
        Parts {
            stream: Stream::ItemUsages,
            category: "database",
            kind: "access",
            action: action(event),
            outcome: event_outcome(&event.outcome),
            reason: None,
            user,
            account: usage.account_uuid,
            source: source(event, ip, usage.location, None),
            user_agent,
            extra: Extra {
                used_version: usage.used_version,
                vault_uuid: usage.vault_uuid,
                item_uuid: usage.item_uuid,
                client: platform,
                ..Extra::default()
            },
        },
    )
}

/// An `auditevents` record: `iam`, typed by its action, the acting user as `user` and, for an
/// action on a user, that user as `user.target`.
pub fn audit_event<'a>(
    event: &'a AuditEvent,
    record: AuditEventRecord<'a>,
) -> Result<EventsDoc<'a>, PluginError> {
    let on_user = record
        .object_type
        .as_ref()
        .is_some_and(|t| t.as_str() == "user");
    let object_name = record.object_details.as_ref().and_then(|d| d.name.clone());
    let target = if on_user {
        Some(Person::new(
            record.object_details,
            record.object_uuid.clone(),
        ))
    } else {
        None
    };
    let user = User {
        person: Person::new(
            record.actor_details,
            or_common(record.actor_uuid, &event.actor.id),
        ),
        target,
    };
    let session = record.session.unwrap_or_default();
    let user_agent = events::user_agent(event, None).map(|original| UserAgent {
        original: Some(original),
        name: None,
        version: None,
        os: None,
    });
    let extra_session = ExtraSession {
        uuid: session.uuid,
        login_time: session.login_time,
        device_uuid: session.device_uuid,
    };
    let any_session = extra_session.uuid.is_some()
        || extra_session.login_time.is_some()
        || extra_session.device_uuid.is_some();
    document(
        event,
        Parts {
            stream: Stream::AuditEvents,
            category: "iam",
            kind: iam_type(&event.action),
            action: action(event),
            outcome: event_outcome(&event.outcome),
            reason: None,
            user,
            account: record.account_uuid,
            source: source(event, session.ip, record.location, None),
            user_agent,
            extra: Extra {
                actor_type: record.actor_type,
                actor_account_uuid: record.actor_account_uuid,
                object_type: record.object_type,
                object_uuid: record.object_uuid,
                object_name,
                aux_id: record.aux_id,
                aux_uuid: record.aux_uuid,
                aux_info: record.aux_info,
                session: any_session.then_some(extra_session),
                ..Extra::default()
            },
        },
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
            Record::SignInAttempt(r) => sign_in_attempt(event, r),
        };
        serde_json::to_value(doc.expect("renders")).expect("serializes")
    }

    #[test]
    fn a_failed_sign_in_maps_field_by_field() {
        assert_eq!(
            render(&sample::sign_in_failed()),
            json!({
                "@timestamp": "2024-05-01T12:00:00.123Z",
                "ecs": {"version": "8.11.0"},
                "event": {
                    "id": "56YE2TYN2VFYRLNSHKPW5NVT5E",
                    "kind": "event",
                    "category": ["authentication"],
                    "type": ["start"],
                    "action": "credentials_failed",
                    "outcome": "failure",
                    "reason": "password_secret_bad",
                    "module": "1password",
                    "dataset": "1password.signinattempts",
                    "provider": "1password-events-api",
                },
                "user": {
                    "id": "IR7VJHJ36JHINBFAD7V2T5MP3E",
                    "name": "Zoë \"Z\" Appleseed",
                    "full_name": "Zoë \"Z\" Appleseed",
                    "email": "zoe@example.com",
                },
                "organization": {"id": "VZSYVT2LGHTBWBQGUJAIZVRABM"},
                "source": {
                    "ip": "192.0.2.10",
                    "geo": {
                        "country_iso_code": "CA",
                        "region_name": "Ontario",
                        "city_name": "Toronto",
                        "location": {"lat": 43.6532, "lon": -79.3832},
                    },
                },
                "user_agent": {
                    "original": "1Password Browser Extension/20184",
                    "name": "1Password Browser Extension",
                    "version": "20184",
                    "os": {"name": "MacOSX", "version": "14.4.1"},
                },
                "related": {"user": ["IR7VJHJ36JHINBFAD7V2T5MP3E"], "ip": ["192.0.2.10"]},
                "observer": {"vendor": "1Password", "product": "Events API"},
                "onepassword": {
                    "category": "credentials_failed",
                    "type": "password_secret_bad",
                    "session_uuid": "A5K6COGVRVEJXJW3XQZGS7VAMM",
                    "client": {"platform_name": "Chrome", "platform_version": "124.0.6367.91"},
                },
            })
        );
    }

    #[test]
    fn a_sparse_sign_in_keeps_only_what_it_has() {
        let doc = render(&sample::sign_in_sparse());
        assert_eq!(doc["event"]["id"], "5HU2ZWJPLZDXHJQ4EBKZAFGXVA");
        assert_eq!(doc["event"]["action"], "success");
        assert_eq!(doc["event"]["outcome"], "success");
        assert_eq!(doc["event"]["dataset"], "1password.signinattempts");
        assert!(doc["event"].get("reason").is_none());
        assert_eq!(doc["user"], json!({}));
        for absent in ["organization", "source", "user_agent", "related"] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
        assert_eq!(doc["onepassword"], json!({"category": "success"}));
    }

    #[test]
    fn a_sign_in_without_a_category_takes_the_hosts_action_and_outcome() {
        let mut event = sample::sign_in_sparse();
        event.outcome = "DENY".into();
        event.detail = Some(r#"{"type":"sso_bad","details":{"value":"IdP said no"}}"#.into());
        let doc = render(&event);
        assert_eq!(doc["event"]["action"], "signin");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["event"]["reason"], "sso_bad");
        assert_eq!(
            doc["onepassword"]["details"],
            json!({"value": "IdP said no"})
        );
    }

    #[test]
    fn an_item_usage_maps_field_by_field() {
        let doc = render(&sample::item_usage());
        assert_eq!(
            doc["event"],
            json!({
                "id": "MCQODWN6NJC5VLCQIRWQTZXF4Q",
                "kind": "event",
                "category": ["database"],
                "type": ["access"],
                "action": "reveal",
                "outcome": "success",
                "module": "1password",
                "dataset": "1password.itemusages",
                "provider": "1password-events-api",
            })
        );
        assert_eq!(doc["@timestamp"], "2024-05-01T12:00:00.123Z");
        assert_eq!(doc["user"]["email"], "wendy@example.com");
        assert_eq!(doc["source"]["ip"], "198.51.100.23");
        assert_eq!(doc["source"]["geo"]["city_name"], "San Francisco");
        assert_eq!(doc["user_agent"]["original"], "1Password for Mac/81043004");
        assert_eq!(doc["user_agent"]["os"]["name"], "MacOSX");
        assert_eq!(
            doc["onepassword"],
            json!({
                "used_version": 3,
                "vault_uuid": "jaqxqf5qylslqiitnduawrndc5",
                "item_uuid": "fdalkrf4myfn3z4a3oasavexam",
                "client": {"platform_name": "Mac", "platform_version": "14.4.1"},
            })
        );
    }

    #[test]
    fn a_sparse_item_usage_keeps_only_what_it_has() {
        let doc = render(&sample::item_usage_sparse());
        assert_eq!(doc["event"]["action"], "secure-copy");
        assert_eq!(doc["event"]["id"], "Q5VZUX2SHBFCTPCOFIG3DPRRIE");
        assert_eq!(doc["user"], json!({}));
        for absent in ["organization", "source", "user_agent", "related"] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
        assert_eq!(
            doc["onepassword"],
            json!({"item_uuid": "fdalkrf4myfn3z4a3oasavexam"})
        );
    }

    #[test]
    fn an_audit_event_maps_field_by_field() {
        let doc = render(&sample::audit_event());
        assert_eq!(doc["event"]["category"], json!(["iam"]));
        assert_eq!(doc["event"]["type"], json!(["info"]));
        assert_eq!(doc["event"]["action"], "suspend");
        assert_eq!(doc["event"]["dataset"], "1password.auditevents");
        assert_eq!(doc["event"]["id"], "3Z5ZEF4NFBC4BHNKFHMCFZPM6U");
        assert_eq!(
            doc["user"],
            json!({
                "id": "FAKXLLFHFZEBVP5D6OBBY6NFQE",
                "name": "Admin Appleseed",
                "full_name": "Admin Appleseed",
                "email": "admin@example.com",
                "target": {
                    "id": "IR7VJHJ36JHINBFAD7V2T5MP3E",
                    "name": "Wendy Appleseed",
                    "full_name": "Wendy Appleseed",
                    "email": "wendy@example.com",
                },
            })
        );
        assert_eq!(
            doc["related"]["user"],
            json!(["FAKXLLFHFZEBVP5D6OBBY6NFQE", "IR7VJHJ36JHINBFAD7V2T5MP3E"])
        );
        assert_eq!(doc["source"]["ip"], "203.0.113.5");
        assert_eq!(doc["source"]["geo"]["country_iso_code"], "CA");
        assert!(doc.get("user_agent").is_none());
        assert_eq!(
            doc["onepassword"],
            json!({
                "actor_type": "user",
                "actor_account_uuid": "VZSYVT2LGHTBWBQGUJAIZVRABM",
                "object_type": "user",
                "object_uuid": "IR7VJHJ36JHINBFAD7V2T5MP3E",
                "object_name": "Wendy Appleseed",
                "aux_id": 9,
                "aux_uuid": "K7C4BWTUBVHHBKXAXSYJPOIVBA",
                "session": {
                    "uuid": "ODOHXUYQCJBUJKRGZNNPBJURPE",
                    "login_time": "2024-05-01T11:58:01.5Z",
                    "device_uuid": "rqtd557fn2husnstp5nc66w2xa",
                },
            })
        );
    }

    #[test]
    fn audit_event_actions_give_the_type() {
        for (action, kind) in [
            ("create", "creation"),
            ("update", "change"),
            ("edit", "change"),
            ("delete", "deletion"),
            ("purge", "deletion"),
            ("view", "info"),
            ("grant", "info"),
        ] {
            let mut event = sample::audit_event();
            event.action = action.into();
            let doc = render(&event);
            assert_eq!(doc["event"]["type"], json!([kind]), "{action}");
            assert_eq!(doc["event"]["action"], action);
        }
    }

    #[test]
    fn a_sparse_audit_event_keeps_only_what_it_has() {
        let doc = render(&sample::audit_event_sparse());
        assert_eq!(doc["event"]["type"], json!(["creation"]));
        assert_eq!(doc["user"], json!({"id": "FAKXLLFHFZEBVP5D6OBBY6NFQE"}));
        assert_eq!(doc["onepassword"], json!({"object_type": "vault"}));
        for absent in ["organization", "source", "user_agent"] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
    }
}
