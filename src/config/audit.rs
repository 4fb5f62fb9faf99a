//! `[audit]` and `[[audit.sink]]`: how the activity tail polls Connect, and which audit-sink
//! plugin instances receive the records, in which format, in what batches and from where
//! (`[audit.sources.events]` is `config/events.rs`).

use std::collections::HashSet;
use std::time::Duration;

use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::config::error::{ConfigError, Problems};
use crate::config::events::{self, EventsSourceSettings, RawSources};
use crate::config::plugins::{PluginSettings, find_for};
use crate::store::SinkStart;

/// Default time between two reads of `/v1/activity`.
pub const DEFAULT_AUDIT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Default records per `/v1/activity` request.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// Default records per `ingest` call.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// Most records per `ingest` call.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// Default batches one sink has in flight at once.
pub const DEFAULT_IN_FLIGHT: usize = 1;
/// Most batches one sink may have in flight.
pub const MAX_IN_FLIGHT: usize = 16;
/// Default longest wait before a partial batch is shipped.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Formats the sink plugins understand (handed over as their `format` config key).
pub const FORMATS: &[&str] = &["raw", "ocsf", "ecs"];

/// Effective `[audit]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditSettings {
    /// Time between two reads of `/v1/activity` (each read goes from the newest record back to
    /// the high-water mark).
    #[serde(with = "crate::human_time::written")]
    pub poll_interval: Duration,
    /// Records per `/v1/activity` request.
    pub page_size: u32,
    /// How far below the high-water mark each read looks again, for records logged late with
    /// an older timestamp; request ids already read are skipped.
    #[serde(with = "crate::human_time::written")]
    pub lookback: Duration,
    /// How long records stay in the state database's outbox after every sink acknowledged
    /// them (what `opsync audit replay` can send again).
    #[serde(with = "crate::human_time::written")]
    pub retention: Duration,
    /// `[[audit.sink]]`, in file order.
    #[serde(rename = "sink")]
    pub sinks: Vec<AuditSinkSettings>,
    /// `[audit.sources.events]`: the 1Password Events API, read beside `/v1/activity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsSourceSettings>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_AUDIT_POLL_INTERVAL,
            page_size: DEFAULT_PAGE_SIZE,
            lookback: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            sinks: Vec::new(),
            events: None,
        }
    }
}

impl AuditSettings {
    /// Whether anything is exported (the tail runs only then).
    pub fn enabled(&self) -> bool {
        !self.sinks.is_empty()
    }
}

/// One `[[audit.sink]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditSinkSettings {
    /// The sink's name: it keys the cursor in the state database.
    pub name: String,
    /// The `[plugins.NAME]` instance (world `audit-sink`) that ships the records.
    pub plugin: String,
    /// `raw`, `ocsf` or `ecs`, handed to the plugin as its `format` config key; unset leaves
    /// the plugin's own config (or default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Records per `ingest` call.
    pub batch_size: usize,
    /// Batches shipped at once (each its own `ingest` call); the cursor still moves in outbox
    /// order, over the batches acknowledged without a gap.
    pub in_flight: usize,
    /// Longest wait before a partial batch is shipped.
    #[serde(with = "crate::human_time::written")]
    pub flush_interval: Duration,
    /// Where a new sink starts: `beginning` (every record still in the outbox) or `now`.
    pub start: StartSetting,
    /// Whether opsync's own events (deliveries, dead letters, denied plugin requests,
    /// rotations) go to this sink too.
    pub include_own_events: bool,
}

/// `start` as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartSetting {
    #[default]
    Beginning,
    Now,
}

impl StartSetting {
    pub fn to_store(self) -> SinkStart {
        match self {
            StartSetting::Beginning => SinkStart::Beginning,
            StartSetting::Now => SinkStart::Now,
        }
    }
}

/// `[audit]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAudit {
    #[serde(with = "crate::human_time::written")]
    poll_interval: Duration,
    page_size: u32,
    #[serde(with = "crate::human_time::written")]
    lookback: Duration,
    #[serde(with = "crate::human_time::written")]
    retention: Duration,
    sink: Vec<RawSink>,
    sources: RawSources,
}

impl Default for RawAudit {
    fn default() -> Self {
        let d = AuditSettings::default();
        Self {
            poll_interval: d.poll_interval,
            page_size: d.page_size,
            lookback: d.lookback,
            retention: d.retention,
            sink: Vec::new(),
            sources: RawSources::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: Option<String>,
    plugin: Option<String>,
    format: Option<String>,
    batch_size: Option<usize>,
    in_flight: Option<usize>,
    #[serde(default, with = "crate::human_time::written::option")]
    flush_interval: Option<Duration>,
    #[serde(default)]
    start: StartSetting,
    #[serde(default = "yes")]
    include_own_events: bool,
}

fn yes() -> bool {
    true
}

/// Checks `[audit]` against the plugin instances; all problems are reported together.
pub(crate) fn resolve(
    raw: RawAudit,
    plugins: &[PluginSettings],
    figment: &Figment,
) -> Result<AuditSettings, ConfigError> {
    let mut problems = Problems::new(figment, "audit");
    let mut bad = |key: &str, message: String| problems.add(key.to_owned(), message);
    if raw.poll_interval.is_zero() {
        bad("audit.poll_interval", "must be more than zero".into());
    }
    if raw.page_size == 0 || raw.page_size > 10_000 {
        bad(
            "audit.page_size",
            format!("must be between 1 and 10000, got {}", raw.page_size),
        );
    }
    if raw.retention < raw.lookback {
        bad(
            "audit.retention",
            "must be at least audit.lookback (request ids are remembered that long)".into(),
        );
    }
    let mut names = HashSet::new();
    let mut sinks = Vec::new();
    for (i, s) in raw.sink.into_iter().enumerate() {
        let key = |k: &str| format!("audit.sink[{i}].{k}");
        let Some(plugin) = s.plugin else {
            bad(
                &key("plugin"),
                "name the [plugins.NAME] instance that ships the records".into(),
            );
            continue;
        };
        let p = match find_for(plugins, &plugin, "audit-sink", "an audit-sink") {
            Ok(p) => p,
            Err(why) => {
                bad(&key("plugin"), why);
                continue;
            }
        };
        if let (Some(format), Some(own)) = (&s.format, p.config.get("format"))
            && format != own
        {
            bad(
                &key("format"),
                format!(
                    "{format:?} differs from plugins.{plugin}.config.format {own:?}; set it in one place"
                ),
            );
            continue;
        }
        let name = s.name.unwrap_or_else(|| plugin.clone());
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bad(&key("name"), format!("invalid sink name {name:?}"));
            continue;
        }
        if !names.insert(name.clone()) {
            bad(
                &key("name"),
                format!("another sink is already named {name:?} (set `name` to tell them apart)"),
            );
            continue;
        }
        if let Some(f) = &s.format
            && !FORMATS.contains(&f.as_str())
        {
            bad(
                &key("format"),
                format!(
                    "unknown format {f:?} (expected one of {})",
                    FORMATS.join(", ")
                ),
            );
            continue;
        }
        let batch_size = s.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
            bad(
                &key("batch_size"),
                format!("must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}"),
            );
            continue;
        }
        let in_flight = s.in_flight.unwrap_or(DEFAULT_IN_FLIGHT);
        if in_flight == 0 || in_flight > MAX_IN_FLIGHT {
            bad(
                &key("in_flight"),
                format!("must be between 1 and {MAX_IN_FLIGHT}, got {in_flight}"),
            );
            continue;
        }
        let flush_interval = s.flush_interval.unwrap_or(DEFAULT_FLUSH_INTERVAL);
        if flush_interval.is_zero() {
            bad(&key("flush_interval"), "must be more than zero".into());
            continue;
        }
        sinks.push(AuditSinkSettings {
            name,
            plugin,
            format: s.format,
            batch_size,
            in_flight,
            flush_interval,
            start: s.start,
            include_own_events: s.include_own_events,
        });
    }
    let env = |name: &str| std::env::var(name).ok();
    let events = events::resolve(raw.sources, raw.poll_interval, &env, &mut problems);
    if events.is_some() && sinks.is_empty() {
        problems.add(
            "audit.sources.events".into(),
            "is read only for [[audit.sink]]: configure at least one sink".into(),
        );
    }
    problems.into_result(AuditSettings {
        poll_interval: raw.poll_interval,
        page_size: raw.page_size,
        lookback: raw.lookback,
        retention: raw.retention,
        sinks,
        events,
    })
}
