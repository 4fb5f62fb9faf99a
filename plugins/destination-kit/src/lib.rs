//! What the built-in destination plugins share: the bindings of the `destination` world (generated
//! once, here), config reading, name templates, field selection and a small wasi:http client.
//!
//! A destination crate implements [`Guest`] and exports it with
//! `opsync_destination_kit::export_destination!(MyPlugin);`.

/// The generated bindings of the `destination` world.
pub mod bindings {
    wit_bindgen::generate!({
        world: "destination",
        path: "../../wit/0.1.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_destination",
        default_bindings_module: "opsync_destination_kit::bindings",
    });
}

pub mod clock;
pub mod http;
pub mod naming;
pub mod select;
pub mod settings;
pub mod template;

pub use bindings::opsync::plugin::config;
pub use bindings::opsync::plugin::log;
pub use bindings::opsync::plugin::secrets::Secret;
pub use bindings::opsync::plugin::types::{ChangeKind, Field, Item, VaultRef};
pub use bindings::{Guest, ItemEvent, PluginError, Receipt, export_destination};

/// A receipt for `location`.
pub fn receipt(location: String, destination_version: Option<String>, unchanged: bool) -> Receipt {
    Receipt {
        location,
        destination_version,
        unchanged,
    }
}

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

/// The lower-case name of a change kind, as used in payloads and logs.
pub fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Rotated => "rotated",
    }
}
