//! One poll, top-down: which vaults moved and need listing, the diff of each listing against the
//! known versions, each route's deletions retained, enqueued or held by the mass-delete breaker,
//! and the one write that records it all.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::connect::model::Vault;
use crate::detect::diff::{self, Change, Rename};
use crate::detect::{
    DetectError, Detector, HeldRoute, IncompleteVault, META_FINGERPRINT, META_LAST_FULL,
    PollReport, known_vault,
};
use crate::route::{OnDelete, Route, fingerprint};
use crate::store::{Hold, KnownVault, Member, PollWrite};

/// What a poll gathers before it writes.
struct Pass {
    now: DateTime<Utc>,
    /// Keep each change in the report (`plan`, tests), not only the counts.
    keep: bool,
    report: PollReport,
    write: PollWrite,
    /// Deletions per route, decided once every vault is diffed.
    leaving: HashMap<String, Vec<Change>>,
    renames: HashMap<String, Vec<Rename>>,
    /// Vaults whose new contentVersion is recorded (unless a hold keeps them back).
    advance: Vec<KnownVault>,
    /// Held deletions: their vaults keep the old contentVersion, their routes their hold.
    held_vaults: HashSet<String>,
    held_routes: HashSet<String>,
}

impl Detector {
    pub(super) async fn run(
        &self,
        full_reconcile: bool,
        write: bool,
    ) -> Result<PollReport, DetectError> {
        let clock = Instant::now();
        let mut pass = Pass::new(Utc::now(), self.options.keep_changes);
        pass.report.requests += 1;
        let vaults = self.client.list_vaults(None).await?;
        let print = fingerprint(&self.routes);
        let routes_changed = self.store.meta(META_FINGERPRINT)?.as_deref() != Some(&print);
        let full = full_reconcile || routes_changed;
        pass.report.full = full;
        let to_list = self.vaults_to_list(&vaults, full, &mut pass).await?;
        self.diff_listings(to_list, &mut pass).await?;
        self.decide_deletions(&mut pass)?;
        let mut pass = self.settle(pass, full, routes_changed, print);
        if write {
            let write = std::mem::take(&mut pass.write);
            pass.report.enqueued = self
                .store
                .blocking(move |store| store.commit_poll(&write))
                .await?;
        }
        pass.report.duration = clock.elapsed();
        Ok(pass.report)
    }

    /// The vaults whose contentVersion moved (all of them in a full poll) and that a route
    /// takes or took, with their route members; the others are counted as unchanged.
    async fn vaults_to_list<'v>(
        &self,
        vaults: &'v [Vault],
        full: bool,
        pass: &mut Pass,
    ) -> Result<Vec<(&'v Vault, Vec<Member>)>, DetectError> {
        let known_vaults = self.store.known_vaults()?;
        let listed: HashSet<&str> = vaults.iter().map(|v| v.id.as_str()).collect();
        pass.report.vaults_missing = known_vaults
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        pass.report.vaults_missing.sort();
        let mut to_list = Vec::new();
        for vault in vaults {
            let known = known_vaults.get(&vault.id);
            let moved = known.is_none_or(|k| k.content_version != vault.content_version);
            if !full && !moved {
                pass.report.vaults_unchanged += 1;
                continue;
            }
            let vault_id = vault.id.clone();
            let members = self
                .store
                .blocking(move |store| store.members(&vault_id))
                .await?;
            let reference = vault.reference();
            let taken = self
                .routes
                .iter()
                .any(|r| r.selector.takes_vault(&reference));
            if !taken && members.is_empty() {
                // No route wants it: remember its version so it is not looked at again.
                pass.advance.push(known_vault(vault, pass.now));
                pass.report.vaults_unchanged += 1;
                continue;
            }
            to_list.push((vault, members));
        }
        Ok(to_list)
    }

    /// Lists each vault (a few in flight) and diffs it against what is known.
    async fn diff_listings(
        &self,
        to_list: Vec<(&Vault, Vec<Member>)>,
        pass: &mut Pass,
    ) -> Result<(), DetectError> {
        let ids = to_list.iter().map(|(vault, _)| vault.id.clone()).collect();
        let mut listings = self.listings(ids);
        for (vault, members) in to_list {
            pass.report.requests += 1;
            let listing = match listings.next().await {
                Some(Ok(items)) => items,
                Some(Err(reason)) => {
                    pass.report.incomplete.push(incomplete(vault, reason));
                    continue;
                }
                None => break,
            };
            pass.report.vaults_listed += 1;
            // A listing shorter than the vault's own item count may be truncated: use what it
            // shows, delete nothing, and list again next time.
            let complete = listing.len() as u64 >= vault.items;
            if !complete {
                let reason = format!(
                    "the listing has {} items and the vault says {}",
                    listing.len(),
                    vault.items
                );
                pass.report.incomplete.push(incomplete(vault, reason));
            }
            let vault_id = vault.id.clone();
            let known_items = self
                .store
                .blocking(move |store| store.known_items(&vault_id))
                .await?;
            let d = diff::diff_vault(
                vault,
                &listing,
                complete,
                &known_items,
                &members,
                &self.routes,
            );
            pass.report.items_changed += d.changed_items;
            pass.write.items.extend(d.items);
            pass.write
                .items_gone
                .extend(d.items_gone.into_iter().map(|i| (vault.id.clone(), i)));
            for (change, member) in d.upserts {
                self.push_with_member(&mut pass.write, &change, member, pass.now);
                pass.report.record(change, pass.keep);
            }
            for change in d.leaving {
                pass.leaving
                    .entry(change.route.clone())
                    .or_default()
                    .push(change);
            }
            for rename in d.renames {
                pass.renames
                    .entry(rename.delete.route.clone())
                    .or_default()
                    .push(rename);
            }
            if complete {
                pass.advance.push(known_vault(vault, pass.now));
            }
        }
        Ok(())
    }

    /// Each route's deletions (renames delete the old key): retained, enqueued, or held.
    fn decide_deletions(&self, pass: &mut Pass) -> Result<(), DetectError> {
        let counts = self.store.member_counts()?;
        for route in &self.routes {
            let gone = pass.leaving.remove(&route.name).unwrap_or_default();
            let renamed = pass.renames.remove(&route.name).unwrap_or_default();
            if gone.is_empty() && renamed.is_empty() {
                continue;
            }
            match route.on_delete {
                OnDelete::Retain => retain(gone, pass),
                OnDelete::Delete => {
                    let total = counts.get(&route.name).copied().unwrap_or(0);
                    // A rename deletes the old key: it counts against max_delete_ratio too (a
                    // new name_template renames every key of the route).
                    let n = (gone.len() + renamed.len()) as u64;
                    if self.options.allow_mass_delete || route.deletions_allowed(n, total) {
                        self.delete(gone, renamed, pass);
                    } else {
                        self.hold(route, gone, renamed, total, pass);
                    }
                }
            }
        }
        Ok(())
    }

    /// Enqueues the deletions: each rename's old key first, then its new key's write.
    fn delete(&self, gone: Vec<Change>, renamed: Vec<Rename>, pass: &mut Pass) {
        for r in renamed {
            self.push_entries(&mut pass.write.entries, &r.delete, pass.now);
            self.push_with_member(&mut pass.write, &r.upsert, r.member, pass.now);
            pass.report.record(r.delete, pass.keep);
            pass.report.record(r.upsert, pass.keep);
        }
        for c in gone {
            pass.write
                .members_gone
                .push((c.route.clone(), c.vault_id.clone(), c.item_id.clone()));
            self.push_entries(&mut pass.write.entries, &c, pass.now);
            pass.report.record(c, pass.keep);
        }
    }

    /// Holds a route's deletions past its max_delete_ratio. A held rename still writes the new
    /// key (nothing is lost) but keeps the old membership, so the next polls find the rename
    /// again and delete the old key once deletions are allowed (the write is not enqueued twice:
    /// the ledger ignores a row it already has).
    fn hold(
        &self,
        route: &Route,
        mut gone: Vec<Change>,
        renamed: Vec<Rename>,
        total: u64,
        pass: &mut Pass,
    ) {
        let deletions = (gone.len() + renamed.len()) as u64;
        for r in renamed {
            self.push_entries(&mut pass.write.entries, &r.upsert, pass.now);
            pass.report.record(r.upsert, pass.keep);
            gone.push(r.delete);
        }
        pass.held_vaults
            .extend(gone.iter().map(|c| c.vault_id.clone()));
        pass.held_routes.insert(route.name.clone());
        pass.write.holds.push(Hold {
            route: route.name.clone(),
            deletions,
            total,
            max_ratio: route.max_delete_ratio,
            since: pass.now,
        });
        pass.report.held.push(HeldRoute {
            route: route.name.clone(),
            deletions: gone,
            total,
            max_ratio: route.max_delete_ratio,
        });
    }

    /// The bookkeeping of a finished pass: holds cleared, vault versions advanced (except where
    /// deletions are held, so those vaults are listed and the hold re-decided at every poll),
    /// and the meta rows (last full reconciliation, the routes' fingerprint).
    fn settle(&self, mut pass: Pass, full: bool, routes_changed: bool, print: String) -> Pass {
        let complete = pass.report.incomplete.is_empty();
        if complete {
            pass.write.holds_cleared = self
                .routes
                .iter()
                .filter(|r| !pass.held_routes.contains(&r.name))
                .map(|r| r.name.clone())
                .collect();
        }
        let advance = std::mem::take(&mut pass.advance);
        pass.write.vaults = advance
            .into_iter()
            .filter(|v| !pass.held_vaults.contains(&v.vault_id))
            .collect();
        if full && complete {
            pass.write.meta.push((
                META_LAST_FULL.to_owned(),
                pass.now.timestamp_millis().to_string(),
            ));
        }
        // After an incomplete poll that found the routes changed, the old fingerprint stays,
        // so the next poll is full again.
        if !routes_changed || complete {
            pass.write.meta.push((META_FINGERPRINT.to_owned(), print));
        }
        pass
    }
}

impl Pass {
    fn new(now: DateTime<Utc>, keep: bool) -> Self {
        Self {
            now,
            keep,
            report: PollReport {
                started_at: Some(now),
                ..PollReport::default()
            },
            write: PollWrite::default(),
            leaving: HashMap::new(),
            renames: HashMap::new(),
            advance: Vec::new(),
            held_vaults: HashSet::new(),
            held_routes: HashSet::new(),
        }
    }
}

/// Retained deletions: the membership goes, the destination keeps its key.
fn retain(gone: Vec<Change>, pass: &mut Pass) {
    for c in gone {
        pass.write
            .members_gone
            .push((c.route.clone(), c.vault_id.clone(), c.item_id.clone()));
        pass.report.retained.push(c);
    }
}

fn incomplete(vault: &Vault, reason: String) -> IncompleteVault {
    IncompleteVault {
        vault_id: vault.id.clone(),
        name: vault.name.clone(),
        reason,
    }
}
