//! What opsync last saw of Connect on PostgreSQL: vaults, items, route members, and a poll's commit.

use std::collections::HashMap;

use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{
    KnownItem, KnownVault, Member, PollWrite, StoreError, from_millis, tags_from_text,
    tags_to_text, to_millis,
};

impl PgStore {
    /// Every vault as last listed, by id.
    pub fn known_vaults(&self) -> Result<HashMap<String, KnownVault>, StoreError> {
        self.run(|c| {
            let rows = c
                .query(
                    "SELECT vault_id, name, content_version, listed_at FROM vaults",
                    &[],
                )
                .op("read known vaults")?;
            let mut out = HashMap::with_capacity(rows.len());
            for r in &rows {
                let op = "read known vault";
                let cv: i64 = r.try_get(2).op(op)?;
                let v = KnownVault {
                    vault_id: r.try_get(0).op(op)?,
                    name: r.try_get(1).op(op)?,
                    content_version: cv.max(0) as u64,
                    listed_at: from_millis(r.try_get(3).op(op)?),
                };
                out.insert(v.vault_id.clone(), v);
            }
            Ok(out)
        })
    }

    /// The items of one vault as last seen, by id.
    pub fn known_items(&self, vault_id: &str) -> Result<HashMap<String, KnownItem>, StoreError> {
        let vault_id = vault_id.to_owned();
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT item_id, version, meta_hash FROM items WHERE vault_id = $1",
                    &[&vault_id],
                )
                .op("read known items")?;
            let mut out = HashMap::with_capacity(rows.len());
            for r in &rows {
                let op = "read known item";
                let v: i64 = r.try_get(1).op(op)?;
                let i = KnownItem {
                    vault_id: vault_id.clone(),
                    item_id: r.try_get(0).op(op)?,
                    version: v.max(0) as u64,
                    meta_hash: r.try_get(2).op(op)?,
                };
                out.insert(i.item_id.clone(), i);
            }
            Ok(out)
        })
    }

    /// What every route sends from one vault.
    pub fn members(&self, vault_id: &str) -> Result<Vec<Member>, StoreError> {
        let vault_id = vault_id.to_owned();
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT route, item_id, version, title, key, category, tags FROM members \
                     WHERE vault_id = $1",
                    &[&vault_id],
                )
                .op("read members")?;
            rows.iter()
                .map(|r| {
                    let op = "read member";
                    let v: i64 = r.try_get(2).op(op)?;
                    Ok(Member {
                        route: r.try_get(0).op(op)?,
                        vault_id: vault_id.clone(),
                        item_id: r.try_get(1).op(op)?,
                        version: v.max(0) as u64,
                        title: r.try_get(3).op(op)?,
                        key: r.try_get(4).op(op)?,
                        category: r.try_get(5).op(op)?,
                        tags: tags_from_text(&r.try_get::<_, String>(6).op(op)?),
                    })
                })
                .collect()
        })
    }

    /// How many items each route sends (its destination keys), by route.
    pub fn member_counts(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.run(|c| {
            let rows = c
                .query("SELECT route, COUNT(*) FROM members GROUP BY route", &[])
                .op("read member counts")?;
            let mut out = HashMap::with_capacity(rows.len());
            for r in &rows {
                let op = "read member count";
                let n: i64 = r.try_get(1).op(op)?;
                out.insert(r.try_get::<_, String>(0).op(op)?, n.max(0) as u64);
            }
            Ok(out)
        })
    }

    /// A bookkeeping value (`routes_fingerprint`, `last_full_reconcile`).
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            match c
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .op("read meta")?
            {
                Some(r) => r.try_get(0).op("read meta").map(Some),
                None => Ok(None),
            }
        })
    }

    /// Writes what one poll learned, ledger rows first, in one transaction.
    pub fn commit_poll(&self, w: &PollWrite) -> Result<u64, StoreError> {
        let w = w.clone();
        self.run(move |c| {
            let mut tx = c.transaction().op("begin poll commit")?;
            let added = super::ledger::enqueue_tx(&mut tx, &w.entries)?;

            let stmt = tx
                .prepare(
                    "INSERT INTO members (route, vault_id, item_id, version, title, key, category, tags) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (route, vault_id, item_id) DO UPDATE \
                     SET version = excluded.version, title = excluded.title, key = excluded.key, \
                     category = excluded.category, tags = excluded.tags",
                )
                .op("prepare members upsert")?;
            for m in &w.members {
                tx.execute(
                    &stmt,
                    &[
                        &m.route,
                        &m.vault_id,
                        &m.item_id,
                        &(m.version as i64),
                        &m.title,
                        &m.key,
                        &m.category,
                        &tags_to_text(&m.tags),
                    ],
                )
                .op("upsert member")?;
            }
            for e in w.member_entries.iter().filter_map(|i| w.entries.get(*i)) {
                tx.execute(
                    &stmt,
                    &[
                        &e.route,
                        &e.vault_id,
                        &e.item_id,
                        &(e.version as i64),
                        &e.title,
                        &e.key,
                        &e.category,
                        &tags_to_text(&e.tags),
                    ],
                )
                .op("upsert member")?;
            }

            let stmt = tx
                .prepare("DELETE FROM members WHERE route = $1 AND vault_id = $2 AND item_id = $3")
                .op("prepare members delete")?;
            for (route, vault, item) in &w.members_gone {
                tx.execute(&stmt, &[route, vault, item])
                    .op("delete member")?;
            }

            let stmt = tx
                .prepare(
                    "INSERT INTO items (vault_id, item_id, version, meta_hash) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (vault_id, item_id) DO UPDATE \
                     SET version = excluded.version, meta_hash = excluded.meta_hash",
                )
                .op("prepare items upsert")?;
            for i in &w.items {
                tx.execute(
                    &stmt,
                    &[&i.vault_id, &i.item_id, &(i.version as i64), &i.meta_hash],
                )
                .op("upsert item")?;
            }

            let stmt = tx
                .prepare("DELETE FROM items WHERE vault_id = $1 AND item_id = $2")
                .op("prepare items delete")?;
            for (vault, item) in &w.items_gone {
                tx.execute(&stmt, &[vault, item]).op("delete item")?;
            }

            let stmt = tx
                .prepare(
                    "INSERT INTO vaults (vault_id, name, content_version, listed_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (vault_id) DO UPDATE SET name = excluded.name, \
                     content_version = excluded.content_version, listed_at = excluded.listed_at",
                )
                .op("prepare vaults upsert")?;
            for v in &w.vaults {
                tx.execute(
                    &stmt,
                    &[
                        &v.vault_id,
                        &v.name,
                        &(v.content_version as i64),
                        &to_millis(v.listed_at),
                    ],
                )
                .op("upsert vault")?;
            }

            let stmt = tx
                .prepare(
                    "INSERT INTO holds (route, deletions, total, max_ratio, since) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (route) DO UPDATE SET deletions = excluded.deletions, \
                     total = excluded.total, max_ratio = excluded.max_ratio",
                )
                .op("prepare holds upsert")?;
            for h in &w.holds {
                tx.execute(
                    &stmt,
                    &[
                        &h.route,
                        &(h.deletions as i64),
                        &(h.total as i64),
                        &h.max_ratio,
                        &to_millis(h.since),
                    ],
                )
                .op("upsert hold")?;
            }

            let stmt = tx
                .prepare("DELETE FROM holds WHERE route = $1")
                .op("prepare holds delete")?;
            for route in &w.holds_cleared {
                tx.execute(&stmt, &[route]).op("clear hold")?;
            }

            let stmt = tx
                .prepare(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .op("prepare meta upsert")?;
            for (k, v) in &w.meta {
                tx.execute(&stmt, &[k, v]).op("write meta")?;
            }

            tx.commit().op("commit poll")?;
            Ok(added)
        })
    }
}
