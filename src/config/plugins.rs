//! `[plugins.NAME]`: plugin instances (which component, its config, limits and grants),
//! checked at load and turned into the plugin host's `PluginSpec`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::plugin::{
    DirGrant, Grants, HostRule, HttpPolicy, Limits, PluginConfig, PluginSource, PluginSpec,
    TlsTrust, World,
};

/// One plugin instance, as checked at load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PluginSettings {
    /// The instance's name (the key after `plugins.`); routes name it in `destinations`.
    #[serde(skip)]
    pub name: String,
    /// `builtin = "file"`, or `path` + `sha256` for a third-party component.
    #[serde(flatten)]
    pub source: SourceSetting,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// Operator-set config handed to the plugin; `op://vault/item/field` values are resolved
    /// from Connect when the plugin is loaded. Keys that look secret are shown redacted.
    #[serde(serialize_with = "redacted_map")]
    pub config: BTreeMap<String, String>,
    pub limits: LimitSettings,
    pub grants: GrantSettings,
}

/// Where the component comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SourceSetting {
    Builtin { builtin: String },
    File { path: PathBuf, sha256: String },
}

/// Overrides of the host's default limits; unset ones keep the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<usize>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::human_time::written::option"
    )]
    pub cpu: Option<Duration>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::human_time::written::option"
    )]
    pub wall_clock: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_requests_per_call: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_bytes_per_call: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_bytes_per_call: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_per_call: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir_write_bytes_per_call: Option<u64>,
}

/// What the operator grants the plugin beyond its world.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GrantSettings {
    /// Directories, host path (relative to the config file) to guest path.
    pub dirs: Vec<DirSetting>,
    /// Outgoing HTTP allow-list: `https://api.example.com`, `https://*.example.com:8443`.
    pub http: Vec<String>,
    /// TCP addresses for `wasi:sockets`.
    pub tcp: Vec<SocketAddr>,
    /// PEM bundles of certificate authorities the plugin's HTTPS trusts beside the public roots
    /// (relative to the config file), such as a Kubernetes cluster's `ca.crt`.
    pub tls_ca: Vec<PathBuf>,
    /// Those bundles as read at load.
    #[serde(skip)]
    pub tls: Option<TlsTrust>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirSetting {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
    /// Flush the directory's filesystem before deliveries through the plugin are recorded.
    pub flush: bool,
}

impl PluginSettings {
    /// The host's limits: defaults with this instance's overrides.
    pub fn limits(&self) -> Limits {
        let mut l = Limits::default();
        let o = &self.limits;
        if let Some(v) = o.memory_bytes {
            l.memory_bytes = v;
        }
        if let Some(v) = o.cpu {
            l.cpu = v;
        }
        if let Some(v) = o.wall_clock {
            l.wall_clock = v;
        }
        if let Some(v) = o.http_requests_per_call {
            l.http_requests_per_call = v;
        }
        if let Some(v) = o.log_bytes_per_call {
            l.log_bytes_per_call = v;
        }
        if let Some(v) = o.secret_bytes_per_call {
            l.secret_bytes_per_call = v;
        }
        if let Some(v) = o.secrets_per_call {
            l.secrets_per_call = v;
        }
        if let Some(v) = o.dir_write_bytes_per_call {
            l.dir_write_bytes_per_call = v;
        }
        l
    }

    /// The host's grants (the HTTP rules were checked at load).
    pub fn grants(&self) -> Grants {
        Grants {
            http: HttpPolicy {
                allowed: self
                    .grants
                    .http
                    .iter()
                    .filter_map(|r| HostRule::from_str(r).ok())
                    .collect(),
                tls: self.grants.tls.clone(),
            },
            dirs: self
                .grants
                .dirs
                .iter()
                .map(|d| DirGrant {
                    host: d.host.clone(),
                    guest: d.guest.clone(),
                    read_only: d.read_only,
                    flush: d.flush && !d.read_only,
                })
                .collect(),
            tcp: self.grants.tcp.clone(),
        }
    }

    /// The world config asks for (checked at load).
    pub fn world(&self) -> Option<World> {
        self.world.as_deref().and_then(|w| World::from_str(w).ok())
    }

    /// What the plugin host loads, with `config` already resolved (see
    /// `PluginConfig::resolve` for `op://` values).
    pub fn spec(&self, config: PluginConfig) -> PluginSpec {
        PluginSpec {
            name: self.name.clone(),
            source: match &self.source {
                SourceSetting::Builtin { builtin } => PluginSource::Builtin(builtin.clone()),
                SourceSetting::File { path, sha256 } => PluginSource::File {
                    path: path.clone(),
                    sha256: sha256.clone(),
                },
            },
            world: self.world(),
            config,
            limits: self.limits(),
            grants: self.grants(),
        }
    }
}

/// `[plugins.NAME]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugin {
    builtin: Option<String>,
    path: Option<RelativePathBuf>,
    sha256: Option<String>,
    world: Option<String>,
    /// Strings, numbers and booleans; handed to the plugin as text.
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: LimitSettings,
    #[serde(default)]
    grants: RawGrants,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawGrants {
    dirs: Vec<RawDir>,
    http: Vec<String>,
    tcp: Vec<SocketAddr>,
    tls_ca: Vec<RelativePathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: RelativePathBuf,
    #[serde(default = "root")]
    guest: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default = "flush_by_default")]
    flush: bool,
}

fn root() -> String {
    "/".to_owned()
}

fn flush_by_default() -> bool {
    true
}

/// A plugin's config as the text the plugin reads: `8` is `"8"`, `true` is `"true"`. A table or an
/// array is refused, naming the key and what was found.
fn scalar_config(
    raw: &BTreeMap<String, toml::Value>,
) -> Result<BTreeMap<String, String>, (String, &'static str)> {
    raw.iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                toml::Value::Array(_) => return Err((key.clone(), "an array")),
                toml::Value::Table(_) => return Err((key.clone(), "a table")),
            };
            Ok((key.clone(), text))
        })
        .collect()
}

/// Checks every `[plugins.NAME]`; all problems are reported together.
/// The plugin instance `name` for a job that needs a `world` plugin, or why it cannot be used:
/// unknown (the message lists the configured instances) or a plugin of another world. `noun`
/// names the world in the message: "a destination", "a rotator", "an audit-sink".
pub(crate) fn find_for<'a>(
    plugins: &'a [PluginSettings],
    name: &str,
    world: &str,
    noun: &str,
) -> Result<&'a PluginSettings, String> {
    match plugins.iter().find(|p| p.name == name) {
        None => {
            let known: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            Err(format!("unknown plugin {name:?} (configured: {known})"))
        }
        Some(p) if p.world.as_deref().is_some_and(|w| w != world) => Err(format!(
            "plugin {name:?} is a {} plugin, not {noun}",
            p.world.as_deref().unwrap_or_default()
        )),
        Some(p) => Ok(p),
    }
}

pub(crate) fn resolve(
    raw: BTreeMap<String, RawPlugin>,
    figment: &Figment,
) -> Result<Vec<PluginSettings>, ConfigError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, p) in raw {
        let key = |k: &str| format!("plugins.{name}.{k}");
        let mut bad =
            |k: &str, msg: String| errors.push(ConfigError::invalid(figment, &key(k), msg));
        if !valid_name(&name) {
            bad(
                "",
                "a plugin name is letters, digits, '-' and '_'".to_owned(),
            );
            continue;
        }
        let source = match (p.builtin, p.path, p.sha256) {
            (Some(b), None, None) => {
                if !crate::plugin::BUILTINS.iter().any(|x| x.name == b) {
                    let known: Vec<&str> = crate::plugin::BUILTINS.iter().map(|x| x.name).collect();
                    bad(
                        "builtin",
                        format!(
                            "unknown built-in plugin {b:?} (built in: {})",
                            known.join(", ")
                        ),
                    );
                    continue;
                }
                SourceSetting::Builtin { builtin: b }
            }
            (None, Some(path), Some(sha)) => {
                if sha.len() != 64 || !sha.bytes().all(|c| c.is_ascii_hexdigit()) {
                    bad("sha256", "expected 64 hexadecimal digits".to_owned());
                    continue;
                }
                SourceSetting::File {
                    path: path.relative(),
                    sha256: sha.to_ascii_lowercase(),
                }
            }
            (None, Some(_), None) => {
                bad(
                    "sha256",
                    "a plugin loaded by path needs its sha256 pinned".to_owned(),
                );
                continue;
            }
            (None, None, _) => {
                bad(
                    "builtin",
                    "set `builtin = \"NAME\"` or `path` and `sha256`".to_owned(),
                );
                continue;
            }
            (Some(_), _, _) => {
                bad(
                    "path",
                    "set either `builtin` or `path`, not both".to_owned(),
                );
                continue;
            }
        };
        if let Some(w) = &p.world
            && World::from_str(w).is_err()
        {
            bad(
                "world",
                format!("unknown world {w:?} (expected destination, rotator or audit-sink)"),
            );
            continue;
        }
        let config = match scalar_config(&p.config) {
            Ok(config) => config,
            Err((key, found)) => {
                bad(
                    &format!("config.{key}"),
                    format!("expected a string, number or boolean, found {found}"),
                );
                continue;
            }
        };
        if let Some(k) = config
            .keys()
            .find(|k| k.starts_with(crate::plugin::RESERVED_CONFIG_PREFIX))
        {
            bad(
                &format!("config.{k}"),
                format!(
                    "keys starting with `{}` are reserved: the host sets them per call",
                    crate::plugin::RESERVED_CONFIG_PREFIX
                ),
            );
            continue;
        }
        let mut grant_errors = false;
        for (i, rule) in p.grants.http.iter().enumerate() {
            if let Err(e) = HostRule::from_str(rule) {
                bad(&format!("grants.http[{i}]"), e.to_string());
                grant_errors = true;
            }
        }
        if grant_errors {
            continue;
        }
        let tls_ca: Vec<PathBuf> = p.grants.tls_ca.iter().map(|f| f.relative()).collect();
        let tls = match tls_ca.is_empty() {
            true => None,
            false => match TlsTrust::load(&tls_ca) {
                Ok(trust) => Some(trust),
                Err(e) => {
                    bad("grants.tls_ca", e.to_string());
                    continue;
                }
            },
        };
        out.push(PluginSettings {
            name,
            source,
            world: p.world,
            config,
            limits: p.limits,
            grants: GrantSettings {
                dirs: p
                    .grants
                    .dirs
                    .into_iter()
                    .map(|d| DirSetting {
                        host: d.host.relative(),
                        guest: d.guest,
                        read_only: d.read_only,
                        flush: d.flush,
                    })
                    .collect(),
                http: p.grants.http,
                tcp: p.grants.tcp,
                tls_ca,
                tls,
            },
        });
    }
    match errors.len() {
        0 => Ok(out),
        1 => Err(errors.remove(0)),
        _ => Err(ConfigError::Several(errors)),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a plugin config key probably holds a secret (its value is then not shown).
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password", "key", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

fn redacted_map<S: serde::Serializer>(
    map: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(map.len()))?;
    for (k, v) in map {
        if secret_key(k) && !v.starts_with("op://") {
            m.serialize_entry(k, "<redacted>")?;
        } else {
            m.serialize_entry(k, v)?;
        }
    }
    m.end()
}
