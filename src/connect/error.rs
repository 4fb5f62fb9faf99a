//! `ConnectError`: every way a Connect request can fail, split into retryable and permanent.
//!
//! No variant carries the token: requests send it in a header, and error details are built
//! from the method, the path and the server's message only.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::{Method, StatusCode};

/// A failed Connect request, or a Connect client that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configured host is not a usable base URL.
    #[error("invalid Connect host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },

    /// The token cannot be sent in an HTTP header (it is never shown).
    #[error("the Connect token contains characters that cannot be sent in an HTTP header")]
    InvalidToken,

    /// The HTTP client could not be built (TLS backend, settings).
    #[error("could not build the HTTP client: {0}")]
    Build(String),

    /// No connection could be made to the server. Retryable.
    #[error("{method} {path}: could not connect to the Connect server: {detail}")]
    Connect {
        method: Method,
        path: String,
        detail: String,
    },

    /// The request did not complete within the configured timeout. Retryable.
    #[error("{method} {path}: timed out after {}", humantime::format_duration(*.after))]
    Timeout {
        method: Method,
        path: String,
        after: Duration,
    },

    /// The connection failed while the request or response was in flight. Retryable.
    #[error("{method} {path}: connection failed: {detail}")]
    Transport {
        method: Method,
        path: String,
        detail: String,
    },

    /// The server answered with a non-success status.
    #[error("{method} {path}: {status}: {message}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        /// The server's `message`, or a short excerpt of a non-JSON body.
        message: String,
        /// From the `Retry-After` header, when the server sent one.
        retry_after: Option<Duration>,
    },

    /// A success response whose body does not have the expected shape.
    #[error("{method} {path}: unexpected response: {detail}")]
    Decode {
        method: Method,
        path: String,
        detail: String,
    },

    /// A request body could not be encoded.
    #[error("{method} {path}: could not encode the request body: {detail}")]
    Encode {
        method: Method,
        path: String,
        detail: String,
    },

    /// A lookup by name or title matched nothing.
    #[error("no {kind} named {name:?}{}", scope_suffix(.scope))]
    NotFound {
        kind: &'static str,
        name: String,
        scope: Option<String>,
    },

    /// A lookup by name or title matched more than one.
    #[error("{count} {kind}s are named {name:?}{}; use the id instead", scope_suffix(.scope))]
    Ambiguous {
        kind: &'static str,
        name: String,
        scope: Option<String>,
        count: usize,
    },
}

fn scope_suffix(scope: &Option<String>) -> String {
    scope
        .as_deref()
        .map(|s| format!(" in {s}"))
        .unwrap_or_default()
}

impl ConnectError {
    /// `true` when trying the same request again later may succeed: connection failures,
    /// timeouts, 5xx and 429. 400, 401, 403, 404 and other 4xx are permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectError::Connect { .. }
            | ConnectError::Timeout { .. }
            | ConnectError::Transport { .. } => true,
            ConnectError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// How long the server asked us to wait, from its `Retry-After` header.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, for a [`ConnectError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ConnectError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's message, for a [`ConnectError::Status`].
    pub fn server_message(&self) -> Option<&str> {
        match self {
            ConnectError::Status { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP date (IMF-fixdate, RFC 850 or
/// asctime), measured from `now`. A date in the past gives zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc2822(value) {
        return Some(t.with_timezone(&Utc));
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; asctime: "Sun Nov  6 08:49:37 1994".
    let rfc850 = value
        .strip_suffix(" GMT")
        .and_then(|v| NaiveDateTime::parse_from_str(v, "%A, %d-%b-%y %H:%M:%S").ok());
    let naive =
        rfc850.or_else(|| NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y").ok())?;
    Some(naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now()),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", now()),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-5", now()), None);
    }

    #[test]
    fn classification() {
        let status = |code: u16| ConnectError::Status {
            method: Method::GET,
            path: "/v1/vaults".into(),
            status: StatusCode::from_u16(code).expect("valid code"),
            message: "m".into(),
            retry_after: None,
        };
        for code in [500, 502, 503, 504, 429] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 413, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
        let e = status(404);
        assert_eq!(e.to_string(), "GET /v1/vaults: 404 Not Found: m");
    }
}
