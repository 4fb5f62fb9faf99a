//! Fault injection for `/v1` and the fake Events API: added latency and a share of requests answered 500, changeable at run time (in process, or by `GET`/`PUT /opsync-dev/faults`).
//!
//! The Events API also has its own knobs (a share of requests answered 429, its
//! `Retry-After`, a per-token budget), kept by `events` and set through the same endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::{ApiError, json_response};
use super::events::RateLimit;
use super::items::parse_json;
use super::server::App;

/// The path of the settings endpoint (outside `/v1`, dev only).
pub const SETTINGS_PATH: &str = "/opsync-dev/faults";

/// The current latency and failure rate.
pub struct Faults {
    latency_nanos: AtomicU64,
    fail_rate_bits: AtomicU64,
}

impl Faults {
    pub fn new(latency: Duration, fail_rate: f64) -> Self {
        let faults = Self {
            latency_nanos: AtomicU64::new(0),
            fail_rate_bits: AtomicU64::new(0),
        };
        faults.set(latency, fail_rate);
        faults
    }

    /// `fail_rate` is clamped to 0..=1 (NaN counts as 0).
    pub fn set(&self, latency: Duration, fail_rate: f64) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let rate = if fail_rate.is_nan() {
            0.0
        } else {
            fail_rate.clamp(0.0, 1.0)
        };
        self.latency_nanos.store(nanos, Ordering::Relaxed);
        self.fail_rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    pub fn fail_rate(&self) -> f64 {
        f64::from_bits(self.fail_rate_bits.load(Ordering::Relaxed))
    }
}

/// Middleware: waits the latency, then fails the request before it is handled (so a failed
/// write changes nothing) with the configured probability.
pub async fn inject(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let rate = app.faults.fail_rate();
    if rate > 0.0 && rand::thread_rng().r#gen::<f64>() < rate {
        return ApiError::internal().into_response();
    }
    next.run(request).await
}

/// Body of `PUT /opsync-dev/faults` (every field optional: absent ones stay as they are) and
/// answer of both methods (every field present).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSettings {
    /// Delay added to every `/v1` and Events API response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Share (0..=1) of `/v1` and Events API requests answered 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_rate: Option<f64>,
    /// Share (0..=1) of Events API requests answered 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events429_rate: Option<f64>,
    /// `Retry-After` of those 429 answers, in seconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_retry_after_seconds: Option<u64>,
    /// The Events API budget per token, like `600/min,30000/hour`, or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_rate_limit: Option<String>,
}

impl FaultSettings {
    fn current(app: &App) -> Self {
        let throttle = &app.events.throttle;
        Self {
            latency_ms: Some(u64::try_from(app.faults.latency().as_millis()).unwrap_or(u64::MAX)),
            fail_rate: Some(app.faults.fail_rate()),
            events429_rate: Some(throttle.too_many_rate()),
            events_retry_after_seconds: Some(throttle.retry_after_secs()),
            events_rate_limit: Some(
                throttle
                    .limit()
                    .map_or_else(|| "off".to_owned(), |l| l.to_string()),
            ),
        }
    }
}

/// `GET /opsync-dev/faults`: the current settings.
pub async fn settings(State(app): State<Arc<App>>, _caller: Caller) -> Response {
    json_response(StatusCode::OK, &FaultSettings::current(&app))
}

/// `PUT /opsync-dev/faults`: changes the given settings (all checked before any applies);
/// answers the settings now in force.
pub async fn change_settings(
    State(app): State<Arc<App>>,
    _caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let asked: FaultSettings = parse_json(&body, "fault settings")?;
    let share = |value: Option<f64>, name: &str| match value {
        Some(v) if !(0.0..=1.0).contains(&v) => Err(ApiError::bad_request(format!(
            "{name} must be between 0 and 1"
        ))),
        _ => Ok(value),
    };
    let fail_rate = share(asked.fail_rate, "failRate")?;
    let too_many_rate = share(asked.events429_rate, "events429Rate")?;
    let rate_limit = match asked.events_rate_limit.as_deref().map(str::trim) {
        None => None,
        Some("off") => Some(None),
        Some(text) => Some(Some(
            text.parse::<RateLimit>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        )),
    };
    let current = FaultSettings::current(&app);
    app.faults.set(
        asked
            .latency_ms
            .map_or_else(|| app.faults.latency(), Duration::from_millis),
        fail_rate.unwrap_or_else(|| app.faults.fail_rate()),
    );
    let throttle = &app.events.throttle;
    if too_many_rate.is_some() || asked.events_retry_after_seconds.is_some() {
        throttle.set_storm(
            too_many_rate.unwrap_or_else(|| throttle.too_many_rate()),
            Duration::from_secs(
                asked
                    .events_retry_after_seconds
                    .or(current.events_retry_after_seconds)
                    .unwrap_or(1),
            ),
        );
    }
    if let Some(limit) = rate_limit {
        throttle.set_limit(limit);
    }
    Ok(json_response(StatusCode::OK, &FaultSettings::current(&app)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_reads_back() {
        let f = Faults::new(Duration::from_millis(5), 2.0);
        assert_eq!(
            (f.latency(), f.fail_rate()),
            (Duration::from_millis(5), 1.0)
        );
        f.set(Duration::ZERO, f64::NAN);
        assert_eq!((f.latency(), f.fail_rate()), (Duration::ZERO, 0.0));
        f.set(Duration::ZERO, 0.25);
        assert_eq!(f.fail_rate(), 0.25);
    }
}
