//! `opsync status` (per route: last success, lag, pending, dead letters, held deletions; or the
//! status document as JSON) and `opsync deadletter list|retry`. They read the state database;
//! none talks to Connect.

use chrono::{DateTime, Utc};

use crate::app::error::AppError;
use crate::config::{LocalSettings, Settings, StateSettings};
use crate::plugin::escape_control;
use crate::status::document::StateStatus;
use crate::status::{REPLICAS_SEEN_WITHIN, replicas_state};
use crate::store::{DeliveryId, Store};

/// Opens the state only if it exists (`status` never creates a SQLite file).
fn existing(state: &StateSettings) -> Result<Option<Store>, AppError> {
    Ok(state.open_existing()?)
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = (now - t).to_std().unwrap_or_default();
    let d = std::time::Duration::from_secs(d.as_secs());
    format!("{} ago", humantime::format_duration(d))
}

/// The status table.
pub fn status(settings: &LocalSettings, now: DateTime<Utc>) -> Result<String, AppError> {
    let path = &settings.state.path;
    let Some(store) = existing(&settings.state)? else {
        return Ok(format!(
            "no state yet at {} (run `opsync once` or `opsync run` first)\n",
            path.display()
        ));
    };
    let rows = store.route_status()?;
    let mut out = format!(
        "{:<20} {:<22} {:>10} {:>8} {:>6}  {}\n",
        "ROUTE", "LAST SUCCESS", "LAG", "PENDING", "DEAD", "NOTES"
    );
    let mut names: Vec<&str> = settings.routes.iter().map(String::as_str).collect();
    for r in &rows {
        if !names.contains(&r.route.as_str()) {
            names.push(r.route.as_str());
        }
    }
    for name in names {
        let row = rows.iter().find(|r| r.route == name);
        let last = row
            .and_then(|r| r.last_success)
            .map(|t| ago(t, now))
            .unwrap_or_else(|| "never".into());
        let lag = row
            .and_then(|r| r.oldest_pending)
            .map(|t| {
                let secs = (now - t).num_seconds().max(0) as u64;
                humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
            })
            .unwrap_or_else(|| "0s".into());
        let mut notes = Vec::new();
        if !settings.routes.iter().any(|r| r == name) {
            notes.push("not in the config".to_string());
        }
        if let Some(h) = row.and_then(|r| r.hold.as_ref()) {
            notes.push(format!(
                "HELD: {} deletions of {} keys (max_delete_ratio {}); --allow-mass-delete",
                h.deletions, h.total, h.max_ratio
            ));
        }
        out.push_str(&format!(
            "{:<20} {:<22} {:>10} {:>8} {:>6}  {}\n",
            name,
            last,
            lag,
            row.map_or(0, |r| r.pending),
            row.map_or(0, |r| r.dead),
            notes.join("; ")
        ));
    }
    if let Some(leadership) = store.leadership(REPLICAS_SEEN_WITHIN)? {
        let state = replicas_state(store.backend_name(), Some(&leadership), &store.claims()?);
        out.push_str(&replicas_table(&state, now));
    }
    Ok(out)
}

/// On a PostgreSQL state: the leader, its epoch, and every replica seen lately with its claims.
fn replicas_table(state: &StateStatus, now: DateTime<Utc>) -> String {
    let mut out = String::from("\n");
    match &state.leader {
        Some(lease) if !lease.expired => out.push_str(&format!(
            "leader: {} (epoch {}, leading since {}, lease renewed {})\n",
            lease.replica,
            lease.epoch,
            ago(lease.since, now),
            ago(lease.renewed_at, now)
        )),
        Some(lease) => out.push_str(&format!(
            "leader: none (the lease of {} at epoch {} ran out {})\n",
            lease.replica,
            lease.epoch,
            ago(lease.expires_at, now)
        )),
        None => out.push_str("leader: none yet\n"),
    }
    out.push_str(&format!(
        "{:<36} {:<9} {:<20} {:>8} {:<10} {:<12} {}\n",
        "REPLICA", "ROLE", "HOST", "PID", "VERSION", "LAST SEEN", "CLAIMED"
    ));
    for r in &state.replicas {
        let claimed: Vec<String> = r
            .claims
            .iter()
            .map(|c| format!("{}: {}", c.route, c.rows))
            .collect();
        out.push_str(&format!(
            "{:<36} {:<9} {:<20} {:>8} {:<10} {:<12} {}\n",
            r.id,
            r.role,
            r.host,
            r.pid,
            r.version,
            ago(r.last_seen_at, now),
            if claimed.is_empty() {
                "-".to_owned()
            } else {
                claimed.join(", ")
            }
        ));
    }
    out
}

/// `status --json`: the status document the admin listener serves on `/status`.
pub fn status_json(settings: &Settings, now: DateTime<Utc>) -> Result<String, AppError> {
    let store = existing(&settings.state)?;
    let doc = crate::status::collect(settings, store.as_ref(), now)?;
    serde_json::to_string_pretty(&doc)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|e| AppError::Status(e.to_string()))
}

/// `deadletter list`.
pub fn dead_letters(settings: &LocalSettings, route: Option<&str>) -> Result<String, AppError> {
    let Some(store) = existing(&settings.state)? else {
        return Ok("no dead letters (no state database yet)\n".into());
    };
    let letters = store.dead_letters(route)?;
    if letters.is_empty() {
        return Ok("no dead letters\n".into());
    }
    let mut out = String::new();
    for d in &letters {
        let e = &d.entry;
        out.push_str(&format!(
            "#{} route={} destination={} item={} ({} in {}) version={} kind={} attempts={} dead_at={}\n    reason: {}\n",
            d.id,
            e.route,
            e.destination,
            e.item_id,
            escape_control(&e.title),
            escape_control(&e.vault_name),
            e.version,
            e.kind.as_str(),
            d.attempts,
            d.dead_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            escape_control(&d.reason)
        ));
    }
    out.push_str(&format!(
        "{} dead letters; `opsync deadletter retry --id N` or `--route NAME` or `--all` queues them again\n",
        letters.len()
    ));
    Ok(out)
}

/// `deadletter retry`: back to pending with a fresh retry budget; returns the count.
pub fn retry_dead_letters(
    settings: &LocalSettings,
    route: Option<&str>,
    id: Option<DeliveryId>,
) -> Result<usize, AppError> {
    let Some(store) = existing(&settings.state)? else {
        return Ok(0);
    };
    Ok(store.retry_dead_letters(route, id)?)
}
