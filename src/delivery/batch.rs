//! A batch attempt: several due rows of one route and destination handed to the plugin in one
//! call (ABI 0.2.0 `deliver-batch`, one fresh sandbox), with an outcome per row, so a failure
//! retries only its own change. The items are read from Connect a few at a time first.

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt as _;

use crate::delivery::Deliverer;
use crate::delivery::attempt::{Outcome, attempt_of};
use crate::plugin::ItemEvent;
use crate::store::Delivery;

/// One row's event being built.
type Prepared<'a> = Pin<Box<dyn Future<Output = Result<ItemEvent, Outcome>> + Send + 'a>>;

/// Connect reads of one batch under way at once (within the route's read turns).
const READ_AHEAD: usize = 8;

impl Deliverer {
    /// Makes one attempt at each row of `rows` (one route, one destination) without recording
    /// them: a row alone goes through [`Deliverer::try_deliver`], more in one plugin call. A
    /// failure of the whole call (a trap, a limit) is every row's failure.
    pub(crate) async fn try_deliver_batch(&self, rows: Vec<Delivery>) -> Vec<(Delivery, Outcome)> {
        if rows.len() <= 1 {
            let mut out = Vec::with_capacity(1);
            for d in rows {
                let outcome = self.try_deliver(&d).await;
                out.push((d, outcome));
            }
            return out;
        }
        let plugin = match rows.first().map(|d| self.plugin(&d.entry.destination)) {
            Some(Ok(plugin)) => plugin.clone(),
            Some(Err(error)) => {
                return rows
                    .into_iter()
                    .map(|d| (d, self.unusable(error.clone())))
                    .collect();
            }
            None => return Vec::new(),
        };
        // Boxed with their type named: a spawned task cannot hold the closure's own future type.
        let reads: Vec<Prepared<'_>> = rows
            .iter()
            .map(|d| Box::pin(self.prepare(d)) as _)
            .collect();
        let prepared: Vec<_> = futures_util::stream::iter(reads)
            .buffered(READ_AHEAD)
            .collect()
            .await;
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(rows.len());
        let mut events = Vec::new();
        let mut slots = Vec::new();
        for (i, prepared) in prepared.into_iter().enumerate() {
            match prepared {
                Ok(event) => {
                    events.push(event);
                    slots.push(i);
                    outcomes.push(None);
                }
                Err(outcome) => outcomes.push(Some(outcome)),
            }
        }
        match plugin.deliver_batch(&events).await {
            Ok(results) => {
                for (slot, result) in slots.iter().zip(results) {
                    outcomes[*slot] = Some(match result {
                        Ok(receipt) => Outcome::delivered(receipt),
                        Err(e) => self.failed_attempt(attempt_of(&rows[*slot]), &e),
                    });
                }
            }
            Err(e) => {
                for slot in &slots {
                    outcomes[*slot] = Some(self.failed_attempt(attempt_of(&rows[*slot]), &e));
                }
            }
        }
        rows.into_iter()
            .zip(outcomes)
            .map(|(d, outcome)| {
                // A result the plugin did not give (a short answer is refused by the host).
                let outcome = outcome.unwrap_or_else(|| Outcome::Retry {
                    delay: self.policy().base,
                    error: "the plugin gave no result for this change".into(),
                });
                (d, outcome)
            })
            .collect()
    }
}
