//! What the built-in destination plugins share: the exports of the `destination` world (its
//! imports are `opsync-guest`'s bindings), name templates and field selection; config reading,
//! the clock and the wasi:http client are `opsync-guest`'s, re-exported here.
//!
//! A destination crate implements [`Guest`] and exports it with
//! `opsync_destination_kit::export_destination!(MyPlugin);`.

/// The generated bindings of the `destination` world: only its exports, the imports are
/// `opsync_guest::bindings`.
pub mod bindings {
    wit_bindgen::generate!({
        world: "destination",
        path: "../../wit/0.1.0",
        with: {
            "opsync:plugin/secrets@0.1.0": opsync_guest::bindings::opsync::plugin::secrets,
            "opsync:plugin/types@0.1.0": opsync_guest::bindings::opsync::plugin::types,
            "opsync:plugin/log@0.1.0": opsync_guest::bindings::opsync::plugin::log,
            "opsync:plugin/config@0.1.0": opsync_guest::bindings::opsync::plugin::config,
            "wasi:http/types@0.2.12": opsync_guest::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": opsync_guest::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": opsync_guest::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": opsync_guest::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": opsync_guest::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": opsync_guest::bindings::wasi::clocks::monotonic_clock,
        },
        pub_export_macro: true,
        export_macro_name: "export_destination",
        default_bindings_module: "opsync_destination_kit::bindings",
    });
}

pub mod naming;
pub mod select;
pub mod template;

pub use bindings::{Guest, ItemEvent, Receipt, export_destination};
pub use opsync_guest::types::{ChangeKind, Field, Item, VaultRef};
pub use opsync_guest::{
    PluginError, Secret, clock, config, http, log, misconfigured, permanent, retryable, settings,
};

/// A receipt for `location`.
pub fn receipt(location: String, destination_version: Option<String>, unchanged: bool) -> Receipt {
    Receipt {
        location,
        destination_version,
        unchanged,
    }
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
