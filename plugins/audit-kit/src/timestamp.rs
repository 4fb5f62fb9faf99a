//! A record's RFC 3339 timestamp, parsed once and written in the forms the formats and peers
//! want: epoch milliseconds (OCSF), epoch seconds with a fraction (HEC), RFC 3339 UTC with
//! milliseconds (ECS) or microseconds (syslog).

use time::OffsetDateTime;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;

use crate::{AuditEvent, PluginError, permanent};

/// A record's time, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Parses `text`; the error names the record (`request-id`) and the value, never more.
    pub fn parse(request_id: &str, text: &str) -> Result<Self, PluginError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Self(t.to_offset(UtcOffset::UTC)))
            .map_err(|e| {
                permanent(format!(
                    "record {request_id}: timestamp `{text}` is not RFC 3339 ({e})"
                ))
            })
    }

    /// The timestamp of `event`.
    pub fn of(event: &AuditEvent) -> Result<Self, PluginError> {
        Self::parse(&event.request_id, &event.timestamp)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Seconds since the Unix epoch with millisecond fraction, as HEC's `time` wants it.
    pub fn unix_seconds(self) -> f64 {
        self.unix_millis() as f64 / 1000.0
    }

    /// `2024-05-01T12:00:00.123Z`.
    pub fn rfc3339_millis(self) -> String {
        self.with_fraction(self.0.millisecond().into(), 3)
    }

    /// `2024-05-01T12:00:00.123456Z` (RFC 5424 allows at most six fractional digits).
    pub fn rfc3339_micros(self) -> String {
        self.with_fraction(self.0.microsecond(), 6)
    }

    fn with_fraction(self, fraction: u32, digits: usize) -> String {
        let t = self.0;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{fraction:0digits$}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_fractions_into_utc() {
        let t = Timestamp::parse("r", "2024-05-01T14:00:00.123456789+02:00").expect("valid");
        assert_eq!(t.unix_millis(), 1_714_564_800_123);
        assert_eq!(t.rfc3339_millis(), "2024-05-01T12:00:00.123Z");
        assert_eq!(t.rfc3339_micros(), "2024-05-01T12:00:00.123456Z");
        assert!((t.unix_seconds() - 1_714_564_800.123).abs() < 1e-6);
        let t = Timestamp::parse("r", "2024-05-01T12:00:00Z").expect("valid");
        assert_eq!(t.rfc3339_micros(), "2024-05-01T12:00:00.000000Z");
    }

    #[test]
    fn a_bad_timestamp_names_the_record() {
        let err = Timestamp::parse("req-7", "yesterday").expect_err("invalid");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("record req-7") && m.contains("`yesterday`")),
            "{err:?}"
        );
    }
}
