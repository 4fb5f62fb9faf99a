//! The `[state]` section: where opsync keeps its state, a SQLite file (the default) or a
//! PostgreSQL database shared by replicas.

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::store::postgres::{PasswordSource, PgError, PgTarget};
use crate::store::{DEFAULT_CLAIM_TIMEOUT, Store, StoreError};

/// Default state database path.
pub const DEFAULT_STATE_PATH: &str = "opsync.db";

/// Default length of the leader lease on a PostgreSQL state.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Default interval between renewals of the leader lease.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(3);

/// The shortest delivery claim accepted.
pub const MIN_CLAIM_TIMEOUT: Duration = Duration::from_secs(5);

/// Default age after which delivered and superseded ledger rows are pruned.
pub const DEFAULT_LEDGER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Effective `[state]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateSettings {
    /// The SQLite state database, or with `url` the directory anchor of the local files kept
    /// beside it (the plugin cache, the drift key). Relative to the config file when set
    /// there, else to the working directory.
    pub path: PathBuf,
    /// Delivered and superseded ledger rows older than this are pruned (dead letters stay until
    /// retried).
    #[serde(with = "crate::human_time::written")]
    pub ledger_retention: Duration,
    /// A PostgreSQL state instead of SQLite: `postgres://user@host[:port]/database[?...]`,
    /// never with a password in it.
    pub url: Option<String>,
    /// Where the PostgreSQL password is read from.
    #[serde(skip)]
    pub password: PasswordSource,
    /// With `url`: how long the leader's lease lasts past each renewal.
    #[serde(with = "crate::human_time::written")]
    pub lease: Duration,
    /// With `url`: how often the leader renews its lease (and every replica its heartbeat).
    #[serde(with = "crate::human_time::written")]
    pub renew_every: Duration,
    /// With `url`: how long a replica's claim on the ledger rows it delivers holds before other
    /// replicas may take them (a replica that stopped heartbeating loses its claims after
    /// `lease`).
    #[serde(with = "crate::human_time::written")]
    pub claim_timeout: Duration,
}

impl StateSettings {
    /// The PostgreSQL state to connect to, if `url` is set; reads the password.
    pub fn postgres(&self) -> Result<Option<PgTarget>, PgError> {
        self.url
            .as_deref()
            .map(|url| PgTarget::parse("state.url", url, &self.password))
            .transpose()
    }

    /// The state these settings name: PostgreSQL with `url`, else the SQLite file at `path`
    /// (created if missing).
    pub fn open(&self) -> Result<Store, StoreError> {
        match self
            .postgres()
            .map_err(|e| StoreError::Postgres(Box::new(e)))?
        {
            Some(target) => Store::open_replicated(target, self.lease),
            None => Store::open(&self.path),
        }
    }

    /// Like [`StateSettings::open`], but `None` when the SQLite file does not exist yet: for
    /// commands that only read the state and must not create it.
    pub fn open_existing(&self) -> Result<Option<Store>, StoreError> {
        if self.url.is_none() && !self.path.exists() {
            return Ok(None);
        }
        self.open().map(Some)
    }
}

/// `[state]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawState {
    path: RelativePathBuf,
    #[serde(with = "crate::human_time::written")]
    pub(crate) ledger_retention: Duration,
    url: Option<String>,
    password_env: Option<String>,
    password_file: Option<RelativePathBuf>,
    #[serde(with = "crate::human_time::written")]
    lease: Duration,
    #[serde(with = "crate::human_time::written")]
    renew_every: Duration,
    #[serde(with = "crate::human_time::written")]
    claim_timeout: Duration,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            path: RelativePathBuf::from(DEFAULT_STATE_PATH),
            ledger_retention: DEFAULT_LEDGER_RETENTION,
            url: None,
            password_env: None,
            password_file: None,
            lease: DEFAULT_LEASE,
            renew_every: DEFAULT_RENEW_EVERY,
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
        }
    }
}

impl RawState {
    /// The effective settings; a PostgreSQL URL is checked (and its password read) here, so a
    /// bad one is reported by `check-config` and at start, naming its key.
    pub(crate) fn resolve(self, figment: &Figment) -> Result<StateSettings, ConfigError> {
        let password = match (self.password_env, self.password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    figment,
                    "state.password_file",
                    "set either state.password_env or state.password_file, not both",
                ));
            }
            (Some(var), None) => PasswordSource::Env(var),
            (None, Some(file)) => PasswordSource::File(file.relative()),
            (None, None) => PasswordSource::None,
        };
        let settings = StateSettings {
            path: self.path.relative(),
            ledger_retention: self.ledger_retention,
            url: self.url,
            password,
            lease: self.lease,
            renew_every: self.renew_every,
            claim_timeout: self.claim_timeout,
        };
        if settings.renew_every.is_zero() || settings.renew_every >= settings.lease {
            return Err(ConfigError::invalid(
                figment,
                "state.renew_every",
                format!(
                    "must be more than zero and shorter than state.lease ({}), so that the \
                     leader renews before its lease runs out",
                    humantime::format_duration(settings.lease)
                ),
            ));
        }
        if settings.claim_timeout < MIN_CLAIM_TIMEOUT {
            return Err(ConfigError::invalid(
                figment,
                "state.claim_timeout",
                format!(
                    "must be at least {}: a claim must outlast the destination call it covers",
                    humantime::format_duration(MIN_CLAIM_TIMEOUT)
                ),
            ));
        }
        if settings.url.is_none() && settings.password != PasswordSource::None {
            return Err(ConfigError::invalid(
                figment,
                "state.url",
                "a PostgreSQL password is set but no state.url",
            ));
        }
        settings.postgres().map_err(|e| match e {
            PgError::Url { key, reason } => ConfigError::invalid(figment, &key, reason),
            PgError::Password { from, reason } => ConfigError::invalid(figment, &from, reason),
            other => ConfigError::invalid(figment, "state.url", other.to_string()),
        })?;
        Ok(settings)
    }
}
