//! Delivery claims on PostgreSQL: each replica claims due ledger rows with `FOR UPDATE SKIP
//! LOCKED`, within a cap per route held across replicas, one row at a time per (destination,
//! item), until a deadline it renews by claiming again; recording an outcome frees a row.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{Claim, ClaimCount, Delivery, StoreError, to_millis};

use super::ledger::{ENTRY_COLUMNS, delivery_of};

/// The first key of the transaction-scoped advisory lock taken per route while claiming
/// ("claim" in ASCII); the second is the route name's hash. Claims of one route are counted
/// and made one replica at a time, so the cap holds; other routes are not held up.
const CLAIM_LOCK: i32 = 0x63_6c_61_69;

/// The SQL condition "the claim on ledger row `{row}` still holds" at `$now` (milliseconds),
/// with `$stale` the seconds after which a silent replica's claims lapse.
fn live(row: &str) -> String {
    format!(
        "({row}.claimed_by IS NOT NULL AND {row}.claimed_until > $2 \
          AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = {row}.claimed_by \
                          AND r.seen_at < now() - make_interval(secs => $3)))"
    )
}

impl PgStore {
    /// Pending rows of `route` due at `now`, oldest first: those `claim.claimant` already holds
    /// (their claims renewed) and, within `limit`, the route's cap and this replica's share of
    /// it (the cap over the replicas heartbeating), free ones claimed for it. A row is free when unclaimed, or its claim ran out, or its claimant's heartbeat
    /// stopped; a row whose (destination, item) has another row claimed is not taken.
    pub fn claim_due(
        &self,
        route: &str,
        claim: &Claim,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (route, claim) = (route.to_owned(), claim.clone());
        let now_ms = to_millis(now);
        let until = to_millis(now + chrono::Duration::from_std(claim.timeout).unwrap_or_default());
        let stale = claim.heartbeat_stale.as_secs_f64();
        self.run(move |c| {
            // An idle queue costs one statement, not a transaction: nothing due, nothing to
            // renew or take (a replica's own claims are due pending rows too).
            let due = c
                .query_opt(
                    "SELECT 1 FROM ledger WHERE route = $1 AND status = 'pending' \
                     AND next_attempt_at <= $2 LIMIT 1",
                    &[&route, &now_ms],
                )
                .op("look for due rows")?;
            if due.is_none() {
                return Ok(Vec::new());
            }
            let mut tx = c.transaction().op("begin a claim")?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&CLAIM_LOCK, &route],
            )
            .op("lock the route's claims")?;
            let mut rows = renew(&mut tx, &route, &claim.claimant, now_ms, until)?;
            let held = held(&mut tx, &route, now_ms, stale)?;
            // A fair share of the cap each, so that one replica does not hold every row while
            // it can work on only some of them at once.
            let share = claim.cap.div_ceil(live_replicas(&mut tx, stale)?.max(1));
            let room = limit
                .min(share)
                .saturating_sub(rows.len())
                .min(claim.cap.saturating_sub(held));
            if room > 0 {
                rows.extend(take(
                    &mut tx,
                    &route,
                    &claim.claimant,
                    now_ms,
                    until,
                    stale,
                    room,
                )?);
            }
            tx.commit().op("commit a claim")?;
            rows.sort_by_key(|d| (d.next_attempt_at, d.id));
            Ok(rows)
        })
    }

    /// Frees the pending rows of `route` that `claimant` holds (they go back to the queue);
    /// returns how many.
    pub fn release_claims(&self, route: &str, claimant: &str) -> Result<u64, StoreError> {
        let (route, claimant) = (route.to_owned(), claimant.to_owned());
        self.run(move |c| {
            // Rows locked in id order, as every statement that locks several ledger rows does,
            // so that none of them waits on another in a cycle.
            c.execute(
                "UPDATE ledger SET claimed_by = NULL, claimed_until = NULL \
                 WHERE id IN (SELECT id FROM ledger WHERE route = $1 AND claimed_by = $2 \
                              ORDER BY id FOR UPDATE)",
                &[&route, &claimant],
            )
            .op("release claims")
        })
    }

    /// The claims that hold now, per replica and route.
    pub fn claims(&self) -> Result<Vec<ClaimCount>, StoreError> {
        self.run(move |c| {
            let rows = c
                .query(
                    "SELECT claimed_by, route, count(*) FROM ledger \
                     WHERE claimed_by IS NOT NULL AND claimed_until > $1 \
                     GROUP BY claimed_by, route ORDER BY claimed_by, route",
                    &[&to_millis(Utc::now())],
                )
                .op("read claims")?;
            rows.iter()
                .map(|r| {
                    Ok(ClaimCount {
                        claimant: r.try_get(0).op("read claims")?,
                        route: r.try_get(1).op("read claims")?,
                        rows: r.try_get::<_, i64>(2).op("read claims")?.max(0) as u64,
                    })
                })
                .collect()
        })
    }
}

/// Renews `claimant`'s claims on due pending rows of `route` and returns those rows; a row
/// locked meanwhile (its outcome being recorded) is skipped, not waited for.
fn renew(
    tx: &mut impl GenericClient,
    route: &str,
    claimant: &str,
    now: i64,
    until: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "WITH mine AS ( \
                   SELECT id FROM ledger \
                   WHERE route = $1 AND claimed_by = $3 AND claimed_until > $2 \
                     AND status = 'pending' AND next_attempt_at <= $2 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE ledger SET claimed_until = $4 FROM mine WHERE ledger.id = mine.id \
                 RETURNING {columns}",
                columns = qualified(ENTRY_COLUMNS)
            ),
            &[&route, &now, &claimant, &until],
        )
        .op("renew claims")?;
    rows.iter().map(delivery_of).collect()
}

/// How many replicas have heartbeated within `stale` seconds.
fn live_replicas(tx: &mut impl GenericClient, stale: f64) -> Result<usize, StoreError> {
    let n: i64 = tx
        .query_one(
            "SELECT count(*) FROM replicas WHERE seen_at >= now() - make_interval(secs => $1)",
            &[&stale],
        )
        .op("count replicas")?
        .try_get(0)
        .op("count replicas")?;
    Ok(n.max(0) as usize)
}

/// How many rows of `route` are claimed now, by every replica (superseded rows still in
/// flight included).
fn held(
    tx: &mut impl GenericClient,
    route: &str,
    now: i64,
    stale: f64,
) -> Result<usize, StoreError> {
    let n: i64 = tx
        .query_one(
            &format!(
                "SELECT count(*) FROM ledger l WHERE l.route = $1 AND {}",
                live("l")
            ),
            &[&route, &now, &stale],
        )
        .op("count claims")?
        .try_get(0)
        .op("count claims")?;
    Ok(n.max(0) as usize)
}

/// Claims up to `room` free due rows of `route` for `claimant`, skipping rows another
/// transaction has locked.
fn take(
    tx: &mut impl GenericClient,
    route: &str,
    claimant: &str,
    now: i64,
    until: i64,
    stale: f64,
    room: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let room = room.min(i64::MAX as usize) as i64;
    let rows = tx
        .query(
            &format!(
                "WITH free AS ( \
                   SELECT l.id FROM ledger l \
                   WHERE l.route = $1 AND l.status = 'pending' AND l.next_attempt_at <= $2 \
                     AND NOT {live_l} \
                     AND NOT EXISTS (SELECT 1 FROM ledger o \
                                     WHERE o.route = l.route AND o.destination = l.destination \
                                       AND o.item_id = l.item_id AND o.id <> l.id AND {live_o}) \
                   ORDER BY l.next_attempt_at, l.id LIMIT $6 \
                   FOR UPDATE OF l SKIP LOCKED) \
                 UPDATE ledger SET claimed_by = $4, claimed_until = $5 \
                 FROM free WHERE ledger.id = free.id \
                 RETURNING {columns}",
                live_l = live("l"),
                live_o = live("o"),
                columns = qualified(ENTRY_COLUMNS),
            ),
            &[&route, &now, &stale, &claimant, &until, &room],
        )
        .op("claim due rows")?;
    rows.iter().map(delivery_of).collect()
}

/// `ENTRY_COLUMNS` qualified by the `ledger` table, for a statement that joins it.
fn qualified(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("ledger.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
