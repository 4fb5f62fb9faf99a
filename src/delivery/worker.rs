//! Per-route delivery workers: at most `concurrency` deliveries of a route at once, one at a
//! time per (destination, item) so a deletion never races an update, destinations paused while
//! misconfigured, finished attempts recorded in groups by one blocking job at a time. `drain`
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
use crate::store::{Delivery, DeliveryId};

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
            Outcome::Retry { .. } => self.retried += 1,
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
        Ok(Self { deliverer, route })
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
        let concurrency = self.route.concurrency.max(1);
        let store = self.deliverer.store().clone();
        let mut set: JoinSet<Joined> = JoinSet::new();
        let mut in_flight: HashSet<(String, String)> = HashSet::new();
        let mut attempted: HashSet<DeliveryId> = HashSet::new();
        let mut paused: HashMap<String, Instant> = HashMap::new();
        let mut report = DrainReport::default();
        let mut queue: VecDeque<Delivery> = VecDeque::new();
        let mut stale = false;
        let mut unrecorded: Vec<Joined> = Vec::new();
        let mut recording: Option<JoinHandle<Recorded>> = None;
        // While attempts are still in flight, a group smaller than this waits up to GROUP_WINDOW
        // for more.
        let group = concurrency.saturating_mul(2);
        let mut gathering: Option<Instant> = None;
        loop {
            if shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
                break;
            }
            let now = Instant::now();
            paused.retain(|_, until| *until > now);
            if set.len() < concurrency {
                // Due rows are read in batches, not after every delivery: a backlog of n rows
                // costs n / batch reads of the ledger instead of n. The batch is read again when
                // it runs out, when nothing in it can start, or when a poll enqueued rows (which
                // may supersede rows in it).
                if queue.is_empty() || stale {
                    let limit = concurrency * 8 + set.len() + 64;
                    queue = match store.due(&self.route.name, Utc::now(), limit) {
                        Ok(rows) => rows.into(),
                        Err(e) if draining => return Err(e.into()),
                        Err(e) => {
                            tracing::error!(route = %self.route.name, error = %e, "reading due deliveries");
                            report.errors += 1;
                            VecDeque::new()
                        }
                    };
                }
                let mut waiting = VecDeque::new();
                while set.len() < concurrency {
                    let Some(d) = queue.pop_front() else {
                        break;
                    };
                    if draining && attempted.contains(&d.id) {
                        continue;
                    }
                    let key = (d.entry.destination.clone(), d.entry.item_id.clone());
                    if in_flight.contains(&key) || paused.contains_key(&d.entry.destination) {
                        waiting.push_back(d);
                        continue;
                    }
                    attempted.insert(d.id);
                    in_flight.insert(key.clone());
                    let deliverer = self.deliverer.clone();
                    set.spawn(async move {
                        let outcome = deliverer.try_deliver(&d).await;
                        (d, key, outcome)
                    });
                }
                // Rows that could not start yet stay first in line; if none could start and
                // there is room, read the ledger again next time round.
                stale = !waiting.is_empty() && queue.is_empty() && set.len() < concurrency;
                waiting.append(&mut queue);
                queue = waiting;
            }
            // Finished attempts are recorded by one job at a time, off this task: those that
            // finish while a job commits wait for the next one, so a busy route records them in
            // groups. A row keeps its in-flight key until its outcome is recorded.
            if recording.is_none() && !unrecorded.is_empty() {
                let deadline = *gathering.get_or_insert_with(|| Instant::now() + GROUP_WINDOW);
                if unrecorded.len() >= group || set.is_empty() || Instant::now() >= deadline {
                    gathering = None;
                    recording = Some(self.record(std::mem::take(&mut unrecorded)));
                }
            }
            if set.is_empty() && recording.is_none() && draining {
                break;
            }
            let idle = if set.is_empty() && recording.is_none() {
                self.idle_for(&paused, options.max_idle)
            } else {
                options.max_idle
            };
            tokio::select! {
                Some(joined) = set.join_next(), if !set.is_empty() => {
                    let mut done = vec![joined];
                    while let Some(more) = set.try_join_next() {
                        done.push(more);
                    }
                    for joined in done {
                        if let Some(finished) = self.joined(joined, &mut in_flight, &mut report) {
                            // A copy read while it was in flight must not be delivered again.
                            queue.retain(|q| q.id != finished.0.id);
                            unrecorded.push(finished);
                        }
                    }
                }
                recorded = recorded(&mut recording) => {
                    recording = None;
                    if let Ok((finished, _)) = &recorded {
                        // Copies of these rows read before they were recorded are out of date.
                        queue.retain(|q| !finished.iter().any(|(d, _, _)| d.id == q.id));
                    }
                    self.settle(recorded, &mut in_flight, &mut paused, &mut report, on_outcome);
                }
                () = tokio::time::sleep_until(gathering.unwrap_or_else(Instant::now)), if gathering.is_some() => {}
                () = changed(&mut wake) => {
                    // A poll wrote rows, and may have superseded some in the batch.
                    queue.clear();
                }
                () = tokio::time::sleep(idle), if !draining => {}
                () = stopped(&mut shutdown) => {}
            }
        }
        // Shutdown: take nothing new; let what is in flight finish within the grace period.
        let deadline = Instant::now() + options.shutdown_grace;
        while !set.is_empty() {
            match tokio::time::timeout_at(deadline, set.join_next()).await {
                Ok(Some(joined)) => {
                    if let Some(finished) = self.joined(joined, &mut in_flight, &mut report) {
                        unrecorded.push(finished);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    report.cut_off += set.len() as u64;
                    tracing::warn!(
                        route = %self.route.name,
                        cut_off = set.len(),
                        "shutdown grace period over: cutting off deliveries (they stay pending)"
                    );
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    break;
                }
            }
        }
        // What finished is recorded whatever the deadline: the work is done.
        let last = (!unrecorded.is_empty()).then(|| self.record(unrecorded));
        for job in [recording.take(), last].into_iter().flatten() {
            self.settle(
                job.await,
                &mut in_flight,
                &mut paused,
                &mut report,
                on_outcome,
            );
        }
        Ok(report)
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

    /// A joined attempt task: the finished attempt, or `None` (counted as an error) when the task
    /// panicked or was aborted. Its row then stays pending; its in-flight key is unknown here,
    /// so all are cleared and the next fill re-checks the ledger.
    fn joined(
        &self,
        joined: Result<Joined, tokio::task::JoinError>,
        in_flight: &mut HashSet<(String, String)>,
        report: &mut DrainReport,
    ) -> Option<Joined> {
        match joined {
            Ok(finished) => Some(finished),
            Err(e) => {
                tracing::error!(route = %self.route.name, error = %e, "a delivery task failed");
                in_flight.clear();
                report.errors += 1;
                None
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
        job: Result<Recorded, tokio::task::JoinError>,
        in_flight: &mut HashSet<(String, String)>,
        paused: &mut HashMap<String, Instant>,
        report: &mut DrainReport,
        on_outcome: &(dyn Fn(&Outcome) + Send + Sync),
    ) {
        let (finished, recorded) = match job {
            Ok(job) => job,
            Err(e) => {
                // Nothing is known of that group: its rows stay pending.
                tracing::error!(route = %self.route.name, error = %e, "recording delivery outcomes failed");
                in_flight.clear();
                report.errors += 1;
                return;
            }
        };
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::error!(route = %self.route.name, deliveries = finished.len(), error = %e,
                    "recording delivery outcomes (the rows stay pending)");
                report.errors += finished.len() as u64;
                for (_, key, _) in &finished {
                    in_flight.remove(key);
                }
                return;
            }
        };
        for ((d, key, outcome), recorded) in finished.iter().zip(recorded) {
            in_flight.remove(key);
            match recorded {
                Ok(()) => {
                    if let Outcome::Paused { pause, .. } = outcome {
                        paused.insert(d.entry.destination.clone(), Instant::now() + *pause);
                    }
                    report.count(outcome);
                    on_outcome(outcome);
                }
                Err(e) => {
                    tracing::error!(route = %self.route.name, delivery = d.id, error = %e,
                        "recording a delivery outcome");
                    report.errors += 1;
                }
            }
        }
    }
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
