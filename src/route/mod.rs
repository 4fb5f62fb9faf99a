//! Routes: which items go to which destination plugin instances, under which name, with which
//! fields, and what happens when an item leaves.

mod glob;
mod template;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::connect::model::{Item, ItemState};
use crate::domain::VaultRef;

pub use glob::{Glob, GlobError};
pub use template::{DEFAULT_TEMPLATE, NameTemplate, PLACEHOLDERS, TemplateError};

/// Default share of a route's destination keys one cycle may delete.
pub const DEFAULT_MAX_DELETE_RATIO: f64 = 0.2;
/// Default concurrent deliveries per route.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default changes handed to a batching destination (ABI 0.2.0) in one call.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// One `[[route]]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    pub name: String,
    #[serde(flatten)]
    pub selector: Selector,
    /// Plugin instance names (`[plugins.NAME]`).
    pub destinations: Vec<String>,
    pub name_template: NameTemplate,
    #[serde(skip_serializing_if = "FieldSelection::is_all")]
    pub fields: FieldSelection,
    /// Whether the destinations receive the content of the item's files (one more Connect
    /// request per file, at each delivery of an item that has files); they always see the
    /// files' names and sizes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub files: bool,
    pub on_delete: OnDelete,
    /// Concurrent calls of its destinations (each a batch, or one change).
    pub concurrency: usize,
    /// Changes of one destination handed over in one call, for plugins that take batches.
    pub batch_size: usize,
    pub max_delete_ratio: f64,
    /// Whether and how often what the destinations hold is read back and compared.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftCheck>,
}

/// A route's drift checks: every `every`, each item a destination holds is read back (at most
/// `rate` per second) and compared with what was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DriftCheck {
    #[serde(rename = "drift_check", with = "crate::human_time::written")]
    pub every: std::time::Duration,
    #[serde(rename = "on_drift")]
    pub on_drift: OnDrift,
    #[serde(rename = "drift_rate")]
    pub rate: u32,
}

/// Default read-backs per second of a route's drift check.
pub const DEFAULT_DRIFT_RATE: u32 = 20;

/// What a route does about an item found drifted at a destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDrift {
    /// Deliver the current version again.
    Repair,
    /// Count it, log it and show it on the status page; change nothing.
    #[default]
    Report,
}

/// Which items a route takes. Every non-empty criterion must hold; an empty one takes all.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Selector {
    /// Vault names (case-insensitive) or ids; any of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vaults: Vec<String>,
    /// Tags the item must all carry; `a` also matches the nested tag `a/b`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// A glob the whole title must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Glob>,
    /// Categories (`LOGIN`, `DATABASE`, ...; case-insensitive); any of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl Selector {
    /// Whether the vault can hold items this selector takes (no listing needed otherwise).
    pub fn takes_vault(&self, vault: &VaultRef) -> bool {
        self.vaults.is_empty()
            || self
                .vaults
                .iter()
                .any(|v| *v == vault.id || v.eq_ignore_ascii_case(&vault.name) || v == &vault.name)
    }

    /// Whether `item` (a summary from a listing is enough) in `vault` is taken. Archived and
    /// deleted items never are.
    pub fn matches(&self, vault: &VaultRef, item: &Item) -> bool {
        if matches!(item.state, Some(ItemState::Archived | ItemState::Deleted)) {
            return false;
        }
        self.takes_vault(vault)
            && self.tags.iter().all(|want| {
                item.tags.iter().any(|have| {
                    have == want
                        || (have.len() > want.len()
                            && have.starts_with(want.as_str())
                            && have.as_bytes()[want.len()] == b'/')
                })
            })
            && self.title.as_ref().is_none_or(|g| g.matches(&item.title))
            && (self.categories.is_empty()
                || self
                    .categories
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(item.category.as_str())))
    }
}

/// Which fields of an item a route sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FieldSelection {
    #[default]
    All,
    /// Field labels (case-insensitive) or ids.
    Only(Vec<String>),
}

impl FieldSelection {
    pub fn is_all(&self) -> bool {
        matches!(self, FieldSelection::All)
    }

    /// Keeps only the selected fields (and the files, which are never selected by field).
    pub fn apply(&self, item: &mut Item) {
        let FieldSelection::Only(names) = self else {
            return;
        };
        if let Some(fields) = item.fields.as_mut() {
            fields.retain(|f| {
                names.iter().any(|n| {
                    *n == f.id
                        || f.label
                            .as_deref()
                            .is_some_and(|l| l.eq_ignore_ascii_case(n))
                })
            });
        }
    }
}

/// What a route does when an item leaves it (deleted, archived, no longer selected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDelete {
    /// Leave the destination's copy alone (the default: deleting is never implicit).
    #[default]
    Retain,
    /// Delete it at the destination, subject to `max_delete_ratio`.
    Delete,
}

impl Route {
    /// Whether the route takes `item` from `vault`.
    pub fn selects(&self, vault: &VaultRef, item: &Item) -> bool {
        self.selector.matches(vault, item)
    }

    /// `item` as this route hands it to a destination: without opsync's rotation section
    /// (pending and previous values never leave), then narrowed to the route's field selection.
    pub fn shape(&self, item: &mut Item) {
        crate::rotation::strip_owned_section(item);
        self.fields.apply(item);
    }

    /// The destination key of `item`.
    pub fn key(&self, vault: &VaultRef, item: &Item) -> String {
        self.name_template.render(&vault.name, item)
    }

    /// Whether deleting `deletions` of `total` destination keys in one cycle stays within
    /// `max_delete_ratio`. A single deletion is never held, so a small route can still lose
    /// an item; a ratio of 1 or more never holds.
    pub fn deletions_allowed(&self, deletions: u64, total: u64) -> bool {
        deletions <= 1
            || self.max_delete_ratio >= 1.0
            || (deletions as f64) <= self.max_delete_ratio * total as f64
    }
}

/// A hash of what decides membership (selectors, destinations, templates, policies): when it
/// changes, detection re-lists every vault.
pub fn fingerprint(routes: &[Route]) -> String {
    let json = serde_json::to_vec(routes).unwrap_or_default();
    let digest = Sha256::digest(json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::{Category, Field, IdRef};

    fn vault(id: &str, name: &str) -> VaultRef {
        VaultRef {
            id: id.into(),
            name: name.into(),
        }
    }

    fn item(title: &str, tags: &[&str], category: Category) -> Item {
        let mut i = Item::new(title, category);
        i.id = "i1".into();
        i.vault = IdRef { id: "v1".into() };
        i.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        i
    }

    fn route(selector: Selector) -> Route {
        Route {
            name: "r".into(),
            selector,
            destinations: vec!["files".into()],
            name_template: NameTemplate::default(),
            fields: FieldSelection::All,
            files: false,
            on_delete: OnDelete::Retain,
            concurrency: 1,
            batch_size: 32,
            max_delete_ratio: DEFAULT_MAX_DELETE_RATIO,
            drift: None,
        }
    }

    #[test]
    fn selects_by_vault_name_or_id_tags_title_and_category() {
        let prod = vault("v1", "Prod");
        let dev = vault("v2", "Dev");
        let r = route(Selector {
            vaults: vec!["prod".into(), "v9".into()],
            tags: vec!["sync".into()],
            title: Some(Glob::new("db-*").expect("glob")),
            categories: vec!["database".into(), "LOGIN".into()],
        });
        let ok = item("db-main", &["sync/prod", "other"], Category::Database);
        assert!(r.selects(&prod, &ok));
        assert!(!r.selects(&dev, &ok), "other vault");
        assert!(r.selects(&vault("v9", "Renamed"), &ok), "by id");
        assert!(!r.selects(&prod, &item("db-main", &["syncx"], Category::Database)));
        assert!(!r.selects(&prod, &item("web", &["sync"], Category::Database)));
        assert!(!r.selects(&prod, &item("db-main", &["sync"], Category::SecureNote)));
        let mut archived = ok.clone();
        archived.state = Some(ItemState::Archived);
        assert!(!r.selects(&prod, &archived));
        assert!(
            route(Selector::default()).selects(&dev, &ok),
            "empty selector takes all"
        );
    }

    #[test]
    fn field_selection_keeps_labels_and_ids() {
        let mut i = item("db", &[], Category::Database);
        let field = |id: &str, label: &str| -> Field {
            serde_json::from_value(serde_json::json!({"id": id, "label": label, "value": "x"}))
                .expect("field")
        };
        i.fields = Some(vec![
            field("a", "username"),
            field("b", "password"),
            field("c", "notes"),
        ]);
        FieldSelection::Only(vec!["USERNAME".into(), "c".into()]).apply(&mut i);
        let ids: Vec<_> = i.fields.iter().flatten().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn delete_ratio() {
        let r = route(Selector::default());
        assert!(r.deletions_allowed(1, 1), "a single deletion passes");
        assert!(r.deletions_allowed(2, 10));
        assert!(!r.deletions_allowed(3, 10));
        assert!(!r.deletions_allowed(10, 10));
    }
}
