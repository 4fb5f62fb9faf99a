//! The HTTP surface: shared state, the route table (with trailing-slash twins), and the middleware every response passes.
//!
//! Every response carries `1Password-Connect-Version`; every error is a JSON `{status, message}`,
//! including axum's own rejections (turned into JSON here) and unknown routes, except under
//! `/api`, where the fake Events API (`events`) answers with the Events API's own error shape.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodRouter, get, post};
use tokio::sync::Notify;

use crate::connect::model::{ServerHealth, ServiceDependency};

use super::activity::ActivityLog;
use super::auth::Authority;
use super::error::{ApiError, json_response};
use super::events::{self, Events};
use super::faults::{self, Faults};
use super::store::Store;
use super::telemetry::Metrics;
use super::{dev_tokens, handlers};

/// The Connect version this server presents (at least 1.3.0, which the Go SDK needs for files).
pub const CONNECT_VERSION: &str = "1.8.1";
const VERSION_HEADER: HeaderName = HeaderName::from_static("1password-connect-version");
/// Longest non-JSON error body turned into a message.
const MAX_PLAIN_ERROR: usize = 4096;

/// State shared by all requests.
pub struct App {
    store: RwLock<Store>,
    pub authority: Authority,
    pub activity: ActivityLog,
    pub faults: Faults,
    /// The fake Events API: its records, tokens and throttling.
    pub events: Events,
    pub metrics: Metrics,
    /// Notified after each write when a state file is kept.
    pub changes: Option<Arc<Notify>>,
}

impl App {
    pub fn new(
        store: Store,
        authority: Authority,
        faults: Faults,
        events: Events,
        changes: Option<Arc<Notify>>,
    ) -> Self {
        let server_id = store.key.server_user.clone();
        Self {
            store: RwLock::new(store),
            authority,
            activity: ActivityLog::new(server_id),
            faults,
            events,
            metrics: Metrics::new(),
            changes,
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Call after a change to the store, so the state file follows.
    pub fn changed(&self) {
        if let Some(changes) = &self.changes {
            changes.notify_one();
        }
    }
}

/// The route table.
pub fn router(app: Arc<App>) -> Router {
    let v1 = [
        ("/v1/vaults", get(handlers::list_vaults)),
        ("/v1/vaults/{vault}", get(handlers::get_vault)),
        (
            "/v1/vaults/{vault}/items",
            get(handlers::list_items).post(handlers::create_item),
        ),
        (
            "/v1/vaults/{vault}/items/{item}",
            get(handlers::get_item)
                .put(handlers::replace_item)
                .patch(handlers::patch_item)
                .delete(handlers::delete_item),
        ),
        (
            "/v1/vaults/{vault}/items/{item}/files",
            get(handlers::list_files),
        ),
        (
            "/v1/vaults/{vault}/items/{item}/files/{file}",
            get(handlers::get_file),
        ),
        (
            "/v1/vaults/{vault}/items/{item}/files/{file}/content",
            get(handlers::file_content),
        ),
        ("/v1/activity", get(handlers::activity)),
    ];
    let v1 = with_trailing_slashes(Router::new(), v1).route_layer(middleware::from_fn_with_state(
        Arc::clone(&app),
        faults::inject,
    ));
    let root = [
        ("/heartbeat", get(heartbeat)),
        ("/health", get(health)),
        ("/metrics", get(metrics)),
        ("/opsync-dev/tokens", post(dev_tokens::mint)),
        (
            faults::SETTINGS_PATH,
            get(faults::settings).put(faults::change_settings),
        ),
    ];
    with_trailing_slashes(v1, root)
        .merge(events::router(Arc::clone(&app)))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), finish))
        .with_state(app)
}

fn with_trailing_slashes<const N: usize>(
    mut router: Router<Arc<App>>,
    routes: [(&str, MethodRouter<Arc<App>>); N],
) -> Router<Arc<App>> {
    for (path, methods) in routes {
        router = router
            .route(&format!("{path}/"), methods.clone())
            .route(path, methods);
    }
    router
}

async fn heartbeat() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], ".").into_response()
}

async fn health() -> Response {
    let dependency = |service: &str, message: Option<&str>| ServiceDependency {
        service: service.to_owned(),
        status: "ACTIVE".to_owned(),
        message: message.map(str::to_owned),
    };
    let body = ServerHealth {
        name: "1Password Connect API".to_owned(),
        version: CONNECT_VERSION.to_owned(),
        dependencies: vec![
            dependency("sqlite", Some("Connected to the opsync connect-dev store")),
            dependency("sync", None),
            dependency("1Password", None),
        ],
    };
    json_response(StatusCode::OK, &body)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("Not Found: no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// Outermost middleware: counts the request (and, while it is answered, the requests at once),
/// adds the version header, and makes sure an error is JSON whoever produced it.
async fn finish(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let answering = app.metrics.start_request();
    let mut response = next.run(request).await;
    drop(answering);
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&response) {
        response = json_error(response).await;
    }
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from_static(CONNECT_VERSION));
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    app.metrics
        .count_request(&method, route.trim_end_matches('/'), status.as_u16());
    tracing::debug!(%method, route, status = status.as_u16(), "connect-dev request");
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Replaces a plain-text error (an axum rejection) with Connect's JSON error body.
async fn json_error(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            parts
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned()
        });
    let mut fixed = ApiError::new(parts.status, text).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

/// An empty body, for 204.
pub fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
