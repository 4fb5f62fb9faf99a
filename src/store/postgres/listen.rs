//! Wakes a replica's delivery workers when rows are added to the ledger, whichever replica
//! added them: an enqueue notifies [`LEDGER_CHANNEL`] when it commits, and each replica listens
//! on a connection of its own, so followers start on new rows as soon as the leader does.

use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::watch;

use crate::store::postgres::PgTarget;

/// The channel an enqueue that added rows notifies.
pub const LEDGER_CHANNEL: &str = "opsync_ledger";

/// How long the listener waits for a notification before it looks whether anyone still
/// listens to it.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Listens in a thread of its own and ticks `wake` at each notification, until every receiver
/// of `wake` is gone; a lost connection is opened again a second later.
pub fn listen_for_ledger(target: PgTarget, wake: Arc<watch::Sender<u64>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("opsync-pg-listen".into())
        .spawn(move || {
            while listen(&target, &wake) {
                std::thread::sleep(LOOK_EVERY);
            }
        })
        .map(drop)
}

/// One connection's life: `true` to connect again, `false` when nobody listens any more.
fn listen(target: &PgTarget, wake: &watch::Sender<u64>) -> bool {
    let mut client = match target.connect_blocking() {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for new deliveries; trying again");
            return !wake.is_closed();
        }
    };
    if let Err(e) = client.batch_execute(&format!("LISTEN {LEDGER_CHANNEL}")) {
        tracing::warn!(error = %e, "cannot listen for new deliveries; trying again");
        return !wake.is_closed();
    }
    loop {
        if wake.is_closed() {
            return false;
        }
        let mut notifications = client.notifications();
        let mut arrived = notifications.timeout_iter(LOOK_EVERY);
        loop {
            match arrived.next() {
                Ok(Some(_)) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection listening for new deliveries");
                    return !wake.is_closed();
                }
            }
        }
    }
}
