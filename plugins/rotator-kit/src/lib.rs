//! What the built-in rotators share: the bindings of the `rotator` world and finding the item's
//! fields and pending values a rotator works on.
//!
//! The world's imports (`log`, `config`, `secrets`, `types`, `wasi:http`) are `opsync-guest`'s
//! bindings, so its HTTP client, config readers and clock (re-exported here) serve rotators. A
//! rotator crate implements [`Guest`] and exports it with
//! `opsync_rotator_kit::export_rotator!(MyRotator);`.

/// The generated bindings of the `rotator` world: only its exports, the imports are
/// `opsync_guest::bindings`.
pub mod bindings {
    wit_bindgen::generate!({
        world: "rotator",
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
        export_macro_name: "export_rotator",
        default_bindings_module: "opsync_rotator_kit::bindings",
    });
}

pub mod fields;

pub use bindings::{Guest, export_rotator};
pub use opsync_guest::types::Retry;
pub use opsync_guest::types::{Field, Item, NewValue, Rotation};
pub use opsync_guest::{
    PluginError, Secret, clock, config, http, log, message, misconfigured, permanent, retryable,
    retryable_after, settings, with_retry_hint,
};

/// The suffix of the idempotency key of a rollback: the host's `set` that restores the item's
/// current values after a failed `test`.
pub const ROLLBACK_SUFFIX: &str = ":rollback";

/// Whether this `set` is the host's rollback to the item's current values.
pub fn is_rollback(rotation: &Rotation) -> bool {
    rotation.idempotency_key.ends_with(ROLLBACK_SUFFIX)
}
