//! Where each route stands, read from the ledger: last success, pending and dead counts, the
//! oldest pending change, held deletions, and the ledger's totals.

use crate::store::error::{SqlContext, StoreError};
use crate::store::{DestinationStatus, Hold, RouteStatus, SqliteStore, from_millis};

impl SqliteStore {
    /// Per route: last success, pending and dead counts, oldest pending, and a hold if any.
    /// Routes appear once they have a ledger row or a hold.
    pub fn route_status(&self) -> Result<Vec<RouteStatus>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT route, \
                   MAX(delivered_at), \
                   SUM(status = 'pending'), \
                   SUM(status = 'dead'), \
                   MIN(CASE WHEN status = 'pending' THEN created_at END), \
                   SUM(status = 'delivered') \
                 FROM ledger GROUP BY route ORDER BY route",
            )
            .op("prepare route status")?;
        let rows = stmt
            .query_map([], |r| {
                let last: Option<i64> = r.get(1)?;
                let pending: i64 = r.get(2)?;
                let dead: i64 = r.get(3)?;
                let oldest: Option<i64> = r.get(4)?;
                let delivered: i64 = r.get(5)?;
                Ok(RouteStatus {
                    route: r.get(0)?,
                    last_success: last.map(from_millis),
                    pending: pending.max(0) as u64,
                    dead: dead.max(0) as u64,
                    oldest_pending: oldest.map(from_millis),
                    delivered: delivered.max(0) as u64,
                    hold: None,
                })
            })
            .op("read route status")?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.op("read route status row")?);
        }
        drop(stmt);
        drop(conn);
        for hold in self.holds()? {
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
    }

    /// Per route and destination: pending, retrying and dead counts, the oldest pending change,
    /// the last delivery and the newest error. Pairs appear once they have a ledger row.
    pub fn destination_status(&self) -> Result<Vec<DestinationStatus>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT route, destination, \
                   SUM(status = 'pending'), \
                   SUM(status = 'pending' AND attempts > 0), \
                   SUM(status = 'dead'), \
                   MIN(CASE WHEN status = 'pending' THEN created_at END), \
                   MAX(delivered_at), \
                   (SELECT e.last_error FROM ledger e \
                      WHERE e.route = l.route AND e.destination = l.destination \
                        AND e.status IN ('pending', 'dead') AND e.last_error IS NOT NULL \
                      ORDER BY MAX(COALESCE(e.dead_at, 0), e.next_attempt_at) DESC, e.id DESC \
                      LIMIT 1) \
                 FROM ledger l GROUP BY route, destination ORDER BY route, destination",
            )
            .op("prepare destination status")?;
        let rows = stmt
            .query_map([], |r| {
                let count = |i: usize| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
                Ok(DestinationStatus {
                    route: r.get(0)?,
                    destination: r.get(1)?,
                    pending: count(2)?,
                    retrying: count(3)?,
                    dead: count(4)?,
                    oldest_pending: r.get::<_, Option<i64>>(5)?.map(from_millis),
                    last_delivered: r.get::<_, Option<i64>>(6)?.map(from_millis),
                    last_error: r.get(7)?,
                })
            })
            .op("read destination status")?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.op("read destination status row")?);
        }
        Ok(out)
    }

    /// Routes whose deletions are held.
    pub fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT route, deletions, total, max_ratio, since FROM holds ORDER BY route",
            )
            .op("prepare holds")?;
        let rows = stmt
            .query_map([], |r| {
                let deletions: i64 = r.get(1)?;
                let total: i64 = r.get(2)?;
                Ok(Hold {
                    route: r.get(0)?,
                    deletions: deletions.max(0) as u64,
                    total: total.max(0) as u64,
                    max_ratio: r.get(3)?,
                    since: from_millis(r.get(4)?),
                })
            })
            .op("read holds")?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.op("read hold")?);
        }
        Ok(out)
    }

    /// Every ledger row's status counts: (pending, delivered, dead, superseded).
    pub fn counts(&self) -> Result<(u64, u64, u64, u64), StoreError> {
        self.conn()
            .query_row(
                "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'delivered'), 0), \
                 COALESCE(SUM(status = 'dead'), 0), COALESCE(SUM(status = 'superseded'), 0) FROM ledger",
                [],
                |r| {
                    let g = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok((g(0)?, g(1)?, g(2)?, g(3)?))
                },
            )
            .op("count ledger rows")
    }
}
