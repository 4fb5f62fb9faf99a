//! Rotation schedules: cron expressions (5, 6 or 7 fields), `@daily`-style macros and
//! `rate(12h)`, evaluated in a time zone, with deterministic jitter and the missed-slot rule.
//!
//! Schedules are read with the `cron` crate, whose form has seconds first and numbers weekdays
//! 1–7 with **Sunday = 1**. A 5-field Unix expression (`min hour dom month dow`, weekdays 0–7
//! with Sunday = 0 or 7) and the macros are converted to that form by `unix_cron`, weekday
//! numbers included. Weekday names (`MON`, `Sun-Thu`) mean the same in every form.

mod unix_cron;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use sha2::{Digest as _, Sha256};

/// The shortest `rate(...)` accepted.
pub const MIN_RATE: Duration = Duration::from_secs(1);

/// Why a schedule or time zone could not be read. The message quotes the expression (it is
/// config, never a secret).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("empty schedule")]
    Empty,
    #[error(
        "unknown macro {0:?} (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
    )]
    UnknownMacro(String),
    #[error("invalid rate {text:?}: {reason} (write it like rate(12h) or rate(30m))")]
    Rate { text: String, reason: String },
    #[error(
        "{fields} fields in {text:?}: use 5 (min hour day month weekday), 6 (with seconds first) or 7 (with a year last)"
    )]
    FieldCount { text: String, fields: usize },
    #[error("invalid weekday {item:?} in {text:?}: {reason}")]
    Weekday {
        text: String,
        item: String,
        reason: String,
    },
    #[error(
        "{text:?} restricts both the day of the month and the weekday: Unix cron runs when EITHER matches, opsync (the cron crate) only when BOTH do; write one of them as * or use the 6-field form to state it explicitly"
    )]
    DayOrWeekday { text: String },
    #[error("invalid cron expression {text:?}: {reason}")]
    Cron { text: String, reason: String },
    #[error("unknown time zone {0:?} (use an IANA name like UTC or Europe/Berlin)")]
    TimeZone(String),
}

/// What a schedule fires on.
#[derive(Clone, Debug)]
enum Expr {
    /// A cron schedule in the crate's form (seconds first).
    Cron(Box<cron::Schedule>),
    /// Every `Duration`, on multiples of it counted from the Unix epoch (UTC), so the slots are
    /// the same whenever the daemon starts.
    Rate(Duration),
}

/// A parsed schedule in its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    source: String,
    /// The expression the `cron` crate read, after macro and 5-field conversion.
    normalized: String,
    expr: Expr,
    tz: Tz,
}

/// Reads an IANA time zone name.
pub fn parse_tz(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name.trim()).map_err(|_| ScheduleError::TimeZone(name.to_owned()))
}

impl Schedule {
    /// Reads `text` (cron in 5, 6 or 7 fields, a macro, or `rate(...)`) in time zone `tz`.
    pub fn parse(text: &str, tz: Tz) -> Result<Self, ScheduleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(inner) = trimmed
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let every = parse_rate(inner).map_err(|reason| ScheduleError::Rate {
                text: trimmed.to_owned(),
                reason,
            })?;
            return Ok(Self {
                source: trimmed.to_owned(),
                normalized: trimmed.to_owned(),
                expr: Expr::Rate(every),
                tz,
            });
        }
        let normalized = unix_cron::normalize(trimmed)?;
        let schedule = cron::Schedule::from_str(&normalized).map_err(|e| ScheduleError::Cron {
            text: trimmed.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            source: trimmed.to_owned(),
            normalized,
            expr: Expr::Cron(Box::new(schedule)),
            tz,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression in the `cron` crate's form (seconds first, Sunday = 1).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.expr {
            Expr::Cron(s) => s
                .after(&t.with_timezone(&self.tz))
                .next()
                .map(|d| d.with_timezone(&Utc)),
            Expr::Rate(every) => {
                let step = every.as_millis() as i64;
                let ms = t.timestamp_millis();
                let next = (ms.div_euclid(step) + 1) * step;
                Utc.timestamp_millis_opt(next).single()
            }
        }
    }

    /// The newest slot in `(since, now]`, if any: the one a catch-up would run. Older missed
    /// slots in that span are coalesced into it, never run one by one.
    pub fn latest_between(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match &self.expr {
            Expr::Rate(every) => {
                let step = every.as_millis() as i64;
                let slot = now.timestamp_millis().div_euclid(step) * step;
                (slot > since.timestamp_millis())
                    .then(|| Utc.timestamp_millis_opt(slot).single())
                    .flatten()
            }
            Expr::Cron(s) => {
                // Bounded: a schedule that fires every second over a long outage would otherwise
                // walk millions of slots; past the bound, look back from `now` instead.
                const WALK: usize = 10_000;
                let mut last = None;
                for (i, slot) in s.after(&since.with_timezone(&self.tz)).enumerate() {
                    let slot = slot.with_timezone(&Utc);
                    if slot > now {
                        return last;
                    }
                    last = Some(slot);
                    if i >= WALK {
                        break;
                    }
                }
                // Long outage: step back from now in growing windows until a slot is found.
                let mut window = chrono::Duration::seconds(1);
                loop {
                    let from = (now - window).max(since);
                    let mut newest = None;
                    for slot in s.after(&from.with_timezone(&self.tz)) {
                        let slot = slot.with_timezone(&Utc);
                        if slot > now {
                            break;
                        }
                        newest = Some(slot);
                    }
                    if newest.is_some() || from == since {
                        return newest.or(last);
                    }
                    window = window * 4;
                }
            }
        }
    }
}

/// The deterministic jitter of `job`'s run for `slot`: a hash of both, in `[0, jitter)`. The same
/// after a restart, so the persisted slot stays the nominal one.
pub fn jitter_for(job: &str, slot: DateTime<Utc>, jitter: Duration) -> Duration {
    let ms = jitter.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    let mut h = Sha256::new();
    h.update(job.as_bytes());
    h.update(b"\0");
    h.update(slot.timestamp_millis().to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % ms)
}

/// What the scheduler should do about a job now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Run for this nominal slot now.
    Run { slot: DateTime<Utc> },
    /// This slot was missed by more than the deadline: record it as skipped, do not run it.
    Skip {
        slot: DateTime<Utc>,
        late_by: Duration,
    },
    /// Nothing to do before `at` (the next slot plus its jitter).
    Wait {
        slot: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// The schedule never fires again.
    Never,
}

/// The decision for `job` at `now`, given the last slot already started or skipped (or, for a
/// job never run, the time it was first seen: slots before that are not caught up).
pub fn due(
    job: &str,
    schedule: &Schedule,
    jitter: Duration,
    deadline: Duration,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Due {
    if let Some(slot) = schedule.latest_between(since, now) {
        let at = slot + chrono_dur(jitter_for(job, slot, jitter));
        if at <= now {
            let late = (now - at).to_std().unwrap_or_default();
            return if late <= deadline {
                Due::Run { slot }
            } else {
                Due::Skip {
                    slot,
                    late_by: late,
                }
            };
        }
        return Due::Wait { slot, at };
    }
    match schedule.next_after(now.max(since)) {
        Some(slot) => Due::Wait {
            slot,
            at: slot + chrono_dur(jitter_for(job, slot, jitter)),
        },
        None => Due::Never,
    }
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `12h`, `30m`, `1 day`, `7 days` (humantime units, a space allowed before the unit).
fn parse_rate(inner: &str) -> Result<Duration, String> {
    let compact: String = inner.split_whitespace().collect();
    let every = humantime::parse_duration(&compact).map_err(|e| e.to_string())?;
    if every < MIN_RATE {
        return Err(format!(
            "shorter than {}",
            humantime::format_duration(MIN_RATE)
        ));
    }
    if every.subsec_millis() != 0 || every.subsec_nanos() % 1_000_000 != 0 {
        return Err("use whole milliseconds".into());
    }
    Ok(every)
}

#[cfg(test)]
mod tests;
