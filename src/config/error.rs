//! `ConfigError`: configuration problems that name the key path and where the value came from.

use std::fmt;
use std::path::PathBuf;

use figment::error::Kind;
use figment::{Figment, Metadata, Profile};

use crate::config::sources::{self, Layer};

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A config file.
    File(PathBuf),
    /// An environment variable, by name (`OPSYNC_CONNECT__HOST`, `OP_CONNECT_TOKEN`).
    Env(String),
    /// A command-line flag, by name (`--connect-host`).
    Flag(String),
    /// A built-in default, or a place figment could not tell.
    Default,
}

impl Origin {
    /// The origin of the value at `keys`, from the metadata of the provider that supplied it.
    pub(crate) fn from_metadata(metadata: Option<&Metadata>, keys: &[&str]) -> Self {
        let Some(md) = metadata else {
            return Origin::Default;
        };
        if let Some(figment::Source::File(path)) = &md.source {
            return Origin::File(path.clone());
        }
        match sources::layer_of(md) {
            Some(Layer::SdkEnv | Layer::Env) => {
                Origin::Env(md.interpolate(&Profile::Default, keys))
            }
            Some(Layer::Flags) => Origin::Flag(md.interpolate(&Profile::Default, keys)),
            _ => Origin::Default,
        }
    }

    /// The origin of the value at the dotted `key` in `figment`.
    pub(crate) fn of_key(figment: &Figment, key: &str) -> Self {
        let keys: Vec<&str> = key.split('.').collect();
        Self::from_metadata(figment.find_metadata(key), &keys)
    }

    /// How this origin ranks in the layering (higher wins).
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Origin::Default => 0,
            Origin::File(_) => 1,
            Origin::Env(name) if name.starts_with(sources::SDK_ENV_PREFIX) => 2,
            Origin::Env(_) => 3,
            Origin::Flag(_) => 4,
        }
    }

    /// `config.toml: connect.timeout`, `environment variable OPSYNC_CONNECT__TIMEOUT`,
    /// `command-line flag --connect-host`, or the bare key for a default.
    fn locate(&self, key: &str) -> String {
        match self {
            Origin::File(path) if key.is_empty() => path.display().to_string(),
            Origin::File(path) => format!("{}: {key}", path.display()),
            Origin::Env(var) if key.is_empty() => format!("environment variable {var}"),
            Origin::Env(var) => format!("environment variable {var} ({key})"),
            Origin::Flag(flag) => format!("command-line flag {flag}"),
            Origin::Default if key.is_empty() => "configuration".to_owned(),
            Origin::Default => key.to_owned(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.locate(""))
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist.
    #[error("config file {} not found", .path.display())]
    FileNotFound { path: PathBuf },

    /// A value that does not fit its key.
    #[error("{}: {message}", .origin.locate(.key))]
    Invalid {
        origin: Origin,
        /// Dotted key path, e.g. `connect.timeout`; empty for a whole-file problem.
        key: String,
        message: String,
    },

    /// A key opsync does not know.
    #[error("{}: unknown key {key} (expected one of {})", .origin, .expected.join(", "))]
    UnknownKey {
        origin: Origin,
        key: String,
        expected: Vec<String>,
    },

    /// A required value that no layer set.
    #[error("{key} is required ({hint})")]
    Missing { key: String, hint: String },

    /// More than one problem, each on its own line.
    #[error("{}", render_all(.0))]
    Several(Vec<ConfigError>),
}

fn render_all(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One config section's problems, collected so they are all reported together, each located
/// through the section's origin (the file, variable or flag that set it).
pub(crate) struct Problems {
    origin: Origin,
    errors: Vec<ConfigError>,
}

impl Problems {
    /// Problems of the section at `key` (`route`, `rotation`, `audit`).
    pub(crate) fn new(figment: &Figment, key: &str) -> Self {
        Self {
            origin: Origin::of_key(figment, key),
            errors: Vec::new(),
        }
    }

    /// A value that does not fit `key` (the full dotted path, e.g. `route[0].name`).
    pub(crate) fn add(&mut self, key: String, message: String) {
        self.errors.push(ConfigError::Invalid {
            origin: self.origin.clone(),
            key,
            message,
        });
    }

    /// `value` when nothing was wrong; otherwise the one problem, or all of them.
    pub(crate) fn into_result<T>(mut self, value: T) -> Result<T, ConfigError> {
        match self.errors.len() {
            0 => Ok(value),
            1 => Err(self.errors.remove(0)),
            _ => Err(ConfigError::Several(self.errors)),
        }
    }
}

impl ConfigError {
    /// Converts figment's error (possibly several chained) into ours.
    pub(crate) fn from_figment(err: figment::Error, figment: &Figment) -> Self {
        let mut all: Vec<ConfigError> = err.into_iter().map(|e| one(e, figment)).collect();
        if all.len() == 1 {
            all.remove(0)
        } else {
            ConfigError::Several(all)
        }
    }

    /// A problem with the value at `key`, located through the figment's metadata.
    pub(crate) fn invalid(figment: &Figment, key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            origin: Origin::of_key(figment, key),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Keys whose values are secrets.
const SECRET_KEYS: [&[&str]; 1] = [&["connect", "token"]];

fn one(err: figment::Error, figment: &Figment) -> ConfigError {
    let path: Vec<&str> = err.path.iter().map(String::as_str).collect();
    match &err.kind {
        Kind::UnknownField(field, expected) => {
            let keys = with_field(&path, field);
            let key = keys.join(".");
            let origin = Origin::from_metadata(figment.find_metadata(&key), &keys);
            ConfigError::UnknownKey {
                origin,
                key,
                expected: expected.iter().map(|s| (*s).to_owned()).collect(),
            }
        }
        Kind::MissingField(field) => {
            let keys = with_field(&path, field);
            ConfigError::Missing {
                key: keys.join("."),
                hint: "no layer sets it".to_owned(),
            }
        }
        kind => ConfigError::Invalid {
            origin: Origin::from_metadata(err.metadata.as_ref(), &path),
            key: path.join("."),
            // Serde may quote the offending value; a token's must never be shown.
            message: if SECRET_KEYS.contains(&path.as_slice()) {
                "expected a string (the value is not shown: it is a secret)".to_owned()
            } else {
                describe(kind)
            },
        },
    }
}

/// The key path of a field error: figment's path usually ends with the field already.
fn with_field<'a>(path: &[&'a str], field: &'a str) -> Vec<&'a str> {
    let mut keys = path.to_vec();
    if keys.last() != Some(&field) {
        keys.push(field);
    }
    keys
}

fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.clone(),
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {actual}", plain_type(expected))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("invalid value {actual}, expected {expected}")
        }
        Kind::UnknownVariant(value, expected) => format!(
            "unknown value {value:?} (expected one of {})",
            expected.join(", ")
        ),
        other => other.to_string(),
    }
}

/// Serde's names for expected types, in the words of a config file.
fn plain_type(expected: &str) -> &str {
    if expected.starts_with("struct ") || expected == "map" {
        return "a table";
    }
    match expected {
        "usize" | "u8" | "u16" | "u32" | "u64" => "a whole number",
        "a string" | "string" => "a string",
        other => other,
    }
}
