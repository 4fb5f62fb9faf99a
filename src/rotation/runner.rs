//! One rotation of one job, as a persisted state machine: create, set, test, promote, finish (or
//! rollback). Each step is recorded in the state database before the next one starts, under the
//! job's lease, and every step is idempotent, so after a crash the job resumes at its step. The
//! lease is renewed every third of its time while the rotation runs.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::connect::client::ConnectClient;
use crate::connect::model::Item;
use crate::domain::Step;
use crate::own_events::AuditEvents;
use crate::plugin::{Plugin, VaultRef};
use crate::rotation::RotationJob;
use crate::rotation::error::RotationError;
use crate::rotation::lease::{Holder, pid_exists};
use crate::rotation::telemetry;
use crate::store::{RunState, Store, StoreError};

mod steps;

use crate::rotation::outcome::{Outcome, Start, StepRetry, StepTiming};

/// Environment variable of the crash-test hook (see docs/testing.md).
pub const KILL_HOOK_ENV: &str = "OPSYNC_TEST_KILL_AFTER_STEP";

/// How long a lease lasts unless renewed; a running rotation renews it every third of this, so
/// it is short: a holder that died where its pid cannot be probed blocks the job this long.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// The shortest time between two renewals of a lease (for very short test TTLs).
const MIN_RENEW_EVERY: Duration = Duration::from_millis(10);

/// Runs rotations for one process: its Connect client and store, and its lease identity.
#[derive(Clone)]
pub struct Rotator {
    client: ConnectClient,
    store: Store,
    /// This process, as a lease holder.
    holder: Holder,
    /// This runner's own token in the lease (its clones share it).
    owner: String,
    lease_ttl: Duration,
    retry: StepRetry,
    kill_after: Option<String>,
    /// Where a finished rotation is reported as an own audit event.
    events: AuditEvents,
}

/// What the run does after a step was recorded.
enum Flow {
    /// Go on with the step the state database now holds.
    Next,
    Finished(Outcome),
}

/// What one step leads to.
enum Next {
    Step(Step),
    /// A failed test (or set): roll back, for this reason.
    Rollback(String),
    Done(Outcome),
}

/// The job's item, located once per run.
struct Located {
    vault: VaultRef,
    item: Item,
}

impl Rotator {
    /// The process's runner, holding leases as a new [`Holder::this_process`]: for a process that
    /// builds one runner (the daemon, `opsync rotate now`) and clones it wherever it rotates.
    pub fn new(client: ConnectClient, store: Store) -> Self {
        Self::with_holder(client, store, Holder::this_process())
    }

    /// A runner holding leases as `holder`, the identity of this process made once at its start
    /// (every runner of one process must share it).
    pub fn with_holder(client: ConnectClient, store: Store, holder: Holder) -> Self {
        Self {
            client,
            store,
            owner: format!("{}-{:016x}", holder.pid(), rand::random::<u64>()),
            holder,
            lease_ttl: LEASE_TTL,
            retry: StepRetry::default(),
            kill_after: std::env::var(KILL_HOOK_ENV).ok().filter(|s| !s.is_empty()),
            events: AuditEvents::default(),
        }
    }

    /// Reports finished rotations to `events` (no one is told by default).
    pub fn reporting_to(mut self, events: AuditEvents) -> Self {
        self.events = events;
        self
    }

    /// How long the lease lasts unless renewed (default [`LEASE_TTL`]); renewed every third of
    /// it while a rotation runs.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    pub fn with_retry(mut self, retry: StepRetry) -> Self {
        self.retry = retry;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lease_until(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.lease_ttl).unwrap_or(chrono::Duration::MAX)
    }

    fn store_err(job: &str) -> impl Fn(StoreError) -> RotationError + '_ {
        move |source| RotationError::Store {
            job: job.to_owned(),
            source,
        }
    }

    /// Resumes the job's rotation in progress, or starts one when `start` is given and none is.
    /// Holds the job's lease throughout; returns [`Outcome::Busy`] if another process has it.
    pub async fn run(
        &self,
        job: &RotationJob,
        plugin: &Plugin,
        start: Option<Start>,
    ) -> Result<Outcome, RotationError> {
        self.run_timed(job, plugin, start).await.map(|(o, _)| o)
    }

    /// [`Rotator::run`], also returning each step's timing (for benchmarks).
    pub async fn run_timed(
        &self,
        job: &RotationJob,
        plugin: &Plugin,
        start: Option<Start>,
    ) -> Result<(Outcome, Vec<StepTiming>), RotationError> {
        let name = job.name.as_str();
        let serr = Self::store_err(name);
        let now = Utc::now();
        let lease = self.holder.lease(&self.owner, self.lease_until());
        let taken = self
            .store
            .rotation_acquire(name, &lease, now, |held| {
                let alive = self.holder.lease_alive(held, pid_exists);
                if !alive {
                    tracing::info!(job = name, pid = held.pid, until = %held.until, "the rotation lease's holder is gone; taking the lease over");
                }
                alive
            })
            .map_err(&serr)?;
        if !taken {
            return Ok((Outcome::Busy, Vec::new()));
        }
        let mut timings = Vec::new();
        let result = self
            .renewing(name, self.drive(job, plugin, start, &mut timings))
            .await;
        if let Err(e) = self.store.rotation_release(name, &self.owner) {
            tracing::warn!(job = name, error = %e, "could not release the rotation lease");
        }
        result.map(|o| (o, timings))
    }

    /// Runs `work`, renewing the job's lease every third of its time until `work` ends. A lease
    /// taken over by another process meanwhile stops `work` (as a crash would: every step is
    /// idempotent); a renewal failing otherwise is logged and tried again at the next tick.
    async fn renewing<T>(
        &self,
        job: &str,
        work: impl Future<Output = Result<T, RotationError>>,
    ) -> Result<T, RotationError> {
        let every = (self.lease_ttl / 3).max(MIN_RENEW_EVERY);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = tick.tick() => {
                    match self.store.rotation_renew(job, &self.owner, self.lease_until()) {
                        Ok(()) => {}
                        Err(source @ StoreError::LeaseLost(_)) => {
                            tracing::error!(job, "another process took the rotation lease over; stopping this run");
                            return Err(RotationError::Store {
                                job: job.to_owned(),
                                source,
                            });
                        }
                        Err(e) => {
                            tracing::warn!(job, error = %e, "could not renew the rotation lease");
                        }
                    }
                }
            }
        }
    }

    async fn drive(
        &self,
        job: &RotationJob,
        plugin: &Plugin,
        start: Option<Start>,
        timings: &mut Vec<StepTiming>,
    ) -> Result<Outcome, RotationError> {
        let name = job.name.as_str();
        let Some(mut run) = self.resume_or_begin(name, start)? else {
            return Ok(Outcome::Idle);
        };
        let mut rollback = match run.step {
            Step::Rollback => run.step_error.clone(),
            _ => None,
        };
        let started = Instant::now();
        loop {
            wait_until_due(&run).await;
            let step = run.step;
            let t0 = Instant::now();
            let mut in_plugin = Duration::ZERO;
            let result = self
                .step(job, plugin, &run, rollback.as_deref(), &mut in_plugin)
                .await;
            let elapsed = t0.elapsed();
            timings.push(StepTiming {
                step,
                total: elapsed,
                plugin: in_plugin,
            });
            let flow = match result {
                Ok(next) => self.step_done(name, &run.key, step, next, elapsed, &mut rollback)?,
                Err(e) => self.step_failed(name, &run, &e, elapsed, &mut rollback)?,
            };
            if let Flow::Finished(outcome) = flow {
                telemetry::finished(name, &outcome, started.elapsed());
                return Ok(outcome);
            }
            run = self.in_progress(name)?;
        }
    }

    /// The rotation in progress, or a new one for `start`; `None` when there is neither.
    fn resume_or_begin(
        &self,
        name: &str,
        start: Option<Start>,
    ) -> Result<Option<RunState>, RotationError> {
        let serr = Self::store_err(name);
        let state = self.store.rotation_job(name, Utc::now()).map_err(&serr)?;
        match (state.run, start) {
            (Some(run), _) => {
                tracing::info!(job = name, step = %run.step, attempt = run.attempt, key = %run.key, "resuming rotation");
                Ok(Some(run))
            }
            (None, Some(s)) => {
                let key = format!(
                    "{name}:{}{}",
                    if s.manual { "manual:" } else { "" },
                    s.slot.timestamp_millis()
                );
                self.store
                    .rotation_begin(name, &self.owner, &key, s.slot, s.manual, Utc::now())
                    .map_err(&serr)?;
                tracing::info!(job = name, slot = %s.slot, manual = s.manual, key = %key, "rotation started");
                self.in_progress(name).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// The rotation in progress, as the state database has it now.
    fn in_progress(&self, name: &str) -> Result<RunState, RotationError> {
        self.store
            .rotation_job(name, Utc::now())
            .map_err(Self::store_err(name))?
            .run
            .ok_or_else(|| RotationError::Inconsistent {
                job: name.to_owned(),
                message: "the rotation in progress is not in the state database".into(),
            })
    }

    /// Records a step that succeeded: the next step, a rollback, or the end.
    fn step_done(
        &self,
        name: &str,
        key: &str,
        step: Step,
        next: Next,
        elapsed: Duration,
        rollback: &mut Option<String>,
    ) -> Result<Flow, RotationError> {
        let serr = Self::store_err(name);
        telemetry::step(name, step, "ok", elapsed);
        self.hook(step, false);
        match next {
            Next::Step(next) => {
                self.store
                    .rotation_step(name, &self.owner, next, self.lease_until())
                    .map_err(&serr)?;
                tracing::info!(job = name, key, step = %step, next = %next, elapsed_ms = elapsed.as_millis() as u64, "rotation step done");
            }
            Next::Rollback(reason) => {
                self.store
                    .rotation_step(name, &self.owner, Step::Rollback, self.lease_until())
                    .map_err(&serr)?;
                tracing::warn!(job = name, step = %step, reason = %reason, "rotation rolls back");
                *rollback = Some(reason);
            }
            Next::Done(outcome) => {
                let error = match &outcome {
                    Outcome::RolledBack { reason } | Outcome::Failed { reason } => {
                        Some(reason.as_str())
                    }
                    _ => None,
                };
                self.store
                    .rotation_end(name, &self.owner, outcome.as_str(), error, Utc::now())
                    .map_err(&serr)?;
                self.hook(step, true);
                return Ok(Flow::Finished(outcome));
            }
        }
        self.hook(step, true);
        Ok(Flow::Next)
    }

    /// Records a step that failed: retried later, rolled back, or the end, by step.
    fn step_failed(
        &self,
        name: &str,
        run: &RunState,
        e: &RotationError,
        elapsed: Duration,
        rollback: &mut Option<String>,
    ) -> Result<Flow, RotationError> {
        let serr = Self::store_err(name);
        let step = run.step;
        let result = if e.is_retryable() {
            "retryable"
        } else {
            "error"
        };
        telemetry::step(name, step, result, elapsed);
        let message = e.to_string();
        let attempt = run.attempt + 1;
        let retry_at = Utc::now()
            + chrono::Duration::from_std(self.retry.delay_with(attempt, e.retry_hint()))
                .unwrap_or(chrono::Duration::MAX);
        self.store
            .rotation_attempt_failed(name, &self.owner, &message, retry_at)
            .map_err(&serr)?;
        tracing::warn!(job = name, step = %step, attempt, error = %message, "rotation step failed");
        if e.is_retryable() && attempt < self.retry.attempts {
            return Ok(Flow::Next);
        }
        let end = |outcome: Outcome, reason: &str| -> Result<Flow, RotationError> {
            self.store
                .rotation_end(name, &self.owner, "failed", Some(reason), Utc::now())
                .map_err(&serr)?;
            Ok(Flow::Finished(outcome))
        };
        match step {
            // Nothing reached the target; a pending value written by an earlier attempt stays
            // until the next rotation replaces it.
            Step::Create => end(
                Outcome::Failed {
                    reason: message.clone(),
                },
                &message,
            ),
            Step::Set | Step::Test => {
                self.store
                    .rotation_step(name, &self.owner, Step::Rollback, self.lease_until())
                    .map_err(&serr)?;
                tracing::warn!(job = name, step = %step, "rotation rolls back");
                *rollback = Some(format!("{step} failed: {message}"));
                Ok(Flow::Next)
            }
            Step::Finish => {
                let reason = format!(
                    "the new value is current, but the plugin's finish failed (older credentials may remain): {message}"
                );
                end(
                    Outcome::Failed {
                        reason: reason.clone(),
                    },
                    &reason,
                )
            }
            // Target and 1Password disagree until this step succeeds: never give up, come back
            // later.
            Step::Promote | Step::Rollback => Ok(Flow::Finished(Outcome::Stalled {
                step,
                reason: message,
                retry_at,
            })),
        }
    }

    /// The crash-test hook: SIGKILL this process right after `step` (and, with `recorded`, after
    /// its outcome was persisted). `OPSYNC_TEST_KILL_AFTER_STEP=set` kills after `set` is
    /// recorded; `set-unrecorded` after `set` ran but before it was recorded.
    fn hook(&self, step: Step, recorded: bool) {
        let Some(want) = &self.kill_after else {
            return;
        };
        let name = if recorded {
            step.as_str().to_owned()
        } else {
            format!("{}-unrecorded", step.as_str())
        };
        if *want == name {
            tracing::warn!(hook = %name, "{KILL_HOOK_ENV}: killing this process with SIGKILL");
            // SAFETY: kill(2) on our own pid with a valid signal has no memory-safety effects.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// Waits until a failed step's retry is due (no wait for a step never tried).
async fn wait_until_due(run: &RunState) {
    if let Some(at) = run.retry_at {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
