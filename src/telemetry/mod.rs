//! Observability: the metric catalogue, the Prometheus recorder, and the admin
//! listener that serves `/metrics`, `/healthz` and `/readyz`.

mod admin;
pub mod names;
mod recorder;

pub use admin::{AdminServer, CheckFuture, Readiness, TelemetryError};
pub use recorder::{RecorderTaken, detached, install};
