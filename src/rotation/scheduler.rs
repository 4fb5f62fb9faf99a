//! The daemon's rotation scheduler: one task per job that resumes a rotation in progress, runs
//! the due slot once (within its deadline; later ones are recorded as skipped), and otherwise
//! waits for the next slot plus its jitter.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;

use crate::plugin::Plugin;
use crate::rotation::RotationJob;
use crate::rotation::outcome::{Outcome, Start};
use crate::rotation::runner::Rotator;
use crate::rotation::telemetry;
use crate::schedule::Due;
use crate::shutdown::Shutdown;

/// The longest a job's task sleeps before looking at the state database again (a rotation
/// started by `opsync rotate now` in another process, a lease that expired).
pub const RECHECK: Duration = Duration::from_secs(1);

/// Starts one task per job on `tasks`. Jobs whose plugin is not loaded log why and wait.
pub fn spawn(
    tasks: &mut JoinSet<()>,
    rotator: Rotator,
    jobs: &[RotationJob],
    plugins: &HashMap<String, Plugin>,
    broken: &HashMap<String, String>,
    shutdown: Shutdown,
) {
    telemetry::describe();
    for job in jobs {
        let Some(plugin) = plugins.get(&job.plugin).cloned() else {
            let reason = broken
                .get(&job.plugin)
                .cloned()
                .unwrap_or_else(|| "not loaded".into());
            tracing::error!(job = %job.name, plugin = %job.plugin, reason = %reason, "rotation job cannot run: its plugin is not usable");
            continue;
        };
        let (rotator, job, mut stop) = (rotator.clone(), job.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = stop.wait() => {}
                () = job_loop(&rotator, &job, &plugin) => {}
            }
        });
    }
}

async fn job_loop(rotator: &Rotator, job: &RotationJob, plugin: &Plugin) {
    let name = job.name.as_str();
    loop {
        let now = Utc::now();
        let wait = match rotator.store().rotation_job(name, now) {
            Err(e) => {
                tracing::error!(job = name, error = %e, "cannot read the rotation job's state");
                Duration::from_secs(5)
            }
            Ok(state) if state.run.is_some() => {
                let retry_at = state.run.as_ref().and_then(|r| r.retry_at);
                match retry_at.filter(|t| *t > now) {
                    Some(t) => (t - now).to_std().unwrap_or_default().min(RECHECK),
                    None => act(rotator, job, plugin, None).await,
                }
            }
            Ok(state) => match job.due(Some(&state), now) {
                Due::Run { slot } => {
                    act(
                        rotator,
                        job,
                        plugin,
                        Some(Start {
                            slot,
                            manual: false,
                        }),
                    )
                    .await
                }
                Due::Skip { slot, late_by } => {
                    let reason = format!(
                        "slot {slot} missed by {} (deadline {})",
                        humantime::format_duration(Duration::from_secs(late_by.as_secs())),
                        humantime::format_duration(job.deadline)
                    );
                    if let Err(e) = rotator.store().rotation_skip(name, slot, &reason, now) {
                        tracing::error!(job = name, error = %e, "cannot record a skipped slot");
                    }
                    telemetry::skipped(name, slot, late_by);
                    Duration::ZERO
                }
                Due::Wait { at, .. } => {
                    telemetry::next_run(name, at);
                    (at - now).to_std().unwrap_or_default().min(RECHECK)
                }
                Due::Never => Duration::from_secs(60),
            },
        };
        tokio::time::sleep(wait).await;
    }
}

/// Runs (or resumes) the job; returns how long to wait before looking again.
async fn act(
    rotator: &Rotator,
    job: &RotationJob,
    plugin: &Plugin,
    start: Option<Start>,
) -> Duration {
    match rotator.run(job, plugin, start).await {
        Ok(Outcome::Busy) => RECHECK,
        Ok(Outcome::Stalled { .. }) => RECHECK,
        Ok(_) => Duration::ZERO,
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "rotation run failed");
            Duration::from_secs(5)
        }
    }
}
