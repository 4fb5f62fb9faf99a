//! Translation of `@daily`-style macros and 5-field Unix cron into the `cron` crate's 6/7-field
//! form (seconds first, an optional year last); 6 and 7 fields pass through unchanged.
//!
//! Why the translation exists, rather than handing the text to the crate:
//!
//! - **Weekday numbers.** The crate numbers weekdays 1–7 with **Sunday = 1**; Unix cron numbers
//!   them 0–7 with Sunday = 0 or 7. A numeric Unix weekday field (ranges and steps included) is
//!   rewritten as an explicit list in the crate's numbering. Names (`MON`, `Sun-Thu`) mean the
//!   same in both and pass through.
//! - **Day of month and weekday.** Unix cron fires when EITHER a restricted day of the month or a
//!   restricted weekday matches; the crate fires only when BOTH do. A 5-field expression that
//!   restricts both is refused ([`ScheduleError::DayOrWeekday`]) rather than silently run less
//!   often than its author expects; the 6-field form states the crate's meaning explicitly.
//! - **Macros.** The crate reads only `@yearly`, `@monthly`, `@weekly`, `@daily` and `@hourly`,
//!   in lower case. Here `@annually` and `@midnight` are accepted too, in any case, each expanded
//!   to the 6-field form `Schedule::normalized` shows, and an unknown macro gets an error listing
//!   the known ones.

use super::ScheduleError;

/// Macros and 5-field Unix cron to the crate's 6/7-field form; 6 and 7 fields pass through.
pub(super) fn normalize(text: &str) -> Result<String, ScheduleError> {
    if let Some(name) = text.strip_prefix('@') {
        return Ok(match name.to_ascii_lowercase().as_str() {
            "yearly" | "annually" => "0 0 0 1 1 *",
            "monthly" => "0 0 0 1 * *",
            "weekly" => "0 0 0 * * SUN",
            "daily" | "midnight" => "0 0 0 * * *",
            "hourly" => "0 0 * * * *",
            _ => return Err(ScheduleError::UnknownMacro(text.to_owned())),
        }
        .to_owned());
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields.len() {
        6 | 7 => Ok(fields.join(" ")),
        5 => {
            let restricted = |f: &str| f != "*" && f != "?";
            if restricted(fields[2]) && restricted(fields[4]) {
                return Err(ScheduleError::DayOrWeekday {
                    text: text.to_owned(),
                });
            }
            let dow = unix_weekdays(text, fields[4])?;
            Ok(format!(
                "0 {} {} {} {} {dow}",
                fields[0], fields[1], fields[2], fields[3]
            ))
        }
        n => Err(ScheduleError::FieldCount {
            text: text.to_owned(),
            fields: n,
        }),
    }
}

/// A Unix weekday field (0–7, Sunday = 0 or 7) in the crate's numbering (1–7, Sunday = 1).
/// Items with names pass through; numeric items (with ranges and steps) become explicit lists.
fn unix_weekdays(text: &str, field: &str) -> Result<String, ScheduleError> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let bad = |item: &str, reason: &str| ScheduleError::Weekday {
        text: text.to_owned(),
        item: item.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out: Vec<String> = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (
                b,
                Some(
                    s.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| bad(item, "the step must be a whole number above 0"))?,
                ),
            ),
            None => (item, None),
        };
        let has_letters = base.chars().any(|c| c.is_ascii_alphabetic());
        let has_digits = base.chars().any(|c| c.is_ascii_digit());
        if has_letters && has_digits {
            return Err(bad(
                item,
                "mix of a name and a number; use names (MON-FRI) or numbers (1-5), not both",
            ));
        }
        if has_letters {
            out.push(item.to_owned());
            continue;
        }
        let num = |s: &str| -> Result<u32, ScheduleError> {
            s.parse::<u32>()
                .ok()
                .filter(|n| *n <= 7)
                .ok_or_else(|| bad(item, "a Unix weekday is 0-7 (0 and 7 are Sunday)"))
        };
        let (from, to) = match base {
            "*" => (0, 6),
            b => match b.split_once('-') {
                Some((a, z)) => (num(a)?, num(z)?),
                None => {
                    let n = num(b)?;
                    (n, if step.is_some() { 6 } else { n })
                }
            },
        };
        if from > to {
            return Err(bad(
                item,
                "a range must go upwards (write 5-7 for Friday to Sunday)",
            ));
        }
        let mut day = from;
        while day <= to {
            // Unix 0..=6 Sunday..Saturday and 7 Sunday; the crate's 1..=7 Sunday..Saturday.
            let crate_day = (day % 7) + 1;
            let s = crate_day.to_string();
            if !out.contains(&s) {
                out.push(s);
            }
            day += step.unwrap_or(1);
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike as _, Weekday};
    use chrono_tz::Tz;

    use super::*;
    use crate::schedule::Schedule;
    use crate::schedule::tests::{next, utc};

    #[test]
    fn five_field_unix_form_is_converted() {
        let s = Schedule::parse("30 3 * * *", Tz::UTC).expect("parses");
        assert_eq!(s.normalized(), "0 30 3 * * *");
        assert_eq!(
            next("30 3 * * *", "2025-01-01T04:00:00Z"),
            utc("2025-01-02T03:30:00Z")
        );
    }

    #[test]
    fn unix_weekday_numbers_mean_unix_days() {
        // 2025-01-01 is a Wednesday. Unix 0 and 7 are Sunday, 1 is Monday.
        for (dow, want) in [
            ("0", Weekday::Sun),
            ("7", Weekday::Sun),
            ("1", Weekday::Mon),
            ("6", Weekday::Sat),
        ] {
            let t = next(&format!("0 0 * * {dow}"), "2025-01-01T00:00:00Z");
            assert_eq!(t.weekday(), want, "Unix weekday {dow}");
        }
        // 1-5 is Monday to Friday: from Friday evening, the next is Monday.
        let t = next("0 9 * * 1-5", "2025-01-03T10:00:00Z");
        assert_eq!(t, utc("2025-01-06T09:00:00Z"));
        // 5-7 is Friday to Sunday.
        let s = Schedule::parse("0 9 * * 5-7", Tz::UTC).expect("parses");
        assert_eq!(s.normalized(), "0 0 9 * * 6,7,1");
        // Steps: every other day from Sunday.
        let s = Schedule::parse("0 0 * * */2", Tz::UTC).expect("parses");
        assert_eq!(s.normalized(), "0 0 0 * * 1,3,5,7");
    }

    #[test]
    fn the_crate_form_keeps_its_own_numbering() {
        // In the 6-field form 1 is Sunday, as the cron crate reads it.
        let t = next("0 0 0 * * 1", "2025-01-01T00:00:00Z");
        assert_eq!(t.weekday(), Weekday::Sun);
    }

    #[test]
    fn weekday_names_work_in_every_form() {
        for expr in [
            "0 9 * * MON",
            "0 0 9 * * Mon",
            "0 0 9 * * MON *",
            "0 9 * * mon-fri",
        ] {
            let t = next(expr, "2025-01-04T00:00:00Z"); // a Saturday
            assert_eq!(t, utc("2025-01-06T09:00:00Z"), "{expr}");
        }
    }

    #[test]
    fn macros() {
        assert_eq!(
            next("@daily", "2025-01-01T10:00:00Z"),
            utc("2025-01-02T00:00:00Z")
        );
        assert_eq!(
            next("@hourly", "2025-01-01T10:20:00Z"),
            utc("2025-01-01T11:00:00Z")
        );
        assert_eq!(
            next("@monthly", "2025-01-31T10:00:00Z"),
            utc("2025-02-01T00:00:00Z")
        );
        assert_eq!(
            next("@weekly", "2025-01-01T00:00:00Z"),
            utc("2025-01-05T00:00:00Z")
        );
        assert_eq!(
            next("@yearly", "2025-03-01T00:00:00Z"),
            utc("2026-01-01T00:00:00Z")
        );
        assert!(matches!(
            Schedule::parse("@fortnightly", Tz::UTC),
            Err(ScheduleError::UnknownMacro(_))
        ));
    }

    #[test]
    fn day_of_month_and_weekday_are_not_both_restricted_in_five_fields() {
        assert_eq!(
            normalize("0 0 1 * MON"),
            Err(ScheduleError::DayOrWeekday {
                text: "0 0 1 * MON".into()
            })
        );
        assert!(matches!(
            normalize("0 0 1 * 1-5"),
            Err(ScheduleError::DayOrWeekday { .. })
        ));
        // One of the two left open (`*` or `?`) is fine.
        assert_eq!(normalize("0 0 1 * *").as_deref(), Ok("0 0 0 1 * *"));
        assert_eq!(normalize("0 0 ? * 1").as_deref(), Ok("0 0 0 ? * 2"));
        // The 6-field form states the crate's AND explicitly and passes through.
        assert_eq!(normalize("0 0 0 1 * MON").as_deref(), Ok("0 0 0 1 * MON"));
    }
}
