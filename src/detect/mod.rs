//! Change detection: one poller for every route. `GET /v1/vaults` first; only vaults whose
//! `contentVersion` moved are listed; item versions are diffed against the store; the ledger
//! rows and the new known versions are written in one transaction.

mod diff;
mod error;
mod poll;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream};

use crate::connect::client::ConnectClient;
use crate::connect::model::{Item, Vault};
use crate::domain::ChangeKind;
use crate::route::Route;
use crate::store::{KnownVault, LedgerEntry, Member, PollWrite, Store};

pub use diff::Change;
pub use error::DetectError;

/// Vault listings fetched at once during a poll (see [`Detector::listings`]).
const LISTINGS_IN_FLIGHT: usize = 4;

/// Store `meta` key: the routes' fingerprint at the last poll.
const META_FINGERPRINT: &str = "routes_fingerprint";
/// Store `meta` key: when the last full reconciliation finished (unix milliseconds).
const META_LAST_FULL: &str = "last_full_reconcile";

/// Default interval between full reconciliations.
pub const DEFAULT_FULL_RECONCILE_INTERVAL: Duration = Duration::from_secs(3600);

/// How the detector behaves.
#[derive(Clone, Debug)]
pub struct DetectOptions {
    /// How often [`Detector::full_reconcile_due`] says a full reconciliation is due.
    pub full_reconcile_interval: Duration,
    /// Let deletions through even past a route's `max_delete_ratio` (`--allow-mass-delete`).
    pub allow_mass_delete: bool,
    /// Keep every change in [`PollReport::changes`] (for `plan` and tests). The daemon only
    /// needs the counts: an initial sync of 100,000 items would otherwise hold them all twice.
    pub keep_changes: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            full_reconcile_interval: DEFAULT_FULL_RECONCILE_INTERVAL,
            allow_mass_delete: false,
            keep_changes: true,
        }
    }
}

/// A vault whose listing failed or looked partial: nothing in it was deleted, and it is
/// listed again at the next poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteVault {
    pub vault_id: String,
    pub name: String,
    pub reason: String,
}

/// A route whose deletions were held by its `max_delete_ratio`.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldRoute {
    pub route: String,
    /// The deletions that were not made.
    pub deletions: Vec<Change>,
    /// The route's destination keys before them.
    pub total: u64,
    pub max_ratio: f64,
}

/// What one poll saw and did.
#[derive(Clone, Debug, Default)]
pub struct PollReport {
    pub started_at: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// Whether every vault was listed whatever its `contentVersion`.
    pub full: bool,
    /// Requests made to Connect (1 for an idle poll).
    pub requests: u32,
    pub vaults_listed: usize,
    pub vaults_unchanged: usize,
    /// Items that are new, or whose version or metadata moved.
    pub items_changed: usize,
    /// Changes sent to the ledger, one per (route, item); each goes to every destination of
    /// its route. Empty unless [`DetectOptions::keep_changes`]; [`PollReport::counts`] counts
    /// them either way.
    pub changes: Vec<Change>,
    /// (created, updated, deleted) changes.
    counted: (usize, usize, usize),
    /// Items that left a route whose `on_delete` is `retain`: nothing is deleted at the
    /// destination.
    pub retained: Vec<Change>,
    pub held: Vec<HeldRoute>,
    pub incomplete: Vec<IncompleteVault>,
    /// Vaults opsync saw before that `/v1/vaults` no longer lists (deleted, or the token lost
    /// access). Their items are left alone.
    pub vaults_missing: Vec<String>,
    /// Ledger rows added (0 for `plan`).
    pub enqueued: u64,
}

impl PollReport {
    /// Counts of the changes by kind: (created, updated, deleted).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.counted
    }

    /// Counts a change, and keeps it when asked to.
    fn record(&mut self, change: Change, keep: bool) {
        match change.kind {
            ChangeKind::Created => self.counted.0 += 1,
            ChangeKind::Updated => self.counted.1 += 1,
            ChangeKind::Deleted => self.counted.2 += 1,
            ChangeKind::Rotated | ChangeKind::Repaired => {}
        }
        if keep {
            self.changes.push(change);
        }
    }
}

/// The poller. Owns a Connect client and the store; serves every route.
#[derive(Debug)]
pub struct Detector {
    client: ConnectClient,
    store: Store,
    routes: Vec<Route>,
    options: DetectOptions,
}

impl Detector {
    pub fn new(
        client: ConnectClient,
        store: Store,
        routes: Vec<Route>,
        options: DetectOptions,
    ) -> Self {
        Self {
            client,
            store,
            routes,
            options,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn client(&self) -> &ConnectClient {
        &self.client
    }

    pub fn set_allow_mass_delete(&mut self, allow: bool) {
        self.options.allow_mass_delete = allow;
    }

    /// Whether reports keep every change or only count them (see [`DetectOptions::keep_changes`]).
    pub fn set_keep_changes(&mut self, keep: bool) {
        self.options.keep_changes = keep;
    }

    /// Whether the last full reconciliation is older than the configured interval (or none
    /// ever ran).
    pub fn full_reconcile_due(&self, now: DateTime<Utc>) -> Result<bool, DetectError> {
        let Some(last) = self.store.meta(META_LAST_FULL)? else {
            return Ok(true);
        };
        let last = last.parse::<i64>().unwrap_or(0);
        let elapsed = now.timestamp_millis().saturating_sub(last).max(0) as u64;
        Ok(Duration::from_millis(elapsed) >= self.options.full_reconcile_interval)
    }

    /// One poll: writes the ledger rows for every route that selects a change, together with
    /// the new known versions, in one transaction.
    pub async fn poll(&mut self, full_reconcile: bool) -> Result<PollReport, DetectError> {
        self.run(full_reconcile, true).await
    }

    /// A dry run of a full poll: the same report, nothing written.
    pub async fn plan(&self) -> Result<PollReport, DetectError> {
        self.run(true, false).await
    }

    /// The item listings of `vault_ids`, in their order, fetched up to [`LISTINGS_IN_FLIGHT`]
    /// at a time, each on its own task: the next vaults are listed (and their JSON parsed on
    /// another thread) while the caller diffs the one before. An error is the reason the
    /// vault's listing is incomplete.
    fn listings(
        &self,
        vault_ids: Vec<String>,
    ) -> impl Stream<Item = Result<Vec<Item>, String>> + Unpin + use<> {
        let client = self.client.clone();
        let fetch = move |vault_id: String| {
            let client = client.clone();
            async move {
                let task = tokio::spawn(async move { client.list_items(&vault_id, None).await });
                match task.await {
                    Ok(Ok(items)) => Ok(items),
                    Ok(Err(e)) => Err(format!("listing items: {e}")),
                    Err(e) => Err(format!("listing items: the task failed: {e}")),
                }
            }
        };
        stream::iter(vault_ids.into_iter().map(fetch)).buffered(LISTINGS_IN_FLIGHT)
    }

    /// The change's ledger entries, and the membership it leaves: taken from its first entry
    /// when there is one (no second copy of the metadata), else written as `member`.
    fn push_with_member(&self, w: &mut PollWrite, c: &Change, member: Member, now: DateTime<Utc>) {
        let first = w.entries.len();
        self.push_entries(&mut w.entries, c, now);
        if w.entries.len() > first {
            w.member_entries.push(first);
        } else {
            w.members.push(member);
        }
    }

    /// One ledger entry per destination of the change's route.
    fn push_entries(&self, out: &mut Vec<LedgerEntry>, c: &Change, now: DateTime<Utc>) {
        let Some(route) = self.routes.iter().find(|r| r.name == c.route) else {
            return;
        };
        for dest in &route.destinations {
            out.push(LedgerEntry {
                route: c.route.clone(),
                destination: dest.clone(),
                vault_id: c.vault_id.clone(),
                vault_name: c.vault_name.clone(),
                item_id: c.item_id.clone(),
                title: c.title.clone(),
                key: c.key.clone(),
                category: c.category.clone(),
                tags: c.tags.clone(),
                version: c.version,
                kind: c.kind,
                detected_at: now,
            });
        }
    }
}

fn known_vault(v: &Vault, now: DateTime<Utc>) -> KnownVault {
    KnownVault {
        vault_id: v.id.clone(),
        name: v.name.clone(),
        content_version: v.content_version,
        listed_at: now,
    }
}
