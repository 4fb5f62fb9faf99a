//! What the built-in audit sinks share: the exports of the `audit-sink` world (its imports are
//! `opsync-guest`'s bindings), which log a record comes from (Connect's activity or an Events API
//! stream) and the Events API records it may carry, the record formats, timestamps and splitting
//! batches by size; config reading, the clock and the wasi:http client are `opsync-guest`'s,
//! re-exported here.
//!
//! A sink crate implements [`Guest`] and exports it with
//! `opsync_audit_kit::export_audit_sink!(MySink);`.

/// The generated bindings of the `audit-sink` world: only its exports, the imports are
/// `opsync_guest::bindings`.
pub mod bindings {
    wit_bindgen::generate!({
        world: "audit-sink",
        path: "../../wit/0.2.0",
        with: {
            "opsync:plugin/secrets@0.2.0": opsync_guest::bindings::opsync::plugin::secrets,
            "opsync:plugin/types@0.2.0": opsync_guest::bindings::opsync::plugin::types,
            "opsync:plugin/log@0.2.0": opsync_guest::bindings::opsync::plugin::log,
            "opsync:plugin/config@0.2.0": opsync_guest::bindings::opsync::plugin::config,
            "wasi:http/types@0.2.12": opsync_guest::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": opsync_guest::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": opsync_guest::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": opsync_guest::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": opsync_guest::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": opsync_guest::bindings::wasi::clocks::monotonic_clock,
        },
        pub_export_macro: true,
        export_macro_name: "export_audit_sink",
        default_bindings_module: "opsync_audit_kit::bindings",
    });
}

pub mod events;
pub mod format;
pub mod source;
pub mod split;
pub mod timestamp;

pub use bindings::{Guest, export_audit_sink};
pub use opsync_guest::types::Retry;
pub use opsync_guest::types::{AuditActor, AuditEvent, AuditResource};
pub use opsync_guest::{
    PluginError, Secret, clock, config, http, log, message, misconfigured, permanent, retryable,
    retryable_after, settings, with_retry_hint,
};

/// Sleeps `ms` milliseconds (a `wasi:clocks` poll: the plugin's CPU budget is not spent).
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}
