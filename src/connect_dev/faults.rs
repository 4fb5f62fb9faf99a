//! Fault injection for `/v1`: added latency and a share of requests answered 500, changeable at run time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use rand::Rng as _;

use super::error::ApiError;
use super::server::App;

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
