//! One sink's shipping loop: batches from the outbox after the sink's cursor (bounded size, a
//! partial batch waits at most the flush interval), up to `in_flight` `ingest` calls at once
//! through the sink's plugin, the cursor moved only on `ok` and only over batches acknowledged
//! without a gap, backoff on failure, and a record the sink refuses isolated by halving the
//! batch and dead-lettered for this sink alone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::audit::error::AuditError;
use crate::delivery::RetryPolicy;
use crate::own_events::{AuditEvents, OwnAction, OwnEvent, OwnTarget};
use crate::plugin::{FailureKind, Plugin, PluginError};
use crate::shutdown::Shutdown;
use crate::store::{OutboxRecord, SinkStart, Store};
use crate::telemetry::names;

/// How a sink ships.
#[derive(Clone, Debug)]
pub struct ShipOptions {
    pub batch_size: usize,
    /// Batches shipped at once (at least 1).
    pub in_flight: usize,
    pub flush_interval: Duration,
    pub start: SinkStart,
    pub include_own_events: bool,
    /// Backoff after retryable failures; `misconfigured_pause` after a misconfigured one.
    pub retry: RetryPolicy,
    /// After shutdown, how long the batches in flight may still take (one deadline for all).
    pub shutdown_grace: Duration,
    /// `opsync once`: ship what the outbox holds now (a partial batch at once) and return when
    /// it is empty, or at the first failure that needs a wait (retryable, misconfigured).
    pub until_caught_up: bool,
}

/// What a shipping loop did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipReport {
    /// Records acknowledged.
    pub shipped: u64,
    pub batches: u64,
    pub failures: u64,
    /// Records the sink refused permanently.
    pub dead: u64,
    /// The last failure, when the loop stopped on one (`until_caught_up`).
    pub stopped_on: Option<String>,
}

/// The shipping loop of one sink.
pub struct Shipper {
    sink: String,
    plugin: Result<Plugin, String>,
    store: Store,
    options: ShipOptions,
    /// Where a record this sink refused is reported as an own audit event.
    events: AuditEvents,
}

/// Longest sleep without looking at the cursor again (a replay may have moved it).
const RECHECK: Duration = Duration::from_secs(1);

impl Shipper {
    /// `plugin` is the loaded sink plugin, or why it could not be loaded (the sink then waits,
    /// its records kept, and says so in `audit status`).
    pub fn new(
        sink: String,
        plugin: Result<Plugin, String>,
        store: Store,
        options: ShipOptions,
    ) -> Self {
        Self {
            sink,
            plugin,
            store,
            options,
            events: AuditEvents::default(),
        }
    }

    /// Reports the records this sink refuses to `events` (no one is told by default).
    pub fn reporting_to(mut self, events: AuditEvents) -> Self {
        self.events = events;
        self
    }

    /// Ships until `shutdown`; `wake` is bumped when records are added to the outbox.
    pub async fn run(
        self,
        mut wake: watch::Receiver<u64>,
        mut shutdown: Shutdown,
    ) -> Result<ShipReport, AuditError> {
        let sink = self.sink.as_str();
        let opts = &self.options;
        let mut report = ShipReport::default();
        if opts.start == SinkStart::Now && self.store.audit_lag(sink, false)?.is_none() {
            // "now" is after what Connect logged before this sink's first start: wait for the
            // tail's first read, so its records are not taken for new ones.
            while self.store.audit_mark()?.polled_at.is_none() {
                if opts.until_caught_up {
                    report.stopped_on = Some("the activity log has not been read yet".into());
                    return Ok(report);
                }
                if !sleep(&mut shutdown, RECHECK / 4).await {
                    return Ok(report);
                }
            }
        }
        self.store.audit_sink(sink, opts.start)?;
        let plugin = match &self.plugin {
            Ok(p) => p.clone(),
            Err(reason) => {
                self.store.audit_sink_failed(sink, reason)?;
                tracing::error!(sink, error = %reason, "audit sink not usable; its records wait");
                if opts.until_caught_up {
                    report.failures += 1;
                    report.stopped_on = Some(reason.clone());
                    return Ok(report);
                }
                shutdown.wait().await;
                return Ok(report);
            }
        };
        let mut limit = opts.batch_size;
        let mut failures: u32 = 0;
        let mut partial_since: Option<Instant> = None;
        let mut cursor = 0;
        // Batches sent and not yet acknowledged, oldest first; `next` is the seq after which
        // the next batch starts (the cursor when nothing is in flight).
        let mut flight: VecDeque<InFlight> = VecDeque::new();
        let mut next = 0;
        // Set at shutdown: past it, what is still in flight is cut off.
        let mut cut_off: Option<tokio::time::Instant> = None;
        'ship: loop {
            if shutdown.is_triggered() && flight.is_empty() {
                break;
            }
            if flight.is_empty() {
                // Read the cursor again: a replay or a dead letter may have moved it.
                cursor = self.store.audit_sink(sink, opts.start)?.acked_seq;
                next = cursor;
                metrics::gauge!(names::AUDIT_CURSOR, "sink" => sink.to_owned()).set(cursor as f64);
            }
            // Fill the window. While a refused record is being isolated, one batch at a time.
            let window = if limit == opts.batch_size {
                opts.in_flight.max(1)
            } else {
                1
            };
            while flight.len() < window && !shutdown.is_triggered() {
                wake.borrow_and_update();
                let batch = self.batch(next, limit).await?;
                if batch.is_empty() {
                    partial_since = None;
                    break;
                }
                if batch.len() < limit && limit == opts.batch_size && !opts.until_caught_up {
                    if !flight.is_empty() {
                        // The rest of it may still fill up: ship what is in flight first.
                        break;
                    }
                    let since = *partial_since.get_or_insert_with(Instant::now);
                    let left = opts.flush_interval.saturating_sub(since.elapsed());
                    if !left.is_zero() {
                        if !pause(&mut wake, &mut shutdown, left.min(RECHECK)).await {
                            break 'ship;
                        }
                        continue 'ship;
                    }
                }
                partial_since = None;
                next = batch[batch.len() - 1].seq;
                flight.push_back(InFlight::send(&plugin, batch));
            }
            let Some(oldest) = flight.pop_front() else {
                if opts.until_caught_up || shutdown.is_triggered() {
                    break;
                }
                if !pause(&mut wake, &mut shutdown, RECHECK).await {
                    break;
                }
                continue;
            };
            let InFlight {
                batch,
                started,
                mut task,
            } = oldest;
            let result = {
                let mut stop = shutdown.clone();
                let grace = opts.shutdown_grace;
                tokio::select! {
                    joined = &mut task => Some(joined.unwrap_or_else(|e| {
                        Err(PluginError::Trap {
                            plugin: self.plugin_name(),
                            message: format!("the ingest task failed: {e}"),
                        })
                    })),
                    () = async {
                        stop.wait().await;
                        let at = *cut_off.get_or_insert_with(|| tokio::time::Instant::now() + grace);
                        tokio::time::sleep_until(at).await;
                    } => None,
                }
            };
            let (first, last) = (batch[0].seq, batch[batch.len() - 1].seq);
            let Some(result) = result else {
                task.abort();
                abandon(&mut flight);
                tracing::warn!(
                    sink,
                    first,
                    last,
                    "shutdown: a batch in flight was cut off; it is shipped again at the next start"
                );
                break;
            };
            metrics::histogram!(names::AUDIT_BATCH_DURATION_SECONDS, "sink" => sink.to_owned())
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(()) => {
                    let moved = self
                        .store
                        .audit_ack(sink, cursor, last, batch.len() as u64)?;
                    failures = 0;
                    limit = opts.batch_size;
                    report.batches += 1;
                    if moved {
                        cursor = last;
                        report.shipped += batch.len() as u64;
                        metrics::counter!(names::AUDIT_SHIPPED_TOTAL, "sink" => sink.to_owned())
                            .increment(batch.len() as u64);
                        tracing::debug!(
                            sink,
                            records = batch.len(),
                            first,
                            last,
                            "audit batch acknowledged"
                        );
                    } else {
                        // The batches behind it started from the old cursor: let them go.
                        abandon(&mut flight);
                        tracing::info!(
                            sink,
                            "audit cursor moved by a replay meanwhile; the batch counts as shipped again"
                        );
                    }
                }
                Err(e) => {
                    // The batches behind this one are not acknowledged either: the cursor
                    // cannot pass this batch, so they are sent again after it.
                    abandon(&mut flight);
                    report.failures += 1;
                    let error = e.to_string();
                    metrics::counter!(names::AUDIT_FAILURES_TOTAL, "sink" => sink.to_owned(),
                        "kind" => e.kind().as_str())
                    .increment(1);
                    self.store.audit_sink_failed(sink, &error)?;
                    match e.kind() {
                        FailureKind::Permanent if batch.len() > 1 => {
                            // Find the record the sink refuses: ship halves until it is alone.
                            limit = (batch.len() / 2).max(1);
                            tracing::warn!(sink, records = batch.len(), error = %error,
                                "audit sink refused a batch; retrying in halves to find the record");
                        }
                        FailureKind::Permanent => {
                            self.dead_letter(cursor, &batch[0], &error)?;
                            report.dead += 1;
                        }
                        kind => {
                            failures = failures.saturating_add(1);
                            let wait = if kind == FailureKind::Misconfigured {
                                opts.retry.misconfigured_pause
                            } else {
                                opts.retry.delay(failures, None, &mut rand::thread_rng())
                            };
                            if opts.until_caught_up {
                                tracing::warn!(sink, records = batch.len(), error = %error,
                                    "audit batch not acknowledged; the cursor stays");
                                report.stopped_on = Some(error);
                                break;
                            }
                            tracing::warn!(sink, records = batch.len(), failures, error = %error,
                                retry_in_ms = wait.as_millis() as u64,
                                "audit batch not acknowledged; the cursor stays");
                            if !sleep(&mut shutdown, wait).await {
                                break;
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    async fn batch(&self, cursor: i64, limit: usize) -> Result<Vec<OutboxRecord>, AuditError> {
        let store = self.store.clone();
        let own = self.options.include_own_events;
        tokio::task::spawn_blocking(move || store.audit_batch(cursor, limit, own))
            .await
            .map_err(|e| AuditError::Task(e.to_string()))?
            .map_err(AuditError::from)
    }

    fn dead_letter(
        &self,
        cursor: i64,
        record: &OutboxRecord,
        error: &str,
    ) -> Result<(), AuditError> {
        let sink = self.sink.as_str();
        if self.store.audit_dead_letter(sink, cursor, record, error)? {
            metrics::counter!(names::AUDIT_DEAD_TOTAL, "sink" => sink.to_owned()).increment(1);
            tracing::error!(sink, seq = record.seq, request_id = %record.record.request_id,
                error = %error, "audit sink refused a record; dead-lettered for this sink");
            if !record.own {
                self.events.record(OwnEvent {
                    action: OwnAction::DeadLetter,
                    plugin: self.plugin_name(),
                    route: Some(format!("audit:{sink}")),
                    target: OwnTarget::Record(record.record.request_id.clone()),
                });
            }
        }
        Ok(())
    }

    fn plugin_name(&self) -> String {
        match &self.plugin {
            Ok(p) => p.name().to_owned(),
            Err(_) => self.sink.clone(),
        }
    }
}

/// One `ingest` call under way, on its own task (so a second batch is formatted while the
/// first waits for the sink).
struct InFlight {
    batch: Vec<OutboxRecord>,
    started: Instant,
    task: tokio::task::JoinHandle<Result<(), PluginError>>,
}

impl InFlight {
    fn send(plugin: &Plugin, batch: Vec<OutboxRecord>) -> Self {
        let records: Vec<_> = batch.iter().map(|r| r.record.clone()).collect();
        let plugin = plugin.clone();
        Self {
            batch,
            started: Instant::now(),
            task: tokio::spawn(async move { plugin.ingest(&records).await }),
        }
    }
}

/// Drops the batches in flight: their calls are cancelled, and whatever they delivered counts
/// for nothing until the cursor reaches them again (at least once, as after a crash).
fn abandon(flight: &mut VecDeque<InFlight>) {
    for f in flight.drain(..) {
        f.task.abort();
    }
}

/// Waits for new records, `max`, or shutdown; false on shutdown.
async fn pause(wake: &mut watch::Receiver<u64>, shutdown: &mut Shutdown, max: Duration) -> bool {
    tokio::select! {
        () = shutdown.wait() => false,
        changed = wake.changed() => {
            if changed.is_err() {
                // Nobody adds records any more: wait out the interval instead of spinning.
                tokio::time::sleep(max).await;
            }
            true
        }
        () = tokio::time::sleep(max) => true,
    }
}

/// Sleeps `d` unless shutdown comes first; false on shutdown.
async fn sleep(shutdown: &mut Shutdown, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.wait() => false,
        () = tokio::time::sleep(d) => true,
    }
}
