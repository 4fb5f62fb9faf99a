//! The parts the OCSF documents of Events API records share.
//!
//! Metadata naming the stream, users, sessions, and the source endpoint (address, location,
//! operating system).

use serde::Serialize;

use super::SCHEMA_VERSION;
use crate::AuditEvent;
use crate::events::{self, Client, Named, Text, or_common};
use crate::source::Stream;
use crate::timestamp::Timestamp;

/// Identity & Access Management, the category of both classes the streams map to.
pub const CATEGORY_UID: u32 = 3;
pub const CATEGORY_NAME: &str = "Identity & Access Management";
/// Every Events API record is informational: the API reports what happened, not a finding.
pub const SEVERITY_ID: u32 = 1;
pub const SEVERITY: &str = "Informational";
pub const PRODUCT: &str = "1Password";
pub const FEATURE: &str = "Events API";

/// `metadata`: `uid` is the request-id, `log_name` the stream, `event_code` the record's own
/// action or type, `tenant_uid` the account.
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    version: &'static str,
    uid: &'a str,
    original_time: &'a str,
    log_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_code: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_uid: Option<Text<'a>>,
    product: Product,
}

impl<'a> Metadata<'a> {
    /// The metadata of `event`, a record of `stream`; `account` is the record's `account_uuid`
    /// (the host's `actor.account` when the record has none).
    pub fn new(
        event: &'a AuditEvent,
        stream: Stream,
        event_code: Option<Text<'a>>,
        account: Option<Text<'a>>,
    ) -> Self {
        Self {
            version: SCHEMA_VERSION,
            uid: &event.request_id,
            original_time: &event.timestamp,
            log_name: stream.as_str(),
            event_code,
            tenant_uid: or_common(account, &event.actor.account),
            product: Product {
                name: PRODUCT,
                vendor_name: PRODUCT,
                feature: Feature { name: FEATURE },
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    feature: Feature,
}

#[derive(Debug, Serialize)]
struct Feature {
    name: &'static str,
}

/// The time of `event`, in milliseconds since the Unix epoch.
pub fn time(event: &AuditEvent) -> Result<i64, crate::PluginError> {
    Timestamp::of(event).map(Timestamp::unix_millis)
}

/// A `user`: `uid`, `name`, `email_addr`, and the account it belongs to when the record says.
#[derive(Debug, Serialize)]
pub struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_addr: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Uid<'a>>,
}

impl<'a> User<'a> {
    /// The user `named` describes; `uid` when it has no `uuid`, then the host's `actor.id`.
    pub fn new(event: &'a AuditEvent, named: Option<Named<'a>>, uid: Option<Text<'a>>) -> Self {
        let named = named.unwrap_or_default();
        Self {
            uid: or_common(named.uuid.or(uid), &event.actor.id),
            name: named.name,
            email_addr: named.email,
            account: None,
        }
    }

    pub fn with_account(mut self, account: Option<Text<'a>>) -> Self {
        self.account = account.map(|uid| Uid { uid });
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Uid<'a> {
    pub uid: Text<'a>,
}

/// A `session`: its id and, when known, when it was created (epoch milliseconds).
#[derive(Debug, Serialize)]
pub struct Session<'a> {
    uid: Text<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_time: Option<i64>,
}

impl<'a> Session<'a> {
    /// The session `uid`, created at `login_time` (RFC 3339; left out when it does not parse).
    pub fn new(uid: Option<Text<'a>>, login_time: Option<&str>) -> Option<Self> {
        Some(Self {
            uid: uid?,
            created_time: login_time
                .and_then(|t| Timestamp::parse("", t).ok())
                .map(Timestamp::unix_millis),
        })
    }
}

/// `src_endpoint`: where the request came from.
#[derive(Debug, Serialize)]
pub struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os: Option<Os<'a>>,
}

impl<'a> Endpoint<'a> {
    /// The endpoint `uid` (the device) at `ip` (the host's `actor.request-ip` when the record has
    /// none), located by `location` (`country` standing in for a missing `location.country`),
    /// with the operating system `client` ran on; none when nothing is known.
    pub fn new(
        event: &'a AuditEvent,
        uid: Option<Text<'a>>,
        ip: Option<Text<'a>>,
        location: Option<events::Location<'a>>,
        country: Option<Text<'a>>,
        client: Option<Client<'a>>,
    ) -> Option<Self> {
        let endpoint = Self {
            uid,
            ip: or_common(ip, &event.actor.request_ip),
            location: Location::new(location, country),
            os: client.and_then(Os::new),
        };
        let empty = endpoint.uid.is_none()
            && endpoint.ip.is_none()
            && endpoint.location.is_none()
            && endpoint.os.is_none();
        (!empty).then_some(endpoint)
    }
}

/// A `location`: country (ISO 3166-1 alpha-2), region, city, coordinates.
#[derive(Debug, Serialize)]
pub struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    long: Option<f64>,
}

impl<'a> Location<'a> {
    /// None without a country, region or city (OCSF requires one of them).
    fn new(location: Option<events::Location<'a>>, country: Option<Text<'a>>) -> Option<Self> {
        let l = location.unwrap_or_default();
        let country = l.country.or(country);
        if country.is_none() && l.region.is_none() && l.city.is_none() {
            return None;
        }
        Some(Self {
            country,
            region: l.region,
            city: l.city,
            lat: l.latitude,
            long: l.longitude,
        })
    }
}

/// An `os`: the client's operating system, typed as far as its name tells.
#[derive(Debug, Serialize)]
pub struct Os<'a> {
    name: Text<'a>,
    type_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Text<'a>>,
}

impl<'a> Os<'a> {
    fn new(client: Client<'a>) -> Option<Self> {
        let name = client.os_name?;
        Some(Self {
            type_id: os_type(name.as_str()),
            name,
            version: client.os_version,
        })
    }
}

/// OCSF's `os.type_id` for an OS name as 1Password clients report it (`MacOSX`, `Windows`,
/// `iOS`, `Android`, `Linux`, ...): 99 Other for names it does not know.
pub fn os_type(name: &str) -> u32 {
    let name = name.to_ascii_lowercase();
    if name.starts_with("windows") {
        100
    } else if name.starts_with("android") {
        201
    } else if name.starts_with("ipados") {
        302
    } else if name.starts_with("ios") || name.starts_with("iphone") {
        301
    } else if name.starts_with("mac") || name.starts_with("os x") {
        300
    } else if name.contains("linux") {
        200
    } else {
        99
    }
}

/// `http_request`: the client as a user agent.
#[derive(Debug, Serialize)]
pub struct HttpRequest<'a> {
    user_agent: Text<'a>,
}

impl<'a> HttpRequest<'a> {
    pub fn new(event: &'a AuditEvent, client: Option<&Client<'a>>) -> Option<Self> {
        events::user_agent(event, client).map(|user_agent| Self { user_agent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_types_by_name() {
        for (name, id) in [
            ("MacOSX", 300),
            ("macOS", 300),
            ("Windows", 100),
            ("iOS", 301),
            ("iPadOS", 302),
            ("Android", 201),
            ("Linux", 200),
            ("Ubuntu Linux", 200),
            ("ChromeOS", 99),
        ] {
            assert_eq!(os_type(name), id, "{name}");
        }
    }
}
