//! The diff of one vault listing against what opsync last saw: which routes gain, update or
//! lose which items. Pure: no I/O, so it is the same for `poll` and `plan`.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::connect::model::{Item, ItemState, Vault};
use crate::domain::ChangeKind;
use crate::route::{OnDelete, Route};
use crate::store::{KnownItem, Member};

/// One change of one item for one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub route: String,
    pub vault_id: String,
    pub vault_name: String,
    pub item_id: String,
    pub title: String,
    /// The destination key (the route's name template, rendered).
    pub key: String,
    /// The item's category and tags (for a deletion: as last seen).
    pub category: String,
    pub tags: Vec<String>,
    pub version: u64,
    pub kind: ChangeKind,
    /// For an update that moved the item to another key (a rename under a `{title}` template):
    /// the key it had. At the destination the new key is a creation.
    pub previous_key: Option<String>,
}

/// What one vault's listing changes.
#[derive(Debug, Default)]
pub(crate) struct VaultDiff {
    /// Items whose version or metadata moved, or that are new.
    pub items: Vec<KnownItem>,
    /// Items gone from a complete listing.
    pub items_gone: Vec<String>,
    /// Items that changed for opsync (new, other version, other metadata), for the report.
    pub changed_items: usize,
    /// Created and updated changes, with the membership each leaves.
    pub upserts: Vec<(Change, Member)>,
    /// Items that left a route (deleted, archived or no longer selected), by route.
    pub leaving: Vec<Change>,
    /// Items whose destination key changed (a rename under a `{title}` template) in a route
    /// whose `on_delete` is `delete`: the deletion of the old key, and the write of the new one
    /// with the membership it leaves. The deletion counts against `max_delete_ratio`.
    pub renames: Vec<Rename>,
}

/// An item whose destination key changed in a route that deletes.
#[derive(Debug)]
pub(crate) struct Rename {
    /// The deletion of the old key.
    pub delete: Change,
    /// The write under the new key.
    pub upsert: Change,
    pub member: Member,
}

/// A hash of an item's non-secret metadata; a value never goes into it.
pub(crate) fn meta_hash(item: &Item) -> String {
    let mut h = Sha256::new();
    for part in [
        item.title.as_str(),
        item.category.as_str(),
        item.state.as_ref().map_or("", ItemState::as_str),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut tags = item.tags.clone();
    tags.sort();
    for t in tags {
        h.update(t.as_bytes());
        h.update([1]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn present(item: &Item) -> bool {
    !matches!(item.state, Some(ItemState::Archived | ItemState::Deleted))
}

/// Diffs `listing` of `vault` against the known items and memberships. Items missing from
/// the listing count as gone only when `complete`.
pub(crate) fn diff_vault(
    vault: &Vault,
    listing: &[Item],
    complete: bool,
    known: &HashMap<String, KnownItem>,
    members: &[Member],
    routes: &[Route],
) -> VaultDiff {
    let mut out = VaultDiff::default();
    let reference = vault.reference();
    let member: HashMap<(&str, &str), &Member> = members
        .iter()
        .map(|m| ((m.route.as_str(), m.item_id.as_str()), m))
        .collect();
    let mut seen: HashSet<&str> = HashSet::with_capacity(listing.len());
    for item in listing.iter().filter(|i| present(i)) {
        seen.insert(item.id.as_str());
        let hash = meta_hash(item);
        let moved = known
            .get(&item.id)
            .is_none_or(|k| k.version != item.version || k.meta_hash != hash);
        if moved {
            out.changed_items += 1;
            out.items.push(KnownItem {
                vault_id: vault.id.clone(),
                item_id: item.id.clone(),
                version: item.version,
                meta_hash: hash,
            });
        }
        for route in routes {
            let was = member.get(&(route.name.as_str(), item.id.as_str()));
            if route.selects(&reference, item) {
                let key = route.key(&reference, item);
                let kind = match was {
                    None => ChangeKind::Created,
                    Some(m) if m.version != item.version || m.key != key => ChangeKind::Updated,
                    Some(_) => continue,
                };
                let renamed_from = was
                    .filter(|m| m.key != key && route.on_delete == OnDelete::Delete)
                    .map(|m| leaving(vault, m));
                let change = Change {
                    route: route.name.clone(),
                    vault_id: vault.id.clone(),
                    vault_name: vault.name.clone(),
                    item_id: item.id.clone(),
                    title: item.title.clone(),
                    key: key.clone(),
                    category: item.category.as_str().to_owned(),
                    tags: item.tags.clone(),
                    version: item.version,
                    kind,
                    previous_key: was.filter(|m| m.key != key).map(|m| m.key.clone()),
                };
                let member = Member {
                    route: route.name.clone(),
                    vault_id: vault.id.clone(),
                    item_id: item.id.clone(),
                    version: item.version,
                    title: item.title.clone(),
                    key,
                    category: item.category.as_str().to_owned(),
                    tags: item.tags.clone(),
                };
                match renamed_from {
                    Some(delete) => out.renames.push(Rename {
                        delete,
                        upsert: change,
                        member,
                    }),
                    None => out.upserts.push((change, member)),
                }
            } else if let Some(m) = was {
                out.leaving.push(leaving(vault, m));
            }
        }
    }
    // Archived items are in the listing: they left, and the listing still says so for sure.
    for item in listing.iter().filter(|i| !present(i)) {
        seen.insert(item.id.as_str());
        if known.contains_key(&item.id) {
            out.items_gone.push(item.id.clone());
        }
        for route in routes {
            if let Some(m) = member.get(&(route.name.as_str(), item.id.as_str())) {
                out.leaving.push(leaving(vault, m));
            }
        }
    }
    if complete {
        for id in known.keys().filter(|id| !seen.contains(id.as_str())) {
            out.items_gone.push(id.clone());
        }
        let configured: HashSet<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        for m in members
            .iter()
            .filter(|m| !seen.contains(m.item_id.as_str()) && configured.contains(m.route.as_str()))
        {
            out.leaving.push(leaving(vault, m));
        }
    }
    out
}

fn leaving(vault: &Vault, m: &Member) -> Change {
    Change {
        route: m.route.clone(),
        vault_id: vault.id.clone(),
        vault_name: vault.name.clone(),
        item_id: m.item_id.clone(),
        title: m.title.clone(),
        key: m.key.clone(),
        category: m.category.clone(),
        tags: m.tags.clone(),
        version: m.version,
        kind: ChangeKind::Deleted,
        previous_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::{Category, IdRef};
    use crate::route::{FieldSelection, NameTemplate, Selector};

    fn vault() -> Vault {
        serde_json::from_value(serde_json::json!({"id": "v1", "name": "Prod", "items": 2}))
            .expect("vault")
    }

    fn item(id: &str, version: u64) -> Item {
        let mut i = Item::new(format!("t-{id}"), Category::Login);
        i.id = id.into();
        i.vault = IdRef { id: "v1".into() };
        i.version = version;
        i
    }

    fn member(id: &str, version: u64) -> Member {
        Member {
            route: "r".into(),
            vault_id: "v1".into(),
            item_id: id.into(),
            version,
            title: format!("t-{id}"),
            key: format!("Prod/t-{id}"),
            category: "LOGIN".into(),
            tags: Vec::new(),
        }
    }

    fn routes() -> Vec<Route> {
        vec![Route {
            name: "r".into(),
            selector: Selector::default(),
            destinations: vec!["d".into()],
            name_template: NameTemplate::default(),
            fields: FieldSelection::All,
            files: false,
            on_delete: OnDelete::Delete,
            concurrency: 1,
            batch_size: 32,
            max_delete_ratio: 0.2,
            drift: None,
        }]
    }

    fn known(items: &[Item]) -> HashMap<String, KnownItem> {
        items
            .iter()
            .map(|i| {
                (
                    i.id.clone(),
                    KnownItem {
                        vault_id: "v1".into(),
                        item_id: i.id.clone(),
                        version: i.version,
                        meta_hash: meta_hash(i),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_partial_listing_never_deletes() {
        let before = [item("a", 1), item("b", 1)];
        let members = [member("a", 1), member("b", 1)];
        // "b" is missing and "a" moved on: with an incomplete listing only the update counts.
        let listing = [item("a", 2)];
        let d = diff_vault(
            &vault(),
            &listing,
            false,
            &known(&before),
            &members,
            &routes(),
        );
        assert!(d.leaving.is_empty());
        assert!(d.items_gone.is_empty());
        assert_eq!(d.upserts.len(), 1);
        assert_eq!(d.upserts[0].0.kind, ChangeKind::Updated);
        // The same listing, complete: "b" left.
        let d = diff_vault(
            &vault(),
            &listing,
            true,
            &known(&before),
            &members,
            &routes(),
        );
        assert_eq!(d.leaving.len(), 1);
        assert_eq!(d.leaving[0].item_id, "b");
        assert_eq!(
            d.leaving[0].version, 1,
            "the delete names the last version sent"
        );
        assert_eq!(d.items_gone, ["b"]);
    }

    #[test]
    fn archived_items_leave_and_unchanged_items_are_quiet() {
        let before = [item("a", 1), item("b", 1)];
        let members = [member("a", 1), member("b", 1)];
        let mut archived = item("b", 2);
        archived.state = Some(ItemState::Archived);
        let d = diff_vault(
            &vault(),
            &[item("a", 1), archived],
            false,
            &known(&before),
            &members,
            &routes(),
        );
        assert!(d.upserts.is_empty());
        assert_eq!(d.changed_items, 0);
        assert_eq!(
            d.leaving.len(),
            1,
            "an archived item leaves even from a partial listing"
        );
    }

    #[test]
    fn metadata_hash_ignores_values_and_tag_order() {
        let mut a = item("a", 1);
        a.tags = vec!["x".into(), "y".into()];
        let mut b = a.clone();
        b.tags = vec!["y".into(), "x".into()];
        assert_eq!(meta_hash(&a), meta_hash(&b));
        b.title = "other".into();
        assert_ne!(meta_hash(&a), meta_hash(&b));
    }

    #[test]
    fn a_rename_deletes_the_old_key_only_where_the_route_deletes() {
        let before = [item("a", 1)];
        let members = [member("a", 1)];
        let mut renamed = item("a", 2);
        renamed.title = "new-title".into();
        let d = diff_vault(
            &vault(),
            std::slice::from_ref(&renamed),
            true,
            &known(&before),
            &members,
            &routes(),
        );
        assert!(d.upserts.is_empty() && d.leaving.is_empty());
        assert_eq!(d.renames.len(), 1);
        let r = &d.renames[0];
        assert_eq!(r.delete.kind, ChangeKind::Deleted);
        assert_eq!(r.delete.key, "Prod/t-a");
        assert_eq!(r.delete.category, "LOGIN");
        assert_eq!(r.upsert.key, "Prod/new-title");
        assert_eq!(r.member.key, "Prod/new-title");
        // A retaining route only writes the new key.
        let mut retain = routes();
        retain[0].on_delete = OnDelete::Retain;
        let d = diff_vault(
            &vault(),
            &[renamed],
            true,
            &known(&before),
            &members,
            &retain,
        );
        assert!(d.renames.is_empty());
        assert_eq!(d.upserts.len(), 1);
        assert_eq!(d.upserts[0].0.key, "Prod/new-title");
    }
}
