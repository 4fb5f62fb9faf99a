//! Where records come from: Connect requests as the activity log records them, and synthetic history for benchmarks.
//!
//! From Connect requests (called where the activity log records a request, so each request
//! counts once):
//! - **sign-in attempts**: `success`/`credentials_ok` on the first request a Connect token
//!   (by `jti`) authenticates; `credentials_failed`/`password_secret_bad` on each request
//!   refused for a presented token that is garbled, badly signed, expired or for another
//!   audience (a request without any token is not an attempt).
//! - **item usages**: `reveal` on each successful `GET` of one item, at the item's version.
//! - **audit events**: `create`/`update`/`delete` of `item` on each successful item write,
//!   `object_uuid` the item, `aux_uuid` the vault, `aux_id` the item version.
//!
//! The actor is the token's subject (the Connect server's service user) with a session per
//! token (its UUID derived from the `jti`, its login time the first use), the client parsed
//! from `User-Agent`, and the caller's IP.
//!
//! Seeded history: a fixed cast of fake team members, apps and places; records spread evenly
//! (with jitter) over the 7 days before start, their contents derived from their position.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;

use crate::connect::model::{ActivityAction, ActivityResult};
use crate::connect::token::decode_unverified;

use super::super::activity::{Actor as ConnectActor, Resource};
use super::records::{
    Actor, Client, Feed, ItemAction, ItemRef, Person, Place, Session, UPPER, What, derived_id, mix,
};
use super::{Events, Stream};

/// Tokens remembered; past this the table starts over, and a token seen again counts as a new
/// sign-in.
const MAX_TRACKED: usize = 100_000;
/// How far back seeded history reaches.
const SEED_SPAN_NANOS: i64 = 7 * 24 * 3600 * 1_000_000_000;

/// Where records of the dev server's own callers say they come from (loopback and private
/// addresses), and the places seeded history picks from.
pub static PLACES: [Place; 6] = [
    Place {
        country: "CA",
        region: "Ontario",
        city: "Toronto",
        latitude: 43.6532,
        longitude: -79.3832,
    },
    Place {
        country: "US",
        region: "California",
        city: "San Francisco",
        latitude: 37.7749,
        longitude: -122.4194,
    },
    Place {
        country: "GB",
        region: "England",
        city: "London",
        latitude: 51.5074,
        longitude: -0.1278,
    },
    Place {
        country: "DE",
        region: "Berlin",
        city: "Berlin",
        latitude: 52.52,
        longitude: 13.405,
    },
    Place {
        country: "JP",
        region: "Tokyo",
        city: "Tokyo",
        latitude: 35.6762,
        longitude: 139.6503,
    },
    Place {
        country: "AU",
        region: "New South Wales",
        city: "Sydney",
        latitude: -33.8688,
        longitude: 151.2093,
    },
];

/// The fake team members of seeded history: name and email.
pub const MEMBERS: [(&str, &str); 10] = [
    ("Avery Stone", "avery.stone@example.com"),
    ("Blake Rivera", "blake.rivera@example.com"),
    ("Casey Lin", "casey.lin@example.com"),
    ("Devon Park", "devon.park@example.com"),
    ("Emery Walsh", "emery.walsh@example.com"),
    ("Finley Cho", "finley.cho@example.com"),
    ("Harper Diaz", "harper.diaz@example.com"),
    ("Jordan Reyes", "jordan.reyes@example.com"),
    ("Morgan Patel", "morgan.patel@example.com"),
    ("Riley Novak", "riley.novak@example.com"),
];

/// The apps of seeded history: app name and version, platform name and version, OS and version.
const APPS: [[&str; 6]; 4] = [
    [
        "1Password for Mac",
        "81008012",
        "MacBookPro18,3",
        "",
        "MacOSX",
        "14.5",
    ],
    [
        "1Password Extension",
        "20127",
        "Chrome",
        "126.0.6478.127",
        "MacOSX",
        "14.5",
    ],
    [
        "1Password for Windows",
        "81007041",
        "Windows",
        "",
        "Windows",
        "10.0.22631",
    ],
    ["1Password CLI", "2290001", "", "amd64", "Linux", "6.8.0"],
];

/// Domain separators for derived ids.
const MEMBER_IDS: u64 = 0x0000_6D65_6D62_6572;
const SESSION_IDS: u64 = 0x0073_6573_7369_6F6E;
const DEVICE_IDS: u64 = 0x0000_6465_7669_6365;

/// Live Connect tokens: their sessions and the actors they appeared as.
pub struct Observer {
    server_user: String,
    /// By token `jti` (looked up without allocating).
    tokens: Mutex<HashMap<Box<str>, SeenToken>>,
}

/// A Connect token's session and the actors (one per user agent and address) it was seen as.
struct SeenToken {
    session: LiveSession,
    actors: Vec<KnownActor>,
}

struct KnownActor {
    user_agent: Option<Arc<str>>,
    ip: Option<IpAddr>,
    actor: Arc<Actor>,
}

/// Actors kept per token; past this the oldest is forgotten (and made again if it returns).
const ACTORS_PER_TOKEN: usize = 16;

/// A Connect token's session: its UUID, first use (Unix nanoseconds) and device UUID.
#[derive(Clone)]
struct LiveSession {
    uuid: Arc<str>,
    login_time: i64,
    device: Arc<str>,
}

impl LiveSession {
    /// A session whose UUIDs derive from `seed`.
    fn new(key: u64, seed: u64, login_time: i64) -> Self {
        Self {
            uuid: Arc::from(derived_id(UPPER, mix(key ^ SESSION_IDS), seed)),
            login_time,
            device: Arc::from(derived_id(UPPER, mix(key ^ DEVICE_IDS), seed)),
        }
    }
}

impl Observer {
    pub fn new(server_user: String) -> Self {
        Self {
            server_user,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The shared actor of a Connect caller, and whether this is its token's first use.
    fn actor(&self, key: u64, caller: &ConnectActor, now: i64) -> (Arc<Actor>, bool) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let jti = caller.claims.jti.as_str();
        if let Some(seen) = tokens.get_mut(jti) {
            return (self.actor_of(seen, caller), false);
        }
        if tokens.len() >= MAX_TRACKED {
            tokens.clear();
        }
        let mut seen = SeenToken {
            session: LiveSession::new(key, hash_str(key, jti), now),
            actors: Vec::new(),
        };
        let actor = self.actor_of(&mut seen, caller);
        tokens.insert(jti.into(), seen);
        (actor, true)
    }

    /// The actor `seen` was already seen as from this caller's user agent and address, or a new one.
    fn actor_of(&self, seen: &mut SeenToken, caller: &ConnectActor) -> Arc<Actor> {
        if let Some(known) = seen
            .actors
            .iter()
            .find(|k| k.user_agent == caller.user_agent && k.ip == caller.ip)
        {
            return Arc::clone(&known.actor);
        }
        let actor = Arc::new(self.connect_actor(
            &caller.claims.sub,
            caller.user_agent.as_deref(),
            caller.ip,
            seen.session.clone(),
        ));
        if seen.actors.len() >= ACTORS_PER_TOKEN {
            seen.actors.remove(0);
        }
        seen.actors.push(KnownActor {
            user_agent: caller.user_agent.clone(),
            ip: caller.ip,
            actor: Arc::clone(&actor),
        });
        actor
    }

    /// A Connect caller as an Events actor: the token's subject, its client and place.
    fn connect_actor(
        &self,
        subject: &str,
        user_agent: Option<&str>,
        ip: Option<IpAddr>,
        session: LiveSession,
    ) -> Actor {
        let uuid = if subject.is_empty() {
            self.server_user.as_str()
        } else {
            subject
        };
        let ip_text = ip.map(|ip| ip.to_string()).unwrap_or_default();
        Actor {
            user: Person {
                uuid: uuid.to_owned(),
                name: "Connect Server: opsync connect-dev".to_owned(),
                email: format!("connect-{}@connect-dev.invalid", uuid.to_ascii_lowercase()),
            },
            user_type: "user",
            client: client_from_user_agent(user_agent, &ip_text),
            location: place_of(ip),
            session: Session {
                uuid: session.uuid.to_string(),
                login_time: session.login_time,
                device_uuid: session.device.to_string(),
                ip: ip_text,
            },
        }
    }
}

impl Events {
    /// Adds what a Connect request just recorded in the activity log means for the streams.
    /// `reveals_item` tells a `GET` of one item from other reads of it (its files).
    pub fn connect_request(
        &self,
        caller: &ConnectActor,
        reveals_item: bool,
        action: &ActivityAction,
        result: &ActivityResult,
        resource: &Resource,
    ) {
        let now = now_nanos();
        let (actor, first_use) = self.observer.actor(self.feed.key, caller, now);
        if first_use {
            self.feed.push(
                Stream::SignInAttempts,
                now,
                Arc::clone(&actor),
                What::SignIn { ok: true },
            );
        }
        if *result != ActivityResult::Success {
            return;
        }
        let Resource::Item {
            vault,
            item,
            version: Some(version),
        } = *resource
        else {
            return;
        };
        let item = Arc::new(ItemRef {
            vault,
            item,
            version,
        });
        let (stream, what) = match action {
            ActivityAction::Read if reveals_item => (Stream::ItemUsages, What::Reveal(item)),
            ActivityAction::Create => (
                Stream::AuditEvents,
                What::ItemWrite(ItemAction::Create, item),
            ),
            ActivityAction::Update => (
                Stream::AuditEvents,
                What::ItemWrite(ItemAction::Update, item),
            ),
            ActivityAction::Delete => (
                Stream::AuditEvents,
                What::ItemWrite(ItemAction::Delete, item),
            ),
            _ => return,
        };
        self.feed.push(stream, now, actor, what);
    }

    /// Records a failed sign-in for a request refused for its presented bearer `token`.
    pub fn refused_token(&self, token: &str, user_agent: Option<&str>, ip: Option<IpAddr>) {
        let now = now_nanos();
        let subject = decode_unverified(token)
            .map(|claims| claims.sub)
            .unwrap_or_default();
        let session = LiveSession::new(self.feed.key, hash_str(self.feed.key, token), now);
        let actor = self
            .observer
            .connect_actor(&subject, user_agent, ip, session);
        self.feed.push(
            Stream::SignInAttempts,
            now,
            Arc::new(actor),
            What::SignIn { ok: false },
        );
    }
}

/// Appends `n` records per stream spread over the 7 days before now (empty logs only keep
/// time order; call before serving).
pub fn seed(feed: &Feed, n: usize) {
    let now = now_nanos();
    let start = now - SEED_SPAN_NANOS;
    let actors = seeded_actors(feed.key, start);
    let step = (SEED_SPAN_NANOS / i64::try_from(n).unwrap_or(i64::MAX)).max(1);
    for stream in Stream::ALL {
        let mut log = feed.write(stream);
        let mut slot_start = start;
        for _ in 0..n {
            let value = feed.seeded_value(stream, log.next_seq());
            let jitter = i64::try_from(value % step.unsigned_abs()).unwrap_or(0);
            let actor = Arc::clone(&actors[(value >> 32) as usize % actors.len()]);
            log.push((slot_start + jitter).min(now), actor, What::Seeded);
            slot_start = slot_start.saturating_add(step);
        }
    }
}

/// The fake team members of this run, with their UUIDs.
pub fn members(key: u64) -> Vec<Person> {
    MEMBERS
        .iter()
        .enumerate()
        .map(|(i, (name, email))| Person {
            uuid: derived_id(UPPER, mix(key ^ MEMBER_IDS), i as u64),
            name: (*name).to_owned(),
            email: (*email).to_owned(),
        })
        .collect()
}

/// Every member with every app in every place: the actors of seeded history.
fn seeded_actors(key: u64, login_time: i64) -> Vec<Arc<Actor>> {
    let mut actors = Vec::with_capacity(MEMBERS.len() * APPS.len() * PLACES.len());
    for (m, member) in members(key).into_iter().enumerate() {
        for (a, app) in APPS.iter().enumerate() {
            for (p, place) in PLACES.iter().enumerate() {
                let n = (m * APPS.len() + a) as u64;
                let ip = format!("203.0.113.{}", 1 + (m * PLACES.len() + p) % 254);
                actors.push(Arc::new(Actor {
                    user: member.clone(),
                    user_type: "user",
                    client: Client {
                        app_name: app[0].to_owned(),
                        app_version: app[1].to_owned(),
                        platform_name: app[2].to_owned(),
                        platform_version: app[3].to_owned(),
                        os_name: app[4].to_owned(),
                        os_version: app[5].to_owned(),
                        ip_address: ip.clone(),
                    },
                    location: place,
                    session: Session {
                        uuid: derived_id(UPPER, mix(key ^ SESSION_IDS ^ 1), n),
                        login_time,
                        device_uuid: derived_id(UPPER, mix(key ^ DEVICE_IDS ^ 1), n),
                        ip,
                    },
                }));
            }
        }
    }
    actors
}

/// The `client` of a caller: the first product of `User-Agent` is the app, the second the
/// platform, the first comment the OS (name, then version).
pub fn client_from_user_agent(user_agent: Option<&str>, ip: &str) -> Client {
    let (products, comment) = split_user_agent(user_agent.unwrap_or_default());
    let product = |i: usize| -> (String, String) {
        products.get(i).map_or_else(Default::default, |p| {
            let (name, version) = p.split_once('/').unwrap_or((p, ""));
            (name.to_owned(), version.to_owned())
        })
    };
    let (app_name, app_version) = product(0);
    let (platform_name, platform_version) = product(1);
    let os = comment
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (os_name, os_version) = match os.split_once(' ') {
        Some((name, version)) => (name.to_owned(), version.trim().to_owned()),
        None => (os, String::new()),
    };
    Client {
        app_name: if app_name.is_empty() {
            "Unknown".to_owned()
        } else {
            app_name
        },
        app_version,
        platform_name,
        platform_version,
        os_name,
        os_version,
        ip_address: ip.to_owned(),
    }
}

/// The products (outside parentheses) and the first comment (inside) of a `User-Agent`.
fn split_user_agent(user_agent: &str) -> (Vec<&str>, &str) {
    let mut products = Vec::new();
    let mut comment = "";
    let mut rest = user_agent.trim();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('(') {
            let end = inner.find(')').unwrap_or(inner.len());
            if comment.is_empty() {
                comment = &inner[..end];
            }
            rest = inner.get(end + 1..).unwrap_or_default().trim_start();
        } else {
            let end = rest.find([' ', '(']).unwrap_or(rest.len());
            products.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
    }
    (products, comment)
}

/// Loopback, private and unknown callers are at the first place; others at one picked by address.
fn place_of(ip: Option<IpAddr>) -> &'static Place {
    let local = match ip {
        None => true,
        Some(IpAddr::V4(v4)) => v4.is_loopback() || v4.is_private() || v4.is_unspecified(),
        Some(IpAddr::V6(v6)) => v6.is_loopback() || v6.is_unspecified(),
    };
    if local {
        return &PLACES[0];
    }
    let seed = ip.map_or(0, |ip| hash_str(0, &ip.to_string()));
    &PLACES[seed as usize % PLACES.len()]
}

/// FNV-1a of `text` mixed with `key`.
fn hash_str(key: u64, text: &str) -> u64 {
    let hash = text.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    });
    mix(hash ^ key)
}

pub fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_from_user_agents() {
        let c = client_from_user_agent(
            Some("opsync/0.1.0 reqwest/0.12 (Linux 6.8.0; x86_64)"),
            "127.0.0.1",
        );
        assert_eq!(
            (
                c.app_name.as_str(),
                c.app_version.as_str(),
                c.platform_name.as_str(),
                c.platform_version.as_str(),
                c.os_name.as_str(),
                c.os_version.as_str(),
                c.ip_address.as_str()
            ),
            (
                "opsync",
                "0.1.0",
                "reqwest",
                "0.12",
                "Linux",
                "6.8.0",
                "127.0.0.1"
            )
        );
        let c = client_from_user_agent(None, "");
        assert_eq!((c.app_name.as_str(), c.os_name.as_str()), ("Unknown", ""));
        let c = client_from_user_agent(Some("curl/8.5.0"), "::1");
        assert_eq!(
            (c.app_name.as_str(), c.platform_name.as_str()),
            ("curl", "")
        );
        let c = client_from_user_agent(Some("(unclosed"), "");
        assert_eq!(c.os_name, "unclosed");
    }

    #[test]
    fn local_callers_are_at_the_first_place() {
        assert_eq!(place_of(None), &PLACES[0]);
        assert_eq!(place_of(Some(IpAddr::from([127, 0, 0, 1]))), &PLACES[0]);
        assert_eq!(place_of(Some(IpAddr::from([10, 1, 2, 3]))), &PLACES[0]);
        let far = place_of(Some(IpAddr::from([8, 8, 8, 8])));
        assert_eq!(far, place_of(Some(IpAddr::from([8, 8, 8, 8]))));
    }

    #[test]
    fn seeding_is_cheap_ordered_and_spans_a_week() {
        let feed = Feed::new(Arc::from("ACCOUNT"), 1_000_000);
        let started = std::time::Instant::now();
        seed(&feed, 100_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        for stream in Stream::ALL {
            let log = feed.read(stream);
            assert_eq!(log.len(), 100_000);
            let page = log.page(
                super::super::records::Window {
                    position: 0,
                    start: i64::MIN,
                    end: i64::MAX,
                },
                100_000,
            );
            assert!(page.records.windows(2).all(|w| w[0].1.at <= w[1].1.at));
            let first = page.records[0].1.at;
            let last = page.records[page.records.len() - 1].1.at;
            assert!(last - first > SEED_SPAN_NANOS / 10 * 9);
            assert!(last <= now_nanos());
        }
    }
}
