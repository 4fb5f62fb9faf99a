//! The configuration layers, lowest first: config file, `OP_CONNECT_*`, `OPSYNC_*`, flags.
//!
//! Each layer is a figment provider whose metadata names it, so an error can say which file,
//! variable or flag a bad value came from.
//!
//! The file is figment's own `Toml` provider. The two environment layers are not figment's `Env`,
//! for one concrete reason: `Env` reads the process environment when the figment is extracted,
//! and opsync loads config from a snapshot ([`EnvVars`]) handed in through [`LoadOptions`]. That
//! keeps loading a pure function of its inputs: the library's callers and tests pass the
//! variables they mean, instead of mutating a multi-threaded process's environment (`set_var` is
//! `unsafe` for that reason). What the layers do beyond `Env` (the token kept a string, the SDK
//! names, `OPSYNC_CONFIG` and test hooks left out) is small and tested below.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::config::error::ConfigError;

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";
/// Prefix of opsync's own environment variables; `__` separates nested keys.
pub const ENV_PREFIX: &str = "OPSYNC_";
/// The variable that names the config file (read by the command line, not a setting).
pub const CONFIG_FILE_ENV: &str = "OPSYNC_CONFIG";
/// Prefix of test hooks (`OPSYNC_TEST_KILL_AFTER_STEP`): read by the code they steer, not settings.
pub const TEST_HOOK_PREFIX: &str = "OPSYNC_TEST_";
/// Prefix of the official Connect SDKs' variables.
pub const SDK_ENV_PREFIX: &str = "OP_CONNECT_";
/// The SDKs' host variable.
pub const SDK_HOST_ENV: &str = "OP_CONNECT_HOST";
/// The SDKs' token variable.
pub const SDK_TOKEN_ENV: &str = "OP_CONNECT_TOKEN";

const SDK_ENV_LAYER: &str = "Connect SDK environment variables";
const ENV_LAYER: &str = "opsync environment variables";
const FLAGS_LAYER: &str = "command-line flags";

/// A configuration layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    File,
    SdkEnv,
    Env,
    Flags,
}

/// The layer a provider's metadata belongs to.
pub(crate) fn layer_of(md: &Metadata) -> Option<Layer> {
    if matches!(md.source, Some(figment::Source::File(_))) {
        return Some(Layer::File);
    }
    match md.name.as_ref() {
        SDK_ENV_LAYER => Some(Layer::SdkEnv),
        ENV_LAYER => Some(Layer::Env),
        FLAGS_LAYER => Some(Layer::Flags),
        _ => None,
    }
}

/// A snapshot of environment variables. `Debug` shows names only: values may be tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    /// The current process's variables (those that are valid UTF-8).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Settings given as command-line flags: the top layer. Holds no secrets (the token is
/// never a flag, because other users can read a process's arguments).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--connect-host`
    pub connect_host: Option<String>,
    /// `--connect-token-file`
    pub connect_token_file: Option<PathBuf>,
    /// `--log-level`
    pub log_level: Option<String>,
    /// `--log-format`
    pub log_format: Option<String>,
}

/// Everything a configuration is loaded from.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// An explicit config file (`--config` or `OPSYNC_CONFIG`): it must exist. When `None`,
    /// `config.toml` in the working directory is read if it exists.
    pub config_file: Option<PathBuf>,
    pub env: EnvVars,
    pub overrides: Overrides,
}

impl LoadOptions {
    /// Options reading this process's environment.
    pub fn new(config_file: Option<PathBuf>, overrides: Overrides) -> Self {
        Self {
            config_file,
            env: EnvVars::from_process(),
            overrides,
        }
    }
}

/// Stacks the layers. Returns the figment and the config file it read, if any.
pub(crate) fn build(opts: &LoadOptions) -> Result<(Figment, Option<PathBuf>), ConfigError> {
    let file = match &opts.config_file {
        Some(path) if path.is_file() => Some(path.clone()),
        Some(path) => return Err(ConfigError::FileNotFound { path: path.clone() }),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| Path::new(p).is_file()),
    };
    let mut figment = Figment::new();
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }
    let figment = figment
        .merge(sdk_env(&opts.env))
        .merge(opsync_env(&opts.env))
        .merge(flags(&opts.overrides));
    Ok((figment, file))
}

/// A layer of (key path, value) entries, named by `name` and its interpolater.
struct Entries {
    metadata: Metadata,
    entries: Vec<(Vec<String>, Value)>,
}

impl Provider for Entries {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (keys, value) in &self.entries {
            insert(&mut dict, keys, value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn insert(dict: &mut Dict, keys: &[String], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let slot = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if slot.as_dict().is_none() {
                *slot = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = slot {
                insert(inner, rest, value);
            }
        }
    }
}

/// `OP_CONNECT_HOST` and `OP_CONNECT_TOKEN`, as the official SDKs read them. Empty values
/// count as unset. Values are taken as plain strings.
fn sdk_env(env: &EnvVars) -> Entries {
    let mut entries = Vec::new();
    for (var, key) in [(SDK_HOST_ENV, "host"), (SDK_TOKEN_ENV, "token")] {
        if let Some(value) = env.get(var).filter(|v| !v.trim().is_empty()) {
            entries.push((
                vec!["connect".to_owned(), key.to_owned()],
                Value::from(value.to_owned()),
            ));
        }
    }
    let metadata =
        Metadata::named(SDK_ENV_LAYER).interpolater(|_: &Profile, keys: &[&str]| match keys {
            ["connect", "host"] => SDK_HOST_ENV.to_owned(),
            ["connect", "token"] => SDK_TOKEN_ENV.to_owned(),
            other => other.join("."),
        });
    Entries { metadata, entries }
}

/// `OPSYNC_*` variables: `OPSYNC_CONNECT__TIMEOUT=5s` sets `connect.timeout`. Values are
/// read like TOML scalars (`8` is a number, `true` a boolean, anything else a string).
fn opsync_env(env: &EnvVars) -> Entries {
    let entries = env
        .0
        .iter()
        .filter(|(name, _)| name.as_str() != CONFIG_FILE_ENV && !name.starts_with(TEST_HOOK_PREFIX))
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(ENV_PREFIX)?;
            let keys: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if keys.iter().any(String::is_empty) {
                return None;
            }
            // The token stays a plain string, whatever it looks like.
            let value: Value = if keys == ["connect", "token"] {
                Value::from(value.clone())
            } else {
                value.parse().unwrap_or_else(|_| Value::from(value.clone()))
            };
            Some((keys, value))
        })
        .collect();
    let metadata = Metadata::named(ENV_LAYER).interpolater(|_: &Profile, keys: &[&str]| {
        format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
    });
    Entries { metadata, entries }
}

/// The command-line flags that override settings.
fn flags(overrides: &Overrides) -> Entries {
    let mut entries = Vec::new();
    let mut push = |section: &str, key: &str, value: Option<String>| {
        if let Some(v) = value {
            entries.push((vec![section.to_owned(), key.to_owned()], Value::from(v)));
        }
    };
    push("connect", "host", overrides.connect_host.clone());
    push(
        "connect",
        "token_file",
        overrides
            .connect_token_file
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    push("log", "level", overrides.log_level.clone());
    push("log", "format", overrides.log_format.clone());
    let metadata = Metadata::named(FLAGS_LAYER).interpolater(|_: &Profile, keys: &[&str]| {
        format!("--{}", keys.join("-").replace('_', "-"))
    });
    Entries { metadata, entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_debug_hides_values() {
        let env: EnvVars = [("OP_CONNECT_TOKEN", "eyJsecret")].into_iter().collect();
        let dbg = format!("{env:?}");
        assert!(dbg.contains("OP_CONNECT_TOKEN"));
        assert!(!dbg.contains("eyJsecret"));
    }

    #[test]
    fn opsync_env_nests_on_double_underscore() {
        let env: EnvVars = [
            ("OPSYNC_CONNECT__MAX_IDLE_PER_HOST", "4"),
            ("OPSYNC_CONFIG", "elsewhere.toml"),
            ("OPSYNC_BROKEN__", "x"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .collect();
        let layer = opsync_env(&env);
        assert_eq!(layer.entries.len(), 1);
        assert_eq!(layer.entries[0].0, vec!["connect", "max_idle_per_host"]);
        let name = layer
            .metadata
            .interpolate(&Profile::Default, &["connect", "max_idle_per_host"]);
        assert_eq!(name, "OPSYNC_CONNECT__MAX_IDLE_PER_HOST");
    }
}
