//! A fake of the 1Password Events API for development and tests, served by `opsync connect-dev` on the Connect listener.
//!
//! It answers the documented endpoints (`/api/v2/auth/introspect`, the deprecated
//! `/api/auth/introspect`, and `POST /api/{v1,v2}/{auditevents,itemusages,signinattempts}`) with
//! the reference's shapes, cursors, status codes and `{"Error":{"Message":...}}` bodies, from
//! records made out of what happens on the Connect side of the same server (see `generate`),
//! optionally preceded by synthetic history (`EventsOptions::seed`). It is not 1Password: the
//! records describe Connect requests, not real sign-ins or item uses in an account, and nothing
//! is persisted across restarts.

mod cursor;
mod generate;
mod limits;
mod records;
mod render;
mod routes;
mod tokens;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::connect::token::ConnectClaims;

use super::auth::{AuthError, KeyMaterial};

pub use limits::{RateLimit, RateLimitParseError};
pub use routes::router;
pub use tokens::{EventsTokenRequest, MINT_PATH as EVENTS_TOKENS_PATH};

use cursor::CursorKey;
use generate::Observer;
use limits::Throttle;
use records::{Feed, Person};
use tokens::EventsTokens;

/// Records kept per stream by default; the oldest fall off past it (the real API keeps 120 days).
pub const DEFAULT_CAPACITY: usize = 2_000_000;

/// One of the three record streams; its name is also the token feature that opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    AuditEvents,
    ItemUsages,
    SignInAttempts,
}

impl Stream {
    pub const ALL: [Stream; 3] = [
        Stream::AuditEvents,
        Stream::ItemUsages,
        Stream::SignInAttempts,
    ];

    /// The path segment and feature name: `auditevents`, `itemusages`, `signinattempts`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::AuditEvents => "auditevents",
            Stream::ItemUsages => "itemusages",
            Stream::SignInAttempts => "signinattempts",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::AuditEvents => 0,
            Stream::ItemUsages => 1,
            Stream::SignInAttempts => 2,
        }
    }

    fn from_index(index: u8) -> Option<Stream> {
        Stream::ALL.get(usize::from(index)).copied()
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the three streams.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Events API feature '{0}': expected auditevents, itemusages or signinattempts")]
pub struct UnknownFeature(pub String);

impl FromStr for Stream {
    type Err = UnknownFeature;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stream::ALL
            .into_iter()
            .find(|stream| stream.name() == s.trim())
            .ok_or_else(|| UnknownFeature(s.chars().take(40).collect()))
    }
}

/// The endpoint generation: v1 records lack the account fields v2 adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// How the fake starts.
#[derive(Clone, Debug)]
pub struct EventsOptions {
    /// Synthetic records made per stream at start, spread over the last 7 days.
    pub seed: usize,
    /// Records kept per stream.
    pub capacity: usize,
    /// Share (0..=1) of Events API requests answered `429 Too Many Requests`.
    pub too_many_requests_rate: f64,
    /// The `Retry-After` of those answers (whole seconds, at least 1).
    pub retry_after: Duration,
    /// A request budget per token, enforced with 429 and `Retry-After` when set.
    pub rate_limit: Option<RateLimit>,
}

impl Default for EventsOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            capacity: DEFAULT_CAPACITY,
            too_many_requests_rate: 0.0,
            retry_after: Duration::from_secs(1),
            rate_limit: None,
        }
    }
}

/// The fake's state: records, its token signer, cursor sealing and throttling.
pub struct Events {
    feed: Feed,
    /// The fake team members of seeded history.
    members: Vec<Person>,
    tokens: EventsTokens,
    cursors: CursorKey,
    observer: Observer,
    pub throttle: Throttle,
}

impl Events {
    /// Signs tokens with `key` (the Connect signing key); seeds `opts.seed` records per stream.
    pub fn new(key: &KeyMaterial, opts: &EventsOptions) -> Result<Events, AuthError> {
        let feed = Feed::new(Arc::from(key.account.as_str()), opts.capacity);
        if opts.seed > 0 {
            generate::seed(&feed, opts.seed);
        }
        Ok(Events {
            members: generate::members(feed.key),
            feed,
            tokens: EventsTokens::new(key)?,
            cursors: CursorKey::random(),
            observer: Observer::new(key.server_user.clone()),
            throttle: Throttle::new(
                opts.too_many_requests_rate,
                opts.retry_after,
                opts.rate_limit,
            ),
        })
    }

    /// An Events API token for `features`, expiring after `ttl` when given.
    pub fn mint(&self, features: &[Stream], ttl: Option<Duration>) -> Result<String, AuthError> {
        self.tokens.mint(features, ttl)
    }

    /// Records kept in `stream` now.
    pub fn len(&self, stream: Stream) -> usize {
        self.feed.len(stream)
    }

    /// The claims of an Events token this server signed, when still valid.
    fn verify(&self, token: &str) -> Option<Arc<ConnectClaims>> {
        self.tokens.verify(token)
    }
}

/// An Events API token signed with the key in `key`, without a running server.
pub fn mint_with_key(
    key: &KeyMaterial,
    features: &[Stream],
    ttl: Option<Duration>,
) -> Result<String, AuthError> {
    EventsTokens::new(key)?.mint(features, ttl)
}

/// `auditevents,itemusages` to streams, without repeats; empty means all three.
pub fn parse_features(list: &str) -> Result<Vec<Stream>, UnknownFeature> {
    let mut features: Vec<Stream> = Vec::new();
    for name in list.split(',').filter(|n| !n.trim().is_empty()) {
        let stream: Stream = name.parse()?;
        if !features.contains(&stream) {
            features.push(stream);
        }
    }
    if features.is_empty() {
        features = Stream::ALL.to_vec();
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_parse() {
        assert_eq!(
            parse_features("signinattempts, auditevents,signinattempts"),
            Ok(vec![Stream::SignInAttempts, Stream::AuditEvents])
        );
        assert_eq!(parse_features(""), Ok(Stream::ALL.to_vec()));
        assert!(parse_features("auditevents,vaultaccess").is_err());
        for stream in Stream::ALL {
            assert_eq!(Stream::from_index(stream.index() as u8), Some(stream));
            assert_eq!(stream.name().parse::<Stream>(), Ok(stream));
        }
    }
}
