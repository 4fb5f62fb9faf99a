//! Typed settings, loaded with figment from `config.toml` < `OP_CONNECT_*` < `OPSYNC_*` < flags.
//!
//! Layers, lowest first:
//! 1. the config file (`--config PATH`, `OPSYNC_CONFIG`, or `./config.toml` when it exists);
//! 2. the official Connect SDKs' `OP_CONNECT_HOST` and `OP_CONNECT_TOKEN`;
//! 3. `OPSYNC_*` variables, `__` between nested keys (`OPSYNC_CONNECT__TIMEOUT=5s`);
//! 4. command-line flags (`--connect-host`, `--log-level`, ...).
//!
//! Everything is parsed and checked at load: unknown keys, wrong types and missing required
//! values are errors naming the key path and the file, variable or flag it came from.

mod admin;
mod audit;
mod connect;
mod delivery;
mod error;
mod event_stream;
mod events;
mod log;
mod plugins;
mod report;
mod rotation;
mod routes;
mod sources;
mod state;
mod sync;

use std::path::{Path, PathBuf};

use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::rotation::RotationJob;
pub use admin::{AdminSettings, MIN_TOKEN_LEN};
pub use audit::{
    AuditSettings, AuditSinkSettings, DEFAULT_AUDIT_POLL_INTERVAL, DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL, DEFAULT_PAGE_SIZE, FORMATS, MAX_BATCH_SIZE, StartSetting,
};
pub use connect::{
    ConnectSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IDLE_PER_HOST, DEFAULT_POOL_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
};
pub use delivery::DeliverySettings;
pub use error::{ConfigError, Origin};
pub use event_stream::{ApiVersion, EventStream, UnknownStream};
pub use events::{
    DEFAULT_EVENTS_URL, EVENTS_HISTORY, EventsSourceSettings, EventsToken, MAX_EVENTS_LIMIT,
    StartTime,
};
pub use log::{LogFormat, LogLevel, LogSettings};
pub use plugins::{DirSetting, GrantSettings, LimitSettings, PluginSettings, SourceSetting};
pub use report::{CheckReport, EXPIRY_WARNING, check};
pub use rotation::DEFAULT_DEADLINE;
pub use routes::MAX_CONCURRENCY;
pub use sources::{
    CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, ENV_PREFIX, EnvVars, LoadOptions, Overrides,
    SDK_HOST_ENV, SDK_TOKEN_ENV,
};
pub use state::{DEFAULT_LEDGER_RETENTION, DEFAULT_STATE_PATH, StateSettings};
pub use sync::{DEFAULT_POLL_INTERVAL, SyncSettings};

/// The whole effective configuration. Serialises as TOML with secrets redacted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub connect: ConnectSettings,
    pub log: LogSettings,
    pub state: StateSettings,
    pub sync: SyncSettings,
    /// `[plugins.NAME]`, by name.
    #[serde(serialize_with = "plugins_by_name")]
    pub plugins: Vec<PluginSettings>,
    /// `[[route]]`, in file order.
    #[serde(rename = "route")]
    pub routes: Vec<crate::route::Route>,
    pub delivery: DeliverySettings,
    pub admin: AdminSettings,
    /// `[[rotation]]`, in file order.
    #[serde(rename = "rotation")]
    pub rotations: Vec<RotationJob>,
    /// `[audit]` and `[[audit.sink]]`: the activity export.
    pub audit: AuditSettings,
}

fn plugins_by_name<S: serde::Serializer>(
    plugins: &[PluginSettings],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(plugins.iter().map(|p| (&p.name, p)))
}

/// What the commands that only read the state database (`status`, `deadletter`) need: `[state]`
/// and the configured route names. No Connect host or token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSettings {
    pub state: StateSettings,
    /// `[[route]] name`s, in file order.
    pub routes: Vec<String>,
}

impl Settings {
    /// The part of the settings that commands reading only the state database use.
    pub fn local(&self) -> LocalSettings {
        LocalSettings {
            state: self.state.clone(),
            routes: self.routes.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// The plugin instance called `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginSettings> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// Loads and checks everything.
    pub fn load(opts: &LoadOptions) -> Result<Self, ConfigError> {
        Loader::new(opts)?.settings()
    }

    /// The effective configuration as TOML, secrets shown as `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render the settings: {e}\n"))
    }
}

/// The file as written, every section optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    connect: connect::RawConnect,
    log: LogSettings,
    state: state::RawState,
    sync: SyncSettings,
    plugins: std::collections::BTreeMap<String, plugins::RawPlugin>,
    route: Vec<routes::RawRoute>,
    delivery: DeliverySettings,
    admin: admin::RawAdmin,
    rotation: Vec<rotation::RawRotation>,
    audit: audit::RawAudit,
}

/// The stacked layers, ready to be read whole or a section at a time.
#[derive(Debug)]
pub struct Loader {
    figment: Figment,
    file: Option<PathBuf>,
}

impl Loader {
    /// Stacks the layers. Fails only when an explicit config file is missing; bad values
    /// show up when a section is read.
    pub fn new(opts: &LoadOptions) -> Result<Self, ConfigError> {
        let (figment, file) = sources::build(opts)?;
        Ok(Self { figment, file })
    }

    /// The config file that was read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Every setting, checked; the host and token are required.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.checked(true)
    }

    /// Every setting, checked, except that Connect's token may be missing (left empty): for
    /// commands that read the state database and never talk to Connect.
    pub fn offline_settings(&self) -> Result<Settings, ConfigError> {
        self.checked(false)
    }

    fn checked(&self, token_required: bool) -> Result<Settings, ConfigError> {
        let raw: RawSettings = self
            .figment
            .extract()
            .map_err(|e| ConfigError::from_figment(e, &self.figment))?;
        let file_name = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_owned());
        let connect = raw
            .connect
            .resolve(&self.figment, &file_name, token_required)?;
        let (plugins, routes) = self.sync_sections(raw.plugins, raw.route)?;
        let rotations = rotation::resolve(raw.rotation, &plugins, &self.figment)?;
        let audit = audit::resolve(raw.audit, &plugins, &self.figment)?;
        for (key, value) in [
            ("sync.poll_interval", raw.sync.poll_interval),
            ("state.ledger_retention", raw.state.ledger_retention),
            (
                "sync.full_reconcile_interval",
                raw.sync.full_reconcile_interval,
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(
                    &self.figment,
                    key,
                    "must be more than zero",
                ));
            }
        }
        Ok(Settings {
            connect,
            log: raw.log,
            state: raw.state.resolve(&self.figment)?,
            sync: raw.sync,
            plugins,
            routes,
            delivery: raw.delivery,
            admin: raw.admin.resolve(&self.figment)?,
            rotations,
            audit,
        })
    }

    /// `[plugins.NAME]` and `[[route]]`, checked together (routes name plugins).
    fn sync_sections(
        &self,
        plugins: std::collections::BTreeMap<String, plugins::RawPlugin>,
        route: Vec<routes::RawRoute>,
    ) -> Result<(Vec<PluginSettings>, Vec<crate::route::Route>), ConfigError> {
        let plugins = plugins::resolve(plugins, &self.figment)?;
        let routes = routes::resolve(route, &plugins, &self.figment)?;
        Ok((plugins, routes))
    }

    /// Only `[state]` and the route names, for commands that read the state database and
    /// nothing else: `[connect]`, plugins and the rest of each route are not looked at.
    pub fn local(&self) -> Result<LocalSettings, ConfigError> {
        /// A route's name alone; its other keys are not looked at.
        #[derive(Deserialize)]
        struct RouteName {
            #[serde(default)]
            name: String,
        }
        /// `[state]` and `[[route]]` names; other sections are not looked at.
        #[derive(Deserialize)]
        struct LocalOnly {
            #[serde(default)]
            state: state::RawState,
            #[serde(default)]
            route: Vec<RouteName>,
        }
        let raw = self
            .figment
            .extract::<LocalOnly>()
            .map_err(|e| ConfigError::from_figment(e, &self.figment))?;
        Ok(LocalSettings {
            state: raw.state.resolve(&self.figment)?,
            routes: raw.route.into_iter().map(|r| r.name).collect(),
        })
    }

    /// Only the `[log]` section, for commands that do not talk to Connect.
    pub fn log(&self) -> Result<LogSettings, ConfigError> {
        /// The `[log]` section alone; other sections are not looked at.
        #[derive(Deserialize)]
        struct LogOnly {
            #[serde(default)]
            log: LogSettings,
        }
        self.figment
            .extract::<LogOnly>()
            .map(|l| l.log)
            .map_err(|e| ConfigError::from_figment(e, &self.figment))
    }
}
