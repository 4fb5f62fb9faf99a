//! Delivery: takes due ledger rows, reads each item from Connect at delivery time (the ledger
//! holds references, never values), hands it to the row's destination plugin, and records the
//! outcome: delivered, retry later (full-jitter backoff), paused destination, or dead letter.

mod attempt;
mod batch;
mod drift;
mod durable;
mod error;
mod retry;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::connect::client::ConnectClient;
use crate::own_events::AuditEvents;
use crate::plugin::Plugin;
use crate::route::Route;
use crate::store::Store;

pub use attempt::Outcome;
pub use drift::{DriftChecker, DriftReport};
pub use error::DeliveryError;
pub use retry::{Decision, MAX_RETRY_AFTER, RetryPolicy};
pub use worker::{DrainReport, RouteWorker, WorkerOptions};

/// What every delivery needs: the store, Connect, the routes and the loaded destination plugins.
/// Cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    client: ConnectClient,
    routes: HashMap<String, Route>,
    plugins: HashMap<String, Plugin>,
    /// Plugin instances that failed to load or validate, with the reason.
    broken: HashMap<String, String>,
    policy: RetryPolicy,
    /// Where deliveries and dead letters are reported as opsync's own audit events.
    events: AuditEvents,
    /// Per route, its Connect reads under way at once: at most the route's concurrency, however
    /// many batches read their items together (so the connections kept idle suffice).
    reads: HashMap<String, Semaphore>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("routes", &self.inner.routes.keys().collect::<Vec<_>>())
            .field("plugins", &self.inner.plugins.keys().collect::<Vec<_>>())
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// `plugins` are keyed by instance name (`[plugins.NAME]`); a route naming a destination
    /// that is not there gets its rows paused as misconfigured, not lost.
    pub fn new(
        store: Store,
        client: ConnectClient,
        routes: Vec<Route>,
        plugins: HashMap<String, Plugin>,
        policy: RetryPolicy,
    ) -> Self {
        Self::with_broken(
            store,
            client,
            routes,
            plugins,
            HashMap::new(),
            policy,
            AuditEvents::default(),
        )
    }

    /// Like [`Deliverer::new`], naming the plugin instances that could not be loaded and why:
    /// their deliveries wait (paused as misconfigured) with that reason; deliveries and dead
    /// letters are reported to `events`.
    pub fn with_broken(
        store: Store,
        client: ConnectClient,
        routes: Vec<Route>,
        plugins: HashMap<String, Plugin>,
        broken: HashMap<String, String>,
        policy: RetryPolicy,
        events: AuditEvents,
    ) -> Self {
        let reads = routes
            .iter()
            .map(|r| (r.name.clone(), Semaphore::new(r.concurrency.max(1))))
            .collect();
        Self {
            inner: Arc::new(Inner {
                store,
                client,
                reads,
                routes: routes.into_iter().map(|r| (r.name.clone(), r)).collect(),
                plugins,
                broken,
                policy,
                events,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn events(&self) -> &AuditEvents {
        &self.inner.events
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// The routes, by name.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.inner.routes.values()
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.inner.routes.get(name)
    }

    /// Runs `read` (a request to Connect) in one of `route`'s read turns; at once when the route
    /// is unknown.
    pub(crate) async fn in_read_turn<T>(&self, route: &str, read: impl Future<Output = T>) -> T {
        let _turn = match self.inner.reads.get(route) {
            Some(reads) => reads.acquire().await.ok(),
            None => None,
        };
        read.await
    }

    /// The loaded plugin instance `name`, or why there is none.
    pub fn plugin(&self, name: &str) -> Result<&Plugin, String> {
        if let Some(p) = self.inner.plugins.get(name) {
            return Ok(p);
        }
        Err(match self.inner.broken.get(name) {
            Some(reason) => format!("destination `{name}` could not be loaded: {reason}"),
            None => format!("destination `{name}` is not a configured plugin"),
        })
    }
}
