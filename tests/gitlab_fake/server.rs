//! The HTTP server: axum on 127.0.0.1 port 0, on the caller's tokio runtime, stopped on drop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body as HttpBody;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::reply::{self, Body, Reply};
use super::request::Request;
use super::state::State;

/// The largest request body read (GitLab's own limits are far larger than a variable needs).
const MAX_BODY: usize = 16 * 1024 * 1024;

pub type SharedState = Arc<Mutex<State>>;

/// The server task; dropping this stops it.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn spawn(state: SharedState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("the bound address");
        let app = Router::new().fallback(handle).with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the gitlab fake serves");
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
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
