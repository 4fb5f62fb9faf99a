//! The admin listener: `/healthz` (the process is alive), `/readyz` (every readiness check
//! passes: Connect reachable, state writable), `/metrics` (Prometheus text) and the pages the
//! caller adds (the status page), the last two behind [`Access`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::telemetry::access::{Access, guard};

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How often histogram buffers are drained when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The result of one readiness check: `Err` holds a reason fit for a response body (no secret).
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// A line `/readyz` shows after its checks, which never fails it (a replica's role).
type Note = Arc<dyn Fn() -> String + Send + Sync>;

/// The named checks that `/readyz` runs, in order, and the notes it shows after them.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Check)>,
    notes: Vec<(String, Note)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check; `check` is called once per `/readyz` request.
    pub fn with_check<F>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> CheckFuture + Send + Sync + 'static,
    {
        self.checks.push((name.into(), Arc::new(check)));
        self
    }

    /// Adds a note: a `name: value` line after the checks, with `value` read per request.
    pub fn with_note<F>(mut self, name: impl Into<String>, note: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.notes.push((name.into(), Arc::new(note)));
        self
    }

    /// Runs every check (concurrently, each under a timeout); `(name, result)` in order.
    pub async fn run(&self) -> Vec<(String, Result<(), String>)> {
        let handles: Vec<_> = self
            .checks
            .iter()
            .map(|(name, check)| {
                let fut = check();
                (
                    name.clone(),
                    tokio::spawn(async move {
                        match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
                            Ok(r) => r,
                            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                        }
                    }),
                )
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        for (name, handle) in handles {
            let result = handle
                .await
                .unwrap_or_else(|e| Err(format!("the check failed: {e}")));
            out.push((name, result));
        }
        out
    }
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("admin listener: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What an admin listener serves, and who may read it.
pub struct AdminOptions {
    metrics: PrometheusHandle,
    readiness: Readiness,
    pages: Router,
    token: Option<String>,
    open_metrics: bool,
}

impl std::fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("open_metrics", &self.open_metrics)
            .finish_non_exhaustive()
    }
}

impl AdminOptions {
    /// `/metrics` renders `metrics`; no readiness check, no pages, no token.
    pub fn new(metrics: PrometheusHandle) -> Self {
        Self {
            metrics,
            readiness: Readiness::new(),
            pages: Router::new(),
            token: None,
            open_metrics: false,
        }
    }

    /// The checks `/readyz` runs.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// More routes (the status page), served behind the token like `/metrics`.
    pub fn pages(mut self, pages: Router) -> Self {
        self.pages = pages;
        self
    }

    /// The bearer token the guarded routes require.
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    /// Serve `/metrics` without the token.
    pub fn open_metrics(mut self, open: bool) -> Self {
        self.open_metrics = open;
        self
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// A running admin listener; [`AdminServer::shutdown`] stops it.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    serve: Option<JoinHandle<()>>,
    upkeep: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `addr` (port 0 picks one) and serves in the background.
    pub async fn start(addr: SocketAddr, options: AdminOptions) -> Result<Self, TelemetryError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let AdminOptions {
            metrics,
            readiness,
            pages,
            token,
            open_metrics,
        } = options;
        let upkeep = {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    tick.tick().await;
                    metrics.run_upkeep();
                }
            })
        };
        let access = Access::new(addr, token.as_deref());
        let state = AdminState { metrics, readiness };
        let metrics_route = Router::new()
            .route("/metrics", get(metrics_handler))
            .with_state(state.clone());
        let metrics_route = if open_metrics {
            metrics_route
        } else {
            metrics_route.layer(middleware::from_fn_with_state(access.clone(), guard))
        };
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(state)
            .merge(metrics_route)
            .merge(pages.layer(middleware::from_fn_with_state(access, guard)))
            .layer(middleware::map_response(hardened));
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "admin listener stopped");
            }
        });
        tracing::info!(
            %addr,
            token = token_state(&token, addr),
            open_metrics,
            "admin listener: / /status /metrics /healthz /readyz"
        );
        Ok(Self {
            addr,
            stop: Some(stop),
            serve: Some(serve),
            upkeep,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and waits (briefly) for open requests.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(serve) = self.serve.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.upkeep.abort();
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// How the token stands, for the start line: never the token itself.
fn token_state(token: &Option<String>, addr: SocketAddr) -> &'static str {
    match (token, addr.ip().is_loopback()) {
        (Some(_), _) => "required",
        (None, true) => "none (loopback)",
        (None, false) => "none: the status page is refused beyond loopback",
    }
}

/// Headers on every answer: nothing is cached, sniffed, framed or fetched from elsewhere.
async fn hardened(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

async fn metrics_handler(State(state): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let results = state.readiness.run().await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let mut body = String::from(if ready { "ready\n" } else { "not ready\n" });
    for (name, result) in &results {
        match result {
            Ok(()) => body.push_str(&format!("{name}: ok\n")),
            Err(reason) => body.push_str(&format!("{name}: {reason}\n")),
        }
    }
    for (name, note) in &state.readiness.notes {
        body.push_str(&format!("{name}: {}\n", note()));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}
