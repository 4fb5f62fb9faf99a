//! Builds the status document from the settings and the state database: the same document
//! for the daemon's `/status` and for `opsync status --json`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::{AuditSinkSettings, Settings};
use crate::rotation::RotationJob;
use crate::route::Route;
use crate::schedule::Due;
use crate::status::document::{
    ClaimStatus, ConnectStatus, DeadLetter, DeadLetters, DestinationState, DestinationStatus,
    ErrorNote, Health, HoldStatus, InFlight, LeaderStatus, ReplicaStatus, RotationStatus,
    RouteStatus, SCHEMA, Selection, SinkStatus, StateStatus, StatusDocument,
};
use crate::store::{self, Store, StoreError};

/// Most dead letters the document lists (newest first); `dead_letters.total` counts them all.
pub const DEAD_LETTERS_SHOWN: usize = 100;

/// The document at `now`; without a state database, what the config alone says.
pub fn collect(
    settings: &Settings,
    store: Option<&Store>,
    now: DateTime<Utc>,
) -> Result<StatusDocument, StoreError> {
    let facts = match store {
        Some(store) => Facts::read(store, &settings.audit.sinks)?,
        None => Facts::default(),
    };
    let state = state(settings, &facts);
    Ok(StatusDocument {
        schema: SCHEMA.to_owned(),
        generated_at: now,
        opsync_version: env!("CARGO_PKG_VERSION").to_owned(),
        connect: connect(settings, &facts.poll),
        routes: routes(settings, &facts, now),
        rotations: settings
            .rotations
            .iter()
            .map(|job| rotation(job, facts.jobs.iter().find(|s| s.job == job.name), now))
            .collect(),
        audit_sinks: settings
            .audit
            .sinks
            .iter()
            .map(|sink| audit_sink(sink, facts.sinks.get(&sink.name), now))
            .collect(),
        dead_letters: DeadLetters {
            total: facts.dead.len() as u64,
            shown: facts
                .dead
                .into_iter()
                .take(DEAD_LETTERS_SHOWN)
                .map(dead_letter)
                .collect(),
        },
        state,
    })
}

/// Replicas whose heartbeat is older than this are not shown.
pub const REPLICAS_SEEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The backend and, on PostgreSQL, the leader and each replica with its claims.
fn state(settings: &Settings, facts: &Facts) -> StateStatus {
    let backend = if settings.state.url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    replicas_state(backend, facts.leadership.as_ref(), &facts.claims)
}

/// The state section from what the store says of `backend`'s leadership and claims: also what
/// the text `status` prints.
pub fn replicas_state(
    backend: &str,
    leadership: Option<&store::Leadership>,
    claims: &[store::ClaimCount],
) -> StateStatus {
    let Some(leadership) = leadership else {
        return StateStatus {
            backend: backend.to_owned(),
            ..StateStatus::default()
        };
    };
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let leader = leadership.lease.as_ref().map(|l| LeaderStatus {
        replica: l.holder.clone(),
        epoch: l.epoch,
        since: at(l.acquired_at),
        renewed_at: at(l.renewed_at),
        expires_at: at(l.expires_at),
        expired: l.expired,
    });
    let leading = leader
        .as_ref()
        .filter(|l| !l.expired)
        .map(|l| l.replica.as_str());
    let replicas = leadership
        .replicas
        .iter()
        .map(|seen| {
            let r = &seen.replica;
            ReplicaStatus {
                id: r.id.clone(),
                role: if leading == Some(r.id.as_str()) {
                    "leader"
                } else {
                    "follower"
                }
                .to_owned(),
                host: r.host.clone(),
                pid: r.pid,
                version: r.version.clone(),
                started_at: at(seen.started_at),
                last_seen_at: at(seen.seen_at),
                claims: claims
                    .iter()
                    .filter(|c| c.claimant == r.id)
                    .map(|c| ClaimStatus {
                        route: c.route.clone(),
                        rows: c.rows,
                    })
                    .collect(),
            }
        })
        .collect();
    StateStatus {
        backend: backend.to_owned(),
        leader,
        replicas,
    }
}

/// One dead letter as the document shows it.
pub fn dead_letter(d: store::DeadLetter) -> DeadLetter {
    let e = d.entry;
    DeadLetter {
        id: d.id,
        route: e.route,
        destination: e.destination,
        vault: e.vault_name,
        vault_id: e.vault_id,
        item_id: e.item_id,
        title: e.title,
        key: e.key,
        version: e.version,
        kind: e.kind.as_str().to_owned(),
        attempts: d.attempts,
        detected_at: e.detected_at,
        dead_at: d.dead_at,
        reason: d.reason,
    }
}

/// Everything read from the state database, in one pass.
#[derive(Default)]
struct Facts {
    poll: store::PollHealth,
    unusable: HashMap<String, String>,
    routes: Vec<store::RouteStatus>,
    destinations: Vec<store::DestinationStatus>,
    drifted: HashMap<(String, String), u64>,
    members: HashMap<String, u64>,
    jobs: Vec<store::JobState>,
    sinks: HashMap<String, store::SinkLag>,
    dead: Vec<store::DeadLetter>,
    leadership: Option<store::Leadership>,
    claims: Vec<store::ClaimCount>,
}

impl Facts {
    fn read(store: &Store, audit_sinks: &[AuditSinkSettings]) -> Result<Self, StoreError> {
        let mut sinks = HashMap::new();
        for sink in audit_sinks {
            if let Some(lag) = store.audit_lag(&sink.name, sink.include_own_events)? {
                sinks.insert(sink.name.clone(), lag);
            }
        }
        Ok(Self {
            poll: store.poll_health()?,
            unusable: store
                .unusable_plugins()?
                .into_iter()
                .map(|p| (p.name, p.reason))
                .collect(),
            routes: store.route_status()?,
            destinations: store.destination_status()?,
            drifted: store
                .drift_counts()?
                .into_iter()
                .map(|(route, destination, n)| ((route, destination), n))
                .collect(),
            members: store.member_counts()?,
            jobs: store.rotation_jobs()?,
            sinks,
            dead: store.dead_letters(None)?,
            leadership: store.leadership(REPLICAS_SEEN_WITHIN)?,
            claims: store.claims()?,
        })
    }
}

fn connect(settings: &Settings, poll: &store::PollHealth) -> ConnectStatus {
    let health = match (&poll.last_ok, &poll.last_error) {
        (None, None) => Health::Unknown,
        (Some(_), None) => Health::Ok,
        (None, Some(_)) => Health::Failing,
        (Some(ok), Some(err)) if *ok >= err.at => Health::Ok,
        (Some(_), Some(_)) => Health::Failing,
    };
    ConnectStatus {
        host: settings.connect.host.to_string(),
        health,
        last_poll_ok_at: poll.last_ok,
        last_error: poll.last_error.clone().map(|n| ErrorNote {
            at: n.at,
            message: n.message,
        }),
    }
}

/// Routes in config order, then routes only the state database still knows.
fn routes(settings: &Settings, facts: &Facts, now: DateTime<Utc>) -> Vec<RouteStatus> {
    let mut out: Vec<RouteStatus> = settings
        .routes
        .iter()
        .map(|r| route(&r.name, Some(r), facts, now))
        .collect();
    for known in &facts.routes {
        if !settings.routes.iter().any(|r| r.name == known.route) {
            out.push(route(&known.route, None, facts, now));
        }
    }
    out
}

fn route(name: &str, config: Option<&Route>, facts: &Facts, now: DateTime<Utc>) -> RouteStatus {
    let known = facts.routes.iter().find(|r| r.route == name);
    let hold = known.and_then(|r| r.hold.as_ref());
    let mut names: Vec<&str> = config
        .map(|r| r.destinations.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for d in facts.destinations.iter().filter(|d| d.route == name) {
        if !names.contains(&d.destination.as_str()) {
            names.push(&d.destination);
        }
    }
    let destinations = names
        .into_iter()
        .map(|dest| {
            let row = facts
                .destinations
                .iter()
                .find(|d| d.route == name && d.destination == dest);
            let drifted = facts
                .drifted
                .get(&(name.to_owned(), dest.to_owned()))
                .copied()
                .unwrap_or(0);
            destination(dest, row, drifted, hold.is_some(), facts.unusable.get(dest))
        })
        .collect();
    let oldest = known.and_then(|r| r.oldest_pending);
    RouteStatus {
        name: name.to_owned(),
        in_config: config.is_some(),
        selection: config.map(selection).unwrap_or_default(),
        items_tracked: facts.members.get(name).copied().unwrap_or(0),
        lag_seconds: oldest.map_or(0, |t| seconds_since(t, now)),
        oldest_pending_at: oldest,
        last_delivered_at: known.and_then(|r| r.last_success),
        hold: hold.map(|h| HoldStatus {
            deletions: h.deletions,
            total: h.total,
            max_delete_ratio: h.max_ratio,
            since: h.since,
        }),
        destinations,
    }
}

fn selection(route: &Route) -> Selection {
    let s = &route.selector;
    Selection {
        vaults: s.vaults.clone(),
        tags: s.tags.clone(),
        title: s.title.as_ref().map(|g| g.as_str().to_owned()),
        categories: s.categories.clone(),
    }
}

fn destination(
    name: &str,
    row: Option<&store::DestinationStatus>,
    drifted: u64,
    held: bool,
    unusable: Option<&String>,
) -> DestinationStatus {
    let (pending, retrying, dead) = row.map_or((0, 0, 0), |r| (r.pending, r.retrying, r.dead));
    let state = if unusable.is_some() {
        DestinationState::PluginUnusable
    } else if held {
        DestinationState::Held
    } else if dead > 0 {
        DestinationState::DeadLetter
    } else if drifted > 0 {
        DestinationState::Drifted
    } else if retrying > 0 {
        DestinationState::Retrying
    } else if pending > 0 {
        DestinationState::Pending
    } else {
        DestinationState::Synced
    };
    DestinationStatus {
        name: name.to_owned(),
        state,
        pending,
        retrying,
        dead,
        drifted,
        last_delivered_at: row.and_then(|r| r.last_delivered),
        last_error: unusable
            .cloned()
            .or_else(|| row.and_then(|r| r.last_error.clone())),
    }
}

fn rotation(
    job: &RotationJob,
    state: Option<&store::JobState>,
    now: DateTime<Utc>,
) -> RotationStatus {
    let next_run_at = match job.due(state, now) {
        Due::Run { slot } | Due::Skip { slot, .. } => Some(slot),
        Due::Wait { at, .. } => Some(at),
        Due::Never => None,
    };
    RotationStatus {
        name: job.name.clone(),
        item: format!("op://{}/{}", job.vault, job.item),
        plugin: job.plugin.clone(),
        schedule: job.schedule.source().to_owned(),
        timezone: job.timezone.clone(),
        last_result: state.and_then(|s| s.last_result.clone()),
        last_error: state.and_then(|s| s.last_error.clone()),
        last_finished_at: state.and_then(|s| s.last_finished_at),
        last_success_at: state.and_then(|s| s.last_success_at),
        next_run_at,
        in_flight: state.and_then(|s| s.run.as_ref()).map(|run| InFlight {
            step: run.step.as_str().to_owned(),
            attempt: run.attempt,
            started_at: run.started_at,
            retry_at: run.retry_at,
            error: run.step_error.clone(),
        }),
    }
}

fn audit_sink(
    sink: &AuditSinkSettings,
    lag: Option<&store::SinkLag>,
    now: DateTime<Utc>,
) -> SinkStatus {
    let cursor = lag.map(|l| &l.cursor);
    SinkStatus {
        name: sink.name.clone(),
        plugin: sink.plugin.clone(),
        cursor: cursor.map(|c| c.acked_seq),
        acked_at: cursor.and_then(|c| c.acked_at),
        shipped: cursor.map_or(0, |c| c.shipped),
        pending: lag.map_or(0, |l| l.pending),
        lag_seconds: lag
            .and_then(|l| l.oldest_pending)
            .map_or(0, |t| seconds_since(t, now)),
        dead: lag.map_or(0, |l| l.dead),
        failures: cursor.map_or(0, |c| c.failures),
        last_error: cursor.and_then(|c| {
            let message = c.last_error.clone()?;
            Some(ErrorNote {
                at: c.last_error_at.unwrap_or(now),
                message,
            })
        }),
    }
}

fn seconds_since(t: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    (now - t).num_seconds().max(0) as u64
}
