//! The audit export inside `opsync run`: loads each sink's plugin, starts the own-event writer,
//! the tail loop (poll, backoff, compaction, lag gauges), the Events API reader when it is
//! configured, and one shipping loop per sink.

use std::collections::BTreeMap;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::audit::error::AuditError;
use crate::audit::events::{self, StreamRead};
use crate::audit::ship::{ShipOptions, ShipReport, Shipper};
use crate::audit::tail::{Tail, TailOptions, TailReport};
use crate::config::{AuditSinkSettings, Settings};
use crate::connect::client::ConnectClient;
use crate::connect::reference::ConnectResolver;
use crate::own_events::{AuditEvents, Writer};
use crate::plugin::{Loader, Plugin, PluginHost, PluginSpec, World};
use crate::poll_loop::{PollFailure, PollLoop};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::telemetry::names;

/// The running export.
pub struct AuditService {
    tasks: JoinSet<(String, Result<ShipReport, AuditError>)>,
    tail: tokio::task::JoinHandle<()>,
    /// The Events API reader, when `[audit.sources.events]` is set.
    events: Option<tokio::task::JoinHandle<()>>,
    writer: Writer,
}

/// Starts the export when `[[audit.sink]]` is configured (`None` otherwise). Sinks whose plugin
/// cannot be loaded wait, their records kept; the others ship.
pub async fn start(
    settings: &Settings,
    client: &ConnectClient,
    store: &Store,
    host: &PluginHost,
    events: &AuditEvents,
    shutdown: &Shutdown,
) -> Result<Option<AuditService>, AuditError> {
    let audit = &settings.audit;
    if !audit.enabled() {
        return Ok(None);
    }
    // The Events API token is checked before anything starts: a token that cannot read a
    // configured stream stops the daemon with a message naming it.
    let source = match &audit.events {
        Some(events) => Some(events::prepare(events, client, store).await?),
        None => None,
    };
    let (wake, woken) = watch::channel(0u64);
    let writer = events.install(store.clone(), wake.clone());
    let mut tasks = JoinSet::new();
    for sink in &audit.sinks {
        let plugin = load(settings, sink, client, host).await;
        if let Err(reason) = &plugin {
            tracing::error!(sink = %sink.name, error = %reason, "audit sink not usable; its records wait");
        }
        let shipper = Shipper::new(
            sink.name.clone(),
            plugin,
            store.clone(),
            ship_options(settings, sink, false),
        )
        .reporting_to(events.clone());
        let (woken, stop, name) = (woken.clone(), shutdown.clone(), sink.name.clone());
        tasks.spawn(async move { (name, shipper.run(woken, stop).await) });
    }
    let events_task = source.map(|source| {
        tokio::spawn(source.run(
            settings.delivery.retry_policy(),
            wake.clone(),
            shutdown.clone(),
        ))
    });
    let tail = tail_of(settings, client, store);
    let tail = tokio::spawn(tail_loop(
        tail,
        store.clone(),
        settings.clone(),
        wake,
        shutdown.clone(),
    ));
    tracing::info!(
        sinks = audit.sinks.len(),
        poll_interval = %humantime::format_duration(audit.poll_interval),
        "audit export running"
    );
    Ok(Some(AuditService {
        tasks,
        tail,
        events: events_task,
        writer,
    }))
}

impl AuditService {
    /// Waits for the loops (they stop on shutdown), then writes the queued own events.
    pub async fn stop(mut self) -> Vec<(String, ShipReport)> {
        let mut reports = Vec::new();
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((name, Ok(report))) => reports.push((name, report)),
                Ok((name, Err(e))) => {
                    tracing::error!(sink = %name, error = %e, "an audit sink stopped")
                }
                Err(e) => tracing::error!(error = %e, "an audit sink panicked"),
            }
        }
        if let Err(e) = self.tail.await {
            tracing::error!(error = %e, "the audit tail panicked");
        }
        if let Some(Err(e)) = match self.events {
            Some(task) => Some(task.await),
            None => None,
        } {
            tracing::error!(error = %e, "the Events API reader panicked");
        }
        self.writer.stop();
        reports
    }
}

fn ship_options(
    settings: &Settings,
    sink: &AuditSinkSettings,
    until_caught_up: bool,
) -> ShipOptions {
    ShipOptions {
        batch_size: sink.batch_size,
        in_flight: sink.in_flight,
        flush_interval: sink.flush_interval,
        start: sink.start.to_store(),
        include_own_events: sink.include_own_events,
        retry: settings.delivery.retry_policy(),
        shutdown_grace: settings.delivery.shutdown_grace,
        until_caught_up,
    }
}

/// The tail over `/v1/activity` as `[audit]` configures it.
fn tail_of(settings: &Settings, client: &ConnectClient, store: &Store) -> Tail {
    Tail::new(
        client.clone(),
        store.clone(),
        TailOptions {
            page_size: settings.audit.page_size,
            lookback: settings.audit.lookback,
        },
    )
}

/// Starts recording opsync's own events for `opsync once` (before its sync cycle, so the cycle's
/// deliveries are recorded); `None` when no sink is configured.
pub fn record_own_events(
    settings: &Settings,
    store: &Store,
    events: &AuditEvents,
) -> Option<Writer> {
    if !settings.audit.enabled() {
        return None;
    }
    let (wake, _) = watch::channel(0u64);
    Some(events.install(store.clone(), wake))
}

/// What `opsync once`'s audit export did.
#[derive(Debug, Default)]
pub struct OnceReport {
    /// The read of `/v1/activity`, or why it failed (the sinks still ship what the outbox holds).
    pub tail: Option<Result<TailReport, String>>,
    /// The read of the Events API's streams, or why it failed; `None` when not configured.
    pub events: Option<Result<Vec<StreamRead>, String>>,
    /// Per sink, in config order.
    pub sinks: Vec<(String, ShipReport)>,
}

impl OnceReport {
    /// Whether anything failed: the read, or a sink that stopped short.
    pub fn failed(&self) -> bool {
        matches!(self.tail, Some(Err(_)))
            || matches!(self.events, Some(Err(_)))
            || self.sinks.iter().any(|(_, r)| r.stopped_on.is_some())
    }

    /// Summary lines for `opsync once`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match &self.tail {
            Some(Ok(t)) => out.push_str(&format!(
                "audit: {} new activity records ({} requests)\n",
                t.added, t.requests
            )),
            Some(Err(e)) => out.push_str(&format!("audit: reading the activity log failed: {e}\n")),
            None => {}
        }
        match &self.events {
            Some(Ok(reads)) => {
                for r in reads {
                    out.push_str(&format!(
                        "audit: {} new {} records from the Events API ({} requests)\n",
                        r.added,
                        r.stream.as_str(),
                        r.requests
                    ));
                }
            }
            Some(Err(e)) => out.push_str(&format!("audit: reading the Events API failed: {e}\n")),
            None => {}
        }
        for (name, r) in &self.sinks {
            out.push_str(&format!(
                "audit sink {name}: {} shipped in {} batches, {} dead-lettered",
                r.shipped, r.batches, r.dead
            ));
            match &r.stopped_on {
                Some(e) => out.push_str(&format!("; stopped, records kept: {e}\n")),
                None => out.push_str(", caught up\n"),
            }
        }
        out
    }
}

/// `opsync once`: one read of the activity log, then every sink ships until it has caught up
/// or meets a failure that needs a wait (its records stay for the next run).
pub async fn once(
    settings: &Settings,
    client: &ConnectClient,
    store: &Store,
    host: &PluginHost,
    events: &AuditEvents,
) -> Result<OnceReport, AuditError> {
    let audit = &settings.audit;
    let mut report = OnceReport::default();
    if !audit.enabled() {
        return Ok(report);
    }
    let tail = tail_of(settings, client, store);
    report.tail = Some(match tail.poll().await {
        Ok(read) => {
            observe(&read);
            Ok(read)
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the activity log failed");
            Err(e.to_string())
        }
    });
    let (_trigger, mut shutdown) = crate::shutdown::channel();
    let (wake, woken) = watch::channel(0u64);
    if let Some(settings) = &audit.events {
        let mut source = events::prepare(settings, client, store).await?;
        report.events = Some(
            source
                .once(&wake, &mut shutdown)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    // Every sink ships at once; the reports are collected in config order.
    let mut running = Vec::new();
    for sink in &audit.sinks {
        let plugin = load(settings, sink, client, host).await;
        let shipper = Shipper::new(
            sink.name.clone(),
            plugin,
            store.clone(),
            ship_options(settings, sink, true),
        )
        .reporting_to(events.clone());
        let (woken, stop) = (woken.clone(), shutdown.clone());
        running.push((sink.name.clone(), tokio::spawn(shipper.run(woken, stop))));
    }
    for (name, task) in running {
        let shipped = task.await.map_err(|e| AuditError::Task(e.to_string()))?;
        report.sinks.push((name, shipped?));
    }
    let sinks: Vec<String> = audit.sinks.iter().map(|s| s.name.clone()).collect();
    let (st, se) = (store.clone(), settings.clone());
    tokio::task::spawn_blocking(move || maintain(&st, &se, &sinks))
        .await
        .map_err(|e| AuditError::Task(e.to_string()))?;
    Ok(report)
}

/// Loads and validates a sink's plugin, its `format` handed over as config.
async fn load(
    settings: &Settings,
    sink: &AuditSinkSettings,
    client: &ConnectClient,
    host: &PluginHost,
) -> Result<Plugin, String> {
    let p = settings
        .plugin(&sink.plugin)
        .ok_or_else(|| format!("no plugin named {:?}", sink.plugin))?;
    let mut config: BTreeMap<String, String> = p.config.clone();
    if let Some(format) = &sink.format {
        config.insert("format".into(), format.clone());
    }
    let resolver = ConnectResolver { client };
    let spec = |config| PluginSpec {
        world: Some(World::AuditSink),
        ..p.spec(config)
    };
    Loader::new(host, &resolver)
        .load(&p.name, config, spec)
        .await
        .map_err(|e| e.to_string())
}

/// Reads the log every `audit.poll_interval` until shutdown.
async fn tail_loop(
    tail: Tail,
    store: Store,
    settings: Settings,
    wake: watch::Sender<u64>,
    mut shutdown: Shutdown,
) {
    let audit = &settings.audit;
    let sinks: Vec<String> = audit.sinks.iter().map(|s| s.name.clone()).collect();
    let mut reading = PollLoop::new(
        "reading the activity log",
        audit.poll_interval,
        settings.delivery.retry_policy(),
    );
    while reading.due(&mut shutdown).await {
        let read = match tail.poll().await {
            Ok(report) => {
                observe(&report);
                if report.added > 0 {
                    wake.send_modify(|n| *n = n.wrapping_add(1));
                }
                let (st, se, si) = (store.clone(), settings.clone(), sinks.clone());
                if let Err(e) = tokio::task::spawn_blocking(move || maintain(&st, &se, &si)).await {
                    tracing::warn!(error = %e, "audit maintenance failed");
                }
                Ok(())
            }
            Err(e) => {
                metrics::counter!(names::AUDIT_POLLS_TOTAL, "result" => "error").increment(1);
                let retry_after = match &e {
                    AuditError::Connect(c) => c.retry_after(),
                    _ => None,
                };
                Err(PollFailure::new(&e, retry_after))
            }
        };
        reading.done(read);
    }
}

/// Metrics and log lines of one read.
fn observe(report: &TailReport) {
    metrics::counter!(names::AUDIT_POLLS_TOTAL, "result" => "ok").increment(1);
    metrics::counter!(names::AUDIT_RECORDS_READ_TOTAL).increment(report.added);
    if report.reset {
        metrics::counter!(names::AUDIT_LOG_ANOMALIES_TOTAL, "kind" => "reset").increment(1);
        tracing::warn!(
            total = report.total,
            "Connect's activity log was reset (fewer records than before, none at the mark); reading it from the start"
        );
    }
    if report.gap {
        metrics::counter!(names::AUDIT_LOG_ANOMALIES_TOTAL, "kind" => "gap").increment(1);
        tracing::error!(
            total = report.total,
            "records were pruned from Connect's activity log before opsync read them: poll more often (audit.poll_interval)"
        );
    }
    if report.added > 0 || report.reset || report.gap {
        tracing::info!(
            added = report.added,
            read = report.read,
            requests = report.requests,
            total = report.total,
            order = report.order.as_str(),
            pruned = report.pruned,
            duration_ms = report.duration.as_millis() as u64,
            "activity read"
        );
    } else {
        tracing::debug!(requests = report.requests, "activity: nothing new");
    }
}

/// Lag gauges, and compaction of records every sink acknowledged and retention let go.
fn maintain(store: &Store, settings: &Settings, sinks: &[String]) {
    let now = Utc::now();
    for sink in &settings.audit.sinks {
        if let Ok(Some(lag)) = store.audit_lag(&sink.name, sink.include_own_events) {
            metrics::gauge!(names::AUDIT_PENDING, "sink" => sink.name.clone())
                .set(lag.pending as f64);
            let age = lag
                .oldest_pending
                .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!(names::AUDIT_LAG_SECONDS, "sink" => sink.name.clone()).set(age);
        }
    }
    let retention = chrono::Duration::from_std(settings.audit.retention).unwrap_or_default();
    let lookback = chrono::Duration::from_std(settings.audit.lookback).unwrap_or_default();
    // Keep every id the tail may read again (the mark minus the lookback), whatever its age.
    let mut before = now - retention;
    if let Ok(Some(mark)) = store.audit_mark().map(|m| m.at) {
        before = before.min(mark - lookback);
    }
    match store.audit_compact(sinks, before) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(deleted = n, "audit outbox compacted"),
        Err(e) => tracing::warn!(error = %e, "audit outbox compaction failed"),
    }
}
