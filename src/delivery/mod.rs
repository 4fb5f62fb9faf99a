//! Delivery: per-route workers that take due ledger entries, read the item from Connect, hand it
//! to each destination plugin, and record the outcome (delivered, retry later, dead letter).

mod retry;

pub use retry::{Decision, MAX_RETRY_AFTER, RetryPolicy};
