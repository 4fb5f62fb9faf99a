//! Spans of time worded for people: `42s`, `3m`, `3h 5m`, `1 day 4h`, `12 days` in status
//! lines, and `"10s"`, `"1m 30s"` in the config file ([`written`]).
//!
//! Written by hand because `humantime` prints every unit down to the second and without a space
//! before a word unit (`2days 3h 4m 5s`), which reads badly in a status line.

use chrono::TimeDelta;

pub mod written;

/// The length of `d` (its sign ignored) for people, rounded to its largest sensible unit(s):
/// `42s`, `3m`, `3h 5m`, `1 day 4h`, `12 days`. Under a minute it shows seconds, under a day
/// hours and minutes, under a week days and hours, then days.
pub fn span(d: TimeDelta) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let millis = d.num_milliseconds().unsigned_abs();
    let secs = millis.saturating_add(500) / 1000;
    if secs < MINUTE {
        return format!("{secs}s");
    }
    let minutes = (secs + MINUTE / 2) / MINUTE;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    if minutes < 24 * 60 {
        return match (minutes / 60, minutes % 60) {
            (h, 0) => format!("{h}h"),
            (h, m) => format!("{h}h {m}m"),
        };
    }
    let hours = (secs + HOUR / 2) / HOUR;
    if hours < 7 * 24 {
        return match (hours / 24, hours % 24) {
            (d, 0) => days(d),
            (d, h) => format!("{} {h}h", days(d)),
        };
    }
    days((secs + DAY / 2) / DAY)
}

fn days(n: u64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    #[test]
    fn span_rounds_to_the_largest_sensible_units() {
        assert_eq!(span(TimeDelta::zero()), "0s");
        assert_eq!(span(TimeDelta::milliseconds(400)), "0s");
        assert_eq!(span(secs(42)), "42s");
        assert_eq!(span(TimeDelta::milliseconds(59_600)), "1m");
        assert_eq!(span(secs(3 * 60 + 10)), "3m");
        assert_eq!(span(secs(3 * 60 + 40)), "4m");
        assert_eq!(span(secs(3599)), "1h");
        assert_eq!(span(secs(3 * 3600 + 5 * 60 + 20)), "3h 5m");
        assert_eq!(span(secs(5 * 3600)), "5h");
        assert_eq!(span(secs(24 * 3600 - 20)), "1 day");
        assert_eq!(span(secs(26 * 3600 + 10 * 60)), "1 day 2h");
        assert_eq!(span(secs(2 * 86400 + 10 * 60)), "2 days");
        assert_eq!(span(secs(6 * 86400 + 23 * 3600 + 50 * 60)), "7 days");
        assert_eq!(span(secs(45 * 86400 + 13 * 3600)), "46 days");
        // The sign is the caller's to word.
        assert_eq!(span(secs(-3 * 60)), "3m");
        assert_eq!(span(TimeDelta::MIN), span(TimeDelta::MAX));
    }
}
