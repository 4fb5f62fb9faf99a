//! `opsync rotate now JOB` (runs or resumes one rotation in this process, under the job's lease)
//! and `opsync rotate status` (next run, last result, step in progress, from the state database).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::app::engine::Engine;
use crate::app::error::AppError;
use crate::app::run::plugin_cache_dir;
use crate::config::Settings;
use crate::rotation::{Outcome, Rotator, Start};
use crate::schedule::{Due, due};
use crate::store::Store;

/// Runs `job` now (or resumes its rotation in progress) and waits for the outcome.
pub async fn rotate_now(settings: Settings, job: &str) -> Result<Outcome, AppError> {
    let Some(config) = settings.rotations.iter().find(|j| j.name == job).cloned() else {
        let known: Vec<&str> = settings.rotations.iter().map(|j| j.name.as_str()).collect();
        return Err(AppError::Rotation(format!(
            "no rotation job {job:?} in the config (configured: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    let store = Store::open(&settings.state.path)?;
    let cache = plugin_cache_dir(&settings.state.path);
    let plugin_name = config.plugin.clone();
    let engine =
        Engine::with_plugins(settings, store, Some(cache), |p| p.name == plugin_name).await?;
    let Some(plugin) = engine.plugins.get(&config.plugin) else {
        let reason = engine
            .broken
            .get(&config.plugin)
            .cloned()
            .unwrap_or_else(|| "not loaded".into());
        return Err(AppError::Rotation(format!(
            "rotation job {job}: plugin {} is not usable: {reason}",
            config.plugin
        )));
    };
    let rotator = Rotator::new(engine.client.clone(), engine.store.clone());
    rotator
        .run(
            &config,
            plugin,
            Some(Start {
                slot: Utc::now(),
                manual: true,
            }),
        )
        .await
        .map_err(|e| AppError::Rotation(e.to_string()))
}

/// The line `rotate now` prints for an outcome.
pub fn outcome_text(job: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Succeeded => format!("rotation job {job}: succeeded\n"),
        Outcome::RolledBack { reason } => format!("rotation job {job}: rolled back: {reason}\n"),
        Outcome::Failed { reason } => format!("rotation job {job}: failed: {reason}\n"),
        Outcome::Stalled {
            step,
            reason,
            retry_at,
        } => format!(
            "rotation job {job}: stalled at step {step} (resumes from {retry_at}): {reason}\n"
        ),
        Outcome::Busy => format!(
            "rotation job {job}: another process is running it (see `opsync rotate status`)\n"
        ),
        Outcome::Idle => format!("rotation job {job}: nothing to do\n"),
    }
}

fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let d = humantime::format_duration(std::time::Duration::from_secs(secs.unsigned_abs()));
    let stamp = t.format("%Y-%m-%d %H:%M:%SZ");
    if secs >= 0 {
        format!("{stamp} (in {d})")
    } else {
        format!("{stamp} ({d} ago)")
    }
}

/// The status table: per job, its schedule, next run, last result and the step in progress.
pub fn rotate_status(settings: &Settings, now: DateTime<Utc>) -> Result<String, AppError> {
    let path = &settings.state.path;
    let store = if path.exists() {
        Some(Store::open(path)?)
    } else {
        None
    };
    let states = match &store {
        Some(s) => s.rotation_jobs()?,
        None => Vec::new(),
    };
    let mut out = String::new();
    if settings.rotations.is_empty() {
        out.push_str("no [[rotation]] jobs configured\n");
        return Ok(out);
    }
    for job in &settings.rotations {
        let state = states.iter().find(|s| s.job == job.name);
        let _ = writeln!(out, "{}", job.name);
        let _ = writeln!(
            out,
            "  item:        op://{}/{} via plugin {}",
            job.vault, job.item, job.plugin
        );
        let _ = writeln!(
            out,
            "  schedule:    {} ({}{}{})",
            job.schedule.source(),
            job.timezone,
            if job.jitter.is_zero() {
                String::new()
            } else {
                format!(", jitter {}", humantime::format_duration(job.jitter))
            },
            format_args!(", deadline {}", humantime::format_duration(job.deadline))
        );
        let since = state
            .map(|s| s.last_slot.unwrap_or(s.first_seen))
            .unwrap_or(now);
        let next = match due(
            &job.name,
            &job.schedule,
            job.jitter,
            job.deadline,
            since,
            now,
        ) {
            Due::Run { slot } => format!("due now (slot {})", slot.format("%Y-%m-%d %H:%M:%SZ")),
            Due::Skip { slot, .. } => format!(
                "slot {} is past its deadline and will be skipped",
                slot.format("%Y-%m-%d %H:%M:%SZ")
            ),
            Due::Wait { at, .. } => when(at, now),
            Due::Never => "never (the schedule does not fire again)".into(),
        };
        let _ = writeln!(out, "  next run:    {next}");
        match state.and_then(|s| s.last_result.as_deref().map(|r| (s, r))) {
            Some((s, r)) => {
                let at = s
                    .last_finished_at
                    .map(|t| format!(" at {}", when(t, now)))
                    .unwrap_or_default();
                let _ = writeln!(out, "  last result: {r}{at}");
                if let Some(e) = &s.last_error {
                    let _ = writeln!(out, "  last error:  {e}");
                }
            }
            None => {
                let _ = writeln!(out, "  last result: never run");
            }
        }
        if let Some(t) = state.and_then(|s| s.last_success_at) {
            let _ = writeln!(out, "  last success: {}", when(t, now));
        }
        match state.and_then(|s| s.run.as_ref()) {
            Some(run) => {
                let _ = writeln!(
                    out,
                    "  in progress: step {} (attempt {}), started {}, key {}{}",
                    run.step,
                    run.attempt + 1,
                    when(run.started_at, now),
                    run.key,
                    if run.manual { ", manual" } else { "" }
                );
                if let Some(e) = &run.step_error {
                    let _ = writeln!(out, "  step error:  {e}");
                }
            }
            None => {
                let _ = writeln!(out, "  in progress: none");
            }
        }
        if let Some(lease) = state.and_then(|s| s.lease.as_ref())
            && lease.until > now
        {
            let _ = writeln!(
                out,
                "  held by:     pid {} until {}",
                lease.pid,
                when(lease.until, now)
            );
        }
    }
    Ok(out)
}
