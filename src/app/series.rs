//! The daemon's series at start: every counter that dashboards and alerts read with
//! `increase()` is registered at zero for each route, destination, plugin, rotation job and audit sink
//! the config names (so the first event is an increase, not a new series), and each job's last
//! success is set from the state database (so it survives a restart).

use crate::config::Settings;
use crate::store::Store;
use crate::telemetry::names;

/// Rotation outcomes the alerts look at.
const ROTATION_OUTCOMES: [&str; 4] = ["succeeded", "rolled_back", "failed", "skipped"];

/// Registers the zero series and the persisted gauges.
pub fn initialize(settings: &Settings, store: &Store) {
    for route in &settings.routes {
        for destination in &route.destinations {
            metrics::counter!(names::DEAD_LETTERS_TOTAL, "route" => route.name.clone(),
                "plugin" => destination.clone())
            .increment(0);
        }
    }
    for plugin in &settings.plugins {
        metrics::counter!(names::PLUGIN_HTTP_DENIED_TOTAL, "plugin" => plugin.name.clone())
            .increment(0);
    }
    for sink in &settings.audit.sinks {
        for name in [names::AUDIT_SHIPPED_TOTAL, names::AUDIT_DEAD_TOTAL] {
            metrics::counter!(name, "sink" => sink.name.clone()).increment(0);
        }
    }
    for job in &settings.rotations {
        for outcome in ROTATION_OUTCOMES {
            metrics::counter!(names::ROTATIONS_TOTAL, "job" => job.name.clone(), "outcome" => outcome)
                .increment(0);
        }
    }
    match store.rotation_jobs() {
        Ok(jobs) => {
            for job in jobs {
                if let Some(at) = job.last_success_at {
                    metrics::gauge!(names::ROTATION_LAST_SUCCESS_TIMESTAMP_SECONDS, "job" => job.job)
                        .set(at.timestamp() as f64);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the rotation jobs' last successes"),
    }
}
