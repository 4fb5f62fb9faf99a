//! Request counters for `/metrics`, kept in a Prometheus recorder local to one server (no global recorder).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use axum::http::Method;
use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// The counter of answered requests, by method, matched route and status.
pub const REQUESTS: &str = "connect_dev_http_requests_total";
/// The counter of answered Events API requests, by endpoint version, stream and status.
pub const EVENTS_REQUESTS: &str = "connect_dev_events_requests_total";
/// The most requests the server was answering at once since it started: how hard a client
/// pressed it.
pub const PEAK_IN_FLIGHT: &str = "connect_dev_http_requests_in_flight_peak";

type CountersByRoute = HashMap<Box<str>, Counter>;
/// Events counters by version, stream (both from a fixed set) and status.
type EventsCounters = HashMap<(&'static str, &'static str, u16), Counter>;

pub struct Metrics {
    recorder: PrometheusRecorder,
    /// Counter handles already registered (by method and status, then route), so the hot path
    /// neither allocates nor builds metric keys.
    counters: RwLock<HashMap<(Method, u16), CountersByRoute>>,
    events: RwLock<EventsCounters>,
    in_flight: AtomicU64,
    peak: AtomicU64,
    peak_gauge: Gauge,
}

/// One request being answered; it counts until dropped.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let peak_gauge =
            metrics::with_local_recorder(&recorder, || metrics::gauge!(PEAK_IN_FLIGHT));
        peak_gauge.set(0.0);
        Self {
            recorder,
            counters: RwLock::new(HashMap::new()),
            events: RwLock::new(HashMap::new()),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            peak_gauge,
        }
    }

    /// Counts a request as being answered until the returned guard is dropped.
    pub fn start_request(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        if self.peak.fetch_max(now, Ordering::Relaxed) < now {
            self.peak_gauge.set(now as f64);
        }
        InFlight { metrics: self }
    }

    /// Counts one answered request; `route` is the matched route (or `unmatched`).
    pub fn count_request(&self, method: &Method, route: &str, status: u16) {
        let known = self
            .counters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(method.clone(), status))
            .and_then(|routes| routes.get(route).cloned());
        let counter = known.unwrap_or_else(|| {
            let labels = [
                ("method", method.as_str().to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            let counter = metrics::with_local_recorder(&self.recorder, || {
                metrics::counter!(REQUESTS, &labels)
            });
            self.counters
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((method.clone(), status))
                .or_default()
                .insert(route.into(), counter.clone());
            counter
        });
        counter.increment(1);
    }

    /// Counts one answered Events API request; `stream` is a stream name, `introspect` or
    /// `unmatched`.
    pub fn count_events_request(&self, version: &'static str, stream: &'static str, status: u16) {
        let key = (version, stream, status);
        let known = self
            .events
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let counter = known.unwrap_or_else(|| {
            let labels = [
                ("version", version.to_owned()),
                ("stream", stream.to_owned()),
                ("status", status.to_string()),
            ];
            let counter = metrics::with_local_recorder(&self.recorder, || {
                metrics::counter!(EVENTS_REQUESTS, &labels)
            });
            self.events
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, counter.clone());
            counter
        });
        counter.increment(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_servers_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.count_request(&Method::GET, "/v1/vaults", 200);
        a.count_request(&Method::GET, "/v1/vaults", 200);
        let text = a.render();
        assert!(
            text.contains(
                r#"connect_dev_http_requests_total{method="GET",route="/v1/vaults",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(!b.render().contains("/v1/vaults"));
        let (first, second) = (a.start_request(), a.start_request());
        drop((first, second));
        let _third = a.start_request();
        assert!(
            a.render().contains(&format!("{PEAK_IN_FLIGHT} 2")),
            "{}",
            a.render()
        );
        assert!(
            b.render().contains(&format!("{PEAK_IN_FLIGHT} 0")),
            "{}",
            b.render()
        );
        b.count_events_request("v2", "auditevents", 429);
        assert!(
            b.render().contains(
                r#"connect_dev_events_requests_total{version="v2",stream="auditevents",status="429"} 1"#
            ),
            "{}",
            b.render()
        );
    }
}
