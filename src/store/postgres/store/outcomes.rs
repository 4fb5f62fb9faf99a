//! Delivery outcomes on PostgreSQL recorded a group at a time: one statement per kind of
//! outcome (delivered, retry, dead), one or two for the fingerprints and one for the rows that
//! were not there, instead of several per row; the same effects as applying each in order.

use std::collections::HashSet;

use postgres::GenericClient;

use crate::connect::model::ApiRequest;
use crate::store::error::PgOp;
use crate::store::{DeliveryId, StoreError};

use super::ledger::{Update, apply, exists};

/// Applies `updates` in one go inside the caller's transaction; says, in order, whether each
/// row was there. A group naming a row twice is applied one update at a time, in order.
pub(super) fn apply_group(
    tx: &mut impl GenericClient,
    updates: &[(DeliveryId, Update)],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut ids = HashSet::new();
    if !updates.iter().all(|(id, _)| ids.insert(*id)) {
        return one_by_one(tx, updates);
    }
    lock_in_order(tx, updates)?;
    let mut changed = delivered(tx, updates)?;
    changed.extend(retried(tx, updates)?);
    changed.extend(dead(tx, updates)?);
    let events: Vec<ApiRequest> = updates
        .iter()
        .filter(|(id, _)| changed.contains(id))
        .filter_map(|(_, u)| match u {
            Update::Delivered { own_event, .. } | Update::Dead { own_event, .. } => {
                own_event.clone()
            }
            Update::Retry { .. } => None,
        })
        .collect();
    super::audit::insert_records(tx, &events, true)?;
    let missing: Vec<DeliveryId> = updates
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !changed.contains(id))
        .collect();
    let present = present(tx, &missing)?;
    Ok(updates
        .iter()
        .map(|(id, _)| {
            if changed.contains(id) || present.contains(id) {
                Ok(())
            } else {
                Err(StoreError::NoSuchDelivery(*id))
            }
        })
        .collect())
}

/// Locks the group's rows in id order first, as every statement that locks several ledger rows
/// does (a poll's supersession, claims handed back), so that none waits on another in a cycle.
fn lock_in_order(
    tx: &mut impl GenericClient,
    updates: &[(DeliveryId, Update)],
) -> Result<(), StoreError> {
    let ids: Vec<DeliveryId> = updates.iter().map(|(id, _)| *id).collect();
    tx.execute(
        "SELECT id FROM ledger WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .op("lock the rows to record")
    .map(drop)
}

/// The rare path: each update on its own, in order.
fn one_by_one(
    tx: &mut impl GenericClient,
    updates: &[(DeliveryId, Update)],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut found = Vec::with_capacity(updates.len());
    for (id, update) in updates {
        found.push(if apply(tx, *id, update)? > 0 {
            Ok(())
        } else {
            exists(tx, *id)
        });
    }
    Ok(found)
}

/// Marks the delivered rows (a row superseded while in flight included) and records what each
/// left at its destination; returns the rows changed.
fn delivered(
    tx: &mut impl GenericClient,
    updates: &[(DeliveryId, Update)],
) -> Result<HashSet<DeliveryId>, StoreError> {
    let (mut ids, mut ats, mut locations, mut fingerprints) = (vec![], vec![], vec![], vec![]);
    for (id, u) in updates {
        if let Update::Delivered {
            location,
            at,
            fingerprint,
            ..
        } = u
        {
            ids.push(*id);
            ats.push(*at);
            locations.push(location.as_str());
            fingerprints.push(fingerprint.as_deref());
        }
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let changed: HashSet<DeliveryId> = tx
        .query(
            "UPDATE ledger l SET status = 'delivered', attempts = l.attempts + 1, \
               delivered_at = n.at, location = n.location, last_error = NULL, \
               claimed_by = NULL, claimed_until = NULL \
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS n (id, at, location) \
             WHERE l.id = n.id AND l.status IN ('pending', 'superseded', 'delivered') \
             RETURNING l.id",
            &[&ids, &ats, &locations],
        )
        .op("mark delivered")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let keep = |i: &usize| changed.contains(&ids[*i]);
    let (with, without): (Vec<usize>, Vec<usize>) = (0..ids.len())
        .filter(keep)
        .partition(|i| fingerprints[*i].is_some());
    if !with.is_empty() {
        let pick = |f: &dyn Fn(usize) -> i64| with.iter().map(|i| f(*i)).collect::<Vec<_>>();
        let fps: Vec<&str> = with.iter().filter_map(|i| fingerprints[*i]).collect();
        // One row per (route, destination, item), the last given winning, as applied in order.
        tx.execute(
            "INSERT INTO fingerprints (route, destination, item_id, vault_id, key, version, \
               fingerprint, delivered_at) \
             SELECT DISTINCT ON (l.route, l.destination, l.item_id) \
                    l.route, l.destination, l.item_id, l.vault_id, l.key, l.version, \
                    n.fingerprint, n.at \
               FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY \
                    AS n (id, fingerprint, at, ord) \
               JOIN ledger l ON l.id = n.id \
              WHERE l.kind <> 'deleted' \
              ORDER BY l.route, l.destination, l.item_id, n.ord DESC \
             ON CONFLICT (route, destination, item_id) DO UPDATE SET \
               vault_id = excluded.vault_id, key = excluded.key, version = excluded.version, \
               fingerprint = excluded.fingerprint, delivered_at = excluded.delivered_at, \
               drift = NULL, drift_at = NULL",
            &[&pick(&|i| ids[i]), &fps, &pick(&|i| ats[i])],
        )
        .op("record fingerprints")?;
    }
    if !without.is_empty() {
        // A deletion of a key forgets it; a write without a fingerprint leaves the older one
        // unchecked (it may no longer describe the destination).
        let gone: Vec<DeliveryId> = without.iter().map(|i| ids[*i]).collect();
        tx.execute(
            "DELETE FROM fingerprints f USING ledger l \
              WHERE l.id = ANY($1) AND f.route = l.route AND f.destination = l.destination \
                AND f.item_id = l.item_id AND f.key = l.key",
            &[&gone],
        )
        .op("forget fingerprints")?;
    }
    Ok(changed)
}

/// Reschedules the failed pending rows; returns the rows changed.
fn retried(
    tx: &mut impl GenericClient,
    updates: &[(DeliveryId, Update)],
) -> Result<HashSet<DeliveryId>, StoreError> {
    let (mut ids, mut errors, mut nexts) = (vec![], vec![], vec![]);
    for (id, u) in updates {
        if let Update::Retry {
            error,
            next_attempt_at,
        } = u
        {
            ids.push(*id);
            errors.push(error.as_str());
            nexts.push(*next_attempt_at);
        }
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(tx
        .query(
            "UPDATE ledger l SET attempts = l.attempts + 1, last_error = n.error, \
               next_attempt_at = n.next, claimed_by = NULL, claimed_until = NULL \
             FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS n (id, error, next) \
             WHERE l.id = n.id AND l.status = 'pending' RETURNING l.id",
            &[&ids, &errors, &nexts],
        )
        .op("mark retry")?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Gives rows up as dead letters (a superseded row stays superseded); returns the rows changed.
fn dead(
    tx: &mut impl GenericClient,
    updates: &[(DeliveryId, Update)],
) -> Result<HashSet<DeliveryId>, StoreError> {
    let (mut ids, mut reasons, mut ats) = (vec![], vec![], vec![]);
    for (id, u) in updates {
        if let Update::Dead { reason, at, .. } = u {
            ids.push(*id);
            reasons.push(reason.as_str());
            ats.push(*at);
        }
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(tx
        .query(
            "UPDATE ledger l SET status = 'dead', attempts = l.attempts + 1, \
               last_error = n.reason, dead_at = n.at, claimed_by = NULL, claimed_until = NULL \
             FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS n (id, reason, at) \
             WHERE l.id = n.id AND l.status IN ('pending', 'dead') RETURNING l.id",
            &[&ids, &reasons, &ats],
        )
        .op("dead-letter")?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Which of `ids` the ledger has.
fn present(
    tx: &mut impl GenericClient,
    ids: &[DeliveryId],
) -> Result<HashSet<DeliveryId>, StoreError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(tx
        .query("SELECT id FROM ledger WHERE id = ANY($1)", &[&ids])
        .op("look deliveries up")?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
