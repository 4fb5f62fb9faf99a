//! One sink's shipping loop: batches from the outbox after the sink's cursor (bounded size, a
//! partial batch waits at most the flush interval), up to `in_flight` `ingest` calls at once
//! through the sink's plugin, the cursor moved only on `ok` and only over batches acknowledged
//! without a gap, backoff on failure, and a record the sink refuses isolated by halving the
//! batch and dead-lettered for this sink alone.

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

mod window;

use window::{Fill, InFlight, Window, abandon};

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
        let mut run = Window::new(self.options.batch_size);
        if !self
            .wait_for_first_read(&mut run.report, &mut shutdown)
            .await?
        {
            return Ok(run.report);
        }
        self.store.audit_sink(&self.sink, self.options.start)?;
        let Some(plugin) = self.usable_plugin(&mut run.report, &mut shutdown).await? else {
            return Ok(run.report);
        };
        loop {
            if shutdown.is_triggered() && run.flight.is_empty() {
                break;
            }
            if run.flight.is_empty() {
                self.reread_cursor(&mut run)?;
            }
            match self
                .fill(&mut run, &plugin, &mut wake, &mut shutdown)
                .await?
            {
                Fill::Ready => {}
                Fill::Again => continue,
                Fill::Stop => break,
            }
            let Some(oldest) = run.flight.pop_front() else {
                if self.options.until_caught_up
                    || shutdown.is_triggered()
                    || !pause(&mut wake, &mut shutdown, RECHECK).await
                {
                    break;
                }
                continue;
            };
            if !self.settle(&mut run, oldest, &mut shutdown).await? {
                break;
            }
        }
        Ok(run.report)
    }

    /// With `start = "now"` and no cursor yet, waits for the tail's first read: "now" is after
    /// what Connect logged before this sink's first start, and those records are not new ones.
    /// False when the loop should end instead (shutdown, or `once` before any read).
    async fn wait_for_first_read(
        &self,
        report: &mut ShipReport,
        shutdown: &mut Shutdown,
    ) -> Result<bool, AuditError> {
        if self.options.start != SinkStart::Now
            || self.store.audit_lag(&self.sink, false)?.is_some()
        {
            return Ok(true);
        }
        while self.store.audit_mark()?.polled_at.is_none() {
            if self.options.until_caught_up {
                report.stopped_on = Some("the activity log has not been read yet".into());
                return Ok(false);
            }
            if !sleep(shutdown, RECHECK / 4).await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The sink's plugin, or `None` after recording why it is not usable and waiting for
    /// shutdown (its records are kept for when it is).
    async fn usable_plugin(
        &self,
        report: &mut ShipReport,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Plugin>, AuditError> {
        let reason = match &self.plugin {
            Ok(p) => return Ok(Some(p.clone())),
            Err(reason) => reason,
        };
        let sink = self.sink.as_str();
        self.store.audit_sink_failed(sink, reason)?;
        tracing::error!(sink, error = %reason, "audit sink not usable; its records wait");
        if self.options.until_caught_up {
            report.failures += 1;
            report.stopped_on = Some(reason.clone());
        } else {
            shutdown.wait().await;
        }
        Ok(None)
    }

    /// Reads the cursor again when nothing is in flight: a replay or a dead letter may have
    /// moved it.
    fn reread_cursor(&self, run: &mut Window) -> Result<(), AuditError> {
        let sink = self.sink.as_str();
        run.cursor = self.store.audit_sink(sink, self.options.start)?.acked_seq;
        run.next = run.cursor;
        metrics::gauge!(names::AUDIT_CURSOR, "sink" => sink.to_owned()).set(run.cursor as f64);
        Ok(())
    }

    /// Sends batches until the window is full. While a refused record is being isolated, the
    /// window is one batch. A partial batch waits up to the flush interval for more records.
    async fn fill(
        &self,
        run: &mut Window,
        plugin: &Plugin,
        wake: &mut watch::Receiver<u64>,
        shutdown: &mut Shutdown,
    ) -> Result<Fill, AuditError> {
        let opts = &self.options;
        let full = run.limit == opts.batch_size;
        let window = if full { opts.in_flight.max(1) } else { 1 };
        while run.flight.len() < window && !shutdown.is_triggered() {
            wake.borrow_and_update();
            let batch = self.batch(run.next, run.limit).await?;
            if batch.is_empty() {
                run.partial_since = None;
                break;
            }
            if batch.len() < run.limit && full && !opts.until_caught_up {
                if !run.flight.is_empty() {
                    // The rest of it may still fill up: ship what is in flight first.
                    break;
                }
                let since = *run.partial_since.get_or_insert_with(Instant::now);
                let left = opts.flush_interval.saturating_sub(since.elapsed());
                if !left.is_zero() {
                    if !pause(wake, shutdown, left.min(RECHECK)).await {
                        return Ok(Fill::Stop);
                    }
                    return Ok(Fill::Again);
                }
            }
            run.partial_since = None;
            run.next = batch[batch.len() - 1].seq;
            run.flight.push_back(InFlight::send(plugin, batch));
        }
        Ok(Fill::Ready)
    }

    /// Waits for the oldest batch in flight and acts on its answer; false when the loop ends
    /// (shutdown cut it off, or `once` stopped on a failure that needs a wait).
    async fn settle(
        &self,
        run: &mut Window,
        oldest: InFlight,
        shutdown: &mut Shutdown,
    ) -> Result<bool, AuditError> {
        let InFlight {
            batch,
            started,
            mut task,
        } = oldest;
        let Some(result) = self.answer(&mut task, &mut run.cut_off, shutdown).await else {
            task.abort();
            abandon(&mut run.flight);
            tracing::warn!(
                sink = %self.sink,
                first = batch[0].seq,
                last = batch[batch.len() - 1].seq,
                "shutdown: a batch in flight was cut off; it is shipped again at the next start"
            );
            return Ok(false);
        };
        metrics::histogram!(names::AUDIT_BATCH_DURATION_SECONDS, "sink" => self.sink.clone())
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.acknowledged(run, &batch)?;
                Ok(true)
            }
            Err(e) => self.refused(run, &batch, &e, shutdown).await,
        }
    }

    /// The ingest call's result, or `None` when shutdown's grace ran out first (one deadline
    /// for every batch in flight).
    async fn answer(
        &self,
        task: &mut tokio::task::JoinHandle<Result<(), PluginError>>,
        cut_off: &mut Option<tokio::time::Instant>,
        shutdown: &Shutdown,
    ) -> Option<Result<(), PluginError>> {
        let mut stop = shutdown.clone();
        let grace = self.options.shutdown_grace;
        tokio::select! {
            joined = task => Some(joined.unwrap_or_else(|e| {
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
    }

    /// The sink took the batch: move the cursor over it, unless a replay moved it meanwhile.
    fn acknowledged(&self, run: &mut Window, batch: &[OutboxRecord]) -> Result<(), AuditError> {
        let sink = self.sink.as_str();
        let (first, last) = (batch[0].seq, batch[batch.len() - 1].seq);
        let moved = self
            .store
            .audit_ack(sink, run.cursor, last, batch.len() as u64)?;
        run.failures = 0;
        run.limit = self.options.batch_size;
        run.report.batches += 1;
        if moved {
            run.cursor = last;
            run.report.shipped += batch.len() as u64;
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
            abandon(&mut run.flight);
            tracing::info!(
                sink,
                "audit cursor moved by a replay meanwhile; the batch counts as shipped again"
            );
        }
        Ok(())
    }

    /// The sink did not take the batch. The batches behind it are not acknowledged either (the
    /// cursor cannot pass this one), so they are sent again after it. A permanent refusal is
    /// narrowed down by halves to the one record, which is dead-lettered; anything else waits.
    /// False when the loop ends.
    async fn refused(
        &self,
        run: &mut Window,
        batch: &[OutboxRecord],
        e: &PluginError,
        shutdown: &mut Shutdown,
    ) -> Result<bool, AuditError> {
        let sink = self.sink.as_str();
        abandon(&mut run.flight);
        run.report.failures += 1;
        let error = e.to_string();
        metrics::counter!(names::AUDIT_FAILURES_TOTAL, "sink" => sink.to_owned(),
            "kind" => e.kind().as_str())
        .increment(1);
        self.store.audit_sink_failed(sink, &error)?;
        match e.kind() {
            FailureKind::Permanent if batch.len() > 1 => {
                run.limit = (batch.len() / 2).max(1);
                tracing::warn!(sink, records = batch.len(), error = %error,
                    "audit sink refused a batch; retrying in halves to find the record");
                Ok(true)
            }
            FailureKind::Permanent => {
                self.dead_letter(run.cursor, &batch[0], &error)?;
                run.report.dead += 1;
                Ok(true)
            }
            kind => {
                run.failures = run.failures.saturating_add(1);
                let wait = if kind == FailureKind::Misconfigured {
                    self.options.retry.misconfigured_pause
                } else {
                    self.options.retry.plugin_delay(
                        run.failures,
                        e.retry_hint(),
                        &mut rand::thread_rng(),
                    )
                };
                if self.options.until_caught_up {
                    tracing::warn!(sink, records = batch.len(), error = %error,
                        "audit batch not acknowledged; the cursor stays");
                    run.report.stopped_on = Some(error);
                    return Ok(false);
                }
                tracing::warn!(sink, records = batch.len(), failures = run.failures,
                    error = %error, retry_in_ms = wait.as_millis() as u64,
                    "audit batch not acknowledged; the cursor stays");
                Ok(sleep(shutdown, wait).await)
            }
        }
    }

    async fn batch(&self, cursor: i64, limit: usize) -> Result<Vec<OutboxRecord>, AuditError> {
        let own = self.options.include_own_events;
        let sink = self.sink.clone();
        Ok(self
            .store
            .blocking(move |store| store.audit_batch(&sink, cursor, limit, own))
            .await?)
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
