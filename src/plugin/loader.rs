//! The one way a configured plugin instance is made usable: its `op://` config values resolved,
//! its component loaded by the host (read with a size cap, pin verified, world and imports
//! checked, compiled through the cache, pre-instantiated) off the async threads, and its own
//! `validate` called. The daemon, the audit export and `plugin check` all load through here.

use std::collections::BTreeMap;

use crate::plugin::config::{PluginConfig, PluginConfigError, ReferenceResolver};
use crate::plugin::error::PluginError;
use crate::plugin::host::{Plugin, PluginHost, PluginSpec};

/// Why an instance could not be made usable.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An `op://` value of its config could not be resolved.
    #[error("plugin `{plugin}`: {source}")]
    Resolve {
        plugin: String,
        #[source]
        source: PluginConfigError,
    },
    /// The host refused the component, or the plugin's `validate` failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The blocking task that loads the component did not finish.
    #[error("plugin `{plugin}`: loading was cut off: {reason}")]
    Task { plugin: String, reason: String },
}

/// Loads plugin instances through one host, resolving config values with one resolver.
pub struct Loader<'a, R> {
    host: &'a PluginHost,
    resolver: &'a R,
}

impl<'a, R: ReferenceResolver + Sync> Loader<'a, R> {
    pub fn new(host: &'a PluginHost, resolver: &'a R) -> Self {
        Self { host, resolver }
    }

    /// Resolves, loads and validates the instance `name`; `spec` makes its spec from the
    /// resolved config.
    pub async fn load(
        &self,
        name: &str,
        raw: BTreeMap<String, String>,
        spec: impl FnOnce(PluginConfig) -> PluginSpec,
    ) -> Result<Plugin, LoadError> {
        let config = self.resolve(name, raw).await?;
        let plugin = self.load_spec(spec(config)).await?;
        plugin.validate().await?;
        Ok(plugin)
    }

    /// The instance's config with its `op://` values resolved.
    pub async fn resolve(
        &self,
        name: &str,
        raw: BTreeMap<String, String>,
    ) -> Result<PluginConfig, LoadError> {
        PluginConfig::resolve(raw, self.resolver)
            .await
            .map_err(|source| LoadError::Resolve {
                plugin: name.to_owned(),
                source,
            })
    }

    /// Loads the component of `spec` (compiling is CPU-bound: it runs on a blocking thread),
    /// without calling the plugin.
    pub async fn load_spec(&self, spec: PluginSpec) -> Result<Plugin, LoadError> {
        let name = spec.name.clone();
        let host = self.host.clone();
        let plugin = tokio::task::spawn_blocking(move || host.load(spec))
            .await
            .map_err(|e| LoadError::Task {
                plugin: name,
                reason: e.to_string(),
            })??;
        Ok(plugin)
    }
}
