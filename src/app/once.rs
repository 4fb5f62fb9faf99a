//! `opsync once`: one poll, then every route delivers what is due, then (with `[[audit.sink]]`)
//! one read of the activity log shipped to every sink, then a summary. The exit code says
//! whether anything failed.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use crate::app::engine::Engine;
use crate::app::error::AppError;
use crate::app::pins::refuse_pin_mismatches;
use crate::app::prune::Pruner;
use crate::app::run::{plugin_cache_dir, poll_once, start_keeper};
use crate::config::Settings;
use crate::delivery::{DrainReport, Outcome};
use crate::detect::PollReport;
use crate::store::postgres::{Replica, Role};

/// `opsync once` flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct OnceOptions {
    pub allow_mass_delete: bool,
    /// Start even when a plugin's component does not match its pinned sha256.
    pub allow_unusable_plugins: bool,
    /// Show a progress bar (only when stderr is a terminal).
    pub progress: bool,
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct OnceSummary {
    pub poll: PollReport,
    pub delivery: DrainReport,
    /// Plugin instances that could not be loaded, with the reason.
    pub broken: Vec<(String, String)>,
    /// The audit export's read and shipping (empty without `[[audit.sink]]`).
    pub audit: crate::audit::OnceReport,
}

impl OnceSummary {
    /// 0: everything delivered; 1: something failed (a delivery, a plugin, a vault listing, the
    /// activity log's read or an audit sink);
    /// 2: nothing failed but a route's deletions are held (`--allow-mass-delete`).
    pub fn exit_code(&self) -> u8 {
        if self.delivery.failed() > 0
            || !self.broken.is_empty()
            || !self.poll.incomplete.is_empty()
            || self.audit.failed()
        {
            1
        } else if !self.poll.held.is_empty() {
            2
        } else {
            0
        }
    }

    /// The human summary printed at the end.
    pub fn text(&self) -> String {
        let (c, u, d) = self.poll.counts();
        let r = &self.delivery;
        let mut out = format!(
            "detected: {c} created, {u} updated, {d} deleted ({} Connect requests{})\n\
             delivered: {} written, {} already up to date, {} skipped\n",
            self.poll.requests,
            if self.poll.full {
                ", full reconciliation"
            } else {
                ""
            },
            r.delivered,
            r.unchanged,
            r.skipped,
        );
        if r.failed() > 0 {
            out.push_str(&format!(
                "failed: {} to retry, {} waiting on a misconfigured destination, {} dead-lettered, {} errors\n",
                r.retried, r.paused, r.dead, r.errors
            ));
        }
        for (name, reason) in &self.broken {
            out.push_str(&format!("plugin {name}: {reason}\n"));
        }
        for v in &self.poll.incomplete {
            out.push_str(&format!(
                "vault {}: incomplete listing, nothing deleted: {}\n",
                v.name, v.reason
            ));
        }
        for h in &self.poll.held {
            out.push_str(&format!(
                "route {}: {} deletions held (more than {:.0}% of its {} keys); run with --allow-mass-delete to apply them\n",
                h.route,
                h.deletions.len(),
                h.max_ratio * 100.0,
                h.total
            ));
        }
        out.push_str(&self.audit.text());
        out
    }
}

/// One detect-and-deliver cycle.
pub async fn once(settings: Settings, options: OnceOptions) -> Result<OnceSummary, AppError> {
    if settings.routes.is_empty() && settings.audit.sinks.is_empty() {
        // Before the state database is opened: an unusable config creates no state.
        return Err(AppError::NothingToDo);
    }
    refuse_pin_mismatches(&settings, options.allow_unusable_plugins)?;
    let store = settings.state.open()?;
    let cache = plugin_cache_dir(&settings.state.path);
    let engine = Engine::start(settings, store, Some(cache)).await?;
    // On a PostgreSQL state the cycle leads like a replica would, or does not run at all.
    let (keeper_stop, keeper_stopped) = crate::shutdown::channel();
    let replica = Replica::this_process();
    let keeper = start_keeper(&engine, &replica, keeper_stopped)?;
    if let Some((_, role)) = &keeper {
        lead_for_the_cycle(&engine, role.clone()).await?;
    }
    let summary = cycle(&engine, &options, &replica.id).await;
    keeper_stop.trigger();
    if let Some((task, _)) = keeper {
        let _ = task.await;
    }
    summary
}

/// Waits for the keeper's first claim: this process leads (its writes carry the epoch), or
/// another replica does and the cycle is refused.
async fn lead_for_the_cycle(
    engine: &Engine,
    mut role: tokio::sync::watch::Receiver<Role>,
) -> Result<(), AppError> {
    let bound = engine.settings.state.lease;
    let first = tokio::time::timeout(
        bound,
        role.wait_for(|r| {
            !matches!(
                r,
                Role::Follower {
                    leader: None,
                    epoch: 0
                }
            )
        }),
    )
    .await
    .map_err(|_| AppError::NoLease(bound))?
    .map_err(|_| AppError::NoLease(bound))?
    .clone();
    match first {
        Role::Leader { epoch } => {
            engine.store.lead_with(Some(epoch));
            Ok(())
        }
        Role::Follower { leader, epoch } => Err(AppError::AnotherLeader {
            leader: leader.unwrap_or_default(),
            epoch,
        }),
    }
}

/// The cycle itself: one poll, then every delivery it queued (claimed as `replica` on a
/// PostgreSQL state), and the audit export.
async fn cycle(
    engine: &Engine,
    options: &OnceOptions,
    replica: &str,
) -> Result<OnceSummary, AppError> {
    // The cycle's deliveries and dead letters become own audit events (with their ledger rows).
    let own_events =
        crate::audit::record_own_events(&engine.settings, &engine.store, &engine.events);
    let mut detector = engine.detector(options.allow_mass_delete);
    detector.set_keep_changes(false);
    let poll = poll_once(&mut detector, engine).await?;
    let deliverer = engine.deliverer();

    let bar = if options.progress {
        let pending: u64 = engine.store.route_status()?.iter().map(|s| s.pending).sum();
        let bar = ProgressBar::new(pending);
        bar.set_style(
            ProgressStyle::with_template("{spinner} delivering [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let tick: Arc<dyn Fn(&Outcome) + Send + Sync> = match &bar {
        Some(bar) => {
            let bar = bar.clone();
            Arc::new(move |_: &Outcome| bar.inc(1))
        }
        None => Arc::new(|_: &Outcome| {}),
    };

    let mut drains = JoinSet::new();
    for route in &engine.settings.routes {
        let worker = engine.route_worker(&deliverer, &route.name, replica)?;
        let tick = tick.clone();
        drains.spawn(async move { worker.drain(tick.as_ref()).await });
    }
    let mut delivery = DrainReport::default();
    let mut first_error = None;
    while let Some(joined) = drains.join_next().await {
        match joined {
            Ok(Ok(report)) => delivery.add(&report),
            Ok(Err(e)) => {
                delivery.errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(error = %e, "a route's delivery task panicked");
                delivery.errors += 1;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    let audit = match &engine.host {
        Some(host) => {
            crate::audit::once(
                &engine.settings,
                &engine.client,
                &engine.store,
                host,
                &engine.events,
            )
            .await?
        }
        None => Default::default(),
    };
    if let Some(writer) = own_events {
        writer.stop();
    }
    Pruner::new(engine.settings.state.ledger_retention)
        .tick(&engine.store)
        .await;
    let mut broken: Vec<_> = engine
        .broken
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    broken.sort();
    Ok(OnceSummary {
        poll,
        delivery,
        broken,
        audit,
    })
}
