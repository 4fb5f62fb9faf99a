//! What the built-in audit sinks share: the bindings of the `audit-sink` world (generated once,
//! here), the record formats, config reading, timestamps, splitting batches by size and a small
//! wasi:http client.
//!
//! A sink crate implements [`Guest`] and exports it with
//! `opsync_audit_kit::export_audit_sink!(MySink);`.
//!
//! `settings`, `http` and `clock` are compiled from `destination-kit`'s source files against this
//! world's bindings: the code is the same, the generated `wasi:http` and `config` types are not
//! (each world's bindings are their own Rust types), so the two kits share the source, not a crate.

/// The generated bindings of the `audit-sink` world.
pub mod bindings {
    wit_bindgen::generate!({
        world: "audit-sink",
        path: "../../wit/0.1.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_audit_sink",
        default_bindings_module: "opsync_audit_kit::bindings",
    });
}

#[path = "../../destination-kit/src/clock.rs"]
pub mod clock;
pub mod format;
#[path = "../../destination-kit/src/http.rs"]
pub mod http;
#[path = "../../destination-kit/src/settings.rs"]
pub mod settings;
pub mod split;
pub mod timestamp;

pub use bindings::opsync::plugin::config;
pub use bindings::opsync::plugin::log;
pub use bindings::opsync::plugin::secrets::Secret;
pub use bindings::opsync::plugin::types::{AuditActor, AuditEvent, AuditResource};
pub use bindings::{Guest, PluginError, export_audit_sink};

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

/// Sleeps `ms` milliseconds (a `wasi:clocks` poll: the plugin's CPU budget is not spent).
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}
