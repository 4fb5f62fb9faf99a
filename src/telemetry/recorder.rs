//! The process-wide Prometheus recorder: installed once, shared by every admin listener.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::telemetry::names;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder on first call and returns its handle; later calls
/// return the same handle. When another recorder was installed first (a library user's own),
/// opsync's metrics go there and the handle renders an empty exposition.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = [
                names::POLL_DURATION_SECONDS,
                names::DELIVERY_LATENCY_SECONDS,
                names::CONNECT_REQUEST_DURATION_SECONDS,
                names::PLUGIN_CALL_DURATION_SECONDS,
            ]
            .into_iter()
            .fold(builder, |b, name| {
                b.set_buckets_for_metric(Matcher::Full(name.to_owned()), names::LATENCY_BUCKETS)
                    .expect("the bucket list is a non-empty constant")
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    names::describe();
                    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"))
                        .set(1.0);
                }
                Err(e) => tracing::warn!(error = %e, "a metrics recorder was already installed"),
            }
            handle
        })
        .clone()
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    install().render()
}
