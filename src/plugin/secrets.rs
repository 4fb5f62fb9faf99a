//! The `secrets` capability: secret values as opaque handles in the store's resource table,
//! revealed one by one (each reveal counted per plugin and field, and logged without the value),
//! and the redactor that keeps revealed values out of the plugin's log output and errors.

use std::borrow::Cow;
use std::sync::Arc;

use crate::connect::model::SecretString;
use crate::plugin::limits::Limits;

/// The name prefix of secrets that come from the plugin's config (`config:KEY`).
pub const CONFIG_PREFIX: &str = "config:";

/// Text put where a revealed value stood.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not redacted: replacing every `a` in a log line hides nothing and
/// ruins the line. Such values are too short to be credentials worth the name.
pub const MIN_REDACTED_LEN: usize = 3;

/// One secret value held by the host for a guest handle.
pub struct SecretValue {
    /// Safe to log: `vault/item/field` or `config:key`.
    name: String,
    /// Short name for the metric label (the field's label or the config key), never an id list.
    field: String,
    value: SecretString,
}

impl SecretValue {
    /// A value from an item field or from config.
    pub fn new(name: impl Into<String>, field: impl Into<String>, value: SecretString) -> Self {
        Self {
            name: name.into(),
            field: field.into(),
            value,
        }
    }

    /// What the secret is, safe to log.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.value.expose().len()
    }

    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The value, for the host's own use (taking back a value a plugin made).
    pub fn into_value(self) -> SecretString {
        self.value
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("value", &REDACTED)
            .finish()
    }
}

/// The per-call secrets state: which values the plugin has seen, for redaction.
pub struct Secrets {
    plugin: Arc<str>,
    revealed: Vec<String>,
    /// Config secrets whose reveal was logged in this call.
    config_logged: Vec<String>,
    /// Reveals in this call.
    pub reveals: u32,
    made: Made,
    /// Set once the plugin passed its bound on made secrets; the call is then stopped.
    pub over_limit: bool,
}

/// What the plugin made with the `secret` constructor in this call, against its bound.
struct Made {
    bytes: usize,
    count: usize,
    max_bytes: usize,
    max_count: usize,
}

/// A plugin passed more to the `secret` constructor than one call may hold.
#[derive(Debug, thiserror::Error)]
#[error(
    "secret limit: the plugin made {count} secrets of {bytes} bytes in one call, past its limit \
     of {max_count} secrets or {max_bytes} bytes"
)]
pub struct SecretLimit {
    pub count: usize,
    pub bytes: usize,
    pub max_count: usize,
    pub max_bytes: usize,
}

impl Secrets {
    pub fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        Self {
            plugin,
            revealed: Vec::new(),
            config_logged: Vec::new(),
            reveals: 0,
            made: Made {
                bytes: 0,
                count: 0,
                max_bytes: limits.secret_bytes_per_call,
                max_count: limits.secrets_per_call,
            },
            over_limit: false,
        }
    }

    /// Takes a value the plugin made into the redaction set, within the call's bound on the
    /// count and bytes of made secrets: past it, the value is refused and the call is stopped.
    pub fn make(&mut self, value: &str) -> Result<(), SecretLimit> {
        let made = &mut self.made;
        made.count += 1;
        made.bytes = made.bytes.saturating_add(value.len());
        if made.count > made.max_count || made.bytes > made.max_bytes {
            self.over_limit = true;
            return Err(SecretLimit {
                count: made.count,
                bytes: made.bytes,
                max_count: made.max_count,
                max_bytes: made.max_bytes,
            });
        }
        self.remember(value);
        Ok(())
    }

    /// Records a reveal (metric and log line, never the value) and returns the value.
    pub fn reveal(&mut self, secret: &SecretValue) -> String {
        self.reveals += 1;
        metrics::counter!(
            "opsync_plugin_secret_reveals_total",
            "plugin" => self.plugin.to_string(),
            "field" => secret.field.clone(),
        )
        .increment(1);
        // A config secret (a credential of the plugin's own) is worth an INFO line, once per call;
        // item fields are revealed on every delivery, so they log at DEBUG (the metric counts all).
        if secret.name.starts_with(CONFIG_PREFIX) {
            if !self.config_logged.contains(&secret.name) {
                self.config_logged.push(secret.name.clone());
                tracing::info!(plugin = %self.plugin, secret = %secret.name, "plugin revealed a secret");
            }
        } else {
            tracing::debug!(plugin = %self.plugin, secret = %secret.name, "plugin revealed a secret");
        }
        let value = secret.value.expose().to_string();
        self.remember(&value);
        value
    }

    /// Adds a value the plugin knows (revealed, or made by the plugin) to the redaction set.
    pub fn remember(&mut self, value: &str) {
        if value.len() >= MIN_REDACTED_LEN && !self.revealed.iter().any(|v| v == value) {
            self.revealed.push(value.to_string());
            // Longest first, so a value that contains another is replaced whole.
            self.revealed.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every value the plugin has seen replaced by [`REDACTED`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.revealed {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), REDACTED));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revealed_values_are_redacted_longest_first() {
        let mut s = Secrets::new("p".into(), &Limits::default());
        s.remember("hunter2");
        s.remember("hunter2-extra");
        s.remember("ab");
        assert_eq!(
            s.redact("a hunter2-extra and hunter2 and ab"),
            "a [REDACTED] and [REDACTED] and ab"
        );
    }

    #[test]
    fn reveal_returns_the_value_and_remembers_it() {
        let mut s = Secrets::new("p".into(), &Limits::default());
        let v = SecretValue::new("v/i/password", "password", SecretString::new("s3cr3t!"));
        assert_eq!(s.reveal(&v), "s3cr3t!");
        assert_eq!(s.reveals, 1);
        assert_eq!(s.redact("pw=s3cr3t!"), "pw=[REDACTED]");
        assert!(!format!("{v:?}").contains("s3cr3t"));
    }

    #[test]
    fn made_secrets_are_bounded_in_count_and_bytes() {
        let limits = Limits {
            secrets_per_call: 2,
            secret_bytes_per_call: 10,
            ..Limits::default()
        };
        let mut s = Secrets::new("p".into(), &limits);
        assert!(s.make("abcd").is_ok());
        assert!(s.make("efgh").is_ok());
        assert!(s.make("ij").is_err());
        assert!(s.over_limit);
        let mut s = Secrets::new("p".into(), &limits);
        assert!(s.make("abcdefghijk").is_err());
        assert_eq!(
            s.redact("abcdefghijk"),
            "abcdefghijk",
            "a refused value is not kept"
        );
    }
}
