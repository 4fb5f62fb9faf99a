//! The Events API routes: introspection, the three streams in v1 and v2, their errors, and the throttling and counting every Events request passes.
//!
//! Order of checks on a stream request: injected latency, injected 500, 429 storm (all before
//! the handler), then bearer token (401), the token's request budget (429), the stream's
//! feature in the token (401, the status the reference documents for a token not scoped to
//! the resource), then the body (400). Every error body is `{"Error":{"Message":"..."}}`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::connect::token::ConnectClaims;

use super::super::caller::bearer_token;
use super::super::error::{describe_serde_error, json_bytes, json_response};
use super::super::server::App;
use super::cursor::{Cursor, CursorError};
use super::records::Window;
use super::render::{Context, Rendered};
use super::{Stream, Version, tokens};

/// Page size of a reset cursor without `limit`.
const DEFAULT_LIMIT: u16 = 100;
const MAX_LIMIT: u16 = 1000;

/// The fake's routes (with their throttling and counting) and the token-minting route.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    let mut api = Router::new()
        .route(
            "/api/auth/introspect",
            get(introspect_v1).fallback(method_not_allowed),
        )
        .route(
            "/api/v2/auth/introspect",
            get(introspect_v2).fallback(method_not_allowed),
        );
    for version in [Version::V1, Version::V2] {
        for stream in Stream::ALL {
            api = api.route(
                &format!("/api/{}/{}", version.name(), stream.name()),
                post(
                    move |State(app): State<Arc<App>>, caller: EventsCaller, body: Bytes| {
                        read_stream(app, caller, version, stream, body)
                    },
                )
                .fallback(method_not_allowed),
            );
        }
    }
    api.route("/api/{*rest}", any(unknown_route))
        .route_layer(middleware::from_fn_with_state(app, guard))
        .route(tokens::MINT_PATH, post(tokens::mint))
}

/// An Events API refusal: a status and `{"Error":{"Message":"..."}}`, with `Retry-After` on 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsError {
    status: StatusCode,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl EventsError {
    fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: invalid or missing bearer token",
        )
    }

    fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("Bad request: {detail}"))
    }

    fn too_many(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "Error")]
    error: ErrorMessage<'a>,
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    #[serde(rename = "Message")]
    message: &'a str,
}

impl IntoResponse for EventsError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorMessage {
                message: &self.message,
            },
        };
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Middleware of the Events routes: injected faults, then the handler; counts the answer.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let (version, stream) = labels(request.uri().path());
    let response = match injected_fault(&app).await {
        Some(fault) => fault.into_response(),
        None => next.run(request).await,
    };
    app.metrics
        .count_events_request(version, stream, response.status().as_u16());
    response
}

/// The server's latency and failure rate (shared with Connect), then the 429 storm.
async fn injected_fault(app: &App) -> Option<EventsError> {
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fail_rate = app.faults.fail_rate();
    if fail_rate > 0.0 && rand::thread_rng().r#gen::<f64>() < fail_rate {
        return Some(EventsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
        ));
    }
    app.events.throttle.storm().map(EventsError::too_many)
}

/// The `version` and `stream` labels of a path (a bounded set).
fn labels(path: &str) -> (&'static str, &'static str) {
    match path.trim_end_matches('/') {
        "/api/auth/introspect" => ("v1", "introspect"),
        "/api/v2/auth/introspect" => ("v2", "introspect"),
        other => {
            let mut parts = other.trim_start_matches('/').split('/');
            let (Some("api"), Some(version), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return ("unknown", "unmatched");
            };
            let version = match version {
                "v1" => Version::V1,
                "v2" => Version::V2,
                _ => return ("unknown", "unmatched"),
            };
            match name.parse::<Stream>() {
                Ok(stream) => (version.name(), stream.name()),
                Err(_) => ("unknown", "unmatched"),
            }
        }
    }
}

/// The verified Events token of a request, after its budget was charged.
pub struct EventsCaller {
    claims: Arc<ConnectClaims>,
}

impl FromRequestParts<Arc<App>> for EventsCaller {
    type Rejection = EventsError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, EventsError> {
        let token = bearer_token(parts).ok_or_else(EventsError::unauthorized)?;
        let claims = app
            .events
            .verify(token)
            .ok_or_else(EventsError::unauthorized)?;
        app.events
            .throttle
            .charge(&claims.jti, Instant::now())
            .map_err(EventsError::too_many)?;
        Ok(EventsCaller { claims })
    }
}

impl EventsCaller {
    fn issued_at(&self) -> String {
        DateTime::<Utc>::from_timestamp(self.claims.iat, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// `GET /api/auth/introspect` (deprecated): the v1 introspection object, whose keys the
/// reference spells `UUID`, `IssuedAt` and `Features`.
async fn introspect_v1(caller: EventsCaller) -> Response {
    #[derive(Serialize)]
    struct IntrospectionV1<'a> {
        #[serde(rename = "UUID")]
        uuid: &'a str,
        #[serde(rename = "IssuedAt")]
        issued_at: String,
        #[serde(rename = "Features")]
        features: &'a [String],
    }
    json_response(
        StatusCode::OK,
        &IntrospectionV1 {
            uuid: &caller.claims.jti,
            issued_at: caller.issued_at(),
            features: &caller.claims.fts,
        },
    )
}

/// `GET /api/v2/auth/introspect`.
async fn introspect_v2(caller: EventsCaller) -> Response {
    #[derive(Serialize)]
    struct IntrospectionV2<'a> {
        uuid: &'a str,
        issued_at: String,
        features: &'a [String],
        account_uuid: &'a str,
    }
    json_response(
        StatusCode::OK,
        &IntrospectionV2 {
            uuid: &caller.claims.jti,
            issued_at: caller.issued_at(),
            features: &caller.claims.fts,
            account_uuid: &caller.claims.auuid,
        },
    )
}

/// Any other path under `/api`.
async fn unknown_route() -> EventsError {
    EventsError::new(StatusCode::NOT_FOUND, "Not found")
}

/// A known path with another method.
async fn method_not_allowed() -> EventsError {
    EventsError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// The body of a stream request: a cursor, or a reset cursor (every field optional).
#[derive(Deserialize, Default)]
struct StreamRequest {
    cursor: Option<String>,
    limit: Option<f64>,
    start_time: Option<String>,
    end_time: Option<String>,
}

/// `POST /api/{v1,v2}/{stream}`: a page of records, oldest first, and the cursor after it.
async fn read_stream(
    app: Arc<App>,
    caller: EventsCaller,
    version: Version,
    stream: Stream,
    body: Bytes,
) -> Result<Response, EventsError> {
    if !caller.claims.fts.iter().any(|f| f == stream.name()) {
        return Err(EventsError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "Unauthorized: the token does not have the {} feature",
                stream.name()
            ),
        ));
    }
    let cursor = cursor_of(&app, stream, &parse_body(&body)?)?;
    let events = &app.events;
    let page = events
        .feed
        .read(stream)
        .page(cursor.window, usize::from(cursor.limit));
    let next = Cursor {
        window: Window {
            position: page.next,
            ..cursor.window
        },
        ..cursor
    };
    let context = Context {
        feed: &events.feed,
        version,
        members: &events.members,
    };
    #[derive(Serialize)]
    struct PageBody<'a> {
        cursor: String,
        has_more: bool,
        items: Vec<Rendered<'a>>,
    }
    let body = PageBody {
        cursor: events.cursors.seal(&next),
        has_more: page.has_more,
        items: page
            .records
            .iter()
            .map(|(seq, record)| context.render(stream, *seq, record))
            .collect(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|_| {
        EventsError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    })?;
    Ok(json_bytes(StatusCode::OK, Bytes::from(bytes)))
}

/// The request body; an empty body is a reset cursor with defaults.
fn parse_body(body: &[u8]) -> Result<StreamRequest, EventsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StreamRequest::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| EventsError::bad_request(describe_serde_error(&e.to_string())))
}

/// Where the page starts: the given cursor, or a new one from the reset fields.
fn cursor_of(app: &App, stream: Stream, request: &StreamRequest) -> Result<Cursor, EventsError> {
    if let Some(text) = &request.cursor {
        return app
            .events
            .cursors
            .open(text, stream)
            .map_err(|e: CursorError| EventsError::bad_request(e));
    }
    let limit = match request.limit {
        None => DEFAULT_LIMIT,
        Some(limit) if limit.fract() == 0.0 && (1.0..=f64::from(MAX_LIMIT)).contains(&limit) => {
            limit as u16
        }
        Some(_) => {
            return Err(EventsError::bad_request(
                "limit must be a whole number from 1 to 1000",
            ));
        }
    };
    let start = time_of(request.start_time.as_deref(), "start_time")?.unwrap_or(i64::MIN);
    let end = time_of(request.end_time.as_deref(), "end_time")?.unwrap_or(i64::MAX);
    if end < start {
        return Err(EventsError::bad_request("end_time is before start_time"));
    }
    let position = app.events.feed.read(stream).position_at(start);
    Ok(Cursor {
        stream,
        window: Window {
            position,
            start,
            end,
        },
        limit,
    })
}

/// An RFC 3339 time as Unix nanoseconds (clamped to the representable range).
fn time_of(text: Option<&str>, name: &str) -> Result<Option<i64>, EventsError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let time = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| EventsError::bad_request(format!("{name} is not an RFC 3339 time")))?;
    let nanos = time
        .timestamp_nanos_opt()
        .unwrap_or(if time.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        });
    Ok(Some(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(labels("/api/v2/auditevents"), ("v2", "auditevents"));
        assert_eq!(labels("/api/v1/signinattempts/"), ("v1", "signinattempts"));
        assert_eq!(labels("/api/auth/introspect"), ("v1", "introspect"));
        assert_eq!(labels("/api/v2/auth/introspect"), ("v2", "introspect"));
        for other in ["/api/v3/auditevents", "/api/v2/nope", "/api/v2/a/b", "/api"] {
            assert_eq!(labels(other), ("unknown", "unmatched"), "{other}");
        }
    }

    #[test]
    fn errors_have_the_reference_shape() {
        let response = EventsError::too_many(7).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(RETRY_AFTER)
                .map(HeaderValue::as_bytes),
            Some(&b"7"[..])
        );
    }

    #[test]
    fn times_parse_to_nanos() {
        assert_eq!(
            time_of(Some("1970-01-01T00:00:01.5Z"), "start_time"),
            Ok(Some(1_500_000_000))
        );
        assert_eq!(time_of(None, "start_time"), Ok(None));
        assert!(time_of(Some("yesterday"), "start_time").is_err());
        assert_eq!(
            time_of(Some("9999-01-01T00:00:00Z"), "end_time"),
            Ok(Some(i64::MAX))
        );
    }
}
