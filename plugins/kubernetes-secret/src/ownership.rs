//! Whose a Secret is: the label and annotations that mark opsync's Secrets, and what they allow.

use opsync_destination_kit::{ChangeKind, ItemEvent, PluginError, permanent};
use serde_json::{Map, Value, json};

use crate::api::Stored;
use crate::describe;
use crate::settings::Settings;

/// The label that marks a Secret as opsync's, and its value.
pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(crate) const OPSYNC: &str = "opsync";
/// The annotations opsync sets on the Secrets it writes.
const ITEM_ID: &str = "opsync.io/item-id";
const VAULT_ID: &str = "opsync.io/vault-id";
const ITEM_VERSION: &str = "opsync.io/item-version";
const IDEMPOTENCY_KEY: &str = "opsync.io/idempotency-key";
/// Set by `on-delete = keep` on a Secret whose item left the route.
pub(crate) const ORPHANED: &str = "opsync.io/orphaned";

/// Whose a Secret is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// No opsync label.
    Unmanaged,
    /// opsync's, for another item (its id).
    Other(String),
    /// opsync's, for this item (or without an item id).
    Ours,
}

pub(crate) fn owner(stored: &Stored, item_id: &str) -> Owner {
    if stored.label(MANAGED_BY) != Some(OPSYNC) {
        return Owner::Unmanaged;
    }
    match stored.annotation(ITEM_ID) {
        Some(id) if id != item_id => Owner::Other(id.to_string()),
        _ => Owner::Ours,
    }
}

/// Whether opsync may write `stored` for `event`'s item.
pub(crate) fn check_owner(
    settings: &Settings,
    location: &str,
    stored: &Stored,
    event: &ItemEvent,
) -> Result<(), PluginError> {
    match owner(stored, &event.item.id) {
        Owner::Ours => Ok(()),
        Owner::Unmanaged if settings.adopt => Ok(()),
        Owner::Unmanaged => Err(permanent(format!(
            "Secret {location} exists and is not managed by opsync (no label \
             {MANAGED_BY}={OPSYNC}); set `adopt = true` to take it over"
        ))),
        Owner::Other(id) => {
            let orphaned = if stored.annotation(ORPHANED).is_some() {
                " (orphaned: that item left the route; delete the Secret to free the name)"
            } else {
                ""
            };
            Err(permanent(format!(
                "Secret {location} is managed by opsync for item {id}, not for {}{orphaned}: two \
                 items render to the same name; change `name`",
                describe(event)
            )))
        }
    }
}

/// Whether `stored` already holds what `event` would write: opsync's for this item, marked with
/// this version, not orphaned, with this type and data. A `repaired` change writes anyway.
pub(crate) fn holds(
    stored: &Stored,
    event: &ItemEvent,
    secret_type: &str,
    data: &Map<String, Value>,
) -> bool {
    event.kind != ChangeKind::Repaired
        && owner(stored, &event.item.id) == Owner::Ours
        && stored.annotation(ITEM_VERSION) == Some(event.item.version.to_string().as_str())
        && stored.annotation(ORPHANED).is_none()
        && stored.secret_type == secret_type
        && stored.data == *data
}

/// Whether the last write of `stored` was `event` itself (a retry or a replay of it): whether the
/// workloads were restarted after that write is unknown, so they are restarted again.
pub(crate) fn written_by(stored: &Stored, event: &ItemEvent) -> bool {
    owner(stored, &event.item.id) == Owner::Ours
        && stored.annotation(IDEMPOTENCY_KEY) == Some(event.idempotency_key.as_str())
}

/// The Secret a server-side apply sends: the whole object opsync manages.
pub(crate) fn apply_body(
    namespace: &str,
    name: &str,
    event: &ItemEvent,
    secret_type: &str,
    data: &Map<String, Value>,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { MANAGED_BY: OPSYNC },
            "annotations": {
                ITEM_ID: event.item.id,
                VAULT_ID: event.vault.id,
                ITEM_VERSION: event.item.version.to_string(),
                IDEMPOTENCY_KEY: event.idempotency_key,
            },
        },
        "type": secret_type,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{self, FieldMap, OPAQUE, TLS, Values};
    use crate::settings::{DEFAULT_NAME, DEFAULT_SERVER, OnDelete, Shape, Token};
    use opsync_destination_kit::http::Endpoint;
    use opsync_destination_kit::naming::Naming;
    use opsync_destination_kit::template::Template;
    use opsync_destination_kit::testing::event;

    fn data() -> Map<String, Value> {
        render::encode(&Values::from([(
            "password".to_string(),
            "hunter2".to_string(),
        )]))
    }

    /// The Secret as the API answers the apply of `event`.
    fn stored_for(event: &ItemEvent) -> Stored {
        let mut secret = apply_body("prod", "orders-db", event, OPAQUE, &data());
        secret["metadata"]["resourceVersion"] = json!("7");
        Stored::from_json(&secret)
    }

    #[test]
    fn the_apply_body_carries_the_marker_and_the_annotations() {
        let body = apply_body(
            "prod",
            "orders-db",
            &event(ChangeKind::Updated),
            OPAQUE,
            &data(),
        );
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "orders-db",
                    "namespace": "prod",
                    "labels": {"app.kubernetes.io/managed-by": "opsync"},
                    "annotations": {
                        "opsync.io/item-id": "itm1",
                        "opsync.io/vault-id": "vlt1",
                        "opsync.io/item-version": "3",
                        "opsync.io/idempotency-key": "route:itm1:3:updated",
                    },
                },
                "type": "Opaque",
                "data": {"password": "aHVudGVyMg=="},
            })
        );
        assert!(body.get("stringData").is_none());
    }

    #[test]
    fn ownership_follows_the_label_and_the_item_id() {
        let e = event(ChangeKind::Updated);
        let ours = stored_for(&e);
        assert_eq!(owner(&ours, "itm1"), Owner::Ours);
        assert_eq!(owner(&ours, "itm2"), Owner::Other("itm1".into()));
        let mut unlabelled = ours.clone();
        unlabelled.labels.clear();
        assert_eq!(owner(&unlabelled, "itm1"), Owner::Unmanaged);
        let mut other_manager = ours.clone();
        other_manager
            .labels
            .insert(MANAGED_BY.into(), json!("helm"));
        assert_eq!(owner(&other_manager, "itm1"), Owner::Unmanaged);
    }

    #[test]
    fn a_secret_holds_an_event_only_with_its_version_data_and_type() {
        let e = event(ChangeKind::Updated);
        let stored = stored_for(&e);
        assert!(holds(&stored, &e, OPAQUE, &data()));
        assert!(written_by(&stored, &e));
        // A repair writes even so.
        assert!(!holds(
            &stored,
            &event(ChangeKind::Repaired),
            OPAQUE,
            &data()
        ));
        // Another version, other data, another type, orphaned, not ours: write.
        let mut newer = event(ChangeKind::Updated);
        newer.item.version = 4;
        newer.idempotency_key = "route:itm1:4:updated".into();
        assert!(!holds(&stored, &newer, OPAQUE, &data()));
        assert!(!written_by(&stored, &newer));
        assert!(!holds(&stored, &e, OPAQUE, &Map::new()));
        assert!(!holds(&stored, &e, TLS, &data()));
        let mut orphaned = stored.clone();
        orphaned.annotations.insert(ORPHANED.into(), json!("true"));
        assert!(!holds(&orphaned, &e, OPAQUE, &data()));
        let mut adopted = stored.clone();
        adopted.labels.clear();
        assert!(!holds(&adopted, &e, OPAQUE, &data()));
        assert!(!written_by(&adopted, &e));
    }

    fn settings(adopt: bool) -> Settings {
        Settings {
            server: Endpoint::parse("server", DEFAULT_SERVER).expect("valid"),
            token: Token::Config,
            namespace: "prod".into(),
            name: Naming::Own(Template::parse("name", DEFAULT_NAME).expect("valid")),
            name_text: DEFAULT_NAME.into(),
            shape: Shape::Opaque(FieldMap::default()),
            adopt,
            force: false,
            on_delete: OnDelete::Delete,
            restart: Vec::new(),
        }
    }

    #[test]
    fn only_opsyncs_secret_for_the_item_or_an_adopted_one_is_written() {
        let e = event(ChangeKind::Updated);
        let ours = stored_for(&e);
        assert!(check_owner(&settings(false), "prod/orders-db", &ours, &e).is_ok());
        let mut unmanaged = ours.clone();
        unmanaged.labels.clear();
        let err =
            check_owner(&settings(false), "prod/orders-db", &unmanaged, &e).expect_err("not ours");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("prod/orders-db") && m.contains("`adopt = true`")),
            "{err:?}"
        );
        assert!(check_owner(&settings(true), "prod/orders-db", &unmanaged, &e).is_ok());
        // Another item's, even with adopt: both items are named.
        let mut other = event(ChangeKind::Updated);
        other.item.id = "itm2".into();
        let err = check_owner(&settings(true), "prod/orders-db", &ours, &other)
            .expect_err("another item's");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("itm1") && m.contains("itm2") && !m.contains("orphaned")),
            "{err:?}"
        );
        let mut orphaned = ours.clone();
        orphaned.annotations.insert(ORPHANED.into(), json!("true"));
        let err = check_owner(&settings(false), "prod/orders-db", &orphaned, &other)
            .expect_err("another item's");
        assert!(matches!(&err, PluginError::Permanent(m) if m.contains("orphaned")));
    }
}
