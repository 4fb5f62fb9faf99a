//! The HTTP client of the 1Password Events API: token introspection and one page of a stream,
//! by cursor or by a reset cursor (time window and page size). Errors name the method, path
//! and status, never the token.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use crate::config::{ApiVersion, EventStream};
use crate::connect::model::SecretString;
use crate::telemetry::names;

/// The token check's path for `version` (v1's is unversioned).
fn introspect_path(version: ApiVersion) -> &'static str {
    match version {
        ApiVersion::V1 => "/api/auth/introspect",
        ApiVersion::V2 => "/api/v2/auth/introspect",
    }
}

/// What the API says about its token (v2 keys; the deprecated v1 endpoint capitalises them).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Introspection {
    /// The Events Reporting integration's id.
    #[serde(default, alias = "UUID")]
    pub uuid: String,
    #[serde(default, alias = "IssuedAt")]
    pub issued_at: Option<String>,
    /// The streams the token may read.
    #[serde(default, alias = "Features")]
    pub features: Vec<String>,
    #[serde(default)]
    pub account_uuid: Option<String>,
}

/// Where a page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageFrom {
    /// After the page that returned this cursor.
    Cursor(String),
    /// A reset cursor: `limit` records from `start`, up to `end`.
    Window {
        limit: u32,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    },
}

/// One page of a stream, oldest first.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub cursor: String,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub items: Vec<Box<RawValue>>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The API answered with an error status.
    #[error("Events API {method} {path}: HTTP {status}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer (connection, TLS, timeout).
    #[error("Events API {method} {path}: {source}")]
    Transport {
        method: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not what the reference describes.
    #[error("Events API {method} {path}: unreadable answer: {message}")]
    Decode {
        method: &'static str,
        path: String,
        message: String,
    },
}

impl EventsError {
    /// How long the API asked to wait (`Retry-After`), for a 429 or 503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The API refused for rate: wait and ask again.
    pub fn throttled(&self) -> bool {
        matches!(self, Self::Status { status: 429, .. })
    }
}

/// A client of one Events API base URL with one token.
#[derive(Clone)]
pub struct EventsClient {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    version: ApiVersion,
}

impl std::fmt::Debug for EventsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsClient")
            .field("base", &self.base.as_str())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl EventsClient {
    pub fn new(
        base: Url,
        token: SecretString,
        version: ApiVersion,
        timeout: Duration,
    ) -> Result<Self, EventsError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("opsync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .map_err(|source| EventsError::Transport {
                method: "GET",
                path: base.to_string(),
                source,
            })?;
        Ok(Self {
            http,
            base,
            token,
            version,
        })
    }

    /// `GET /api/v2/auth/introspect` (`/api/auth/introspect` for v1).
    pub async fn introspect(&self) -> Result<Introspection, EventsError> {
        let path = introspect_path(self.version);
        let request = self.http.get(self.url(path));
        let body = self.send("GET", path, "introspect", request).await?;
        serde_json::from_slice(&body).map_err(|e| EventsError::Decode {
            method: "GET",
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// `POST /api/v{1,2}/{stream}`: one page from `from`.
    pub async fn page(&self, stream: EventStream, from: &PageFrom) -> Result<Page, EventsError> {
        let path = format!("/api/{}/{}", self.version.as_str(), stream.as_str());
        let body = match from {
            PageFrom::Cursor(cursor) => serde_json::json!({ "cursor": cursor }),
            PageFrom::Window { limit, start, end } => {
                let mut window = serde_json::json!({ "limit": limit });
                let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
                if let Some(start) = start {
                    window["start_time"] = time(start).into();
                }
                if let Some(end) = end {
                    window["end_time"] = time(end).into();
                }
                window
            }
        };
        let request = self.http.post(self.url(&path)).json(&body);
        let body = self.send("POST", &path, stream.as_str(), request).await?;
        serde_json::from_slice(&body).map_err(|e| EventsError::Decode {
            method: "POST",
            path,
            message: e.to_string(),
        })
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// Sends `request` with the token; the body of a 2xx answer, else the status as an error.
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        stream: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, EventsError> {
        let answer = request
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            .send()
            .await;
        let count = |status: String| {
            metrics::counter!(names::AUDIT_EVENTS_REQUESTS_TOTAL,
                "stream" => stream, "status" => status)
            .increment(1);
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(source) => {
                count("error".into());
                return Err(EventsError::Transport {
                    method,
                    path: path.to_owned(),
                    source: source.without_url(),
                });
            }
        };
        let status = answer.status();
        count(status.as_u16().to_string());
        let retry_after = retry_after(answer.headers());
        let body = answer
            .bytes()
            .await
            .map_err(|source| EventsError::Transport {
                method,
                path: path.to_owned(),
                source: source.without_url(),
            })?;
        if status.is_success() {
            return Ok(body);
        }
        Err(EventsError::Status {
            method,
            path: path.to_owned(),
            status: status.as_u16(),
            message: message_of(&body),
            retry_after,
        })
    }
}

/// `Retry-After` in seconds (the API does not send dates).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The error's message: `{"Error": {"Message": ...}}` as the reference has it, a plain
/// `message`, or the start of the body.
fn message_of(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Inner {
        #[serde(alias = "Message")]
        message: String,
    }
    #[derive(Deserialize)]
    struct Outer {
        #[serde(alias = "Error")]
        error: Option<Inner>,
        #[serde(default, alias = "Message")]
        message: Option<String>,
    }
    if let Ok(outer) = serde_json::from_slice::<Outer>(body)
        && let Some(message) = outer.error.map(|e| e.message).or(outer.message)
    {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None if text.is_empty() => "(no body)".into(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_the_reference_shape_or_the_body() {
        assert_eq!(
            message_of(br#"{"Error":{"Message":"Unauthorized"}}"#),
            "Unauthorized"
        );
        assert_eq!(message_of(br#"{"message":"slow down"}"#), "slow down");
        assert_eq!(message_of(b"  "), "(no body)");
        assert_eq!(message_of(b"oops"), "oops");
    }

    #[test]
    fn paths_keep_a_base_path() {
        let client = EventsClient::new(
            Url::parse("http://127.0.0.1:9/prefix/").expect("url"),
            SecretString::new("t"),
            ApiVersion::V2,
            Duration::from_secs(1),
        )
        .expect("client");
        assert_eq!(
            client.url("/api/v2/auditevents").as_str(),
            "http://127.0.0.1:9/prefix/api/v2/auditevents"
        );
    }
}
