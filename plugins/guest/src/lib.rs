//! What every built-in plugin builds on, whatever its world: the bindings of the host interfaces
//! the worlds share (generated once, here), config reading, a small wasi:http client and the clock.
//!
//! The `destination`, `rotator` and `audit-sink` worlds import the same interfaces (`log`,
//! `config`, `secrets`, `types` and `wasi:http`). The world kits generate only their world's
//! exports and hand wit-bindgen these bindings for the imports (its `with` option), so every
//! plugin shares one set of Rust types for them, and [`settings`], [`http`] and [`clock`] are
//! written once against them.

/// The generated bindings of the imports the plugin worlds share.
pub mod bindings {
    wit_bindgen::generate!({
        inline: "
            package opsync:guest;

            world imports {
                import opsync:plugin/log@0.1.0;
                import opsync:plugin/config@0.1.0;
                import opsync:plugin/secrets@0.1.0;
                import opsync:plugin/types@0.1.0;
                import wasi:http/outgoing-handler@0.2.12;
            }
        ",
        path: "../../wit/0.1.0",
        generate_all,
    });
}

pub mod clock;
pub mod http;
pub mod settings;

pub use bindings::opsync::plugin::secrets::Secret;
pub use bindings::opsync::plugin::types::PluginError;
pub use bindings::opsync::plugin::{config, log, types};

/// Shorthand for the three failure kinds.
pub fn misconfigured(msg: impl Into<String>) -> PluginError {
    PluginError::Misconfigured(msg.into())
}

pub fn permanent(msg: impl Into<String>) -> PluginError {
    PluginError::Permanent(msg.into())
}

pub fn retryable(msg: impl Into<String>) -> PluginError {
    PluginError::Retryable(msg.into())
}
