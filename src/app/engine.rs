//! The engine's parts built from settings: the Connect client, the state store, the loaded and
//! validated destination plugins, and from them a detector and a deliverer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::app::error::AppError;
use crate::config::{PluginSettings, Settings};
use crate::connect::client::ConnectClient;
use crate::connect::reference::ConnectResolver;
use crate::delivery::{Deliverer, DeliveryError, RouteWorker};
use crate::detect::{DetectOptions, Detector};
use crate::own_events::AuditEvents;
use crate::plugin::{FingerprintKey, HostOptions, Loader, OnDenied, Plugin, PluginHost};
use crate::rotation::Rotator;
use crate::store::Store;
use crate::telemetry::names;

/// Where the key of destination fingerprints is kept: beside the state database, outside it, so
/// the database alone never allows testing a guessed value against a fingerprint.
pub fn fingerprint_key_path(state: &Path) -> PathBuf {
    let parent = state.parent().filter(|p| !p.as_os_str().is_empty());
    parent
        .unwrap_or_else(|| Path::new("."))
        .join("opsync-fingerprint.key")
}

/// Everything a sync command works with.
pub struct Engine {
    pub settings: Settings,
    pub client: ConnectClient,
    pub store: Store,
    /// Loaded and validated plugin instances, by name.
    pub plugins: HashMap<String, Plugin>,
    /// Instances that failed to load or validate, with the reason (their deliveries wait).
    pub broken: HashMap<String, String>,
    /// The plugin host, once started (the audit export loads its sinks with it).
    pub host: Option<PluginHost>,
    /// opsync's own audit events: handed to every component that emits one, recorded while the
    /// audit export runs.
    pub events: AuditEvents,
}

impl Engine {
    /// Connects the parts; loads no plugin (for `plan` and `status`).
    pub fn without_plugins(settings: Settings, store: Store) -> Result<Self, AppError> {
        let client = ConnectClient::new(&settings.connect)?;
        Ok(Self {
            settings,
            client,
            store,
            plugins: HashMap::new(),
            broken: HashMap::new(),
            host: None,
            events: AuditEvents::new(),
        })
    }

    /// Connects the parts and loads every plugin instance a route or a rotation job uses
    /// (compiled components are cached in `cache_dir` when given). A plugin that fails is
    /// reported, not fatal.
    pub async fn start(
        settings: Settings,
        store: Store,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, AppError> {
        let wanted: Vec<String> = settings
            .plugins
            .iter()
            .filter(|p| {
                settings
                    .routes
                    .iter()
                    .any(|r| r.destinations.contains(&p.name))
                    || settings.rotations.iter().any(|j| j.plugin == p.name)
            })
            .map(|p| p.name.clone())
            .collect();
        Self::with_plugins(settings, store, cache_dir, |p| wanted.contains(&p.name)).await
    }

    /// Connects the parts and loads the plugin instances `wanted` selects.
    pub async fn with_plugins(
        settings: Settings,
        store: Store,
        cache_dir: Option<PathBuf>,
        wanted: impl Fn(&PluginSettings) -> bool,
    ) -> Result<Self, AppError> {
        let mut engine = Self::without_plugins(settings, store)?;
        let events = engine.events.clone();
        // Commands that keep state keep the fingerprint key beside it (see `fingerprint_key_path`).
        let fingerprint_key = match &cache_dir {
            Some(_) => {
                let path = fingerprint_key_path(&engine.settings.state.path);
                Some(
                    FingerprintKey::load_or_create(&path)
                        .map_err(|e| AppError::Plugins(e.to_string()))?,
                )
            }
            None => None,
        };
        let host = PluginHost::new(HostOptions {
            cache_dir,
            fingerprint_key,
            on_denied: Some(OnDenied::new(move |plugin, target| {
                events.denied(plugin, target)
            })),
            ..HostOptions::default()
        })
        .map_err(|e| AppError::Plugins(e.to_string()))?;
        let used: Vec<&PluginSettings> = engine
            .settings
            .plugins
            .iter()
            .filter(|p| wanted(p))
            .collect();
        let mut plugins = HashMap::new();
        let mut broken = HashMap::new();
        let resolver = ConnectResolver {
            client: &engine.client,
        };
        let loader = Loader::new(&host, &resolver);
        for p in used {
            match loader.load(&p.name, p.config.clone(), |c| p.spec(c)).await {
                Ok(plugin) => {
                    metrics::gauge!(names::PLUGIN_USABLE, "plugin" => p.name.clone()).set(1.0);
                    plugins.insert(p.name.clone(), plugin);
                }
                Err(e) => {
                    tracing::error!(plugin = %p.name, error = %e, "plugin not usable; its deliveries wait");
                    metrics::gauge!(names::PLUGIN_USABLE, "plugin" => p.name.clone()).set(0.0);
                    broken.insert(p.name.clone(), e.to_string());
                }
            }
        }
        engine.plugins = plugins;
        engine.broken = broken;
        engine.host = Some(host);
        Ok(engine)
    }

    /// The poller over this engine's client, store and routes.
    pub fn detector(&self, allow_mass_delete: bool) -> Detector {
        Detector::new(
            self.client.clone(),
            self.store.clone(),
            self.settings.routes.clone(),
            DetectOptions {
                full_reconcile_interval: self.settings.sync.full_reconcile_interval,
                allow_mass_delete,
                keep_changes: true,
            },
        )
    }

    /// The rotation runner of this process, reporting to this engine's own events.
    pub fn rotator(&self) -> Rotator {
        Rotator::new(self.client.clone(), self.store.clone()).reporting_to(self.events.clone())
    }

    /// The deliverer over this engine's store, client, routes and plugins.
    /// A delivery worker for `route`, claiming rows as `replica` on a PostgreSQL state (for the
    /// state's claim timeout; a replica silent for a lease loses its claims).
    pub fn route_worker(
        &self,
        deliverer: &Deliverer,
        route: &str,
        replica: &str,
    ) -> Result<RouteWorker, DeliveryError> {
        let state = &self.settings.state;
        Ok(RouteWorker::new(deliverer.clone(), route)?.claiming(
            replica,
            state.claim_timeout,
            state.lease,
        ))
    }

    pub fn deliverer(&self) -> Deliverer {
        Deliverer::with_broken(
            self.store.clone(),
            self.client.clone(),
            self.settings.routes.clone(),
            self.plugins.clone(),
            self.broken.clone(),
            self.settings.delivery.retry_policy(),
            self.events.clone(),
        )
    }
}
