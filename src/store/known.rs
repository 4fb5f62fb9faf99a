//! Detection bookkeeping: the vault `contentVersion`s and item versions opsync last saw, the
//! items each route sends (its destination keys), and the one transaction a poll commits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::store::error::{SqlContext, StoreError};
use crate::store::ledger::enqueue_tx;
use crate::store::{
    Hold, LedgerEntry, SqliteStore, from_millis, tags_from_text, tags_to_text, to_millis,
};

/// A vault as last listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownVault {
    pub vault_id: String,
    pub name: String,
    pub content_version: u64,
    pub listed_at: DateTime<Utc>,
}

/// An item as last seen: its version and a hash of its non-secret metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownItem {
    pub vault_id: String,
    pub item_id: String,
    pub version: u64,
    pub meta_hash: String,
}

/// One item a route sends, at the version last enqueued for it and under its destination key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub route: String,
    pub vault_id: String,
    pub item_id: String,
    pub version: u64,
    pub title: String,
    pub key: String,
    /// The item's category and tags when last seen: what a delete event carries once the item
    /// is gone from Connect.
    pub category: String,
    pub tags: Vec<String>,
}

/// Everything one poll learned, written in one transaction: a crash leaves either all of it
/// or none, so a change is never marked seen without its ledger rows.
#[derive(Clone, Debug, Default)]
pub struct PollWrite {
    pub entries: Vec<LedgerEntry>,
    pub vaults: Vec<KnownVault>,
    pub items: Vec<KnownItem>,
    /// (vault id, item id) no longer in their vault.
    pub items_gone: Vec<(String, String)>,
    pub members: Vec<Member>,
    /// Indices into `entries` of created or updated rows whose item the route now sends at that
    /// row's version and key: the membership is written from the row itself, so a big poll
    /// does not hold a second copy of every item's metadata.
    pub member_entries: Vec<usize>,
    /// (route, vault id, item id) the route no longer sends.
    pub members_gone: Vec<(String, String, String)>,
    pub holds: Vec<Hold>,
    /// Routes whose hold is lifted.
    pub holds_cleared: Vec<String>,
    pub meta: Vec<(String, String)>,
}

impl SqliteStore {
    /// Every vault as last listed, by id.
    pub fn known_vaults(&self) -> Result<HashMap<String, KnownVault>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT vault_id, name, content_version, listed_at FROM vaults")
            .op("prepare known vaults")?;
        let rows = stmt
            .query_map([], |r| {
                let cv: i64 = r.get(2)?;
                Ok(KnownVault {
                    vault_id: r.get(0)?,
                    name: r.get(1)?,
                    content_version: cv.max(0) as u64,
                    listed_at: from_millis(r.get(3)?),
                })
            })
            .op("read known vaults")?;
        let mut out = HashMap::new();
        for row in rows {
            let v = row.op("read known vault")?;
            out.insert(v.vault_id.clone(), v);
        }
        Ok(out)
    }

    /// The items of one vault as last seen, by id.
    pub fn known_items(&self, vault_id: &str) -> Result<HashMap<String, KnownItem>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT item_id, version, meta_hash FROM items WHERE vault_id = ?1")
            .op("prepare known items")?;
        let rows = stmt
            .query_map([vault_id], |r| {
                let v: i64 = r.get(1)?;
                Ok(KnownItem {
                    vault_id: vault_id.to_owned(),
                    item_id: r.get(0)?,
                    version: v.max(0) as u64,
                    meta_hash: r.get(2)?,
                })
            })
            .op("read known items")?;
        let mut out = HashMap::new();
        for row in rows {
            let i = row.op("read known item")?;
            out.insert(i.item_id.clone(), i);
        }
        Ok(out)
    }

    /// What every route sends from one vault.
    pub fn members(&self, vault_id: &str) -> Result<Vec<Member>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT route, item_id, version, title, key, category, tags FROM members \
                 WHERE vault_id = ?1",
            )
            .op("prepare members")?;
        let rows = stmt
            .query_map([vault_id], |r| {
                let v: i64 = r.get(2)?;
                Ok(Member {
                    route: r.get(0)?,
                    vault_id: vault_id.to_owned(),
                    item_id: r.get(1)?,
                    version: v.max(0) as u64,
                    title: r.get(3)?,
                    key: r.get(4)?,
                    category: r.get(5)?,
                    tags: tags_from_text(&r.get::<_, String>(6)?),
                })
            })
            .op("read members")?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.op("read member")?);
        }
        Ok(out)
    }

    /// How many items each route sends (its destination keys), by route.
    pub fn member_counts(&self) -> Result<HashMap<String, u64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT route, COUNT(*) FROM members GROUP BY route")
            .op("prepare member counts")?;
        let rows = stmt
            .query_map([], |r| {
                let n: i64 = r.get(1)?;
                Ok((r.get::<_, String>(0)?, n.max(0) as u64))
            })
            .op("read member counts")?;
        let mut out = HashMap::new();
        for row in rows {
            let (route, n) = row.op("read member count")?;
            out.insert(route, n);
        }
        Ok(out)
    }

    /// A bookkeeping value (`routes_fingerprint`, `last_full_reconcile`).
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .op("read meta")
    }

    /// Writes what one poll learned, ledger rows first, in one transaction.
    pub fn commit_poll(&self, w: &PollWrite) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().op("begin poll commit")?;
        let added = enqueue_tx(&tx, &w.entries)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO members (route, vault_id, item_id, version, title, key, category, tags) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (route, vault_id, item_id) DO UPDATE \
                     SET version = excluded.version, title = excluded.title, key = excluded.key, \
                     category = excluded.category, tags = excluded.tags",
                )
                .op("prepare members upsert")?;
            for m in &w.members {
                stmt.execute(params![
                    m.route,
                    m.vault_id,
                    m.item_id,
                    m.version as i64,
                    m.title,
                    m.key,
                    m.category,
                    tags_to_text(&m.tags)
                ])
                .op("upsert member")?;
            }
            for e in w.member_entries.iter().filter_map(|i| w.entries.get(*i)) {
                stmt.execute(params![
                    e.route,
                    e.vault_id,
                    e.item_id,
                    e.version as i64,
                    e.title,
                    e.key,
                    e.category,
                    tags_to_text(&e.tags)
                ])
                .op("upsert member")?;
            }
            let mut stmt = tx
                .prepare_cached(
                    "DELETE FROM members WHERE route = ?1 AND vault_id = ?2 AND item_id = ?3",
                )
                .op("prepare members delete")?;
            for (route, vault, item) in &w.members_gone {
                stmt.execute(params![route, vault, item])
                    .op("delete member")?;
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO items (vault_id, item_id, version, meta_hash) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (vault_id, item_id) DO UPDATE \
                     SET version = excluded.version, meta_hash = excluded.meta_hash",
                )
                .op("prepare items upsert")?;
            for i in &w.items {
                stmt.execute(params![
                    i.vault_id,
                    i.item_id,
                    i.version as i64,
                    i.meta_hash
                ])
                .op("upsert item")?;
            }
            let mut stmt = tx
                .prepare_cached("DELETE FROM items WHERE vault_id = ?1 AND item_id = ?2")
                .op("prepare items delete")?;
            for (vault, item) in &w.items_gone {
                stmt.execute(params![vault, item]).op("delete item")?;
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO vaults (vault_id, name, content_version, listed_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (vault_id) DO UPDATE SET name = excluded.name, \
                     content_version = excluded.content_version, listed_at = excluded.listed_at",
                )
                .op("prepare vaults upsert")?;
            for v in &w.vaults {
                stmt.execute(params![
                    v.vault_id,
                    v.name,
                    v.content_version as i64,
                    to_millis(v.listed_at)
                ])
                .op("upsert vault")?;
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO holds (route, deletions, total, max_ratio, since) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (route) DO UPDATE SET deletions = excluded.deletions, \
                     total = excluded.total, max_ratio = excluded.max_ratio",
                )
                .op("prepare holds upsert")?;
            for h in &w.holds {
                stmt.execute(params![
                    h.route,
                    h.deletions as i64,
                    h.total as i64,
                    h.max_ratio,
                    to_millis(h.since)
                ])
                .op("upsert hold")?;
            }
            let mut stmt = tx
                .prepare_cached("DELETE FROM holds WHERE route = ?1")
                .op("prepare holds delete")?;
            for route in &w.holds_cleared {
                stmt.execute([route]).op("clear hold")?;
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .op("prepare meta upsert")?;
            for (k, v) in &w.meta {
                stmt.execute([k, v]).op("write meta")?;
            }
        }
        tx.commit().op("commit poll")?;
        Ok(added)
    }
}
