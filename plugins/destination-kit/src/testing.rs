//! A sample change for plugins' unit tests: version 3 of a login `Orders DB` in a vault `Prod`,
//! with no fields.

use crate::{ChangeKind, Item, ItemEvent, VaultRef};

/// A change of `kind` to the sample item.
pub fn event(kind: ChangeKind) -> ItemEvent {
    ItemEvent {
        idempotency_key: "route:itm1:3:updated".into(),
        kind,
        vault: VaultRef {
            id: "vlt1".into(),
            name: "Prod".into(),
        },
        item: Item {
            id: "itm1".into(),
            title: "Orders DB".into(),
            category: "LOGIN".into(),
            tags: vec![],
            version: 3,
            urls: vec![],
            updated_at: None,
            fields: vec![],
            files: vec![],
        },
        key: "Prod/Orders DB".into(),
        renamed_to: None,
    }
}
