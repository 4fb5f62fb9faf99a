//! The leader lease and the replicas' heartbeats as `status` shows them.

use std::time::Duration;

use crate::store::error::PgOp;
use crate::store::postgres::lease::{LEASE_ROW, lease_of};
use crate::store::postgres::replicas::{SEEN, seen_of};
use crate::store::postgres::{LEADER_LEASE, PgStore};
use crate::store::{Leadership, StoreError};

impl PgStore {
    /// The leader lease, and the replicas whose heartbeat is younger than `within`.
    pub fn leadership(&self, within: Duration) -> Result<Leadership, StoreError> {
        self.run(move |c| {
            let lease = c
                .query_opt(LEASE_ROW, &[&LEADER_LEASE])
                .op("read the lease")?
                .as_ref()
                .map(lease_of);
            let replicas = c
                .query(SEEN, &[&within.as_secs_f64()])
                .op("list replicas")?
                .iter()
                .map(seen_of)
                .collect();
            Ok(Leadership { lease, replicas })
        })
    }
}
