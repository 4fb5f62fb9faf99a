//! The wall clock, as Unix seconds and in the text forms plugins want (RFC 3339, and the
//! compact `YYYYMMDDTHHMMSSZ` of AWS signatures).

use time::OffsetDateTime;

/// A point in time, UTC, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instant(OffsetDateTime);

impl Instant {
    pub fn now() -> Self {
        Self::from_unix(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// The instant `seconds` after the Unix epoch (clamped to the representable range).
    pub fn from_unix(seconds: i64) -> Self {
        let at = OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Self(at)
    }

    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// `2024-05-01T12:30:00Z`.
    pub fn rfc3339(self) -> String {
        let t = self.0;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// `20240501T123000Z`.
    pub fn compact(self) -> String {
        format!(
            "{}T{:02}{:02}{:02}Z",
            self.date(),
            self.0.hour(),
            self.0.minute(),
            self.0.second()
        )
    }

    /// `20240501`.
    pub fn date(self) -> String {
        let t = self.0;
        format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = Instant::from_unix(1_440_938_160);
        assert_eq!(t.rfc3339(), "2015-08-30T12:36:00Z");
        assert_eq!(t.compact(), "20150830T123600Z");
        assert_eq!(t.date(), "20150830");
        assert_eq!(t.unix(), 1_440_938_160);
    }
}
