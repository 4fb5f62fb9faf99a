//! What the host hands plugins and gets back, independent of the ABI version: item events,
//! receipts, rotations, audit records. Items are the Connect model's own type.

use crate::connect::model::{ApiRequest, Item, SecretString};
pub use crate::domain::{ChangeKind, VaultRef};

/// One audit record, for an audit sink: the common fields (an activity record's own, or what
/// the Events API source mapped), the log it comes from, and an Events API record whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub request: ApiRequest,
    /// `activity`, or an Events API stream (`auditevents`, `itemusages`, `signinattempts`).
    pub source: String,
    /// The Events API record as the API returned it (JSON); `None` for activity.
    pub detail: Option<String>,
}

impl From<ApiRequest> for AuditRecord {
    /// A record of Connect's activity log (or one of opsync's own events).
    fn from(request: ApiRequest) -> Self {
        Self {
            request,
            source: crate::store::ACTIVITY.to_owned(),
            detail: None,
        }
    }
}

/// One change of one item, for a destination plugin.
#[derive(Clone, Debug)]
pub struct ItemEvent {
    pub idempotency_key: String,
    pub kind: ChangeKind,
    pub vault: VaultRef,
    pub item: Item,
    /// The route's destination key for this item (its `name_template`, rendered). The plugin
    /// reads it as the reserved config key [`KEY_CONFIG`] during this call.
    pub destination_key: Option<String>,
    /// For the deletion of a renamed item's old key: the item's current key. The plugin reads it
    /// as the reserved config key [`RENAMED_TO_CONFIG`]; the item is still there under that key.
    pub renamed_to: Option<String>,
}

/// Reserved config key: the route-rendered destination key of the item in this call.
pub const KEY_CONFIG: &str = "opsync.key";
/// Reserved config key, set only on the deletion of a renamed item's old key: its new key.
pub const RENAMED_TO_CONFIG: &str = "opsync.renamed-to";
/// The prefix of reserved config keys; an operator's plugin config may not use it.
pub const RESERVED_CONFIG_PREFIX: &str = "opsync.";

impl ItemEvent {
    /// The per-call reserved config values this event gives its plugin.
    pub fn reserved_config(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(key) = &self.destination_key {
            out.push((KEY_CONFIG, key.clone()));
        }
        if let Some(key) = &self.renamed_to {
            out.push((RENAMED_TO_CONFIG, key.clone()));
        }
        out
    }
}

/// What a destination did with an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    pub location: String,
    pub destination_version: Option<String>,
    /// The destination already held this version; nothing was written.
    pub unchanged: bool,
    /// The keyed fingerprint of what is now at the key (ABI 0.2.0 plugins with read-back).
    pub fingerprint: Option<String>,
}

/// An item as `read-back` sees it: which item, at which key, which version; no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemRef {
    pub key: String,
    pub vault: VaultRef,
    pub id: String,
    pub title: String,
    pub category: String,
    pub tags: Vec<String>,
    pub version: u64,
}

/// What `read-back` found at a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The plugin cannot read its destination back (every ABI 0.1.0 plugin).
    Unsupported,
    Absent,
    /// Something is there, with this keyed fingerprint.
    Present(String),
}

/// A new value for one field of an item being rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewValue {
    /// Field id or label.
    pub field: String,
    pub value: SecretString,
}

/// One rotation of one item, as every step sees it.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub idempotency_key: String,
    pub vault: VaultRef,
    pub item: Item,
    pub pending: Vec<NewValue>,
}

/// The steps of a rotation, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationStep {
    Create,
    Set,
    Test,
    Finish,
}
