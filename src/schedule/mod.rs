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
mod tests {
    use super::*;
    use chrono::Timelike as _;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str) -> DateTime<Utc> {
        Schedule::parse(expr, Tz::UTC)
            .expect("parses")
            .next_after(utc(after))
            .expect("fires")
    }

    #[test]
    fn seven_fields_with_a_year() {
        let t = next("0 0 12 1 1 * 2030", "2025-01-01T00:00:00Z");
        assert_eq!(t, utc("2030-01-01T12:00:00Z"));
        assert!(
            Schedule::parse("0 0 12 1 1 * 2020", Tz::UTC)
                .expect("parses")
                .next_after(utc("2025-01-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn rates_fall_on_multiples_from_the_epoch() {
        assert_eq!(
            next("rate(12h)", "2025-01-01T10:00:00Z"),
            utc("2025-01-01T12:00:00Z")
        );
        assert_eq!(
            next("rate(12 hours)", "2025-01-01T12:00:00Z"),
            utc("2025-01-02T00:00:00Z")
        );
        assert_eq!(
            next("rate(1 day)", "2025-01-01T12:00:00Z"),
            utc("2025-01-02T00:00:00Z")
        );
        assert!(matches!(
            Schedule::parse("rate(0s)", Tz::UTC),
            Err(ScheduleError::Rate { .. })
        ));
        assert!(matches!(
            Schedule::parse("rate(soon)", Tz::UTC),
            Err(ScheduleError::Rate { .. })
        ));
    }

    #[test]
    fn month_ends() {
        // The 31st skips months without one.
        assert_eq!(
            next("0 3 31 * *", "2025-01-31T04:00:00Z"),
            utc("2025-03-31T03:00:00Z")
        );
        // The 29th of February only in leap years.
        assert_eq!(
            next("0 0 29 2 *", "2025-01-01T00:00:00Z"),
            utc("2028-02-29T00:00:00Z")
        );
        // The 30th: February is skipped.
        assert_eq!(
            next("0 0 30 * *", "2025-01-30T01:00:00Z"),
            utc("2025-03-30T00:00:00Z")
        );
        // Year end rolls over.
        assert_eq!(
            next("59 23 31 12 *", "2025-12-31T23:59:00Z"),
            utc("2026-12-31T23:59:00Z")
        );
    }

    #[test]
    fn a_slot_in_a_daylight_saving_gap_is_skipped_and_a_repeated_hour_runs_once() {
        let tz = parse_tz("Europe/Berlin").expect("tz");
        let s = Schedule::parse("30 2 * * *", tz).expect("parses");
        // 2026-03-29: Berlin jumps from 02:00 to 03:00, so 02:30 does not exist that day.
        let spring: Vec<_> = [
            "2026-03-28T00:00:00Z",
            "2026-03-28T01:30:00Z",
            "2026-03-29T00:30:00Z",
        ]
        .iter()
        .map(|t| s.next_after(utc(t)))
        .collect();
        // 2026-10-25: Berlin goes back from 03:00 to 02:00, so 02:30 happens twice.
        let autumn: Vec<_> = ["2026-10-24T23:00:00Z", "2026-10-25T00:30:00Z"]
            .iter()
            .map(|t| s.next_after(utc(t)))
            .collect();
        assert_eq!(
            spring,
            [
                Some(utc("2026-03-28T01:30:00Z")), // 02:30 CET on the 28th
                Some(utc("2026-03-30T00:30:00Z")), // the 29th is skipped: 02:30 CEST on the 30th
                Some(utc("2026-03-30T00:30:00Z")),
            ]
        );
        assert_eq!(
            autumn,
            [
                Some(utc("2026-10-25T00:30:00Z")), // the first 02:30 (CEST)
                Some(utc("2026-10-26T01:30:00Z")), // not the second (CET): the next day's
            ]
        );
    }

    #[test]
    fn time_zones_move_the_slot() {
        let tz = parse_tz("Europe/Berlin").expect("tz");
        let s = Schedule::parse("0 3 * * *", tz).expect("parses");
        // 03:00 in Berlin in winter is 02:00 UTC; in summer 01:00 UTC.
        assert_eq!(
            s.next_after(utc("2025-01-10T00:00:00Z")),
            Some(utc("2025-01-10T02:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2025-07-10T00:00:00Z")),
            Some(utc("2025-07-10T01:00:00Z"))
        );
        assert!(matches!(
            parse_tz("Mars/Olympus"),
            Err(ScheduleError::TimeZone(_))
        ));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert!(matches!(
            Schedule::parse("* * *", Tz::UTC),
            Err(ScheduleError::FieldCount { fields: 3, .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 * * 8", Tz::UTC),
            Err(ScheduleError::Weekday { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 * * 1-FRI", Tz::UTC),
            Err(ScheduleError::Weekday { .. })
        ));
        assert!(matches!(
            Schedule::parse("0 0 1 * MON", Tz::UTC),
            Err(ScheduleError::DayOrWeekday { .. })
        ));
        let e = Schedule::parse("0 0 99 * * *", Tz::UTC).expect_err("bad day");
        assert!(matches!(e, ScheduleError::Cron { .. }), "{e}");
        assert!(e.to_string().contains("0 0 99 * * *"), "{e}");
    }

    #[test]
    fn latest_slot_coalesces_missed_ones() {
        let s = Schedule::parse("0 3 * * *", Tz::UTC).expect("parses");
        let newest = s.latest_between(utc("2025-01-01T03:00:00Z"), utc("2025-01-03T12:00:00Z"));
        assert_eq!(newest, Some(utc("2025-01-03T03:00:00Z")));
        // The `since` slot itself is not run again.
        assert_eq!(
            s.latest_between(utc("2025-01-03T03:00:00Z"), utc("2025-01-03T12:00:00Z")),
            None
        );
        // A per-second schedule over a long outage still answers, with the newest slot.
        let every_second = Schedule::parse("* * * * * *", Tz::UTC).expect("parses");
        let newest = every_second
            .latest_between(utc("2025-01-01T00:00:00Z"), utc("2025-03-01T00:00:00.500Z"));
        assert_eq!(newest, Some(utc("2025-03-01T00:00:00Z")));
    }

    #[test]
    fn missed_slot_runs_inside_its_deadline_and_is_skipped_outside() {
        let s = Schedule::parse("0 3 * * *", Tz::UTC).expect("parses");
        let hour = Duration::from_secs(3600);
        let since = utc("2025-01-01T03:00:00Z");
        // Down from 02:00 to 03:30 on the 2nd: the 03:00 slot is 30 min late, inside 1 h.
        assert_eq!(
            due(
                "j",
                &s,
                Duration::ZERO,
                hour,
                since,
                utc("2025-01-02T03:30:00Z")
            ),
            Due::Run {
                slot: utc("2025-01-02T03:00:00Z")
            }
        );
        // Back at 05:00: 2 h late, outside: skipped, not run.
        assert_eq!(
            due(
                "j",
                &s,
                Duration::ZERO,
                hour,
                since,
                utc("2025-01-02T05:00:00Z")
            ),
            Due::Skip {
                slot: utc("2025-01-02T03:00:00Z"),
                late_by: Duration::from_secs(7200)
            }
        );
        // Once the slot is recorded (run or skipped), it is never due again: no double run.
        let after = utc("2025-01-02T03:00:00Z");
        assert_eq!(
            due(
                "j",
                &s,
                Duration::ZERO,
                hour,
                after,
                utc("2025-01-02T03:30:00Z")
            ),
            Due::Wait {
                slot: utc("2025-01-03T03:00:00Z"),
                at: utc("2025-01-03T03:00:00Z")
            }
        );
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let slot = utc("2025-01-02T03:00:00Z");
        let window = Duration::from_secs(600);
        let a = jitter_for("job-a", slot, window);
        assert_eq!(a, jitter_for("job-a", slot, window));
        assert!(a < window);
        let spread: std::collections::HashSet<Duration> = (0..20)
            .map(|i| jitter_for(&format!("job-{i}"), slot, window))
            .collect();
        assert!(spread.len() > 10, "jitter spreads jobs: {spread:?}");
        assert_eq!(jitter_for("j", slot, Duration::ZERO), Duration::ZERO);
        // The run waits for its jitter, then is due.
        let s = Schedule::parse("0 3 * * *", Tz::UTC).expect("parses");
        let since = utc("2025-01-01T03:00:00Z");
        let j = jitter_for("job-a", slot, window);
        let at = slot + chrono::Duration::from_std(j).expect("small");
        if j > Duration::ZERO {
            assert_eq!(
                due("job-a", &s, window, Duration::from_secs(60), since, slot),
                Due::Wait { slot, at }
            );
        }
        assert_eq!(
            due("job-a", &s, window, Duration::from_secs(60), since, at),
            Due::Run { slot }
        );
        let _ = (at.hour(), at.minute());
    }
}
