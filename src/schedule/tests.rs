//! Tests of schedules: cron and interval forms, next runs, jitter, time zones.

use super::*;
use chrono::Timelike as _;

/// A UTC time from RFC 3339 text (shared with the Unix-cron tests).
pub(super) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// The first run of `expr` (in UTC) after `after`.
pub(super) fn next(expr: &str, after: &str) -> DateTime<Utc> {
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
    let newest =
        every_second.latest_between(utc("2025-01-01T00:00:00Z"), utc("2025-03-01T00:00:00.500Z"));
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
