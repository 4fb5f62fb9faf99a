//! Reading a plugin's config: unknown keys refused, choices, flags, numbers, required values,
//! secrets and endpoints, each failing as `misconfigured` with a message naming the key.

use std::sync::OnceLock;

use crate::{PluginError, Secret, config, misconfigured};

/// Refuses any config key not in `known`.
pub fn check_keys(known: &[&str]) -> Result<(), PluginError> {
    for key in keys() {
        if !known.contains(&key.as_str()) {
            return Err(misconfigured(format!(
                "unknown config key `{key}` (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// A value of `key`, which must be one of `options`; `default` when unset.
pub fn choice(
    key: &str,
    options: &[&'static str],
    default: &'static str,
) -> Result<&'static str, PluginError> {
    let Some(value) = plain(key)? else {
        return Ok(default);
    };
    options
        .iter()
        .find(|o| **o == value)
        .copied()
        .ok_or_else(|| {
            misconfigured(format!(
                "`{key}` is `{value}`, not one of {}",
                options.join(", ")
            ))
        })
}

/// A `true`/`false` value of `key`; `default` when unset.
pub fn flag(key: &str, default: bool) -> Result<bool, PluginError> {
    match plain(key)?.as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(misconfigured(format!(
            "`{key}` is `{other}`, not true or false"
        ))),
    }
}

/// A whole number in `range` for `key`; `default` when unset.
pub fn number(
    key: &str,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
) -> Result<u32, PluginError> {
    let Some(value) = plain(key)? else {
        return Ok(default);
    };
    value
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            misconfigured(format!(
                "`{key}` is `{value}`, not a whole number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

/// A plain (non-secret) value of `key`, if set. A key that holds a secret reference is refused:
/// its value would otherwise travel through places that are not meant for secrets.
pub fn plain(key: &str) -> Result<Option<String>, PluginError> {
    // A key the config does not have is not asked for: a plugin reads a dozen optional keys on
    // every call, and most are unset.
    if !is_set(key) {
        return Ok(None);
    }
    match config::get(key) {
        Some(value) => Ok(Some(value)),
        // Set, yet no plain value: a secret reference.
        None => Err(misconfigured(format!(
            "`{key}` must be a plain value, not a secret reference"
        ))),
    }
}

/// A plain value of `key` that must be set.
pub fn required(key: &str) -> Result<String, PluginError> {
    plain(key)?.ok_or_else(|| misconfigured(format!("`{key}` is required")))
}

/// `key` as a secret handle (a resolved `op://` reference or a plain value); it must be set and
/// not empty.
pub fn secret(key: &str) -> Result<Secret, PluginError> {
    let secret =
        config::get_secret(key).ok_or_else(|| misconfigured(format!("`{key}` is required")))?;
    if secret.len() == 0 {
        return Err(misconfigured(format!("`{key}` is empty")));
    }
    Ok(secret)
}

/// `key` as a secret handle, if set.
pub fn optional_secret(key: &str) -> Result<Option<Secret>, PluginError> {
    if is_set(key) {
        secret(key).map(Some)
    } else {
        Ok(None)
    }
}

/// A comma-separated list; empty when unset.
pub fn list(key: &str) -> Result<Vec<String>, PluginError> {
    Ok(plain(key)?
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default())
}

fn is_set(key: &str) -> bool {
    keys().iter().any(|k| k == key)
}

/// The config's keys, asked of the host once per instance. An instance serves one call and the
/// plugin's config does not change while it is loaded, so the list never goes stale.
fn keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(config::keys)
}
