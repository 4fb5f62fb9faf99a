//! The Prometheus recorder: installed once by the binary, its handle passed to the admin listener.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::telemetry::names;

/// Another metrics recorder was installed before opsync's (the `metrics` facade takes one per
/// process).
#[derive(Debug, thiserror::Error)]
#[error("a metrics recorder is already installed in this process: {0}")]
pub struct RecorderTaken(String);

/// Installs opsync's Prometheus recorder as the process's `metrics` recorder and returns the
/// handle that renders it. Call once, at the edge (the binary's `main` or a test's set-up), and
/// pass the handle down.
pub fn install() -> Result<PrometheusHandle, RecorderTaken> {
    let recorder = builder().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| RecorderTaken(e.to_string()))?;
    names::describe();
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// A handle to a recorder that nothing records into: its exposition is empty. For library users
/// who run the daemon without a metrics endpoint of their own.
pub fn detached() -> PrometheusHandle {
    builder().build_recorder().handle()
}

fn builder() -> PrometheusBuilder {
    [
        names::POLL_DURATION_SECONDS,
        names::DELIVERY_LATENCY_SECONDS,
        names::CONNECT_REQUEST_DURATION_SECONDS,
        names::PLUGIN_CALL_DURATION_SECONDS,
    ]
    .into_iter()
    .fold(PrometheusBuilder::new(), |b, name| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), names::LATENCY_BUCKETS)
            .expect("the bucket list is a non-empty constant")
    })
}
