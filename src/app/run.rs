//! `opsync run`: the daemon. One poll loop feeds the ledger; one worker per route delivers; one
//! task per `[[rotation]]` job rotates on schedule; the admin listener serves metrics and health.
//! On shutdown polling stops at once and in-flight deliveries get `delivery.shutdown_grace`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::Utc;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::app::engine::Engine;
use crate::app::error::AppError;
use crate::app::pins::refuse_pin_mismatches;
use crate::app::prune::Pruner;
use crate::config::Settings;
use crate::delivery::{DrainReport, DriftChecker};
use crate::detect::{Detector, PollReport};
use crate::poll_loop::{PollFailure, PollLoop};
use crate::shutdown::Shutdown;
use crate::store::postgres::{
    Keeper, LEADER_LEASE, Lease, LeaseTiming, Replica, Role, listen_for_ledger,
};
use crate::store::{StoreError, UnusablePlugin};
use crate::telemetry::{self, AdminOptions, AdminServer, Readiness, names};

/// `opsync run` flags.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Let deletions past a route's `max_delete_ratio` through.
    pub allow_mass_delete: bool,
    /// Start even when a plugin's component does not match its pinned sha256.
    pub allow_unusable_plugins: bool,
    /// Overrides `admin.listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Called with the admin listener's bound address once it listens.
    pub on_admin: Option<fn(SocketAddr)>,
    /// What `/metrics` renders: the handle of the recorder the caller installed
    /// (`telemetry::install`). Without one, `/metrics` answers an empty exposition.
    pub metrics: Option<PrometheusHandle>,
}

/// What a daemon run did, for its last log line.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub polls: u64,
    pub poll_failures: u64,
    pub delivery: DrainReport,
}

impl RunSummary {
    fn add(&mut self, other: &RunSummary) {
        self.polls += other.polls;
        self.poll_failures += other.poll_failures;
        self.delivery.add(&other.delivery);
    }
}

/// Where compiled plugins are cached: beside the state database.
pub fn plugin_cache_dir(state: &Path) -> PathBuf {
    let parent = state.parent().filter(|p| !p.as_os_str().is_empty());
    parent
        .unwrap_or_else(|| Path::new("."))
        .join("opsync-plugin-cache")
}

/// Runs until `shutdown`.
pub async fn run(
    settings: Settings,
    options: RunOptions,
    shutdown: Shutdown,
) -> Result<RunSummary, AppError> {
    refuse_pin_mismatches(&settings, options.allow_unusable_plugins)?;
    let metrics = options.metrics.clone().unwrap_or_else(telemetry::detached);
    let store = settings.state.open()?;
    let cache = plugin_cache_dir(&settings.state.path);
    let engine = Engine::start(settings, store, Some(cache)).await?;
    note_unusable_plugins(&engine);
    crate::app::series::initialize(&engine.settings, &engine.store);
    let (keeper_stop, keeper_stopped) = crate::shutdown::channel();
    let replica = Replica::this_process();
    let keeper = start_keeper(&engine, &replica, keeper_stopped)?;
    let role = keeper.as_ref().map(|(_, role)| role.clone());
    let admin_addr = options.admin_listen.or(engine.settings.admin.listen);
    let admin = match admin_addr {
        Some(addr) => {
            let admin = &engine.settings.admin;
            let pages = crate::status::router(
                std::sync::Arc::new(engine.settings.clone()),
                engine.store.clone(),
            );
            let admin_options = AdminOptions::new(metrics)
                .readiness(readiness(&engine, role.clone()))
                .pages(pages)
                .token(admin.token.as_ref().map(|t| t.expose()))
                .open_metrics(admin.open_metrics);
            let server = AdminServer::start(addr, admin_options).await?;
            if let Some(report) = options.on_admin {
                report(server.addr());
            }
            Some(server)
        }
        None => None,
    };
    // Every replica delivers; the leader's polls wake its workers when they enqueue. They
    // stop with the shutdown, or when the leading work ends on an error.
    let (wake, woken) = watch::channel(0u64);
    let wake = std::sync::Arc::new(wake);
    listen_for_new_rows(&engine, &wake)?;
    let (stop_deliveries, deliveries_stop) = crate::shutdown::channel();
    let mut deliveries = start_deliveries(&engine, &replica.id, woken, &deliveries_stop)?;
    let mut stopping = shutdown.clone();
    let leading = async {
        match role {
            None => lead(&engine, &options, &wake, shutdown).await,
            Some(role) => lead_while_leader(&engine, &options, &wake, role, shutdown).await,
        }
    };
    tokio::pin!(leading);
    let led = tokio::select! {
        led = &mut leading => led,
        () = stopping.wait() => {
            stop_deliveries.trigger();
            leading.await
        }
    };
    stop_deliveries.trigger();
    let delivered = finish_deliveries(&mut deliveries).await;
    let summary = led.map(|mut summary| {
        summary.delivery.add(&delivered);
        summary
    });
    // The lease goes last, once the work it covers has stopped: a follower then takes over at
    // its next renewal.
    keeper_stop.trigger();
    if let Some((task, _)) = keeper {
        let _ = task.await;
    }
    if let Some(admin) = admin {
        admin.shutdown().await;
    }
    let summary = summary?;
    tracing::info!(
        polls = summary.polls,
        delivered = summary.delivery.delivered,
        cut_off = summary.delivery.cut_off,
        "opsync stopped"
    );
    Ok(summary)
}

/// The lease keeper's task and the role it publishes.
pub(crate) type KeeperTask = (JoinHandle<()>, watch::Receiver<Role>);

/// On a PostgreSQL state: this replica joins the replicas and claims the leader lease in the
/// background, standing by (every write to the leader's tables refused) until it leads.
pub(crate) fn start_keeper(
    engine: &Engine,
    replica: &Replica,
    stop: Shutdown,
) -> Result<Option<KeeperTask>, AppError> {
    let state = &engine.settings.state;
    let Some(mut target) = state
        .postgres()
        .map_err(|e| AppError::from(StoreError::Postgres(Box::new(e))))?
    else {
        return Ok(None);
    };
    engine.store.lead_with(None);
    target.set_application_name("opsync-lease");
    tracing::info!(replica = %replica.id, lease = %humantime::format_duration(state.lease), "joining the replicas; standing by until this replica leads");
    let keeper = Keeper::new(
        target,
        Lease::new(LEADER_LEASE, &replica.id, state.lease),
        replica.clone(),
        LeaseTiming {
            lease: state.lease,
            renew_every: state.renew_every,
        },
    );
    let (role, roles) = watch::channel(Role::Follower {
        leader: None,
        epoch: 0,
    });
    Ok(Some((tokio::spawn(keeper.run(role, stop)), roles)))
}

/// Leads whenever the lease is this replica's, until `shutdown`: the work starts with each
/// epoch won and stops when it is lost (its writes are refused by then anyway).
async fn lead_while_leader(
    engine: &Engine,
    options: &RunOptions,
    wake: &watch::Sender<u64>,
    mut role: watch::Receiver<Role>,
    mut shutdown: Shutdown,
) -> Result<RunSummary, AppError> {
    let mut summary = RunSummary::default();
    metrics::gauge!(names::LEADER).set(0.0);
    loop {
        let won = tokio::select! {
            r = role.wait_for(|r| r.leading().is_some()) => r.ok().and_then(|r| r.leading()),
            () = shutdown.wait() => None,
        };
        let Some(epoch) = won else { break };
        engine.store.lead_with(Some(epoch));
        metrics::gauge!(names::LEADER).set(1.0);
        metrics::gauge!(names::LEADER_EPOCH).set(epoch as f64);
        metrics::counter!(names::LEADERSHIP_TAKEN_TOTAL).increment(1);
        tracing::info!(epoch, "leading: polling, audit export and rotations start");
        let (step_down, stop) = crate::shutdown::channel();
        let (mut lost, mut stopping) = (role.clone(), shutdown.clone());
        let watcher = tokio::spawn(async move {
            tokio::select! {
                _ = lost.wait_for(|r| r.leading() != Some(epoch)) => {}
                () = stopping.wait() => {}
            }
            step_down.trigger();
        });
        let led = lead(engine, options, wake, stop).await;
        watcher.abort();
        engine.store.lead_with(None);
        metrics::gauge!(names::LEADER).set(0.0);
        summary.add(&led?);
        if shutdown.is_triggered() {
            break;
        }
        tracing::warn!(epoch, "no longer leading: work stopped; standing by");
    }
    Ok(summary)
}

/// Starts one delivery worker per route, claiming rows as `replica` on a PostgreSQL state,
/// until `shutdown`; `woken` ticks when a poll enqueued rows.
fn start_deliveries(
    engine: &Engine,
    replica: &str,
    woken: watch::Receiver<u64>,
    shutdown: &Shutdown,
) -> Result<JoinSet<Result<DrainReport, crate::delivery::DeliveryError>>, AppError> {
    let deliverer = engine.deliverer();
    let worker_options = engine.settings.delivery.worker_options();
    let mut workers = JoinSet::new();
    for route in &engine.settings.routes {
        let worker = engine.route_worker(&deliverer, &route.name, replica)?;
        let (woken, stop) = (woken.clone(), shutdown.clone());
        workers.spawn(async move { worker.run(woken, stop, worker_options).await });
    }
    Ok(workers)
}

/// On a PostgreSQL state: whichever replica adds rows to the ledger, this one's workers wake.
fn listen_for_new_rows(
    engine: &Engine,
    wake: &std::sync::Arc<watch::Sender<u64>>,
) -> Result<(), AppError> {
    let Some(mut target) = engine
        .settings
        .state
        .postgres()
        .map_err(|e| AppError::from(StoreError::Postgres(Box::new(e))))?
    else {
        return Ok(());
    };
    target.set_application_name("opsync-listen");
    listen_for_ledger(target, wake.clone())
        .map_err(|e| AppError::from(StoreError::Task(format!("cannot start listening: {e}"))))
}

/// Waits for the delivery workers to stop and adds up what they did.
async fn finish_deliveries(
    workers: &mut JoinSet<Result<DrainReport, crate::delivery::DeliveryError>>,
) -> DrainReport {
    let mut report = DrainReport::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(done)) => report.add(&done),
            Ok(Err(e)) => tracing::error!(error = %e, "a route worker stopped"),
            Err(e) => tracing::error!(error = %e, "a route worker panicked"),
        }
    }
    report
}

/// The work one process does while it leads (always, on a SQLite state): polling, the audit
/// export, drift checks and rotations, until `shutdown`; a poll that enqueued rows ticks
/// `wake`.
async fn lead(
    engine: &Engine,
    options: &RunOptions,
    wake: &watch::Sender<u64>,
    mut shutdown: Shutdown,
) -> Result<RunSummary, AppError> {
    let audit = match &engine.host {
        Some(host) => {
            crate::audit::start(
                &engine.settings,
                &engine.client,
                &engine.store,
                host,
                &engine.events,
                &shutdown,
            )
            .await?
        }
        None => None,
    };
    let deliverer = engine.deliverer();
    let mut drift_checks = JoinSet::new();
    for route in &engine.settings.routes {
        if let Some(checker) = DriftChecker::new(deliverer.clone(), &route.name)? {
            drift_checks.spawn(checker.run(shutdown.clone()));
        }
    }
    let mut rotations = JoinSet::new();
    crate::rotation::spawn(
        &mut rotations,
        engine.rotator(),
        &engine.settings.rotations,
        &engine.plugins,
        &engine.broken,
        shutdown.clone(),
    );
    tracing::info!(
        rotations = engine.settings.rotations.len(),
        routes = engine.settings.routes.len(),
        audit_sinks = engine.settings.audit.sinks.len(),
        plugins = engine.plugins.len(),
        broken = engine.broken.len(),
        poll_interval = %humantime::format_duration(engine.settings.sync.poll_interval),
        "opsync is running"
    );

    let mut detector = engine.detector(options.allow_mass_delete);
    detector.set_keep_changes(false);
    let mut pruner = Pruner::new(engine.settings.state.ledger_retention);
    let mut summary = RunSummary::default();
    let mut polling = PollLoop::new(
        "poll",
        engine.settings.sync.poll_interval,
        engine.settings.delivery.retry_policy(),
    );
    while polling.due(&mut shutdown).await {
        pruner.tick(&engine.store).await;
        let polled = match poll_once(&mut detector, engine).await {
            Ok(report) => {
                summary.polls += 1;
                if report.enqueued > 0 {
                    wake.send_modify(|n| *n = n.wrapping_add(1));
                }
                Ok(())
            }
            Err(e) => {
                summary.poll_failures += 1;
                let retry_after = match &e {
                    AppError::Detect(crate::detect::DetectError::Connect(c)) => c.retry_after(),
                    _ => None,
                };
                Err(PollFailure::new(&e, retry_after))
            }
        };
        polling.done(polled);
    }
    tracing::info!("polling stopped");
    // Rotation tasks stop at their next await; every step is persisted, so a rotation cut off
    // here resumes at its step after the next start.
    while rotations.join_next().await.is_some() {}
    while drift_checks.join_next().await.is_some() {}
    if let Some(audit) = audit {
        for (sink, report) in audit.stop().await {
            tracing::info!(sink = %sink, shipped = report.shipped, failures = report.failures, dead = report.dead, "audit sink stopped");
        }
    }
    Ok(summary)
}

/// Records which plugins this start could not load, for the status page.
fn note_unusable_plugins(engine: &Engine) {
    let mut unusable: Vec<UnusablePlugin> = engine
        .broken
        .iter()
        .map(|(name, reason)| UnusablePlugin {
            name: name.clone(),
            reason: reason.clone(),
        })
        .collect();
    unusable.sort_by(|a, b| a.name.cmp(&b.name));
    if let Err(e) = engine.store.note_unusable_plugins(&unusable) {
        tracing::warn!(error = %e, "cannot record the unusable plugins for the status page");
    }
}

/// Records a poll's outcome for the status page (a failure to record is only logged).
fn note_poll(engine: &Engine, result: Result<(), &AppError>) {
    let now = Utc::now();
    let noted = match result {
        Ok(()) => engine.store.note_poll_ok(now),
        Err(e) => engine.store.note_poll_error(now, &e.to_string()),
    };
    if let Err(e) = noted {
        tracing::warn!(error = %e, "cannot record the poll's outcome for the status page");
    }
}

/// One poll, with its metrics and log lines.
pub(crate) async fn poll_once(
    detector: &mut Detector,
    engine: &Engine,
) -> Result<PollReport, AppError> {
    token_expiry_gauge(engine);
    let full = detector.full_reconcile_due(Utc::now())?;
    let result = detector.poll(full).await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            metrics::counter!(names::POLLS_TOTAL, "result" => "error").increment(1);
            let e = AppError::from(e);
            note_poll(engine, Err(&e));
            return Err(e);
        }
    };
    note_poll(engine, Ok(()));
    metrics::counter!(names::POLLS_TOTAL, "result" => "ok").increment(1);
    metrics::histogram!(names::POLL_DURATION_SECONDS, "full" => if report.full { "true" } else { "false" })
        .record(report.duration.as_secs_f64());
    let (created, updated, deleted) = report.counts();
    for (kind, n) in [
        ("created", created),
        ("updated", updated),
        ("deleted", deleted),
    ] {
        if n > 0 {
            metrics::counter!(names::CHANGES_DETECTED_TOTAL, "kind" => kind).increment(n as u64);
        }
    }
    for route in &engine.settings.routes {
        let held = report.held.iter().any(|h| h.route == route.name);
        metrics::gauge!(names::ROUTE_HELD, "route" => route.name.clone()).set(if held {
            1.0
        } else {
            0.0
        });
    }
    for h in &report.held {
        tracing::warn!(
            route = %h.route,
            deletions = h.deletions.len(),
            total = h.total,
            max_delete_ratio = h.max_ratio,
            "deletions held: more than the route's max_delete_ratio; run with --allow-mass-delete to let them through"
        );
    }
    for v in &report.incomplete {
        tracing::warn!(vault = %v.name, reason = %v.reason, "vault listing incomplete; nothing deleted from it");
    }
    if let Ok(statuses) = engine.store.route_status() {
        for s in statuses {
            metrics::gauge!(names::PENDING, "route" => s.route.clone()).set(s.pending as f64);
            let lag = s.oldest_pending.map_or(0.0, |t| {
                (Utc::now() - t).num_milliseconds().max(0) as f64 / 1e3
            });
            metrics::gauge!(names::ROUTE_LAG_SECONDS, "route" => s.route.clone()).set(lag);
            metrics::gauge!(names::DEAD_LETTERS, "route" => s.route).set(s.dead as f64);
        }
    }
    if created + updated + deleted > 0 || report.full {
        tracing::info!(
            full = report.full,
            requests = report.requests,
            created,
            updated,
            deleted,
            enqueued = report.enqueued,
            duration_ms = report.duration.as_millis() as u64,
            "poll"
        );
    } else {
        tracing::debug!(requests = report.requests, "idle poll");
    }
    Ok(report)
}

fn token_expiry_gauge(engine: &Engine) {
    let claims = crate::connect::token::decode_unverified(engine.settings.connect.token.expose());
    if let Some(exp) = claims.ok().and_then(|c| c.expires_at()) {
        let left = (exp - Utc::now()).num_milliseconds() as f64 / 1000.0;
        metrics::gauge!(names::CONNECT_TOKEN_EXPIRY_SECONDS).set(left);
    }
}

/// `/readyz`: Connect answers its heartbeat, and the state database takes a write; on a
/// PostgreSQL state it also says whether this replica leads or follows (both are ready).
fn readiness(engine: &Engine, role: Option<watch::Receiver<Role>>) -> Readiness {
    let client = engine.client.clone();
    let store = engine.store.clone();
    let readiness = match role {
        Some(role) => Readiness::new().with_note("role", move || match &*role.borrow() {
            Role::Leader { epoch } => format!("leader (epoch {epoch})"),
            Role::Follower {
                leader: Some(leader),
                epoch,
            } => format!("follower (leader {leader}, epoch {epoch})"),
            Role::Follower { leader: None, .. } => "follower (no leader yet)".to_owned(),
        }),
        None => Readiness::new(),
    };
    readiness
        .with_check("connect", move || {
            let client = client.clone();
            Box::pin(async move { client.heartbeat().await.map_err(|e| e.to_string()) })
        })
        .with_check("state", move || {
            let store = store.clone();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || {
                    store.check_writable().map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            })
        })
}
