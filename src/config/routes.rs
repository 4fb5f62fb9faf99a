//! `[[route]]`: which items go to which plugin instances, checked at load against the
//! `[plugins.NAME]` table; errors name the route by index and key (`route[1].destinations`).

use std::collections::HashSet;

use figment::Figment;
use serde::Deserialize;

use crate::config::error::{ConfigError, Problems};
use crate::config::plugins::{PluginSettings, find_for};
use crate::route::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_DRIFT_RATE, DEFAULT_MAX_DELETE_RATIO,
    DriftCheck, FieldSelection, Glob, NameTemplate, OnDelete, OnDrift, Route, Selector,
};

/// Most concurrent deliveries a route may ask for.
pub const MAX_CONCURRENCY: usize = 256;
/// Most changes a route may hand a destination in one call.
pub const MAX_BATCH_SIZE: usize = 512;

/// One `[[route]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    name: Option<String>,
    #[serde(default)]
    vaults: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    title: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    destinations: Vec<String>,
    name_template: Option<String>,
    fields: Option<Vec<String>>,
    #[serde(default)]
    files: bool,
    #[serde(default)]
    on_delete: RawOnDelete,
    concurrency: Option<usize>,
    batch_size: Option<usize>,
    max_delete_ratio: Option<f64>,
    #[serde(default, with = "crate::human_time::written::option")]
    drift_check: Option<std::time::Duration>,
    on_drift: Option<RawOnDrift>,
    drift_rate: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawOnDrift {
    Repair,
    Report,
    Ignore,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum RawOnDelete {
    #[default]
    Retain,
    Delete,
}

/// Most read-backs per second a route's drift check may make.
pub const MAX_DRIFT_RATE: u32 = 1000;

/// A route's drift check from its keys: none without `drift_check` or with `on_drift =
/// "ignore"`; the error names the key.
fn drift_check(
    every: Option<std::time::Duration>,
    on_drift: Option<RawOnDrift>,
    rate: Option<u32>,
) -> Result<Option<DriftCheck>, (&'static str, String)> {
    let on_drift = match on_drift {
        Some(RawOnDrift::Ignore) => return Ok(None),
        Some(RawOnDrift::Repair) => OnDrift::Repair,
        Some(RawOnDrift::Report) | None => OnDrift::Report,
    };
    let Some(every) = every else {
        if rate.is_some() {
            return Err((
                "drift_rate",
                "drift_rate needs drift_check (how often to read back)".into(),
            ));
        }
        return Ok(None);
    };
    if every < std::time::Duration::from_secs(1) {
        return Err(("drift_check", "must be at least 1s".into()));
    }
    let rate = rate.unwrap_or(DEFAULT_DRIFT_RATE);
    if rate == 0 || rate > MAX_DRIFT_RATE {
        return Err((
            "drift_rate",
            format!("must be between 1 and {MAX_DRIFT_RATE} read-backs per second"),
        ));
    }
    Ok(Some(DriftCheck {
        every,
        on_drift,
        rate,
    }))
}

/// Checks every route against the plugin instances; all problems are reported together.
pub(crate) fn resolve(
    raw: Vec<RawRoute>,
    plugins: &[PluginSettings],
    figment: &Figment,
) -> Result<Vec<Route>, ConfigError> {
    let mut problems = Problems::new(figment, "route");
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let mut bad = |k: &str, message: String| problems.add(format!("route[{i}].{k}"), message);
        let before = out.len();
        let name = match r.name {
            None => {
                bad(
                    "name",
                    "every route needs a name (it keys the delivery ledger)".into(),
                );
                continue;
            }
            Some(n) if n.is_empty() || n.contains(':') || n.chars().any(char::is_control) => {
                bad(
                    "name",
                    format!("invalid route name {n:?} (no ':' or control characters)"),
                );
                continue;
            }
            Some(n) => n,
        };
        if !names.insert(name.clone()) {
            bad("name", format!("another route is already named {name:?}"));
            continue;
        }
        let mut ok = true;
        if r.destinations.is_empty() {
            bad("destinations", "name at least one plugin instance".into());
            ok = false;
        }
        for d in &r.destinations {
            if let Err(why) = find_for(plugins, d, "destination", "a destination") {
                bad("destinations", why);
                ok = false;
            }
        }
        let title = match r.title.as_deref().map(Glob::new).transpose() {
            Ok(t) => t,
            Err(e) => {
                bad("title", e.to_string());
                ok = false;
                None
            }
        };
        let name_template = match NameTemplate::parse(
            r.name_template
                .as_deref()
                .unwrap_or(crate::route::DEFAULT_TEMPLATE),
        ) {
            Ok(t) => t,
            Err(e) => {
                bad("name_template", e.to_string());
                ok = false;
                NameTemplate::default()
            }
        };
        let concurrency = r.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > MAX_CONCURRENCY {
            bad(
                "concurrency",
                format!("must be between 1 and {MAX_CONCURRENCY}"),
            );
            ok = false;
        }
        let batch_size = r.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
            bad(
                "batch_size",
                format!("must be between 1 and {MAX_BATCH_SIZE}"),
            );
            ok = false;
        }
        let drift = match drift_check(r.drift_check, r.on_drift, r.drift_rate) {
            Ok(drift) => drift,
            Err((key, message)) => {
                bad(key, message);
                ok = false;
                None
            }
        };
        let max_delete_ratio = r.max_delete_ratio.unwrap_or(DEFAULT_MAX_DELETE_RATIO);
        if !(0.0..=1.0).contains(&max_delete_ratio) {
            bad("max_delete_ratio", "must be between 0 and 1".into());
            ok = false;
        }
        let fields = match r.fields {
            None => FieldSelection::All,
            Some(f) if f.is_empty() => {
                bad(
                    "fields",
                    "an empty list sends nothing; leave it out to send every field".into(),
                );
                ok = false;
                FieldSelection::All
            }
            Some(f) => FieldSelection::Only(f),
        };
        if ok && out.len() == before {
            out.push(Route {
                name,
                selector: Selector {
                    vaults: r.vaults,
                    tags: r.tags,
                    title,
                    categories: r.categories,
                },
                destinations: r.destinations,
                name_template,
                fields,
                files: r.files,
                on_delete: match r.on_delete {
                    RawOnDelete::Retain => OnDelete::Retain,
                    RawOnDelete::Delete => OnDelete::Delete,
                },
                concurrency,
                batch_size,
                max_delete_ratio,
                drift,
            });
        }
    }
    problems.into_result(out)
}
