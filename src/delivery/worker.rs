//! Per-route delivery workers: at most `concurrency` deliveries of a route at once, one at a
//! time per (destination, item) so a deletion never races an update, destinations paused while
//! misconfigured or after asking to wait (a retry hint), finished attempts recorded in groups by one blocking job at a time. `drain`
//! delivers what is due now (for `opsync once`); `run` keeps going until shutdown, then lets
//! in-flight deliveries finish within a grace period.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::delivery::attempt::{Outcome, route_exists};
use crate::delivery::{Deliverer, DeliveryError};
use crate::route::Route;
use crate::shutdown::Shutdown;
use crate::store::{Claim, DEFAULT_CLAIM_TIMEOUT, Delivery, DeliveryId};
use crate::telemetry::names;

/// How long finished attempts wait for others to share their recording, at most, while more are
/// in flight: each group costs a ledger commit (WAL frames) and, for plugins with a granted
/// directory, a flush of its filesystem, so bigger groups cost less per row.
const GROUP_WINDOW: Duration = Duration::from_millis(20);

/// How a running worker waits and stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerOptions {
    /// After shutdown is asked for, how long in-flight deliveries may take to finish; the rest
    /// are cut off and stay pending (delivered again after a restart: at-least-once).
    pub shutdown_grace: Duration,
    /// The longest sleep between two looks at the ledger when nothing wakes the worker.
    pub max_idle: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(30),
            max_idle: Duration::from_secs(5),
        }
    }
}

/// What a worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub retried: u64,
    pub paused: u64,
    pub dead: u64,
    /// Attempts whose outcome could not be recorded (the store failed) or that panicked; their
    /// rows stay pending.
    pub errors: u64,
    /// Deliveries cut off by the end of the shutdown grace period (still pending).
    pub cut_off: u64,
}

impl DrainReport {
    /// Whether anything failed (retries, pauses, dead letters, errors, cut-offs).
    pub fn failed(&self) -> u64 {
        self.retried + self.paused + self.dead + self.errors + self.cut_off
    }

    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Delivered {
                unchanged: false, ..
            } => self.delivered += 1,
            Outcome::Delivered {
                unchanged: true, ..
            } => self.unchanged += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Retry { .. } | Outcome::Throttled { .. } => self.retried += 1,
            Outcome::Paused { .. } => self.paused += 1,
            Outcome::DeadLetter(_) => self.dead += 1,
        }
    }

    /// Adds another report's counts.
    pub fn add(&mut self, other: &DrainReport) {
        self.delivered += other.delivered;
        self.unchanged += other.unchanged;
        self.skipped += other.skipped;
        self.retried += other.retried;
        self.paused += other.paused;
        self.dead += other.dead;
        self.errors += other.errors;
        self.cut_off += other.cut_off;
    }
}

/// A route's deliveries.
#[derive(Clone, Debug)]
pub struct RouteWorker {
    deliverer: Deliverer,
    route: Route,
    /// How this worker asks for rows: on a PostgreSQL state, every replica's workers claim
    /// theirs from the shared ledger.
    claim: Claim,
}

/// A finished attempt, not yet recorded: the row, its in-flight key, what came of it.
type Joined = (Delivery, (String, String), Outcome);

/// A recording job's attempts and what the ledger said of each (the outer error: nothing was
/// recorded).
type Recorded = (
    Vec<Joined>,
    Result<Vec<Result<(), DeliveryError>>, DeliveryError>,
);

impl RouteWorker {
    pub fn new(deliverer: Deliverer, route: &str) -> Result<Self, DeliveryError> {
        let route = route_exists(&deliverer, route)?;
        let claim = Claim {
            claimant: format!("opsync-{}", std::process::id()),
            cap: claim_cap(&deliverer, &route),
            timeout: DEFAULT_CLAIM_TIMEOUT,
            heartbeat_stale: DEFAULT_CLAIM_TIMEOUT,
        };
        Ok(Self {
            deliverer,
            route,
            claim,
        })
    }

    /// Claims rows (on a PostgreSQL state) as replica `claimant`, for `timeout` at a time; a
    /// replica whose heartbeat is older than `heartbeat_stale` has its claims taken over.
    pub fn claiming(
        mut self,
        claimant: &str,
        timeout: Duration,
        heartbeat_stale: Duration,
    ) -> Self {
        self.claim.claimant = claimant.to_owned();
        self.claim.timeout = timeout;
        self.claim.heartbeat_stale = heartbeat_stale;
        self
    }

    pub fn route(&self) -> &str {
        &self.route.name
    }

    /// Delivers every row due now, each at most once, and returns when none is left in flight.
    /// Rows that fail are rescheduled (or dead-lettered) and counted as failures.
    pub async fn drain(
        &self,
        on_outcome: &(dyn Fn(&Outcome) + Send + Sync),
    ) -> Result<DrainReport, DeliveryError> {
        self.pump(None, None, WorkerOptions::default(), on_outcome)
            .await
    }

    /// Delivers until `shutdown`; `wake` ticks when a poll enqueued something.
    pub async fn run(
        &self,
        wake: watch::Receiver<u64>,
        shutdown: Shutdown,
        options: WorkerOptions,
    ) -> Result<DrainReport, DeliveryError> {
        self.pump(Some(wake), Some(shutdown), options, &|_| {})
            .await
    }

    async fn pump(
        &self,
        mut wake: Option<watch::Receiver<u64>>,
        mut shutdown: Option<Shutdown>,
        options: WorkerOptions,
        on_outcome: &(dyn Fn(&Outcome) + Send + Sync),
    ) -> Result<DrainReport, DeliveryError> {
        let draining = shutdown.is_none();
        let mut p = Pump::default();
        loop {
            if shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
                break;
            }
            let now = Instant::now();
            p.paused.retain(|_, until| *until > now);
            if p.set.len() < self.concurrency() {
                self.read_due(&mut p, draining)?;
                self.start_due(&mut p, draining);
            }
            self.start_recording(&mut p);
            if p.set.is_empty() && p.recording.is_none() && draining {
                break;
            }
            let idle = if p.set.is_empty() && p.recording.is_none() {
                self.idle_for(&p.paused, options.max_idle)
            } else {
                options.max_idle
            };
            tokio::select! {
                Some(joined) = p.set.join_next(), if !p.set.is_empty() => {
                    self.finished(&mut p, joined);
                }
                job = recorded(&mut p.recording) => {
                    p.recording = None;
                    if let Ok((finished, _)) = &job {
                        // Copies of these rows read before they were recorded are out of date.
                        p.queue.retain(|q| !finished.iter().any(|(d, _, _)| d.id == q.id));
                    }
                    self.settle(&mut p, job, on_outcome);
                }
                () = tokio::time::sleep_until(p.gathering.unwrap_or_else(Instant::now)), if p.gathering.is_some() => {}
                () = changed(&mut wake) => {
                    // A poll wrote rows, and may have superseded some in the batch.
                    p.queue.clear();
                }
                () = tokio::time::sleep(idle), if !draining => {}
                () = stopped(&mut shutdown) => {}
            }
        }
        self.wind_down(&mut p, options.shutdown_grace, on_outcome)
            .await;
        Ok(p.report)
    }

    fn concurrency(&self) -> usize {
        self.route.concurrency.max(1)
    }

    /// Due rows are read in batches, not after every delivery: a backlog of n rows costs
    /// n / batch reads of the ledger instead of n. The batch is read again when it runs out,
    /// when nothing in it can start, or when a poll enqueued rows (which may supersede rows in
    /// it). A store error ends a drain; a running worker counts it and tries again later.
    fn read_due(&self, p: &mut Pump, draining: bool) -> Result<(), DeliveryError> {
        if !p.queue.is_empty() && !p.stale {
            return Ok(());
        }
        // Enough for every call slot to take a full batch twice over.
        let limit = self.concurrency() * self.route.batch_size.max(8) * 2 + p.set.len() + 64;
        p.queue =
            match self
                .deliverer
                .store()
                .claim_due(&self.route.name, &self.claim, Utc::now(), limit)
            {
                Ok(rows) => {
                    metrics::gauge!(names::DELIVERY_CLAIMS, "route" => self.route.name.clone())
                        .set(rows.len() as f64);
                    rows.into()
                }
                Err(e) if draining => return Err(e.into()),
                Err(e) => {
                    tracing::error!(route = %self.route.name, error = %e, "reading due deliveries");
                    p.report.errors += 1;
                    VecDeque::new()
                }
            };
        Ok(())
    }

    /// Starts due rows up to the route's concurrency, one at a time per (destination, item) and
    /// none for a paused destination. Rows of one destination go together, up to the route's
    /// batch size, to a plugin that takes batches; a row being retried goes alone. Rows that
    /// cannot start yet stay first in line; if none could start and there is room, the ledger
    /// is read again next time round.
    fn start_due(&self, p: &mut Pump, draining: bool) {
        let concurrency = self.concurrency();
        let mut waiting = VecDeque::new();
        let mut forming: HashMap<String, Vec<Delivery>> = HashMap::new();
        while let Some(d) = p.queue.pop_front() {
            // A row joins a batch being formed freely; anything else needs a free call slot.
            let joins = d.attempts == 0 && forming.contains_key(&d.entry.destination);
            if !joins && p.set.len() + forming.len() >= concurrency {
                p.queue.push_front(d);
                break;
            }
            if draining && p.attempted.contains(&d.id) {
                continue;
            }
            let key = (d.entry.destination.clone(), d.entry.item_id.clone());
            if p.in_flight.contains(&key) || p.paused.contains_key(&d.entry.destination) {
                waiting.push_back(d);
                continue;
            }
            p.attempted.insert(d.id);
            p.in_flight.insert(key);
            let size = self.batch_size(&d);
            if size <= 1 {
                self.spawn(p, vec![d]);
                continue;
            }
            let batch = forming.entry(d.entry.destination.clone()).or_default();
            batch.push(d);
            if batch.len() >= size {
                let full = std::mem::take(batch);
                forming.retain(|_, b| !b.is_empty());
                self.spawn(p, full);
            }
        }
        for (_, batch) in forming {
            self.spawn(p, batch);
        }
        p.stale = !waiting.is_empty() && p.queue.is_empty() && p.set.len() < concurrency;
        waiting.append(&mut p.queue);
        p.queue = waiting;
    }

    /// How many of `d`'s destination's rows go in one call: the route's batch size for a plugin
    /// that takes batches, one for a retry (isolated from the rest) or another plugin.
    fn batch_size(&self, d: &Delivery) -> usize {
        if d.attempts > 0 {
            return 1;
        }
        match self.deliverer.plugin(&d.entry.destination) {
            Ok(plugin) if plugin.batches() => self.route.batch_size.max(1),
            _ => 1,
        }
    }

    fn spawn(&self, p: &mut Pump, rows: Vec<Delivery>) {
        let deliverer = self.deliverer.clone();
        p.set.spawn(async move {
            deliverer
                .try_deliver_batch(rows)
                .await
                .into_iter()
                .map(|(d, outcome)| {
                    let key = (d.entry.destination.clone(), d.entry.item_id.clone());
                    (d, key, outcome)
                })
                .collect()
        });
    }

    /// Finished attempts are recorded by one job at a time, off this task: those that finish
    /// while a job commits wait for the next one, so a busy route records them in groups. While
    /// attempts are still in flight, a group smaller than twice the concurrency waits up to
    /// `GROUP_WINDOW` for more. A row keeps its in-flight key until its outcome is recorded.
    fn start_recording(&self, p: &mut Pump) {
        if p.recording.is_some() || p.unrecorded.is_empty() {
            return;
        }
        let group = self.concurrency().saturating_mul(2);
        let deadline = *p
            .gathering
            .get_or_insert_with(|| Instant::now() + GROUP_WINDOW);
        if p.unrecorded.len() >= group || p.set.is_empty() || Instant::now() >= deadline {
            p.gathering = None;
            p.recording = Some(self.record(std::mem::take(&mut p.unrecorded)));
        }
    }

    /// Takes the attempts that finished and any others already done, for the next recording.
    fn finished(&self, p: &mut Pump, first: Result<Vec<Joined>, tokio::task::JoinError>) {
        let mut done = vec![first];
        while let Some(more) = p.set.try_join_next() {
            done.push(more);
        }
        for joined in done {
            for finished in self.joined(p, joined) {
                // A copy read while it was in flight must not be delivered again.
                p.queue.retain(|q| q.id != finished.0.id);
                p.unrecorded.push(finished);
            }
        }
    }

    /// Shutdown: takes nothing new; lets what is in flight finish within the grace period, cuts
    /// off the rest (it stays pending), and records whatever finished: the work is done.
    async fn wind_down(
        &self,
        p: &mut Pump,
        grace: Duration,
        on_outcome: &(dyn Fn(&Outcome) + Send + Sync),
    ) {
        let deadline = Instant::now() + grace;
        while !p.set.is_empty() {
            match tokio::time::timeout_at(deadline, p.set.join_next()).await {
                Ok(Some(joined)) => {
                    let finished = self.joined(p, joined);
                    p.unrecorded.extend(finished);
                }
                Ok(None) => break,
                Err(_) => {
                    p.report.cut_off += p.set.len() as u64;
                    tracing::warn!(
                        route = %self.route.name,
                        cut_off = p.set.len(),
                        "shutdown grace period over: cutting off deliveries (they stay pending)"
                    );
                    p.set.abort_all();
                    while p.set.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let unrecorded = std::mem::take(&mut p.unrecorded);
        let last = (!unrecorded.is_empty()).then(|| self.record(unrecorded));
        for job in [p.recording.take(), last].into_iter().flatten() {
            let job = job.await;
            self.settle(p, job, on_outcome);
        }
        self.release_claims();
    }

    /// Hands the rows this worker still holds claimed back to the queue, for other replicas.
    fn release_claims(&self) {
        let store = self.deliverer.store();
        match store.release_claims(&self.route.name, &self.claim.claimant) {
            Ok(released) if released > 0 => {
                tracing::info!(route = %self.route.name, released, "released delivery claims");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(route = %self.route.name, error = %e,
                    "releasing delivery claims (they return to the queue when they run out)");
            }
        }
        metrics::gauge!(names::DELIVERY_CLAIMS, "route" => self.route.name.clone()).set(0.0);
    }

    /// How long to sleep with nothing in flight: until the next row is due, within bounds.
    fn idle_for(&self, paused: &HashMap<String, Instant>, max_idle: Duration) -> Duration {
        let floor = if paused.is_empty() {
            Duration::from_millis(50)
        } else {
            Duration::from_secs(1)
        };
        match self.deliverer.store().next_due(&self.route.name) {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or_default()
                .clamp(floor, max_idle.max(floor)),
            Ok(None) => max_idle,
            Err(_) => Duration::from_secs(1),
        }
    }

    /// A joined attempt task: its finished attempts, or none (counted as an error) when the
    /// task panicked or was aborted. Its rows then stay pending; their in-flight keys are
    /// unknown here, so all are cleared and the next fill re-checks the ledger.
    fn joined(
        &self,
        p: &mut Pump,
        joined: Result<Vec<Joined>, tokio::task::JoinError>,
    ) -> Vec<Joined> {
        match joined {
            Ok(finished) => finished,
            Err(e) => {
                tracing::error!(route = %self.route.name, error = %e, "a delivery task failed");
                p.in_flight.clear();
                p.report.errors += 1;
                Vec::new()
            }
        }
    }

    /// Starts recording finished attempts in one ledger transaction, on the blocking pool, once
    /// what they delivered is flushed to disk.
    fn record(&self, mut finished: Vec<Joined>) -> JoinHandle<Recorded> {
        let deliverer = self.deliverer.clone();
        tokio::task::spawn_blocking(move || {
            {
                let mut rows: Vec<(&Delivery, &mut Outcome)> =
                    finished.iter_mut().map(|(d, _, o)| (&*d, o)).collect();
                deliverer.make_durable(&mut rows);
            }
            let result = {
                let rows: Vec<(&Delivery, &Outcome)> =
                    finished.iter().map(|(d, _, o)| (d, o)).collect();
                deliverer.record(&rows, Utc::now())
            };
            (finished, result)
        })
    }

    /// Counts what a recording job recorded and frees the rows' in-flight keys.
    fn settle(
        &self,
        p: &mut Pump,
        job: Result<Recorded, tokio::task::JoinError>,
        on_outcome: &(dyn Fn(&Outcome) + Send + Sync),
    ) {
        let (finished, recorded) = match job {
            Ok(job) => job,
            Err(e) => {
                // Nothing is known of that group: its rows stay pending.
                tracing::error!(route = %self.route.name, error = %e, "recording delivery outcomes failed");
                p.in_flight.clear();
                p.report.errors += 1;
                return;
            }
        };
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::error!(route = %self.route.name, deliveries = finished.len(), error = %e,
                    "recording delivery outcomes (the rows stay pending)");
                p.report.errors += finished.len() as u64;
                for (_, key, _) in &finished {
                    p.in_flight.remove(key);
                }
                return;
            }
        };
        for ((d, key, outcome), recorded) in finished.iter().zip(recorded) {
            p.in_flight.remove(key);
            match recorded {
                Ok(()) => {
                    if let Outcome::Paused { pause: wait, .. }
                    | Outcome::Throttled { delay: wait, .. } = outcome
                    {
                        let until = Instant::now() + *wait;
                        let held = p.paused.entry(d.entry.destination.clone()).or_insert(until);
                        *held = (*held).max(until);
                    }
                    p.report.count(outcome);
                    on_outcome(outcome);
                }
                Err(e) => {
                    tracing::error!(route = %self.route.name, delivery = d.id, error = %e,
                        "recording a delivery outcome");
                    p.report.errors += 1;
                }
            }
        }
    }
}

/// The most rows of `route` claimed at once across replicas: its concurrency, times its batch
/// size when one of its destinations takes batches.
fn claim_cap(deliverer: &Deliverer, route: &Route) -> usize {
    let batches = route
        .destinations
        .iter()
        .any(|d| deliverer.plugin(d).is_ok_and(|p| p.batches()));
    let per_call = if batches { route.batch_size.max(1) } else { 1 };
    route.concurrency.max(1).saturating_mul(per_call)
}

/// Where one worker loop stands.
#[derive(Default)]
struct Pump {
    /// Attempts under way: a task per batch (or single row).
    set: JoinSet<Vec<Joined>>,
    /// (destination, item) of every row started and not yet recorded.
    in_flight: HashSet<(String, String)>,
    /// Rows a drain already attempted (each at most once).
    attempted: HashSet<DeliveryId>,
    /// Destinations paused while misconfigured or after a retry hint, until when.
    paused: HashMap<String, Instant>,
    report: DrainReport,
    /// Due rows read from the ledger and not started yet.
    queue: VecDeque<Delivery>,
    /// Nothing in `queue` could start: read the ledger again.
    stale: bool,
    /// Finished attempts waiting for a recording job.
    unrecorded: Vec<Joined>,
    recording: Option<JoinHandle<Recorded>>,
    /// Until when the current group waits for more finished attempts.
    gathering: Option<Instant>,
}

/// Resolves with the recording job's result; never, when none runs.
async fn recorded(
    job: &mut Option<JoinHandle<Recorded>>,
) -> Result<Recorded, tokio::task::JoinError> {
    match job {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Resolves when the watched value changes; never, when there is none or its sender is gone.
async fn changed(wake: &mut Option<watch::Receiver<u64>>) {
    match wake {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *wake = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Resolves when shutdown is asked for; never, without a shutdown signal.
async fn stopped(shutdown: &mut Option<Shutdown>) {
    match shutdown {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}
