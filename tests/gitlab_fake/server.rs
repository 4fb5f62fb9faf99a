//! The HTTP side: every request handed to the fake's state under its lock, its reply made an
//! HTTP response; served by tests/fake_server.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body as HttpBody;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::fake_server::Server;
use super::reply::{self, Body, Reply};
use super::request::Request;
use super::state::State;

/// The largest request body read (GitLab's own limits are far larger than a variable needs).
const MAX_BODY: usize = 16 * 1024 * 1024;

pub type SharedState = Arc<Mutex<State>>;

/// Serves `state` on a free port from a task of the current tokio runtime.
pub async fn spawn(state: SharedState) -> Server {
    Server::start(Router::new().fallback(handle).with_state(state)).await
}

/// Every request goes through [`State::handle`], under the lock.
async fn handle(Shared(state): Shared<SharedState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return into_response(reply::message(413, "413 Request Entity Too Large"));
    };
    let header = |name: &str, headers: &HeaderMap| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        host: header("host", &parts.headers).unwrap_or_default(),
        private_token: header("private-token", &parts.headers),
        authorization: header("authorization", &parts.headers),
        content_type: header("content-type", &parts.headers).unwrap_or_default(),
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
        Body::Json(value) => (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            HttpBody::from(value.to_string()),
        )
            .into_response(),
        Body::Text(text) => (
            code,
            [(header::CONTENT_TYPE, "text/plain")],
            HttpBody::from(text),
        )
            .into_response(),
        Body::Empty => code.into_response(),
    };
    for (name, value) in reply.headers {
        let name: header::HeaderName = name.parse().expect("a valid header name");
        response
            .headers_mut()
            .insert(name, value.parse().expect("a valid header value"));
    }
    response
}
