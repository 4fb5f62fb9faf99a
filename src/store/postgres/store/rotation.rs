//! Rotation jobs on PostgreSQL: the schedule's bookkeeping, the step in progress, the job lease.

use std::sync::mpsc;

use chrono::{DateTime, Utc};

use crate::domain::Step;
use crate::store::error::PgOp;
use crate::store::postgres::PgStore;
use crate::store::{JobState, Lease, RunState, StoreError, clip, from_millis, to_millis};

const COLUMNS: &str = "job, first_seen, last_slot, last_result, last_error, last_finished_at, \
     last_success_at, run_key, run_slot, run_manual, step, attempt, started_at, retry_at, \
     step_error, lease_owner, lease_pid, lease_until, lease_instance, lease_place";

const ADD_JOB: &str =
    "INSERT INTO rotation_jobs (job, first_seen) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING";

/// One column of a row of [`COLUMNS`].
fn col<'a, T: postgres::types::FromSql<'a>>(
    r: &'a postgres::Row,
    i: usize,
) -> Result<T, StoreError> {
    r.try_get(i).op("read rotation job")
}

fn opt_time(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_millis)
}

/// A job's state from a row of [`COLUMNS`]; a step this build does not know is corrupt.
fn row(r: &postgres::Row) -> Result<JobState, StoreError> {
    let job: String = col(r, 0)?;
    let step: Option<String> = col(r, 10)?;
    let run_key: Option<String> = col(r, 7)?;
    let lease_owner: Option<String> = col(r, 15)?;
    let run = match (run_key, step.as_deref().and_then(Step::parse)) {
        (Some(key), Some(parsed)) => Some(RunState {
            key,
            slot: from_millis(col::<Option<i64>>(r, 8)?.unwrap_or(0)),
            manual: col::<i64>(r, 9)? != 0,
            step: parsed,
            attempt: col::<i64>(r, 11)?.max(0) as u32,
            started_at: from_millis(col::<Option<i64>>(r, 12)?.unwrap_or(0)),
            retry_at: opt_time(col(r, 13)?),
            step_error: col(r, 14)?,
        }),
        _ => None,
    };
    if let Some(s) = &step
        && run.is_none()
    {
        return Err(StoreError::Corrupt(format!(
            "rotation job {job}: unknown step {s:?}"
        )));
    }
    let lease = match lease_owner {
        Some(owner) => Some(Lease {
            owner,
            pid: col::<Option<i64>>(r, 16)?.unwrap_or(0),
            until: from_millis(col::<Option<i64>>(r, 17)?.unwrap_or(0)),
            instance: col(r, 18)?,
            place: col(r, 19)?,
        }),
        None => None,
    };
    Ok(JobState {
        job,
        first_seen: from_millis(col(r, 1)?),
        last_slot: opt_time(col(r, 2)?),
        last_result: col(r, 3)?,
        last_error: col(r, 4)?,
        last_finished_at: opt_time(col(r, 5)?),
        last_success_at: opt_time(col(r, 6)?),
        run,
        lease,
    })
}

/// `LeaseLost` when a write conditioned on the lease changed no row.
fn lease_held(rows: u64, job: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::LeaseLost(job.to_owned()))
    } else {
        Ok(())
    }
}

impl PgStore {
    /// The job's state, creating its row (first seen `now`) if it has none.
    pub fn rotation_job(&self, job: &str, now: DateTime<Utc>) -> Result<JobState, StoreError> {
        let job = job.to_owned();
        let now = to_millis(now);
        self.run(move |c| {
            c.execute(ADD_JOB, &[&job, &now]).op("add rotation job")?;
            let r = c
                .query_one(
                    &format!("SELECT {COLUMNS} FROM rotation_jobs WHERE job = $1"),
                    &[&job],
                )
                .op("read rotation job")?;
            row(&r)
        })
    }

    /// Every job with a row, by name.
    pub fn rotation_jobs(&self) -> Result<Vec<JobState>, StoreError> {
        self.run(move |c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM rotation_jobs ORDER BY job COLLATE \"C\""),
                &[],
            )
            .op("read rotation jobs")?
            .iter()
            .map(row)
            .collect()
        })
    }

    /// Takes the job's lease for `lease.owner` until `lease.until`, unless another owner holds it
    /// past `now` and `alive` says that holder still runs (a lease past its time counts as free;
    /// one without a pid as alive). True when taken.
    ///
    /// The job's row stays locked (`FOR UPDATE`) from the read of the lease to its write, so of
    /// several processes racing for it exactly one takes it. `alive` runs on the calling thread
    /// while the worker's transaction waits for its answer.
    pub fn rotation_acquire(
        &self,
        job: &str,
        lease: &Lease,
        now: DateTime<Utc>,
        alive: impl Fn(&Lease) -> bool,
    ) -> Result<bool, StoreError> {
        let job = job.to_owned();
        let lease = lease.clone();
        let now = to_millis(now);
        // The transaction asks the caller about a live holder and waits for the answer.
        let (ask, asked) = mpsc::channel::<Lease>();
        let (answer, answered) = mpsc::channel::<bool>();
        let op = move |c: &mut postgres::Client| -> Result<bool, StoreError> {
            let mut tx = c.transaction().op("begin lease")?;
            tx.execute(ADD_JOB, &[&job, &now]).op("add rotation job")?;
            let held = tx
                .query_one(
                    "SELECT lease_owner, lease_pid, lease_until, lease_instance, lease_place
                     FROM rotation_jobs WHERE job = $1 FOR UPDATE",
                    &[&job],
                )
                .op("read lease")?;
            let owner: Option<String> = held.try_get(0).op("read lease")?;
            let pid: Option<i64> = held.try_get(1).op("read lease")?;
            let until: Option<i64> = held.try_get(2).op("read lease")?;
            if let (Some(other), Some(until)) = (owner, until)
                && other != lease.owner
                && until > now
            {
                let Some(pid) = pid else {
                    return Ok(false);
                };
                let holder = Lease {
                    owner: other,
                    pid,
                    until: from_millis(until),
                    instance: held.try_get(3).op("read lease")?,
                    place: held.try_get(4).op("read lease")?,
                };
                let gone = || StoreError::Task("the rotation lease's acquirer went away".into());
                ask.send(holder).map_err(|_| gone())?;
                if answered.recv().map_err(|_| gone())? {
                    return Ok(false);
                }
            }
            tx.execute(
                "UPDATE rotation_jobs SET lease_owner = $2, lease_pid = $3, lease_until = $4,
                     lease_instance = $5, lease_place = $6
                 WHERE job = $1",
                &[
                    &job,
                    &lease.owner,
                    &lease.pid,
                    &to_millis(lease.until),
                    &lease.instance,
                    &lease.place,
                ],
            )
            .op("take lease")?;
            tx.commit().op("commit lease")?;
            Ok(true)
        };
        // `move`: should `alive` panic, `answer` is dropped before the scope joins the worker's
        // call, which then gives up instead of waiting for an answer forever.
        std::thread::scope(move |s| {
            let running = std::thread::Builder::new()
                .name("opsync-pg-lease".into())
                .spawn_scoped(s, move || self.run(op))
                .map_err(|e| StoreError::Task(format!("cannot take the rotation lease: {e}")))?;
            // Until the operation is done (it drops `ask`), answer each holder it asks about.
            for holder in asked {
                if answer.send(alive(&holder)).is_err() {
                    break;
                }
            }
            running
                .join()
                .map_err(|_| StoreError::Task("taking the rotation lease panicked".into()))?
        })
    }

    /// Gives the lease up (only if `owner` holds it; nothing happens otherwise).
    pub fn rotation_release(&self, job: &str, owner: &str) -> Result<(), StoreError> {
        let job = job.to_owned();
        let owner = owner.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE rotation_jobs SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL,
                     lease_instance = NULL, lease_place = NULL
                 WHERE job = $1 AND lease_owner = $2",
                &[&job, &owner],
            )
            .op("release lease")
            .map(drop)
        })
    }

    /// Starts a rotation at step `create`. For a scheduled run the slot is recorded as the last
    /// one in the same write, so it is never started again.
    pub fn rotation_begin(
        &self,
        job: &str,
        owner: &str,
        key: &str,
        slot: DateTime<Utc>,
        manual: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = job.to_owned();
        let owner = owner.to_owned();
        let key = key.to_owned();
        let slot = to_millis(slot);
        let manual = i64::from(manual);
        let now = to_millis(now);
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE rotation_jobs SET run_key = $3, run_slot = $4::bigint,
                         run_manual = $5::bigint, step = 'create', attempt = 0,
                         started_at = $6, retry_at = NULL, step_error = NULL,
                         last_slot = CASE WHEN $5::bigint <> 0 THEN last_slot ELSE $4::bigint END
                     WHERE job = $1 AND lease_owner = $2 AND step IS NULL",
                    &[&job, &owner, &key, &slot, &manual, &now],
                )
                .op("begin rotation")?;
            lease_held(n, &job)
        })
    }

    /// Records that the rotation moved on to `step` (attempts start over) and renews the lease.
    pub fn rotation_step(
        &self,
        job: &str,
        owner: &str,
        step: Step,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = job.to_owned();
        let owner = owner.to_owned();
        let until = to_millis(lease_until);
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE rotation_jobs SET step = $3, attempt = 0, retry_at = NULL,
                         step_error = NULL, lease_until = $4
                     WHERE job = $1 AND lease_owner = $2 AND step IS NOT NULL",
                    &[&job, &owner, &step.as_str(), &until],
                )
                .op("record rotation step")?;
            lease_held(n, &job)
        })
    }

    /// Renews the lease while a step runs (the runner does, every third of the lease's time).
    pub fn rotation_renew(
        &self,
        job: &str,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = job.to_owned();
        let owner = owner.to_owned();
        let until = to_millis(lease_until);
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE rotation_jobs SET lease_until = $3 WHERE job = $1 AND lease_owner = $2",
                    &[&job, &owner, &until],
                )
                .op("renew lease")?;
            lease_held(n, &job)
        })
    }

    /// A failed attempt of the current step: counted, with its error, retried at `retry_at`.
    /// Returns the failed attempts so far, read in the same statement.
    pub fn rotation_attempt_failed(
        &self,
        job: &str,
        owner: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let job = job.to_owned();
        let owner = owner.to_owned();
        let error = clip(error).to_owned();
        let retry_at = to_millis(retry_at);
        self.run(move |c| {
            let rows = c
                .query(
                    "UPDATE rotation_jobs SET attempt = attempt + 1, step_error = $3,
                         retry_at = $4
                     WHERE job = $1 AND lease_owner = $2 AND step IS NOT NULL
                     RETURNING attempt",
                    &[&job, &owner, &error, &retry_at],
                )
                .op("record failed attempt")?;
            let Some(r) = rows.first() else {
                return Err(StoreError::LeaseLost(job));
            };
            let attempt: i64 = r.try_get(0).op("read attempt")?;
            Ok(attempt.max(0) as u32)
        })
    }

    /// Ends the rotation in progress with `result` (`succeeded`, `rolled_back`, `failed`).
    pub fn rotation_end(
        &self,
        job: &str,
        owner: &str,
        result: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = job.to_owned();
        let owner = owner.to_owned();
        let result = result.to_owned();
        let error = error.map(|e| clip(e).to_owned());
        let now = to_millis(now);
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE rotation_jobs SET run_key = NULL, run_slot = NULL, run_manual = 0,
                         step = NULL, attempt = 0, started_at = NULL, retry_at = NULL,
                         step_error = NULL, last_result = $3::text, last_error = $4,
                         last_finished_at = $5::bigint,
                         last_success_at = CASE WHEN $3::text = 'succeeded' THEN $5::bigint
                             ELSE last_success_at END
                     WHERE job = $1 AND lease_owner = $2",
                    &[&job, &owner, &result, &error, &now],
                )
                .op("end rotation")?;
            lease_held(n, &job)
        })
    }

    /// A slot missed by more than its deadline: recorded as the last slot, never run.
    pub fn rotation_skip(
        &self,
        job: &str,
        slot: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = job.to_owned();
        let slot = to_millis(slot);
        let reason = clip(reason).to_owned();
        let now = to_millis(now);
        self.run(move |c| {
            c.execute(
                "UPDATE rotation_jobs SET last_slot = $2, last_result = 'skipped',
                     last_error = $3, last_finished_at = $4
                 WHERE job = $1 AND step IS NULL AND (last_slot IS NULL OR last_slot < $2)",
                &[&job, &slot, &reason, &now],
            )
            .op("skip slot")
            .map(drop)
        })
    }
}
