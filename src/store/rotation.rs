//! Rotation jobs' persisted state: the last scheduled slot (so a slot never runs twice), the
//! rotation in progress (its idempotency key, step and attempt), the last result, and the lease
//! that keeps two processes from running one job at once. Never a value.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};

use crate::domain::Step;
use crate::store::error::{SqlContext, StoreError};
use crate::store::{SqliteStore, clip, from_millis, to_millis};

/// The rotation in progress for a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunState {
    /// The idempotency key every step and retry of this rotation carries.
    pub key: String,
    /// The nominal slot (the request time for a manual run).
    pub slot: DateTime<Utc>,
    pub manual: bool,
    pub step: Step,
    /// Failed attempts of the current step.
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    /// After a failed attempt: not before this.
    pub retry_at: Option<DateTime<Utc>>,
    pub step_error: Option<String>,
}

/// Who holds a job, until when. A process is identified by more than its pid, which a restarted
/// container's PID 1 gets back: a random id of the process instance and where its pid means
/// something (both `None` in a lease written before schema version 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The holder's own token (one per runner); only it renews, moves or releases the lease.
    pub owner: String,
    pub pid: i64,
    pub until: DateTime<Utc>,
    /// The random id the holding process drew when it started.
    pub instance: Option<String>,
    /// Where the holder's pid means something: `boot=<boot id> pidns=<pid namespace>
    /// host=<hostname>` (see `rotation::lease::Place`).
    pub place: Option<String>,
}

/// Everything persisted about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub job: String,
    pub first_seen: DateTime<Utc>,
    pub last_slot: Option<DateTime<Utc>>,
    /// `succeeded`, `rolled_back`, `failed` or `skipped`.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub run: Option<RunState>,
    pub lease: Option<Lease>,
}

const COLUMNS: &str = "job, first_seen, last_slot, last_result, last_error, last_finished_at, \
     last_success_at, run_key, run_slot, run_manual, step, attempt, started_at, retry_at, \
     step_error, lease_owner, lease_pid, lease_until, lease_instance, lease_place";

fn opt_time(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_millis)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(JobState, Option<String>)> {
    let step: Option<String> = r.get(10)?;
    let run_key: Option<String> = r.get(7)?;
    let lease_owner: Option<String> = r.get(15)?;
    let run = match (&run_key, step.as_deref().and_then(Step::parse)) {
        (Some(key), Some(step)) => Some(RunState {
            key: key.clone(),
            slot: from_millis(r.get::<_, Option<i64>>(8)?.unwrap_or(0)),
            manual: r.get::<_, i64>(9)? != 0,
            step,
            attempt: r.get::<_, i64>(11)?.max(0) as u32,
            started_at: from_millis(r.get::<_, Option<i64>>(12)?.unwrap_or(0)),
            retry_at: opt_time(r.get(13)?),
            step_error: r.get(14)?,
        }),
        _ => None,
    };
    let lease = match lease_owner {
        Some(owner) => Some(Lease {
            owner,
            pid: r.get::<_, Option<i64>>(16)?.unwrap_or(0),
            until: from_millis(r.get::<_, Option<i64>>(17)?.unwrap_or(0)),
            instance: r.get(18)?,
            place: r.get(19)?,
        }),
        None => None,
    };
    Ok((
        JobState {
            job: r.get(0)?,
            first_seen: from_millis(r.get(1)?),
            last_slot: opt_time(r.get(2)?),
            last_result: r.get(3)?,
            last_error: r.get(4)?,
            last_finished_at: opt_time(r.get(5)?),
            last_success_at: opt_time(r.get(6)?),
            run,
            lease,
        },
        step,
    ))
}

fn check_step(state: (JobState, Option<String>)) -> Result<JobState, StoreError> {
    let (job, step) = state;
    if let Some(s) = step
        && job.run.is_none()
    {
        return Err(StoreError::Corrupt(format!(
            "rotation job {}: unknown step {s:?}",
            job.job
        )));
    }
    Ok(job)
}

impl SqliteStore {
    /// The job's state, creating its row (first seen `now`) if it has none.
    pub fn rotation_job(&self, job: &str, now: DateTime<Utc>) -> Result<JobState, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO rotation_jobs (job, first_seen) VALUES (?1, ?2) ON CONFLICT (job) DO NOTHING",
            params![job, to_millis(now)],
        )
        .op("add rotation job")?;
        let state = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM rotation_jobs WHERE job = ?1"),
                [job],
                row,
            )
            .op("read rotation job")?;
        check_step(state)
    }

    /// Every job with a row, by name.
    pub fn rotation_jobs(&self) -> Result<Vec<JobState>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT {COLUMNS} FROM rotation_jobs ORDER BY job"))
            .op("prepare rotation jobs")?;
        let rows = stmt.query_map([], row).op("read rotation jobs")?;
        let mut out = Vec::new();
        for r in rows {
            out.push(check_step(r.op("read rotation job")?)?);
        }
        Ok(out)
    }

    /// Takes the job's lease for `lease.owner` until `lease.until`, unless another owner holds it
    /// past `now` and `alive` says that holder still runs (a lease past its time counts as free;
    /// one without a pid as alive). True when taken.
    pub fn rotation_acquire(
        &self,
        job: &str,
        lease: &Lease,
        now: DateTime<Utc>,
        alive: impl Fn(&Lease) -> bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .op("begin lease")?;
        tx.execute(
            "INSERT INTO rotation_jobs (job, first_seen) VALUES (?1, ?2) ON CONFLICT (job) DO NOTHING",
            params![job, to_millis(now)],
        )
        .op("add rotation job")?;
        type Held = (
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let held: Option<Held> = tx
            .query_row(
                "SELECT lease_owner, lease_pid, lease_until, lease_instance, lease_place
                 FROM rotation_jobs WHERE job = ?1",
                [job],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .op("read lease")?;
        if let Some((Some(other), pid, Some(until), instance, place)) = held
            && other != lease.owner
            && until > to_millis(now)
        {
            let holder = Lease {
                owner: other,
                pid: pid.unwrap_or(0),
                until: from_millis(until),
                instance,
                place,
            };
            if pid.is_none() || alive(&holder) {
                return Ok(false);
            }
        }
        tx.execute(
            "UPDATE rotation_jobs SET lease_owner = ?2, lease_pid = ?3, lease_until = ?4,
                 lease_instance = ?5, lease_place = ?6
             WHERE job = ?1",
            params![
                job,
                lease.owner,
                lease.pid,
                to_millis(lease.until),
                lease.instance,
                lease.place
            ],
        )
        .op("take lease")?;
        tx.commit().op("commit lease")?;
        Ok(true)
    }

    /// Gives the lease up (only if `owner` holds it).
    pub fn rotation_release(&self, job: &str, owner: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE rotation_jobs SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL,
                     lease_instance = NULL, lease_place = NULL
                 WHERE job = ?1 AND lease_owner = ?2",
                params![job, owner],
            )
            .op("release lease")
            .map(drop)
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
        let n = self
            .conn()
            .execute(
                "UPDATE rotation_jobs SET run_key = ?3, run_slot = ?4, run_manual = ?5,
                     step = 'create', attempt = 0, started_at = ?6, retry_at = NULL,
                     step_error = NULL,
                     last_slot = CASE WHEN ?5 THEN last_slot ELSE ?4 END
                 WHERE job = ?1 AND lease_owner = ?2 AND step IS NULL",
                params![job, owner, key, to_millis(slot), manual, to_millis(now)],
            )
            .op("begin rotation")?;
        lease_held(n, job)
    }

    /// Records that the rotation moved on to `step` (attempts start over) and renews the lease.
    pub fn rotation_step(
        &self,
        job: &str,
        owner: &str,
        step: Step,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE rotation_jobs SET step = ?3, attempt = 0, retry_at = NULL,
                     step_error = NULL, lease_until = ?4
                 WHERE job = ?1 AND lease_owner = ?2 AND step IS NOT NULL",
                params![job, owner, step.as_str(), to_millis(lease_until)],
            )
            .op("record rotation step")?;
        lease_held(n, job)
    }

    /// Renews the lease while a step runs (the runner does, every third of the lease's time).
    pub fn rotation_renew(
        &self,
        job: &str,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE rotation_jobs SET lease_until = ?3 WHERE job = ?1 AND lease_owner = ?2",
                params![job, owner, to_millis(lease_until)],
            )
            .op("renew lease")?;
        lease_held(n, job)
    }

    /// A failed attempt of the current step: counted, with its error, retried at `retry_at`.
    pub fn rotation_attempt_failed(
        &self,
        job: &str,
        owner: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE rotation_jobs SET attempt = attempt + 1, step_error = ?3, retry_at = ?4
                 WHERE job = ?1 AND lease_owner = ?2 AND step IS NOT NULL",
                params![job, owner, clip(error), to_millis(retry_at)],
            )
            .op("record failed attempt")?;
        lease_held(n, job)?;
        let attempt: i64 = conn
            .query_row(
                "SELECT attempt FROM rotation_jobs WHERE job = ?1",
                [job],
                |r| r.get(0),
            )
            .op("read attempt")?;
        Ok(attempt.max(0) as u32)
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
        let n = self
            .conn()
            .execute(
                "UPDATE rotation_jobs SET run_key = NULL, run_slot = NULL, run_manual = 0,
                     step = NULL, attempt = 0, started_at = NULL, retry_at = NULL,
                     step_error = NULL, last_result = ?3, last_error = ?4,
                     last_finished_at = ?5,
                     last_success_at = CASE WHEN ?3 = 'succeeded' THEN ?5 ELSE last_success_at END
                 WHERE job = ?1 AND lease_owner = ?2",
                params![job, owner, result, error.map(clip), to_millis(now)],
            )
            .op("end rotation")?;
        lease_held(n, job)
    }

    /// A slot missed by more than its deadline: recorded as the last slot, never run.
    pub fn rotation_skip(
        &self,
        job: &str,
        slot: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE rotation_jobs SET last_slot = ?2, last_result = 'skipped', last_error = ?3,
                     last_finished_at = ?4
                 WHERE job = ?1 AND step IS NULL AND (last_slot IS NULL OR last_slot < ?2)",
                params![job, to_millis(slot), clip(reason), to_millis(now)],
            )
            .op("skip slot")
            .map(drop)
    }
}

fn lease_held(rows: usize, job: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::LeaseLost(job.to_owned()))
    } else {
        Ok(())
    }
}
