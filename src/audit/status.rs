//! `opsync audit status` (the tail's mark, the Events API streams' cursors and replays, and per
//! sink: cursor, lag, last error, dead letters) and `opsync audit replay --since [--stream]`.
//! Both work on the state database alone: a running daemon picks a rewound cursor up within a
//! second, and a stream's replay at its next read of the Events API.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::error::AuditError;
use crate::audit::events::{EventStream, UnknownStream};
use crate::config::{EVENTS_HISTORY, EventsSourceSettings, Settings};
use crate::store::Store;

/// `--since`: an RFC 3339 time or date, or a duration counted back from `now` (`2h`, `30m`).
pub fn parse_since(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AuditError> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    humantime::parse_duration(v)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| AuditError::Since {
            value: value.to_owned(),
        })
}

fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0) as u64;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn open(settings: &Settings) -> Result<Option<Store>, AuditError> {
    Ok(settings.state.open_existing()?)
}

/// The status text.
pub fn status(settings: &Settings, now: DateTime<Utc>) -> Result<String, AuditError> {
    let Some(store) = open(settings)? else {
        return Ok(format!(
            "no state yet at {} (run `opsync run` first)\n",
            settings.state.path.display()
        ));
    };
    let mut out = String::new();
    let mark = store.audit_mark()?;
    let _ = writeln!(
        out,
        "activity log: {} records in Connect ({}), read up to {}, last read {}; outbox head {}",
        mark.total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into()),
        mark.order.as_str().replace('_', " "),
        mark.at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| "nothing".into()),
        mark.polled_at
            .map(|t| format!("{} ago", age(t, now)))
            .unwrap_or_else(|| "never".into()),
        store.audit_head()?,
    );
    if let Some(events) = &settings.audit.events {
        events_status(&mut out, &store, events, now)?;
    }
    let _ = writeln!(
        out,
        "{:<16} {:<16} {:<6} {:>8} {:>8} {:>10} {:>9} {:>5}  LAST ERROR",
        "SINK", "PLUGIN", "FORMAT", "CURSOR", "PENDING", "LAG", "SHIPPED", "DEAD"
    );
    if settings.audit.sinks.is_empty() {
        out.push_str("(no [[audit.sink]] configured)\n");
    }
    for sink in &settings.audit.sinks {
        let lag = store.audit_lag(&sink.name, sink.include_own_events)?;
        let format = sink.format.as_deref().unwrap_or("-");
        let Some(lag) = lag else {
            let _ = writeln!(
                out,
                "{:<16} {:<16} {:<6} {:>8} {:>8} {:>10} {:>9} {:>5}  not started yet",
                sink.name, sink.plugin, format, "-", "-", "-", "-", "-"
            );
            continue;
        };
        let c = &lag.cursor;
        let error = match (&c.last_error, c.failures) {
            (Some(e), n) if n > 0 => format!(
                "{} ({} failures, {} ago)",
                e.lines().next().unwrap_or_default(),
                n,
                c.last_error_at.map(|t| age(t, now)).unwrap_or_default()
            ),
            (Some(e), _) => format!("recovered; was: {}", e.lines().next().unwrap_or_default()),
            (None, _) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<16} {:<6} {:>8} {:>8} {:>10} {:>9} {:>5}  {}",
            sink.name,
            sink.plugin,
            format,
            c.acked_seq,
            lag.pending,
            lag.oldest_pending
                .map(|t| age(t, now))
                .unwrap_or_else(|| "0s".into()),
            c.shipped,
            lag.dead,
            error
        );
        if lag
            .by_source
            .iter()
            .any(|(source, _)| source != crate::store::ACTIVITY)
        {
            let parts: Vec<String> = lag
                .by_source
                .iter()
                .map(|(source, n)| format!("{source} {n}"))
                .collect();
            let _ = writeln!(out, "{:<16} pending by source: {}", "", parts.join(", "));
        }
    }
    Ok(out)
}

/// One line per Events API stream (where its cursor stands), and the replays not done yet.
fn events_status(
    out: &mut String,
    store: &Store,
    events: &EventsSourceSettings,
    now: DateTime<Utc>,
) -> Result<(), AuditError> {
    for stream in &events.streams {
        let line = match store.audit_stream(stream.as_str())? {
            Some(mark) => format!(
                "{} records read, newest {}, last read {} ago",
                mark.read,
                mark.newest_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_else(|| "none".into()),
                age(mark.polled_at, now)
            ),
            None => format!(
                "not read yet (starts at {})",
                events
                    .start_time
                    .at(now)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        };
        let _ = writeln!(out, "events api {stream}: {line}");
    }
    for replay in store.audit_replays()? {
        let state = match (&replay.done_at, &replay.error) {
            (None, _) => format!("{} records so far", replay.added),
            (Some(_), Some(e)) => format!("stopped: {e}"),
            (Some(t), None) => format!("done {} ago, {} records", age(*t, now), replay.added),
        };
        let _ = writeln!(
            out,
            "replay {} of {} to {} ({} to {}): {state}",
            replay.id,
            replay.stream,
            replay.sink,
            replay
                .start_time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            replay
                .end_time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    }
    Ok(())
}

/// Moves the named sinks' cursors (every sink when `sinks` is empty) back to the first record
/// logged at or after `since`; returns the text to print.
pub fn replay(
    settings: &Settings,
    since: DateTime<Utc>,
    sinks: &[String],
) -> Result<String, AuditError> {
    let chosen = chosen_sinks(settings, sinks)?;
    let Some(store) = open(settings)? else {
        return Ok(format!(
            "no state yet at {}: nothing to replay\n",
            settings.state.path.display()
        ));
    };
    let mut out = String::new();
    for (sink, old, new) in store.audit_rewind(&chosen, since)? {
        if new < old {
            let _ = writeln!(
                out,
                "{sink}: cursor {old} -> {new}; records from {} are shipped again",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        } else {
            let _ = writeln!(
                out,
                "{sink}: cursor {old} unchanged (nothing shipped since then)"
            );
        }
    }
    Ok(out)
}

/// Asks the daemon to read `stream` from `since` to `until` again from the Events API and to
/// ship it to the named sinks (every sink when `sinks` is empty); returns the text to print.
pub fn replay_stream(
    settings: &Settings,
    stream: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    sinks: &[String],
) -> Result<String, AuditError> {
    let refuse = |reason: String| AuditError::Stream {
        stream: stream.to_owned(),
        reason,
    };
    if stream == crate::store::ACTIVITY {
        return Err(refuse(
            "activity records are replayed from the state database: leave --stream out".into(),
        ));
    }
    let parsed: EventStream = stream
        .parse()
        .map_err(|e: UnknownStream| refuse(e.to_string()))?;
    let Some(events) = &settings.audit.events else {
        return Err(refuse("no [audit.sources.events] is configured".into()));
    };
    if !events.streams.contains(&parsed) {
        return Err(refuse("is not one of audit.sources.events.streams".into()));
    }
    let oldest = Utc::now() - chrono::Duration::from_std(EVENTS_HISTORY).unwrap_or_default();
    if since < oldest || since >= until {
        return Err(refuse(format!(
            "the window must start within the API's 120 days (after {}) and before its end",
            oldest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let chosen = chosen_sinks(settings, sinks)?;
    let store = settings.state.open()?;
    let ids = store.audit_replay_ask(parsed.as_str(), &chosen, since, until)?;
    let mut out = String::new();
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (sink, id) in chosen.iter().zip(ids) {
        let _ = writeln!(
            out,
            "{sink}: replay {id} asked: {stream} from {} to {} is read again from the Events API \
             and shipped to this sink (at the daemon's next read)",
            time(since),
            time(until)
        );
    }
    Ok(out)
}

/// The named sinks, checked against the config; every sink when none is named.
fn chosen_sinks(settings: &Settings, sinks: &[String]) -> Result<Vec<String>, AuditError> {
    let configured: Vec<String> = settings
        .audit
        .sinks
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for name in sinks {
        if !configured.contains(name) {
            return Err(AuditError::UnknownSink {
                name: name.clone(),
                known: if configured.is_empty() {
                    "none".into()
                } else {
                    configured.join(", ")
                },
            });
        }
    }
    Ok(if sinks.is_empty() {
        configured
    } else {
        sinks.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("a time");
        assert_eq!(
            parse_since("2h", now).expect("a duration"),
            now - chrono::Duration::hours(2)
        );
        assert_eq!(
            parse_since("2025-12-31T00:00:00+01:00", now)
                .expect("a time")
                .to_rfc3339(),
            "2025-12-30T23:00:00+00:00"
        );
        let e = parse_since("yesterday", now).expect_err("refused");
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }
}
