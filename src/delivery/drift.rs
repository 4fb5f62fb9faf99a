//! Drift checks: every `drift_check`, each item a destination holds (with a fingerprint from
//! its delivery) is read back, at most `drift_rate` per second, and compared. An item changed or
//! missing at the destination is counted, logged and shown on the status page, and with
//! `on_drift = "repair"` its last change is queued to be delivered again.

use std::time::Duration;

use chrono::Utc;

use crate::delivery::{Deliverer, DeliveryError};
use crate::domain::VaultRef;
use crate::plugin::{Found, ItemRef, Plugin};
use crate::route::{DriftCheck, OnDrift, Route};
use crate::shutdown::Shutdown;
use crate::store::{Drift, Fingerprinted};
use crate::telemetry::names;

/// What one pass over a destination found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriftReport {
    pub checked: u64,
    pub drifted: u64,
    pub repaired: u64,
    pub errors: u64,
    /// The destination cannot be read back: nothing was checked.
    pub unsupported: bool,
}

/// A route's drift checks.
#[derive(Clone, Debug)]
pub struct DriftChecker {
    deliverer: Deliverer,
    route: Route,
    check: DriftCheck,
}

impl DriftChecker {
    /// The checker of `route`; `None` when the route checks no drift.
    pub fn new(deliverer: Deliverer, route: &str) -> Result<Option<Self>, DeliveryError> {
        let route = crate::delivery::attempt::route_exists(&deliverer, route)?;
        Ok(route.drift.map(|check| Self {
            deliverer,
            route,
            check,
        }))
    }

    /// Checks every `drift_check` until `shutdown`; the first pass after one interval.
    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.check.every) => {}
                () = shutdown.wait() => return,
            }
            for destination in &self.route.destinations {
                let report = self.pass(destination, &shutdown).await;
                if report.drifted > 0 || report.errors > 0 {
                    tracing::warn!(route = %self.route.name, destination = %destination,
                        checked = report.checked, drifted = report.drifted,
                        repaired = report.repaired, errors = report.errors, "drift check");
                } else {
                    tracing::debug!(route = %self.route.name, destination = %destination,
                        checked = report.checked, unsupported = report.unsupported, "drift check");
                }
            }
        }
    }

    /// Reads back every item `destination` holds for this route, once.
    pub async fn pass(&self, destination: &str, shutdown: &Shutdown) -> DriftReport {
        let mut report = DriftReport::default();
        let Ok(plugin) = self.deliverer.plugin(destination) else {
            return report;
        };
        if !plugin.batches() {
            report.unsupported = true;
            return report;
        }
        let plugin = plugin.clone();
        let (route, dest) = (self.route.name.clone(), destination.to_owned());
        let items = match self
            .deliverer
            .store()
            .blocking(move |s| s.fingerprinted(&route, &dest, usize::MAX))
            .await
        {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(route = %self.route.name, error = %e, "reading fingerprints");
                report.errors += 1;
                return report;
            }
        };
        let gap = Duration::from_secs(1) / self.check.rate.max(1);
        let mut next = tokio::time::Instant::now();
        for item in items {
            if shutdown.is_triggered() {
                break;
            }
            // An item that left the route is not looked at: its key is the route's no more.
            if item.title.is_empty() {
                continue;
            }
            tokio::time::sleep_until(next).await;
            next = tokio::time::Instant::now() + gap;
            match self.read_back(&plugin, &item).await {
                Checked::Unsupported => {
                    report.unsupported = true;
                    break;
                }
                Checked::Same => report.checked += 1,
                Checked::Error => report.errors += 1,
                Checked::Drifted { repaired } => {
                    report.checked += 1;
                    report.drifted += 1;
                    report.repaired += u64::from(repaired);
                }
            }
        }
        report
    }

    async fn read_back(&self, plugin: &Plugin, item: &Fingerprinted) -> Checked {
        let route = &self.route.name;
        let destination = &item.destination;
        let count = |result: &'static str| {
            metrics::counter!(names::DRIFT_CHECKS_TOTAL, "route" => route.clone(),
                "plugin" => destination.clone(), "result" => result)
            .increment(1);
        };
        let found = match plugin.read_back(&item_ref(item)).await {
            Ok(found) => found,
            Err(e) => {
                count("error");
                tracing::warn!(route = %route, destination = %destination, item = %item.item_id,
                    key = %item.key, error = %e, "read-back failed");
                return Checked::Error;
            }
        };
        let drift = match found {
            Found::Unsupported => {
                count("unsupported");
                return Checked::Unsupported;
            }
            Found::Present(fingerprint) if fingerprint == item.fingerprint => None,
            Found::Present(_) => Some(Drift::Changed),
            Found::Absent => Some(Drift::Missing),
        };
        count(if drift.is_some() { "drift" } else { "ok" });
        let now = Utc::now();
        let store = self.deliverer.store();
        if let Err(e) = store.note_read_back(route, destination, &item.item_id, drift, now) {
            tracing::error!(route = %route, error = %e, "recording a read-back");
        }
        let Some(drift) = drift else {
            return Checked::Same;
        };
        metrics::counter!(names::DRIFT_DETECTED_TOTAL, "route" => route.clone(),
            "plugin" => destination.clone(), "kind" => drift.as_str())
        .increment(1);
        tracing::warn!(route = %route, destination = %destination, item = %item.item_id,
            key = %item.key, drift = drift.as_str(), on_drift = ?self.check.on_drift,
            "the destination no longer holds what was delivered");
        let repaired = self.check.on_drift == OnDrift::Repair
            && match store.requeue_delivered(route, destination, &item.item_id, now) {
                Ok(queued) => queued,
                Err(e) => {
                    tracing::error!(route = %route, error = %e, "queueing a repair");
                    false
                }
            };
        if repaired {
            metrics::counter!(names::DRIFT_REPAIRS_TOTAL, "route" => route.clone(),
                "plugin" => destination.clone())
            .increment(1);
        }
        Checked::Drifted { repaired }
    }
}

/// What reading one item back came to.
enum Checked {
    Same,
    Drifted { repaired: bool },
    Error,
    Unsupported,
}

fn item_ref(item: &Fingerprinted) -> ItemRef {
    ItemRef {
        key: item.key.clone(),
        vault: VaultRef {
            id: item.vault_id.clone(),
            name: item.vault_name.clone(),
        },
        id: item.item_id.clone(),
        title: item.title.clone(),
        category: item.category.clone(),
        tags: item.tags.clone(),
        version: item.version,
    }
}
