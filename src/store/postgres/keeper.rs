//! The lease keeper: claims and renews the leader lease on a timer and tells the rest of the
//! daemon whether this replica leads, and with which epoch. It steps down by its own clock when
//! renewals fail, before the lease can have run out in the database.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::Client;

use crate::shutdown::Shutdown;
use crate::store::postgres::lease::{Lease, Standing};
use crate::store::postgres::replicas::{self, Replica};
use crate::store::postgres::{PgError, PgTarget};

/// This replica's part, as the keeper last knew it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not leading: the leader's id and epoch when known.
    Follower { leader: Option<String>, epoch: i64 },
    /// Leading with this epoch: every leader write carries it.
    Leader { epoch: i64 },
}

impl Role {
    /// The epoch this replica leads with, if it does.
    pub fn leading(&self) -> Option<i64> {
        match self {
            Role::Leader { epoch } => Some(*epoch),
            Role::Follower { .. } => None,
        }
    }
}

/// How long the lease lasts and how often it is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    pub lease: Duration,
    pub renew_every: Duration,
}

/// Keeps one replica's claim on one lease.
pub struct Keeper {
    target: PgTarget,
    lease: Lease,
    replica: Replica,
    timing: LeaseTiming,
}

impl Keeper {
    pub fn new(target: PgTarget, lease: Lease, replica: Replica, timing: LeaseTiming) -> Keeper {
        Keeper {
            target,
            lease,
            replica,
            timing,
        }
    }

    /// Claims and renews until shutdown, publishing each change of role on `role`; at shutdown
    /// it releases the lease, so a follower takes over at its next renewal.
    pub async fn run(self, role: watch::Sender<Role>, mut shutdown: Shutdown) {
        let mut client: Option<Client> = None;
        // Until when this replica may act as leader by its own clock.
        let mut deadline: Option<Instant> = None;
        loop {
            let started = Instant::now();
            // A slow answer is still a good one (the database's clock decides), so a renewal
            // may take until the lease held now runs out, or a whole lease when none is held.
            let until = deadline.unwrap_or(started + self.timing.lease);
            match self.renew(&mut client, until).await {
                Ok(Standing::Leader { epoch, remaining }) => {
                    // The database's remaining time counted from before the request was sent:
                    // never later than the lease's real end.
                    deadline = Some(started + remaining);
                    if role.borrow().leading() != Some(epoch) {
                        tracing::info!(epoch, replica = %self.replica.id, "leading");
                        role.send_replace(Role::Leader { epoch });
                    }
                }
                Ok(Standing::Follower { holder, epoch }) => {
                    deadline = None;
                    let now = Role::Follower {
                        leader: holder,
                        epoch,
                    };
                    if *role.borrow() != now {
                        role.send_replace(now);
                    }
                }
                Err(e) => {
                    client = None;
                    tracing::warn!(error = %e, "cannot renew the leader lease");
                }
            }
            step_down_when_run_out(&mut deadline, &role);
            let next = started + self.timing.renew_every;
            let wake = deadline.map_or(next, |d| d.min(next));
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                () = shutdown.wait() => break,
            }
            step_down_when_run_out(&mut deadline, &role);
        }
        let epoch = role.borrow().leading();
        self.leave(client, epoch).await;
    }

    /// One claim on a connection that is opened again when the last one failed, and one
    /// heartbeat; both done by `until`.
    async fn renew(
        &self,
        client: &mut Option<Client>,
        until: Instant,
    ) -> Result<Standing, PgError> {
        let bound = until.saturating_duration_since(Instant::now());
        let attempt = async {
            if client.is_none() {
                *client = Some(self.target.connect().await?);
            }
            let c = client.as_ref().ok_or(PgError::Closed)?;
            let standing = self.lease.claim(c).await?;
            replicas::heartbeat(c, &self.replica).await?;
            Ok(standing)
        };
        match tokio::time::timeout_at(until, attempt).await {
            Ok(result) => result,
            Err(_) => Err(PgError::Timeout {
                op: "renew the lease",
                after: bound,
            }),
        }
    }

    /// At shutdown: give the lease up when held, and leave the registry.
    async fn leave(&self, client: Option<Client>, epoch: Option<i64>) {
        let Some(client) = client else { return };
        if let Some(epoch) = epoch
            && let Err(e) = self.lease.release(&client, epoch).await
        {
            tracing::warn!(error = %e, "cannot release the leader lease");
        }
        if let Err(e) = replicas::leave(&client, &self.replica).await {
            tracing::debug!(error = %e, "cannot leave the replicas registry");
        }
    }
}

/// Steps down when the lease this replica held has run out by its own clock without a renewal.
fn step_down_when_run_out(deadline: &mut Option<Instant>, role: &watch::Sender<Role>) {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        tracing::warn!("the leader lease ran out before it was renewed: stepping down");
        *deadline = None;
        role.send_replace(Role::Follower {
            leader: None,
            epoch: 0,
        });
    }
}
