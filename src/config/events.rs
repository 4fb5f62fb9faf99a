//! `[audit.sources.events]`: the 1Password Events API as a second audit source: where it is,
//! the token (an `op://` reference, an environment variable, or inline), which streams to read,
//! from when, and the request budget that keeps opsync under the API's rate limits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use crate::config::error::Problems;
use crate::config::event_stream::{ApiVersion, EventStream};
use crate::connect::model::SecretString;
use crate::connect::reference::SecretReference;

/// The API's base URL for accounts on 1password.com (others: `events.1password.ca`,
/// `events.1password.eu`, `events.ent.1password.com`).
pub const DEFAULT_EVENTS_URL: &str = "https://events.1password.com";
/// Most records the API returns per request.
pub const MAX_EVENTS_LIMIT: u32 = 1000;
/// The API's published limits: 600 requests a minute and 30,000 an hour.
pub const PUBLISHED_PER_MINUTE: u32 = 600;
pub const PUBLISHED_PER_HOUR: u32 = 30_000;
/// The default budget keeps a tenth of each limit in reserve for other readers.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 540;
pub const DEFAULT_REQUESTS_PER_HOUR: u32 = 27_000;
/// How far back the API keeps records.
pub const EVENTS_HISTORY: Duration = Duration::from_secs(120 * 24 * 3600);

/// Where the token comes from. Serialises without the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventsToken {
    /// An `op://` reference, read from Connect at start.
    Reference(SecretReference),
    /// The environment variable that held it (read when the config was loaded).
    Env { name: String, value: SecretString },
    /// Written in the config file.
    Inline(SecretString),
}

impl Serialize for EventsToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Reference(r) => s.serialize_str(&r.to_string()),
            Self::Env { name, .. } => s.serialize_str(&format!("env:{name}")),
            Self::Inline(_) => s.serialize_str("<redacted>"),
        }
    }
}

/// Where a stream starts the first time it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTime {
    /// From this time.
    At(DateTime<Utc>),
    /// From this long before the first read.
    Ago(Duration),
}

impl EventsSourceSettings {
    /// The budget keys set above the API's published limits, for a warning at start.
    pub fn above_published_limits(&self) -> Vec<String> {
        let mut above = Vec::new();
        if self.requests_per_minute > PUBLISHED_PER_MINUTE {
            above.push(format!(
                "requests_per_minute = {} (the API allows {PUBLISHED_PER_MINUTE})",
                self.requests_per_minute
            ));
        }
        if self.requests_per_hour > PUBLISHED_PER_HOUR {
            above.push(format!(
                "requests_per_hour = {} (the API allows {PUBLISHED_PER_HOUR})",
                self.requests_per_hour
            ));
        }
        above
    }
}

impl StartTime {
    /// The time, for a first read at `now`; never before the API's history.
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let oldest = now - chrono::Duration::from_std(EVENTS_HISTORY).unwrap_or_default();
        let t = match self {
            Self::At(t) => t,
            Self::Ago(d) => now - chrono::Duration::from_std(d).unwrap_or_default(),
        };
        t.max(oldest)
    }
}

impl Serialize for StartTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::At(t) => s.serialize_str(&t.to_rfc3339()),
            Self::Ago(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        }
    }
}

/// Effective `[audit.sources.events]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventsSourceSettings {
    pub url: Url,
    pub token: EventsToken,
    pub streams: Vec<EventStream>,
    pub api_version: ApiVersion,
    /// Where a stream starts the first time (later reads follow the saved cursor).
    pub start_time: StartTime,
    /// Time between two reads once every stream is drained (`has_more` false).
    #[serde(with = "crate::human_time::written")]
    pub poll_interval: Duration,
    /// Records per request (1 to 1000).
    pub limit: u32,
    pub requests_per_minute: u32,
    pub requests_per_hour: u32,
    /// Longest wait for one answer.
    #[serde(with = "crate::human_time::written")]
    pub timeout: Duration,
}

/// `[audit.sources]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSources {
    #[serde(default)]
    events: Option<RawEvents>,
}

/// `[audit.sources.events]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    url: Option<String>,
    token: Option<SecretString>,
    token_env: Option<String>,
    streams: Option<Vec<String>>,
    api_version: Option<String>,
    start_time: Option<String>,
    #[serde(default, with = "crate::human_time::written::option")]
    poll_interval: Option<Duration>,
    limit: Option<u32>,
    requests_per_minute: Option<u32>,
    requests_per_hour: Option<u32>,
    #[serde(default, with = "crate::human_time::written::option")]
    timeout: Option<Duration>,
}

/// Checks `[audit.sources.events]`; `None` when the section is absent. Problems go to
/// `problems` under their full keys.
pub(crate) fn resolve(
    raw: RawSources,
    default_poll: Duration,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<EventsSourceSettings> {
    let raw = raw.events?;
    let key = |k: &str| format!("audit.sources.events.{k}");
    let mut ok = true;
    let mut bad = |k: &str, message: String| {
        problems.add(key(k), message);
        ok = false;
    };
    let url = raw.url.as_deref().unwrap_or(DEFAULT_EVENTS_URL);
    let url = match Url::parse(url) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.username().is_empty()
                && u.password().is_none() =>
        {
            Some(u)
        }
        Ok(_) => {
            bad(
                "url",
                format!("{url:?} must be an http(s) URL without credentials"),
            );
            None
        }
        Err(e) => {
            bad("url", format!("{url:?} is not a URL: {e}"));
            None
        }
    };
    let token = match (raw.token, raw.token_env) {
        (Some(_), Some(_)) => {
            bad("token", "set token or token_env, not both".into());
            None
        }
        (None, None) => {
            bad(
                "token",
                "the Events API needs a bearer token: an op:// reference (token), or the name of an environment variable (token_env)".into(),
            );
            None
        }
        (Some(t), None) if t.expose().starts_with("op://") => match t.expose().parse() {
            Ok(r) => Some(EventsToken::Reference(r)),
            Err(e) => {
                bad("token", format!("{e}"));
                None
            }
        },
        (Some(t), None) if t.expose().trim().is_empty() => {
            bad("token", "is empty".into());
            None
        }
        (Some(t), None) => Some(EventsToken::Inline(SecretString::new(t.expose().trim()))),
        (None, Some(name)) => match env(&name).filter(|v| !v.trim().is_empty()) {
            Some(value) => Some(EventsToken::Env {
                name,
                value: SecretString::new(value.trim()),
            }),
            None => {
                bad(
                    "token_env",
                    format!("the environment variable {name} is not set or empty"),
                );
                None
            }
        },
    };
    let mut streams = Vec::new();
    match raw.streams {
        None => streams.extend(EventStream::ALL),
        Some(names) if names.is_empty() => bad(
            "streams",
            "name at least one stream (auditevents, itemusages, signinattempts)".into(),
        ),
        Some(names) => {
            for name in names {
                match name.parse::<EventStream>() {
                    Ok(s) if streams.contains(&s) => bad("streams", format!("{s} is listed twice")),
                    Ok(s) => streams.push(s),
                    Err(e) => bad("streams", e.to_string()),
                }
            }
        }
    }
    let api_version = match raw.api_version.as_deref() {
        None | Some("v2") => ApiVersion::V2,
        Some("v1") => ApiVersion::V1,
        Some(other) => {
            bad("api_version", format!("{other:?} is not v1 or v2"));
            ApiVersion::V2
        }
    };
    let start_time = match raw.start_time.as_deref().map(str::trim) {
        None => StartTime::Ago(Duration::from_secs(24 * 3600)),
        Some("now") => StartTime::Ago(Duration::ZERO),
        Some(text) => match parse_start(text) {
            Some(s) => s,
            None => {
                bad(
                    "start_time",
                    format!("{text:?} is not an RFC 3339 time, a duration (30d) or `now`"),
                );
                StartTime::Ago(Duration::ZERO)
            }
        },
    };
    let poll_interval = raw.poll_interval.unwrap_or(default_poll);
    if poll_interval.is_zero() {
        bad("poll_interval", "must be more than zero".into());
    }
    let limit = raw.limit.unwrap_or(MAX_EVENTS_LIMIT);
    if limit == 0 || limit > MAX_EVENTS_LIMIT {
        bad(
            "limit",
            format!("must be between 1 and {MAX_EVENTS_LIMIT}, got {limit}"),
        );
    }
    // Above the published limits is allowed (a private endpoint, the dev server) and warned
    // about at start: the real API answers 429 past them.
    let per_minute = raw
        .requests_per_minute
        .unwrap_or(DEFAULT_REQUESTS_PER_MINUTE);
    if per_minute == 0 {
        bad("requests_per_minute", "must be at least 1".into());
    }
    let per_hour = raw.requests_per_hour.unwrap_or(DEFAULT_REQUESTS_PER_HOUR);
    if per_hour == 0 {
        bad("requests_per_hour", "must be at least 1".into());
    }
    let timeout = raw.timeout.unwrap_or(Duration::from_secs(30));
    if timeout.is_zero() {
        bad("timeout", "must be more than zero".into());
    }
    Some(EventsSourceSettings {
        url: url?,
        token: token?,
        streams,
        api_version,
        start_time,
        poll_interval,
        limit,
        requests_per_minute: per_minute,
        requests_per_hour: per_hour,
        timeout,
    })
    .filter(|_| ok)
}

/// `start_time` as written: an RFC 3339 time, a date, or a duration back from the first read.
fn parse_start(text: &str) -> Option<StartTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(StartTime::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| StartTime::At(t.and_utc()));
    }
    humantime::parse_duration(text).ok().map(StartTime::Ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_times_dates_or_durations_within_the_history() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let at = |text: &str| parse_start(text).expect(text).at(now).to_rfc3339();
        assert_eq!(at("2026-11-01"), "2026-11-01T00:00:00+00:00");
        assert_eq!(at("2026-11-30T12:00:00+01:00"), "2026-11-30T11:00:00+00:00");
        assert_eq!(at("2d"), "2026-12-05T00:00:00+00:00");
        assert_eq!(
            at("2025-01-01"),
            "2026-08-09T00:00:00+00:00",
            "clamped to 120 days"
        );
        assert!(parse_start("yesterday").is_none());
    }
}
