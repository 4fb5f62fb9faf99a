//! Observability: the metric catalogue, the Prometheus recorder, and the admin
//! listener that serves `/metrics`, `/healthz`, `/readyz` and the status page.

mod access;
mod admin;
pub mod names;
mod recorder;

pub use access::Access;
pub use admin::{AdminOptions, AdminServer, CheckFuture, Readiness, TelemetryError};
pub use recorder::{RecorderTaken, detached, install};
