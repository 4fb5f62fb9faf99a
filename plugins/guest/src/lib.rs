//! What every built-in plugin builds on, whatever its world: the bindings of the host interfaces
//! the worlds share (generated once, here), config reading, a small wasi:http client and the clock.
//!
//! The `destination`, `rotator` and `audit-sink` worlds of ABI `opsync:plugin@0.2.0` import the
//! same interfaces (`log`, `config`, `secrets`, `types` and `wasi:http`; destinations also
//! `fingerprint`). The world kits generate only their world's exports and hand wit-bindgen these
//! bindings for the imports (its `with` option), so every plugin shares one set of Rust types for
//! them, and [`settings`], [`http`] and [`clock`] are written once against them.

/// The generated bindings of the imports the plugin worlds share.
pub mod bindings {
    wit_bindgen::generate!({
        inline: "
            package opsync:guest;

            world imports {
                import opsync:plugin/log@0.2.0;
                import opsync:plugin/config@0.2.0;
                import opsync:plugin/secrets@0.2.0;
                import opsync:plugin/types@0.2.0;
                import opsync:plugin/fingerprint@0.2.0;
                import wasi:http/outgoing-handler@0.2.12;
            }
        ",
        path: "../../wit/0.2.0",
        generate_all,
    });
}

pub mod clock;
pub mod http;
pub mod settings;

use std::time::Duration;

pub use bindings::opsync::plugin::secrets::Secret;
pub use bindings::opsync::plugin::types::{PluginError, Retry};
pub use bindings::opsync::plugin::{config, fingerprint, log, types};

/// Shorthand for the three failure kinds.
pub fn misconfigured(msg: impl Into<String>) -> PluginError {
    PluginError::Misconfigured(msg.into())
}

pub fn permanent(msg: impl Into<String>) -> PluginError {
    PluginError::Permanent(msg.into())
}

/// A transient failure; the host retries it with its backoff.
pub fn retryable(msg: impl Into<String>) -> PluginError {
    PluginError::Retryable(Retry {
        message: msg.into(),
        after_ms: None,
    })
}

/// A transient failure the peer said to retry `after` (a `Retry-After`, a throttling hint).
pub fn retryable_after(msg: impl Into<String>, after: Duration) -> PluginError {
    PluginError::Retryable(Retry {
        message: msg.into(),
        after_ms: Some(duration_ms(after)),
    })
}

/// `error` with the retry hint `after` when it is retryable and has none yet; any other error, or
/// no hint, leaves it as it is.
pub fn with_retry_hint(error: PluginError, after: Option<Duration>) -> PluginError {
    match (error, after) {
        (
            PluginError::Retryable(Retry {
                message,
                after_ms: None,
            }),
            Some(after),
        ) => retryable_after(message, after),
        (error, _) => error,
    }
}

/// The message of an error, whatever its kind.
pub fn message(error: &PluginError) -> &str {
    match error {
        PluginError::Retryable(retry) => &retry.message,
        PluginError::Permanent(msg) | PluginError::Misconfigured(msg) => msg,
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_hints() {
        assert!(matches!(
            retryable("x"),
            PluginError::Retryable(Retry { message, after_ms: None }) if message == "x"
        ));
        let hinted = retryable_after("x", Duration::from_secs(2));
        assert!(matches!(
            &hinted,
            PluginError::Retryable(Retry {
                after_ms: Some(2000),
                ..
            })
        ));
        // A hint is added to a retryable error only, and never replaces one it has.
        let added = with_retry_hint(retryable("y"), Some(Duration::from_millis(5)));
        assert!(matches!(
            added,
            PluginError::Retryable(Retry {
                after_ms: Some(5),
                ..
            })
        ));
        let kept = with_retry_hint(hinted, Some(Duration::from_millis(5)));
        assert!(matches!(
            kept,
            PluginError::Retryable(Retry {
                after_ms: Some(2000),
                ..
            })
        ));
        assert!(matches!(
            with_retry_hint(permanent("z"), Some(Duration::from_secs(1))),
            PluginError::Permanent(m) if m == "z"
        ));
        assert_eq!(message(&misconfigured("m")), "m");
        assert_eq!(message(&retryable("r")), "r");
    }
}
