//! `opsync rotate now JOB` (runs or resumes one rotation in this process, under the job's lease)
//! and `opsync rotate status` (next run, last result, step in progress, from the state database).

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

use crate::app::engine::Engine;
use crate::app::error::AppError;
use crate::app::run::plugin_cache_dir;
use crate::config::Settings;
use crate::human_time::span;
use crate::rotation::{Outcome, Start};
use crate::schedule::Due;

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
    let store = settings.state.open()?;
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
    let rotator = engine.rotator();
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

/// `t` and how far it is from `now`: `2024-05-01 10:00:00Z (in 3h 5m)`, `... (3m ago)`, or
/// `(just now)` within half a second.
fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = t - now;
    let rel = if d.abs() < TimeDelta::milliseconds(500) {
        "just now".to_owned()
    } else if d > TimeDelta::zero() {
        format!("in {}", span(d))
    } else {
        format!("{} ago", span(d))
    };
    format!("{} ({rel})", stamp(t))
}

/// A time something is due at: `(in 2 days)`, or `(overdue by 3m)` once it has passed.
fn due_at(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = t - now;
    if d > TimeDelta::zero() {
        format!("{} (in {})", stamp(t), span(d))
    } else {
        format!("{} (overdue by {})", stamp(t), span(d))
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// The status table: per job, its schedule, next run, last result and the step in progress.
pub fn rotate_status(settings: &Settings, now: DateTime<Utc>) -> Result<String, AppError> {
    let store = settings.state.open_existing()?;
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
        let next = match job.due(state, now) {
            Due::Run { slot } if now - slot >= TimeDelta::milliseconds(500) => format!(
                "due now (slot {}, overdue by {})",
                stamp(slot),
                span(now - slot)
            ),
            Due::Run { slot } => format!("due now (slot {})", stamp(slot)),
            Due::Skip { slot, .. } => format!(
                "slot {} is past its deadline and will be skipped",
                stamp(slot)
            ),
            Due::Wait { at, .. } => due_at(at, now),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    #[test]
    fn future_past_and_overdue_times_are_worded_as_such() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            when(now + secs(2 * 86400 + 60), now),
            "2024-05-03 10:01:00Z (in 2 days)"
        );
        assert_eq!(
            when(now - secs(3 * 60), now),
            "2024-05-01 09:57:00Z (3m ago)"
        );
        // Under a second in the past is not "in 0s".
        assert_eq!(
            when(now - TimeDelta::milliseconds(300), now),
            "2024-05-01 09:59:59Z (just now)"
        );
        assert_eq!(
            when(now - TimeDelta::milliseconds(700), now),
            "2024-05-01 09:59:59Z (1s ago)"
        );
        assert_eq!(
            due_at(now + secs(3 * 3600 + 5 * 60), now),
            "2024-05-01 13:05:00Z (in 3h 5m)"
        );
        assert_eq!(
            due_at(now - secs(3 * 60), now),
            "2024-05-01 09:57:00Z (overdue by 3m)"
        );
    }
}
