//! The diff of one vault listing against what opsync last saw: which routes gain, update or
//! lose which items. Pure: no I/O, so it is the same for `poll` and `plan`.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::connect::model::{Item, ItemState, Vault};
use crate::plugin::ChangeKind;
use crate::route::Route;
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
    pub version: u64,
    pub kind: ChangeKind,
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
            if route.selects(vault, item) {
                let key = route.key(vault, item);
                let kind = match was {
                    None => ChangeKind::Created,
                    Some(m) if m.version != item.version || m.key != key => ChangeKind::Updated,
                    Some(_) => continue,
                };
                out.upserts.push((
                    Change {
                        route: route.name.clone(),
                        vault_id: vault.id.clone(),
                        vault_name: vault.name.clone(),
                        item_id: item.id.clone(),
                        title: item.title.clone(),
                        key: key.clone(),
                        version: item.version,
                        kind,
                    },
                    Member {
                        route: route.name.clone(),
                        vault_id: vault.id.clone(),
                        item_id: item.id.clone(),
                        version: item.version,
                        title: item.title.clone(),
                        key,
                    },
                ));
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
        version: m.version,
        kind: ChangeKind::Deleted,
    }
}
