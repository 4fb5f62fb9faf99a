//! `opsync plugin check`: every configured plugin instance resolved, loaded and validated, one
//! line per instance saying what it is and whether it is usable.

use std::fmt;

use crate::app::plugin_cache_dir;
use crate::config::{PluginSettings, Settings, SourceSetting};
use crate::connect::client::ConnectClient;
use crate::connect::reference::ConnectResolver;
use crate::plugin::{HostOptions, LoadError, Loader, PluginConfig, PluginHost};

/// What `check` found for one plugin instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStatus {
    pub name: String,
    /// `builtin:file` or the component's path.
    pub source: String,
    /// The world the component targets, once loaded.
    pub world: Option<String>,
    /// The component's sha256, once read (for a file, the pinned one until then).
    pub sha256: Option<String>,
    /// The HTTP allow-list the instance is granted.
    pub allowed_hosts: Vec<String>,
    /// Why the instance is not usable; `None` when it loaded and validated.
    pub error: Option<String>,
}

/// Every instance's status, in config order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub plugins: Vec<PluginStatus>,
}

impl CheckReport {
    /// Whether any instance failed.
    pub fn failed(&self) -> bool {
        self.plugins.iter().any(|p| p.error.is_some())
    }
}

/// Why `check` could not start at all (a plugin's own failure goes into its line instead).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("Connect client: {0}")]
    Connect(#[from] crate::connect::error::ConnectError),
    #[error("plugin host: {0}")]
    Host(#[from] crate::plugin::PluginError),
}

/// Resolves each instance's `op://` values through Connect, loads it in the host (with the
/// daemon's compile cache) and calls its `validate`.
pub async fn check(settings: &Settings) -> Result<CheckReport, CheckError> {
    let client = ConnectClient::new(&settings.connect)?;
    let host = PluginHost::new(HostOptions {
        cache_dir: Some(plugin_cache_dir(&settings.state.path)),
        ..HostOptions::default()
    })?;
    let resolver = ConnectResolver { client: &client };
    let loader = Loader::new(&host, &resolver);
    let mut report = CheckReport::default();
    for p in &settings.plugins {
        let mut status = PluginStatus {
            name: p.name.clone(),
            source: match &p.source {
                SourceSetting::Builtin { builtin } => format!("builtin:{builtin}"),
                SourceSetting::File { path, .. } => path.display().to_string(),
            },
            world: None,
            sha256: match &p.source {
                SourceSetting::Builtin { .. } => None,
                SourceSetting::File { sha256, .. } => Some(sha256.clone()),
            },
            allowed_hosts: p.grants.http.clone(),
            error: None,
        };
        if let Err(e) = check_one(&loader, p, &mut status).await {
            status.error = Some(e.to_string());
        }
        report.plugins.push(status);
    }
    Ok(report)
}

/// One instance, through the daemon's own [`Loader`]: resolve, load, validate. When its config
/// does not resolve, the component is still loaded (loading never calls the plugin), so the line
/// shows its world and sha256 beside the error.
async fn check_one(
    loader: &Loader<'_, ConnectResolver<'_>>,
    p: &PluginSettings,
    status: &mut PluginStatus,
) -> Result<(), LoadError> {
    let (config, unresolved) = match loader.resolve(&p.name, p.config.clone()).await {
        Ok(config) => (config, None),
        Err(e) => (PluginConfig::default(), Some(e)),
    };
    let plugin = loader.load_spec(p.spec(config)).await?;
    status.world = Some(plugin.world().to_string());
    status.sha256 = Some(plugin.sha256().to_owned());
    if let Some(e) = unresolved {
        return Err(e);
    }
    Ok(plugin.validate().await?)
}

impl fmt::Display for PluginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = if self.allowed_hosts.is_empty() {
            "none".to_owned()
        } else {
            self.allowed_hosts.join(",")
        };
        write!(
            f,
            "{}  source={}  world={}  sha256={}  http={}  ",
            self.name,
            self.source,
            self.world.as_deref().unwrap_or("?"),
            self.sha256.as_deref().unwrap_or("?"),
            hosts,
        )?;
        match &self.error {
            None => f.write_str("OK"),
            Some(e) => write!(f, "FAILED: {e}"),
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plugins.is_empty() {
            return writeln!(f, "no plugins configured ([plugins.NAME] sections)");
        }
        for p in &self.plugins {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}
