//! The `[admin]` section: where the admin listener (status page, metrics, health) listens and
//! the bearer token that guards it when it listens beyond loopback.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize, Serializer};

use crate::config::connect::read_token_file;
use crate::config::error::ConfigError;
use crate::connect::model::SecretString;

/// Fewest characters an admin token may have: a short one could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// Effective `[admin]` settings. Serialises with the token redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AdminSettings {
    /// Where `opsync run` serves the status page (`/`, `/status`), `/metrics`, `/healthz` and
    /// `/readyz` (e.g. "127.0.0.1:9464"); unset, there is no admin listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The bearer token the status page and JSON require (always when set; and when the
    /// listener is not on loopback, nothing but the health checks answers without it).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redacted")]
    pub token: Option<SecretString>,
    /// The file the token was read from, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Serve `/metrics` without the token (for a Prometheus that scrapes without credentials).
    pub open_metrics: bool,
}

fn redacted<S: Serializer>(_: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

/// `[admin]` as written, before the token file is read.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAdmin {
    listen: Option<SocketAddr>,
    token: Option<SecretString>,
    token_file: Option<RelativePathBuf>,
    open_metrics: bool,
}

impl RawAdmin {
    /// Reads the token (from `token` or `token_file`, not both) and checks its length.
    pub(crate) fn resolve(self, figment: &Figment) -> Result<AdminSettings, ConfigError> {
        let token = self
            .token
            .map(|t| SecretString::new(t.expose().trim()))
            .filter(|t| !t.is_empty());
        let (token, token_file) = match (token, self.token_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    figment,
                    "admin.token_file",
                    "admin.token is set too; set only one of them",
                ));
            }
            (Some(token), None) => (Some(token), None),
            (None, Some(file)) => (
                Some(read_token_file(figment, "admin.token_file", &file)?),
                Some(file.relative()),
            ),
            (None, None) => (None, None),
        };
        if let Some(t) = &token
            && t.expose().chars().count() < MIN_TOKEN_LEN
        {
            let key = if token_file.is_some() {
                "admin.token_file"
            } else {
                "admin.token"
            };
            return Err(ConfigError::invalid(
                figment,
                key,
                format!("the token must be at least {MIN_TOKEN_LEN} characters"),
            ));
        }
        Ok(AdminSettings {
            listen: self.listen,
            token,
            token_file,
            open_metrics: self.open_metrics,
        })
    }
}
