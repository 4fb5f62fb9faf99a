//! The `[connect]` section: which Connect server to talk to, with which token, how patiently.

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::config::error::{ConfigError, Origin};
use crate::config::sources::{ENV_PREFIX, SDK_HOST_ENV, SDK_TOKEN_ENV};
use crate::connect::client::ClientOptions;
use crate::connect::model::SecretString;
use crate::human_time::written as duration;

/// Default whole-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default TCP (and TLS) connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default number of idle connections kept per host.
pub const DEFAULT_MAX_IDLE_PER_HOST: usize = 32;
/// Default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("opsync/", env!("CARGO_PKG_VERSION"));

/// Effective `[connect]` settings. Serialises with the token redacted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectSettings {
    /// Base URL of the Connect server, e.g. `http://localhost:8080`.
    pub host: Url,
    /// The Connect token (a JWT).
    #[serde(serialize_with = "redacted")]
    pub token: SecretString,
    /// The file the token was read from, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Whole-request timeout.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Connect (TCP and TLS) timeout.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    #[serde(with = "duration")]
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl ConnectSettings {
    /// Settings for `host` and `token` with every other value at its default.
    pub fn new(host: Url, token: impl Into<SecretString>) -> Self {
        Self {
            host,
            token: token.into(),
            token_file: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            max_idle_per_host: DEFAULT_MAX_IDLE_PER_HOST,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

fn redacted<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

/// `[connect]` as written, before the host is required and the token file read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConnect {
    #[serde(deserialize_with = "host_url")]
    host: Option<Url>,
    token: Option<SecretString>,
    token_file: Option<RelativePathBuf>,
    #[serde(with = "duration")]
    timeout: Duration,
    #[serde(with = "duration")]
    connect_timeout: Duration,
    #[serde(with = "duration")]
    pool_idle_timeout: Duration,
    max_idle_per_host: usize,
    user_agent: String,
}

impl Default for RawConnect {
    fn default() -> Self {
        Self {
            host: None,
            token: None,
            token_file: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            max_idle_per_host: DEFAULT_MAX_IDLE_PER_HOST,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

/// Parses `host` as an http(s) URL without credentials; the message never repeats a
/// value that held credentials.
fn host_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(d)?;
    let url = Url::parse(text.trim()).map_err(|e| {
        if text.contains('@') {
            D::Error::custom(format!("invalid URL: {e}"))
        } else {
            D::Error::custom(format!("invalid URL {text:?}: {e}"))
        }
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(D::Error::custom(
            "the URL must not contain credentials; set connect.token instead",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(D::Error::custom(format!(
            "{text:?} is not an http:// or https:// URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(D::Error::custom(format!(
            "{text:?} must not have a query or fragment"
        )));
    }
    Ok(Some(url))
}

impl RawConnect {
    /// Requires the host and the token, reading the token file when it is the token's source.
    ///
    /// `connect.token` and `connect.token_file` are two ways to give one value: when both
    /// are set, the one from the higher layer wins; set in the same layer, they conflict.
    /// Without `token_required`, a missing token is left empty (for commands that never talk
    /// to Connect).
    pub(crate) fn resolve(
        self,
        figment: &Figment,
        file_name: &str,
        token_required: bool,
    ) -> Result<ConnectSettings, ConfigError> {
        let host = self.host.ok_or_else(|| ConfigError::Missing {
            key: "connect.host".to_owned(),
            hint: format!(
                "set it in {file_name} [connect] host, {ENV_PREFIX}CONNECT__HOST or {SDK_HOST_ENV}"
            ),
        })?;
        for (key, value) in [
            ("connect.timeout", self.timeout),
            ("connect.connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(figment, key, "must be more than zero"));
            }
        }
        let token = self.token.filter(|t| !t.expose().trim().is_empty());
        let (token, token_file) = match (token, self.token_file) {
            (Some(token), None) => (trimmed(token), None),
            (None, Some(file)) => (
                read_token_file(figment, "connect.token_file", &file)?,
                Some(file.relative()),
            ),
            (Some(token), Some(file)) => {
                let from_token = Origin::of_key(figment, "connect.token");
                let from_file = Origin::of_key(figment, "connect.token_file");
                if from_file.rank() > from_token.rank() {
                    (
                        read_token_file(figment, "connect.token_file", &file)?,
                        Some(file.relative()),
                    )
                } else if from_file.rank() < from_token.rank() {
                    (trimmed(token), None)
                } else {
                    return Err(ConfigError::invalid(
                        figment,
                        "connect.token_file",
                        "connect.token is set in the same place; set only one of them",
                    ));
                }
            }
            (None, None) if !token_required => (SecretString::default(), None),
            (None, None) => {
                return Err(ConfigError::Missing {
                    key: "connect.token".to_owned(),
                    hint: format!(
                        "set it in {file_name} [connect] token or token_file, \
                         {ENV_PREFIX}CONNECT__TOKEN, {ENV_PREFIX}CONNECT__TOKEN_FILE or {SDK_TOKEN_ENV}"
                    ),
                });
            }
        };
        Ok(ConnectSettings {
            host,
            token,
            token_file,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            pool_idle_timeout: self.pool_idle_timeout,
            max_idle_per_host: self.max_idle_per_host,
            user_agent: self.user_agent,
        })
    }
}

fn trimmed(token: SecretString) -> SecretString {
    SecretString::new(token.expose().trim())
}

/// Reads the token file set at `key`: the whole file, surrounding whitespace trimmed, must not be
/// empty.
pub(crate) fn read_token_file(
    figment: &Figment,
    key: &str,
    file: &RelativePathBuf,
) -> Result<SecretString, ConfigError> {
    let path = file.relative();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::invalid(figment, key, format!("cannot read {}: {e}", path.display()))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::invalid(
            figment,
            key,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(SecretString::new(token))
}

/// The client's options are the `[connect]` settings, less where the token came from.
impl From<&ConnectSettings> for ClientOptions {
    fn from(s: &ConnectSettings) -> Self {
        Self {
            host: s.host.clone(),
            token: s.token.clone(),
            user_agent: s.user_agent.clone(),
            timeout: s.timeout,
            connect_timeout: s.connect_timeout,
            pool_idle_timeout: s.pool_idle_timeout,
            max_idle_per_host: s.max_idle_per_host,
        }
    }
}
