//! Request counters for `/metrics`, kept in a Prometheus recorder local to one server (no global recorder).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// The counter of answered requests, by method, matched route and status.
pub const REQUESTS: &str = "connect_dev_http_requests_total";

pub struct Metrics {
    recorder: PrometheusRecorder,
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            recorder: PrometheusBuilder::new().build_recorder(),
        }
    }

    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        metrics::with_local_recorder(&self.recorder, || {
            metrics::counter!(REQUESTS, &labels).increment(1);
        });
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
        a.count_request("GET", "/v1/vaults", 200);
        a.count_request("GET", "/v1/vaults", 200);
        let text = a.render();
        assert!(
            text.contains(
                r#"connect_dev_http_requests_total{method="GET",route="/v1/vaults",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(!b.render().contains("/v1/vaults"));
    }
}
