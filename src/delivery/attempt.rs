//! One delivery attempt: read the item from Connect, build the plugin's event (the route's field
//! selection applied), call the destination, and record what happened in the ledger and metrics.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;

use crate::connect::error::ConnectError;
use crate::connect::model::{ApiRequest, Category, IdRef, Item, SecretString};
use crate::delivery::retry::Decision;
use crate::delivery::{Deliverer, DeliveryError};
use crate::domain::{ChangeKind, VaultRef};
use crate::own_events::{self, AuditEvents, OwnAction};
use crate::plugin::{ItemEvent, PluginError};
use crate::route::Route;
use crate::store::{Delivery, DeliveryId, LedgerEntry, RowUpdate};
use crate::telemetry::names;

/// The largest file a route with `files = true` hands to its destinations: above what any of
/// them stores (a Kubernetes Secret holds 1 MiB, an AWS secret 64 KiB), and it keeps a call's
/// memory bounded.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The number of the attempt about to be made at `d`.
pub(crate) fn attempt_of(d: &Delivery) -> u32 {
    d.attempts.saturating_add(1)
}

/// What one attempt came to ([`Deliverer::record`] writes it to the ledger).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The destination took it (`unchanged`: it already held this content; `fingerprint`: what
    /// it now holds, from a plugin that reads back).
    Delivered {
        location: String,
        unchanged: bool,
        fingerprint: Option<String>,
    },
    /// Nothing to deliver any more: a created or updated item is gone from Connect or from the
    /// route, or a deleted one is back. Recorded as done, with this reason as the location.
    Skipped(String),
    /// Failed; tried again after the delay.
    Retry { delay: Duration, error: String },
    /// Failed, and the destination asked to wait (a plugin's retry hint: a rate limit, for one):
    /// tried again after the delay, and the destination's other deliveries of the route wait
    /// as long, so a limit is not met again by each of them in turn.
    Throttled { delay: Duration, error: String },
    /// The destination (or the token) is misconfigured: its deliveries wait this long.
    Paused { pause: Duration, error: String },
    /// Given up: a dead letter with this reason.
    DeadLetter(String),
}

impl Outcome {
    /// What a destination's receipt makes of an attempt.
    pub(crate) fn delivered(receipt: crate::plugin::Receipt) -> Self {
        Self::Delivered {
            location: receipt.location,
            unchanged: receipt.unchanged,
            fingerprint: receipt.fingerprint,
        }
    }

    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Delivered {
                unchanged: false, ..
            } => "delivered",
            Self::Delivered {
                unchanged: true, ..
            } => "unchanged",
            Self::Skipped(_) => "skipped",
            Self::Retry { .. } | Self::Throttled { .. } => "retry",
            Self::Paused { .. } => "misconfigured",
            Self::DeadLetter(_) => "dead_letter",
        }
    }

    /// Whether the row is finished (delivered or skipped).
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Delivered { .. } | Self::Skipped(_))
    }
}

impl Deliverer {
    /// Makes one attempt at `d` without recording it: [`Deliverer::record`] does that, for a
    /// group of finished attempts at once.
    pub(crate) async fn try_deliver(&self, d: &Delivery) -> Outcome {
        let plugin = match self.plugin(&d.entry.destination) {
            Ok(plugin) => plugin,
            Err(error) => return self.unusable(error),
        };
        let event = match self.prepare(d).await {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        match plugin.deliver(&event).await {
            Ok(receipt) => Outcome::delivered(receipt),
            Err(e) => self.failed_attempt(attempt_of(d), &e),
        }
    }

    /// The outcome of a row whose destination plugin is not loaded: its deliveries wait.
    pub(crate) fn unusable(&self, error: String) -> Outcome {
        Outcome::Paused {
            pause: self.policy().misconfigured_pause,
            error,
        }
    }

    /// The plugin's event for `d`, built from the item as Connect has it now (the route's field
    /// selection applied); or the row's outcome when there is nothing to deliver (the item left
    /// the route, is gone, or is back) or Connect failed.
    pub(crate) async fn prepare(&self, d: &Delivery) -> Result<ItemEvent, Outcome> {
        let entry = &d.entry;
        let Some(route) = self.route(&entry.route) else {
            return Err(Outcome::DeadLetter(format!(
                "route `{}` is no longer in the config",
                entry.route
            )));
        };
        let read = self.inner.client.get_item(&entry.vault_id, &entry.item_id);
        let current = match self.in_read_turn(&entry.route, read).await {
            Ok(item) => Some(item),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => None,
            Err(e) => return Err(self.connect_failure(attempt_of(d), "the item", &e)),
        };
        let vault = VaultRef {
            id: entry.vault_id.clone(),
            name: entry.vault_name.clone(),
        };
        let mut renamed_to = None;
        let item = match (entry.kind, current) {
            (ChangeKind::Deleted, Some(item)) if route.selects(&vault, &item) => {
                // Still in the route: under the same key it is back, under another key this is
                // the deletion of a renamed item's old key.
                let key = route.key(&vault, &item);
                if key == entry.key {
                    return Err(Outcome::Skipped(
                        "not deleted: the item is back in the route".into(),
                    ));
                }
                renamed_to = Some(key);
                tombstone(entry, Some(item))
            }
            (ChangeKind::Deleted, current) => tombstone(entry, current),
            (_, None) => {
                return Err(Outcome::Skipped(
                    "skipped: the item is no longer in Connect".into(),
                ));
            }
            (_, Some(item)) if !route.selects(&vault, &item) => {
                return Err(Outcome::Skipped(
                    "skipped: the item has left the route".into(),
                ));
            }
            (_, Some(mut item)) => {
                route.shape(&mut item);
                if route.files {
                    self.read_file_contents(d, &mut item).await?;
                }
                item
            }
        };
        Ok(ItemEvent {
            idempotency_key: entry.idempotency_key(),
            kind: entry.kind,
            vault,
            item,
            destination_key: Some(entry.key.clone()),
            renamed_to,
        })
    }

    /// For a route with `files = true`: the content of each of the item's files, one request
    /// per file to its content endpoint (which, unlike inlining, has no size limit of Connect's
    /// own). A file above [`MAX_FILE_BYTES`] is refused by name before any file is read.
    async fn read_file_contents(&self, d: &Delivery, item: &mut Item) -> Result<(), Outcome> {
        let entry = &d.entry;
        if let Some(big) = item
            .files
            .iter()
            .flatten()
            .find(|f| f.size > MAX_FILE_BYTES)
        {
            return Err(Outcome::DeadLetter(format!(
                "the file `{}` of item {} is {} bytes; route `{}` (`files = true`) passes \
                 files of at most {MAX_FILE_BYTES} bytes to its destinations",
                big.name.escape_debug(),
                entry.item_id,
                big.size,
                entry.route
            )));
        }
        for file in item.files.iter_mut().flatten() {
            let read =
                self.inner
                    .client
                    .get_file_content(&entry.vault_id, &entry.item_id, &file.id);
            match self.in_read_turn(&entry.route, read).await {
                Ok(bytes) => file.content = Some(SecretString::new(STANDARD.encode(bytes))),
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
                    return Err(Outcome::Skipped(
                        "skipped: the item or its file is no longer in Connect".into(),
                    ));
                }
                Err(e) => {
                    let what = format!("the file `{}`", file.name.escape_debug());
                    return Err(self.connect_failure(attempt_of(d), &what, &e));
                }
            }
        }
        Ok(())
    }

    /// What attempt number `attempt` comes to when its plugin failed with `e`: a retry, a pause
    /// or a dead letter, by the error's kind and the retry budget.
    pub(crate) fn failed_attempt(&self, attempt: u32, e: &PluginError) -> Outcome {
        let error = e.to_string();
        match self
            .policy()
            .decide(attempt, e.kind(), e.retry_hint(), &mut rand::thread_rng())
        {
            Decision::Retry(delay) if e.retry_hint().is_some() => {
                Outcome::Throttled { delay, error }
            }
            Decision::Retry(delay) => Outcome::Retry { delay, error },
            Decision::Pause(pause) => Outcome::Paused { pause, error },
            Decision::DeadLetter(why) => Outcome::DeadLetter(format!("{why}: {error}")),
        }
    }

    /// Connect failing at delivery time: an outage is waited out (it does not use the retry
    /// budget, so nothing is dead-lettered because Connect was down); a token refused is a
    /// misconfiguration; anything else cannot succeed.
    fn connect_failure(&self, attempt: u32, what: &str, e: &ConnectError) -> Outcome {
        let error = format!("reading {what} from Connect: {e}");
        if e.is_retryable() {
            let delay = self
                .policy()
                .delay(attempt, e.retry_after(), &mut rand::thread_rng());
            return Outcome::Retry { delay, error };
        }
        match e.status() {
            Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => Outcome::Paused {
                pause: self.policy().misconfigured_pause,
                error,
            },
            _ => Outcome::DeadLetter(error),
        }
    }

    /// Records finished attempts in the ledger, in one transaction, then counts and logs each.
    /// The outer error means nothing was recorded (those rows stay pending and are tried again);
    /// the inner results are per attempt, in order.
    pub(crate) fn record(
        &self,
        finished: &[(&Delivery, &Outcome)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<(), DeliveryError>>, DeliveryError> {
        let later = |delay: &Duration| {
            now + chrono::Duration::from_std(*delay).unwrap_or(chrono::Duration::MAX)
        };
        // The own DELIVER and DEAD_LETTER events commit with their ledger rows (while an export
        // runs).
        let events: Vec<Option<(OwnAction, ApiRequest)>> = finished
            .iter()
            .map(|(d, outcome)| {
                let action = match outcome {
                    Outcome::Delivered { .. } => OwnAction::Deliver,
                    Outcome::DeadLetter(_) => OwnAction::DeadLetter,
                    _ => return None,
                };
                own_event(self.events(), action, &d.entry).map(|event| (action, event))
            })
            .collect();
        let updates: Vec<(DeliveryId, RowUpdate<'_>)> = finished
            .iter()
            .zip(&events)
            .map(|((d, outcome), event)| {
                let event = event.as_ref().map(|(_, event)| event);
                let update = match outcome {
                    Outcome::Delivered {
                        location,
                        fingerprint,
                        ..
                    } => RowUpdate::Delivered {
                        location,
                        at: now,
                        fingerprint: fingerprint.as_deref(),
                        own_event: event,
                    },
                    Outcome::Skipped(why) => RowUpdate::Delivered {
                        location: why,
                        at: now,
                        fingerprint: None,
                        own_event: None,
                    },
                    Outcome::Retry { delay: wait, error }
                    | Outcome::Throttled { delay: wait, error }
                    | Outcome::Paused { pause: wait, error } => RowUpdate::Retry {
                        error,
                        next_attempt_at: later(wait),
                    },
                    Outcome::DeadLetter(reason) => RowUpdate::Dead {
                        reason,
                        at: now,
                        own_event: event,
                    },
                };
                (d.id, update)
            })
            .collect();
        let recorded = self.store().record_updates(&updates)?;
        Ok(finished
            .iter()
            .zip(events)
            .zip(recorded)
            .map(|(((d, outcome), event), recorded)| {
                recorded?;
                if let Some((action, _)) = event {
                    self.events().written(action);
                }
                observe(d, outcome, now);
                Ok(())
            })
            .collect())
    }
}

/// The metrics and the log line of one recorded attempt.
fn observe(d: &Delivery, outcome: &Outcome, now: DateTime<Utc>) {
    let entry = &d.entry;
    match outcome {
        Outcome::Delivered { .. } => {
            let latency = (now - entry.detected_at).to_std().unwrap_or_default();
            metrics::histogram!(names::DELIVERY_LATENCY_SECONDS, "route" => entry.route.clone())
                .record(latency.as_secs_f64());
        }
        Outcome::Retry { .. } | Outcome::Throttled { .. } => {
            metrics::counter!(names::RETRIES_TOTAL, "route" => entry.route.clone(),
                "plugin" => entry.destination.clone(), "kind" => "retryable")
            .increment(1);
        }
        Outcome::Paused { .. } => {
            metrics::counter!(names::RETRIES_TOTAL, "route" => entry.route.clone(),
                "plugin" => entry.destination.clone(), "kind" => "misconfigured")
            .increment(1);
        }
        Outcome::DeadLetter(_) => {
            metrics::counter!(names::DEAD_LETTERS_TOTAL, "route" => entry.route.clone(),
                "plugin" => entry.destination.clone())
            .increment(1);
        }
        Outcome::Skipped(_) => {}
    }
    metrics::counter!(names::DELIVERIES_TOTAL, "route" => entry.route.clone(),
        "plugin" => entry.destination.clone(), "outcome" => outcome.label())
    .increment(1);
    match outcome {
        Outcome::Delivered {
            location,
            unchanged,
            ..
        } => tracing::debug!(
            route = %entry.route, destination = %entry.destination, item = %entry.item_id,
            version = entry.version, kind = entry.kind.as_str(), %location, unchanged,
            "delivered"
        ),
        Outcome::Skipped(why) => tracing::debug!(
            route = %entry.route, destination = %entry.destination, item = %entry.item_id,
            version = entry.version, kind = entry.kind.as_str(), reason = %why, "skipped"
        ),
        Outcome::Retry { delay, error } => tracing::warn!(
            route = %entry.route, destination = %entry.destination, item = %entry.item_id,
            version = entry.version, attempt = d.attempts + 1,
            retry_in_ms = delay.as_millis() as u64, %error, "delivery failed; will retry"
        ),
        Outcome::Throttled { delay, error } => tracing::warn!(
            route = %entry.route, destination = %entry.destination, item = %entry.item_id,
            version = entry.version, attempt = d.attempts + 1,
            retry_in_ms = delay.as_millis() as u64, %error,
            "the destination asked to wait; its deliveries of this route wait"
        ),
        Outcome::Paused { pause, error } => tracing::error!(
            route = %entry.route, destination = %entry.destination,
            pause_s = pause.as_secs(), %error, "destination misconfigured; its deliveries wait"
        ),
        Outcome::DeadLetter(reason) => tracing::error!(
            route = %entry.route, destination = %entry.destination, item = %entry.item_id,
            version = entry.version, %reason, "dead-lettered"
        ),
    }
}

/// What a destination is told about a deleted item: who it was (its title, category and tags as
/// last seen, so the plugin renders the name it wrote), never its fields.
fn tombstone(entry: &crate::store::LedgerEntry, current: Option<Item>) -> Item {
    let mut item = current.unwrap_or_else(|| {
        // Rows enqueued before category was kept have none: CUSTOM, as before.
        let category = if entry.category.is_empty() {
            Category::Custom
        } else {
            Category::from(entry.category.as_str())
        };
        let mut item = Item::new(entry.title.clone(), category);
        item.tags = entry.tags.clone();
        item
    });
    item.id = entry.item_id.clone();
    item.title = entry.title.clone();
    item.vault = IdRef {
        id: entry.vault_id.clone(),
    };
    item.version = item.version.max(entry.version);
    item.sections = None;
    item.fields = None;
    item.files = None;
    item
}

/// Whether `route` exists; used by workers to refuse unknown names early.
pub(crate) fn route_exists(deliverer: &Deliverer, name: &str) -> Result<Route, DeliveryError> {
    deliverer
        .route(name)
        .cloned()
        .ok_or_else(|| DeliveryError::UnknownRoute(name.to_owned()))
}

/// The own audit event reporting `action` on this ledger entry, while the export records them.
fn own_event(events: &AuditEvents, action: OwnAction, entry: &LedgerEntry) -> Option<ApiRequest> {
    events.pending(&own_events::item_event(
        action,
        &entry.route,
        &entry.destination,
        &entry.vault_id,
        &entry.item_id,
        entry.version,
    ))
}
