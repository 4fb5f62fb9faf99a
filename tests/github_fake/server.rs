//! The HTTP side: every request handed to the fake's state under its lock, its reply made an
//! HTTP response; served by tests/fake_server.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::{Request, State};
use super::fake_server::Server;
use super::reply::{REST_DOCS, Reply};

/// The largest request body taken (a 48 KB secret is about 66 KB of JSON).
const MAX_BODY: usize = 1024 * 1024;

pub type SharedState = Arc<Mutex<State>>;

/// Serves `state` on a free port from a task of the current tokio runtime.
pub async fn start(state: SharedState) -> Server {
    Server::start(Router::new().fallback(handle).with_state(state)).await
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Every request goes through [`State::handle`], under the lock.
async fn handle(Shared(state): Shared<SharedState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return into_response(Reply::error(413, "Payload Too Large", REST_DOCS));
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        authorization: header_text(&parts.headers, header::AUTHORIZATION.as_str())
            .unwrap_or_default(),
        api_version: header_text(&parts.headers, "x-github-api-version"),
        body: body.to_vec(),
    };
    let reply = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .handle(&request);
    into_response(reply)
}

fn into_response(reply: Reply) -> Response {
    let code = StatusCode::from_u16(reply.code).expect("a valid status code");
    let mut response = match reply.body {
        Some(body) => (
            code,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            Body::from(body.to_string()),
        )
            .into_response(),
        None => code.into_response(),
    };
    for (name, value) in reply.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(&value).expect("a valid header value");
        response.headers_mut().append(name, value);
    }
    response
}
