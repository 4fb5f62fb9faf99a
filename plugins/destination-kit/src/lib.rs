//! What the built-in destination plugins share: the exports of the `destination` world (its
//! imports are `opsync-guest`'s bindings), name templates and field selection; config reading,
//! the clock, fingerprints and the wasi:http client are `opsync-guest`'s, re-exported here.
//!
//! A destination crate implements [`Destination`] (`validate` and `deliver`; `deliver_batch`
//! and `read_back` have defaults) and exports it with
//! `opsync_destination_kit::export_destination!(MyPlugin);`.

/// The generated bindings of the `destination` world: only its exports, the imports are
/// `opsync_guest::bindings`. (`read-back`'s canonical-ABI entry point takes the `item-ref`
/// flattened, fifteen arguments.)
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "destination",
        path: "../../wit/0.2.0",
        with: {
            "opsync:plugin/secrets@0.2.0": opsync_guest::bindings::opsync::plugin::secrets,
            "opsync:plugin/types@0.2.0": opsync_guest::bindings::opsync::plugin::types,
            "opsync:plugin/log@0.2.0": opsync_guest::bindings::opsync::plugin::log,
            "opsync:plugin/config@0.2.0": opsync_guest::bindings::opsync::plugin::config,
            "opsync:plugin/fingerprint@0.2.0": opsync_guest::bindings::opsync::plugin::fingerprint,
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

pub mod canonical;
pub mod naming;
pub mod select;
pub mod template;
pub mod testing;

pub use bindings::{Guest, ItemEvent, Receipt, export_destination};
pub use opsync_guest::types::{ChangeKind, Field, Found, Item, ItemFile, ItemRef, Retry, VaultRef};
pub use opsync_guest::{
    PluginError, Secret, clock, config, fingerprint, http, log, message, misconfigured, permanent,
    retryable, retryable_after, settings, with_retry_hint,
};
pub use template::Named;

/// A destination plugin. The kit implements the world's exports ([`Guest`]) for every
/// `Destination`, so a plugin implements this and exports it with `export_destination!`.
pub trait Destination {
    /// Checks the config (keys, values, grants) without side effects.
    fn validate() -> Result<(), PluginError>;

    /// Applies one item change at the destination.
    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError>;

    /// Applies a batch of changes of one route: a result per event, in order. The default
    /// delivers them one after the other with [`Destination::deliver`].
    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        events.into_iter().map(Self::deliver).collect()
    }

    /// What is at the item's key now, as a fingerprint ([`fingerprint::digest`] over what is
    /// stored, the same way `deliver` fingerprints what it writes). The default: the destination
    /// cannot be read back.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let _ = item;
        Ok(Found::Unsupported)
    }
}

impl<T: Destination> Guest for T {
    fn validate() -> Result<(), PluginError> {
        <T as Destination>::validate()
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        <T as Destination>::deliver(event)
    }

    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        <T as Destination>::deliver_batch(events)
    }

    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        <T as Destination>::read_back(item)
    }
}

/// Delivers `events` in order with `deliver`, after `setup` (config, credentials) made once for
/// all of them; when `setup` fails, every event fails with its error. For a destination's
/// `deliver_batch` that should read its config and reveal its credentials once per batch.
pub fn deliver_each<S>(
    events: Vec<ItemEvent>,
    setup: impl FnOnce() -> Result<S, PluginError>,
    mut deliver: impl FnMut(&S, ItemEvent) -> Result<Receipt, PluginError>,
) -> Vec<Result<Receipt, PluginError>> {
    if events.is_empty() {
        return Vec::new();
    }
    match setup() {
        Ok(state) => events.into_iter().map(|e| deliver(&state, e)).collect(),
        Err(error) => events.iter().map(|_| Err(error.clone())).collect(),
    }
}

/// A receipt for `location`, without a fingerprint (a deletion, or a destination that cannot be
/// read back).
pub fn receipt(location: String, destination_version: Option<String>, unchanged: bool) -> Receipt {
    Receipt {
        location,
        destination_version,
        unchanged,
        fingerprint: None,
    }
}

/// A receipt for `location` with the fingerprint of what is now there (from
/// [`fingerprint::digest`], the same way `read_back` computes it).
pub fn receipt_with_fingerprint(
    location: String,
    destination_version: Option<String>,
    unchanged: bool,
    fingerprint: String,
) -> Receipt {
    Receipt {
        location,
        destination_version,
        unchanged,
        fingerprint: Some(fingerprint),
    }
}

/// The lower-case name of a change kind, as used in payloads and logs.
pub fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Rotated => "rotated",
        ChangeKind::Repaired => "repaired",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn event(id: &str) -> ItemEvent {
        ItemEvent {
            idempotency_key: format!("route:{id}:1:created"),
            kind: ChangeKind::Created,
            vault: VaultRef {
                id: "vlt1".into(),
                name: "Prod".into(),
            },
            item: Item {
                id: id.into(),
                title: id.into(),
                category: "LOGIN".into(),
                tags: vec![],
                version: 1,
                urls: vec![],
                updated_at: None,
                fields: vec![],
                files: vec![],
            },
            key: format!("Prod/{id}"),
            renamed_to: None,
        }
    }

    struct Echo;

    impl Destination for Echo {
        fn validate() -> Result<(), PluginError> {
            Ok(())
        }

        fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
            if event.item.id == "bad" {
                return Err(permanent("bad"));
            }
            Ok(receipt(event.key, None, false))
        }
    }

    #[test]
    fn the_default_batch_delivers_each_event_in_order_and_read_back_is_unsupported() {
        let results = <Echo as Guest>::deliver_batch(vec![event("a"), event("bad"), event("c")]);
        let locations: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map(|r| r.location.clone()).map_err(message))
            .collect();
        assert_eq!(
            locations,
            vec![
                Ok("Prod/a".to_string()),
                Err("bad"),
                Ok("Prod/c".to_string())
            ]
        );
        let item = ItemRef {
            key: "Prod/a".into(),
            vault: event("a").vault,
            id: "a".into(),
            title: "a".into(),
            category: "LOGIN".into(),
            tags: vec![],
            version: 1,
        };
        assert!(matches!(
            <Echo as Guest>::read_back(item),
            Ok(Found::Unsupported)
        ));
    }

    #[test]
    fn deliver_each_sets_up_once_and_shares_a_setup_failure() {
        let setups = Cell::new(0);
        let results = deliver_each(
            vec![event("a"), event("b")],
            || {
                setups.set(setups.get() + 1);
                Ok("state")
            },
            |state, e| Ok(receipt(format!("{state}:{}", e.key), None, false)),
        );
        assert_eq!(setups.get(), 1);
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[1].as_ref().map(|r| r.location.as_str()).ok(),
            Some("state:Prod/b")
        );
        let failed = deliver_each(
            vec![event("a"), event("b")],
            || Err::<(), _>(misconfigured("no")),
            |_, _| unreachable!(),
        );
        assert!(
            failed
                .iter()
                .all(|r| matches!(r, Err(PluginError::Misconfigured(m)) if m == "no"))
        );
        assert!(
            deliver_each(
                Vec::new(),
                || Err::<(), _>(misconfigured("x")),
                |_, _| unreachable!()
            )
            .is_empty()
        );
    }
}
