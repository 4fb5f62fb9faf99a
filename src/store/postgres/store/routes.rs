//! Route and destination status on PostgreSQL, read from the ledger and holds.

use postgres::GenericClient;

use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{DestinationStatus, Hold, RouteStatus, StoreError, from_millis};

/// A count read as BIGINT, as u64.
fn count(row: &postgres::Row, i: usize, op: &'static str) -> Result<u64, StoreError> {
    row.try_get::<_, i64>(i).op(op).map(|n| n.max(0) as u64)
}

/// An optional time in milliseconds.
fn time(
    row: &postgres::Row,
    i: usize,
    op: &'static str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    Ok(row.try_get::<_, Option<i64>>(i).op(op)?.map(from_millis))
}

/// Every hold, by route.
fn holds(c: &mut impl GenericClient) -> Result<Vec<Hold>, StoreError> {
    let rows = c
        .query(
            "SELECT route, deletions, total, max_ratio, since FROM holds \
             ORDER BY route COLLATE \"C\"",
            &[],
        )
        .op("read holds")?;
    rows.iter()
        .map(|r| {
            Ok(Hold {
                route: r.try_get(0).op("read hold")?,
                deletions: count(r, 1, "read hold")?,
                total: count(r, 2, "read hold")?,
                max_ratio: r.try_get(3).op("read hold")?,
                since: from_millis(r.try_get(4).op("read hold")?),
            })
        })
        .collect()
}

impl PgStore {
    /// Per route: last success, pending and dead counts, oldest pending, and a hold if any.
    /// Routes appear once they have a ledger row or a hold.
    pub fn route_status(&self) -> Result<Vec<RouteStatus>, StoreError> {
        self.run(|c| {
            let rows = c
                .query(
                    "SELECT route, \
                       MAX(delivered_at), \
                       COUNT(*) FILTER (WHERE status = 'pending'), \
                       COUNT(*) FILTER (WHERE status = 'dead'), \
                       MIN(CASE WHEN status = 'pending' THEN created_at END), \
                       COUNT(*) FILTER (WHERE status = 'delivered') \
                     FROM ledger GROUP BY route ORDER BY route COLLATE \"C\"",
                    &[],
                )
                .op("read route status")?;
            let mut out = rows
                .iter()
                .map(|r| {
                    let op = "read route status row";
                    Ok(RouteStatus {
                        route: r.try_get(0).op(op)?,
                        last_success: time(r, 1, op)?,
                        pending: count(r, 2, op)?,
                        dead: count(r, 3, op)?,
                        oldest_pending: time(r, 4, op)?,
                        delivered: count(r, 5, op)?,
                        hold: None,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            for hold in holds(c)? {
                match out.iter_mut().find(|s| s.route == hold.route) {
                    Some(s) => s.hold = Some(hold),
                    None => out.push(RouteStatus {
                        route: hold.route.clone(),
                        last_success: None,
                        pending: 0,
                        dead: 0,
                        oldest_pending: None,
                        delivered: 0,
                        hold: Some(hold),
                    }),
                }
            }
            out.sort_by(|a, b| a.route.cmp(&b.route));
            Ok(out)
        })
    }

    /// Per route and destination: pending, retrying and dead counts, the oldest pending change,
    /// the last delivery and the newest error. Pairs appear once they have a ledger row.
    pub fn destination_status(&self) -> Result<Vec<DestinationStatus>, StoreError> {
        self.run(|c| {
            let rows = c
                .query(
                    "SELECT route, destination, \
                       COUNT(*) FILTER (WHERE status = 'pending'), \
                       COUNT(*) FILTER (WHERE status = 'pending' AND attempts > 0), \
                       COUNT(*) FILTER (WHERE status = 'dead'), \
                       MIN(CASE WHEN status = 'pending' THEN created_at END), \
                       MAX(delivered_at), \
                       (SELECT e.last_error FROM ledger e \
                          WHERE e.route = l.route AND e.destination = l.destination \
                            AND e.status IN ('pending', 'dead') AND e.last_error IS NOT NULL \
                          ORDER BY GREATEST(COALESCE(e.dead_at, 0), e.next_attempt_at) DESC, \
                            e.id DESC \
                          LIMIT 1) \
                     FROM ledger l GROUP BY route, destination \
                     ORDER BY route COLLATE \"C\", destination COLLATE \"C\"",
                    &[],
                )
                .op("read destination status")?;
            rows.iter()
                .map(|r| {
                    let op = "read destination status row";
                    Ok(DestinationStatus {
                        route: r.try_get(0).op(op)?,
                        destination: r.try_get(1).op(op)?,
                        pending: count(r, 2, op)?,
                        retrying: count(r, 3, op)?,
                        dead: count(r, 4, op)?,
                        oldest_pending: time(r, 5, op)?,
                        last_delivered: time(r, 6, op)?,
                        last_error: r.try_get(7).op(op)?,
                    })
                })
                .collect()
        })
    }

    /// Routes whose deletions are held.
    pub fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        self.run(holds)
    }

    /// Every ledger row's status counts: (pending, delivered, dead, superseded).
    pub fn counts(&self) -> Result<(u64, u64, u64, u64), StoreError> {
        self.run(|c| {
            let r = c
                .query_one(
                    "SELECT COUNT(*) FILTER (WHERE status = 'pending'), \
                       COUNT(*) FILTER (WHERE status = 'delivered'), \
                       COUNT(*) FILTER (WHERE status = 'dead'), \
                       COUNT(*) FILTER (WHERE status = 'superseded') FROM ledger",
                    &[],
                )
                .op("count ledger rows")?;
            let op = "count ledger rows";
            Ok((
                count(&r, 0, op)?,
                count(&r, 1, op)?,
                count(&r, 2, op)?,
                count(&r, 3, op)?,
            ))
        })
    }
}
