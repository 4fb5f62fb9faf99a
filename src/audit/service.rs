//! The audit export inside `opsync run`: loads each sink's plugin, starts the own-event writer,
//! the tail loop (poll, backoff, compaction, lag gauges) and one shipping loop per sink.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::ConnectResolver;
use crate::audit::error::AuditError;
use crate::audit::own;
use crate::audit::ship::{ShipOptions, ShipReport, Shipper};
use crate::audit::tail::{Tail, TailOptions, TailReport};
use crate::config::{AuditSinkSettings, Settings};
use crate::connect::client::ConnectClient;
use crate::plugin::{Plugin, PluginConfig, PluginHost, World};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::telemetry::names;

/// The longest wait between reads of the log after failures.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(300);

/// The running export.
pub struct AuditService {
    tasks: JoinSet<(String, Result<ShipReport, AuditError>)>,
    tail: tokio::task::JoinHandle<()>,
    writer: own::Writer,
}

/// Starts the export when `[[audit.sink]]` is configured (`None` otherwise). Sinks whose plugin
/// cannot be loaded wait, their records kept; the others ship.
pub async fn start(
    settings: &Settings,
    client: &ConnectClient,
    store: &Store,
    host: &PluginHost,
    shutdown: &Shutdown,
) -> Result<Option<AuditService>, AuditError> {
    let audit = &settings.audit;
    if !audit.enabled() {
        return Ok(None);
    }
    let (wake, woken) = watch::channel(0u64);
    let writer = own::install(store.clone(), wake.clone());
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
            ShipOptions {
                batch_size: sink.batch_size,
                flush_interval: sink.flush_interval,
                start: sink.start.to_store(),
                include_own_events: sink.include_own_events,
                retry: settings.delivery.retry_policy(),
                shutdown_grace: settings.delivery.shutdown_grace,
            },
        );
        let (woken, stop, name) = (woken.clone(), shutdown.clone(), sink.name.clone());
        tasks.spawn(async move { (name, shipper.run(woken, stop).await) });
    }
    let tail = Tail::new(
        client.clone(),
        store.clone(),
        TailOptions {
            page_size: audit.page_size,
            lookback: audit.lookback,
        },
    );
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
        self.writer.stop().await;
        reports
    }
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
    let config = PluginConfig::resolve(config, &ConnectResolver { client })
        .await
        .map_err(|e| format!("plugin `{}`: {e}", p.name))?;
    let mut spec = p.spec(config);
    spec.world = Some(World::AuditSink);
    let host = host.clone();
    let name = p.name.clone();
    let plugin = tokio::task::spawn_blocking(move || host.load(spec))
        .await
        .map_err(|e| format!("loading plugin `{name}` panicked: {e}"))?
        .map_err(|e| e.to_string())?;
    plugin.validate().await.map_err(|e| e.to_string())?;
    Ok(plugin)
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
    let mut failures: u32 = 0;
    loop {
        if shutdown.is_triggered() {
            break;
        }
        let next = match tail.poll().await {
            Ok(report) => {
                failures = 0;
                observe(&report);
                if report.added > 0 {
                    wake.send_modify(|n| *n = n.wrapping_add(1));
                }
                let (st, se, si) = (store.clone(), settings.clone(), sinks.clone());
                if let Err(e) = tokio::task::spawn_blocking(move || maintain(&st, &se, &si)).await {
                    tracing::warn!(error = %e, "audit maintenance failed");
                }
                audit.poll_interval
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                metrics::counter!(names::AUDIT_POLLS_TOTAL, "result" => "error").increment(1);
                let retry_after = match &e {
                    AuditError::Connect(c) => c.retry_after(),
                    _ => None,
                };
                let backoff = settings.delivery.retry_policy().delay(
                    failures,
                    retry_after,
                    &mut rand::thread_rng(),
                );
                let wait = backoff
                    .max(audit.poll_interval)
                    .min(MAX_POLL_BACKOFF.max(audit.poll_interval));
                tracing::warn!(error = %e, failures, retry_in_ms = wait.as_millis() as u64,
                    "reading the activity log failed");
                wait
            }
        };
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(next) => {}
        }
    }
}

/// Metrics and log lines of one read.
fn observe(report: &TailReport) {
    metrics::counter!(names::AUDIT_POLLS_TOTAL, "result" => "ok").increment(1);
    metrics::counter!(names::AUDIT_RECORDS_READ_TOTAL).increment(report.added);
    if report.reset {
        metrics::counter!(names::AUDIT_LOG_ANOMALIES_TOTAL, "kind" => "reset").increment(1);
        tracing::warn!(total = ?report.total, "Connect's activity log was reset (fewer records than before, none at the mark); reading it from the start");
    }
    if report.gap {
        metrics::counter!(names::AUDIT_LOG_ANOMALIES_TOTAL, "kind" => "gap").increment(1);
        tracing::error!(total = ?report.total, "records were pruned from Connect's activity log before opsync read them: poll more often (audit.poll_interval)");
    }
    if report.added > 0 || report.reset || report.gap {
        tracing::info!(
            added = report.added,
            read = report.read,
            requests = report.requests,
            total = ?report.total,
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
