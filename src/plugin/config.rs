//! The `config` capability: a plugin instance's operator-set config, with values written
//! `op://vault/item/[section/]field` resolved from 1Password by the host and handed to the plugin
//! only as secret handles.

use std::collections::BTreeMap;
use std::fmt;

use crate::connect::model::SecretString;
pub use crate::connect::reference::{ReferenceError, ReferenceResolver, SecretReference};
use crate::plugin::secrets::SecretValue;

/// One config value.
#[derive(Clone, PartialEq, Eq)]
pub enum ConfigValue {
    Plain(String),
    /// A resolved reference: the plugin gets it only through `get-secret`.
    Secret {
        reference: SecretReference,
        value: SecretString,
    },
}

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(v) => f.debug_tuple("Plain").field(v).finish(),
            Self::Secret { reference, .. } => f
                .debug_struct("Secret")
                .field("reference", &reference.to_string())
                .finish_non_exhaustive(),
        }
    }
}

/// Why a plugin's config could not be prepared.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PluginConfigError {
    #[error("config key `{key}`: {source}")]
    BadReference {
        key: String,
        #[source]
        source: ReferenceError,
    },
    #[error("config key `{key}`: cannot resolve `{reference}`: {reason}")]
    Unresolved {
        key: String,
        reference: String,
        reason: String,
    },
    #[error("config key `{key}` holds the reference `{reference}`, and no resolver was given")]
    NoResolver { key: String, reference: String },
}

/// The effective config of one plugin instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginConfig {
    values: BTreeMap<String, ConfigValue>,
}

impl PluginConfig {
    /// Config without references; an `op://` value is refused.
    pub fn plain(raw: BTreeMap<String, String>) -> Result<Self, PluginConfigError> {
        if let Some((key, reference)) = raw.iter().find(|(_, v)| v.starts_with("op://")) {
            return Err(PluginConfigError::NoResolver {
                key: key.clone(),
                reference: reference.clone(),
            });
        }
        Ok(Self {
            values: raw
                .into_iter()
                .map(|(k, v)| (k, ConfigValue::Plain(v)))
                .collect(),
        })
    }

    /// Config with every `op://` value resolved through `resolver`.
    pub async fn resolve(
        raw: BTreeMap<String, String>,
        resolver: &impl ReferenceResolver,
    ) -> Result<Self, PluginConfigError> {
        let mut values = BTreeMap::new();
        for (key, value) in raw {
            if !value.starts_with("op://") {
                values.insert(key, ConfigValue::Plain(value));
                continue;
            }
            let reference: SecretReference =
                value
                    .parse()
                    .map_err(|source| PluginConfigError::BadReference {
                        key: key.clone(),
                        source,
                    })?;
            let secret = resolver.resolve(&reference).await.map_err(|reason| {
                PluginConfigError::Unresolved {
                    key: key.clone(),
                    reference: reference.to_string(),
                    reason,
                }
            })?;
            values.insert(
                key,
                ConfigValue::Secret {
                    reference,
                    value: secret,
                },
            );
        }
        Ok(Self { values })
    }

    /// A plain value; none for unset keys and for secrets.
    pub fn get(&self, key: &str) -> Option<&str> {
        match self.values.get(key)? {
            ConfigValue::Plain(v) => Some(v),
            ConfigValue::Secret { .. } => None,
        }
    }

    /// Any value as a secret handle's content.
    pub fn get_secret(&self, key: &str) -> Option<SecretValue> {
        let name = format!("{}{key}", crate::plugin::secrets::CONFIG_PREFIX);
        Some(match self.values.get(key)? {
            ConfigValue::Plain(v) => SecretValue::new(name, key, SecretString::new(v.clone())),
            ConfigValue::Secret { value, .. } => SecretValue::new(name, key, value.clone()),
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl ReferenceResolver for Fixed {
        async fn resolve(&self, r: &SecretReference) -> Result<SecretString, String> {
            match r.field.as_str() {
                "token" => Ok(SecretString::new("t0ken-value")),
                _ => Err(format!("no field `{}`", r.field)),
            }
        }
    }

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_parse_with_and_without_a_section() {
        let r: SecretReference = "op://Prod/db/password".parse().expect("valid");
        assert_eq!((r.vault.as_str(), r.section.as_deref()), ("Prod", None));
        let r: SecretReference = "op://Prod/db/admin/password".parse().expect("valid");
        assert_eq!(r.section.as_deref(), Some("admin"));
        assert_eq!(r.to_string(), "op://Prod/db/admin/password");
        for bad in ["op://a/b", "op://a//c", "op://a/b/c/d/e", "http://a/b/c"] {
            assert!(bad.parse::<SecretReference>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn resolved_references_are_secrets_only() {
        let config = PluginConfig::resolve(
            raw(&[("region", "eu-west-1"), ("token", "op://v/i/token")]),
            &Fixed,
        )
        .await
        .expect("resolves");
        assert_eq!(config.get("region"), Some("eu-west-1"));
        assert_eq!(config.get("token"), None);
        assert!(config.get_secret("token").is_some());
        assert!(config.get_secret("region").is_some());
        assert!(!format!("{config:?}").contains("t0ken-value"));
        assert_eq!(config.keys().collect::<Vec<_>>(), ["region", "token"]);
    }

    #[tokio::test]
    async fn an_unresolvable_reference_names_the_key() {
        let err = PluginConfig::resolve(raw(&[("key", "op://v/i/nope")]), &Fixed)
            .await
            .expect_err("unresolvable");
        assert!(err.to_string().contains("config key `key`"), "{err}");
        assert!(PluginConfig::plain(raw(&[("k", "op://v/i/f")])).is_err());
    }
}
