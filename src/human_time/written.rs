//! Serde for durations written as humantime strings: `"10s"`, `"500ms"`, `"1m 30s"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Reads a duration from a string with units.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

/// Writes a duration the way it is read (`"1m 30s"`).
pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a duration with a unit, like "10s" or "500ms""#)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim())
            .map_err(|e| E::custom(format!("invalid duration {v:?}: {e}")))
    }
}

/// The same for an optional duration (`None` when the key is absent).
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Written(#[serde(with = "super")] Duration);
        Option::<Written>::deserialize(d).map(|o| o.map(|w| w.0))
    }

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    #[test]
    fn parses_units() {
        let t: T = toml::from_str(r#"d = "1m 30s""#).expect("parses");
        assert_eq!(t.d, Duration::from_secs(90));
        let t: T = toml::from_str(r#"d = "500ms""#).expect("parses");
        assert_eq!(t.d, Duration::from_millis(500));
    }

    #[test]
    fn rejects_bare_numbers_and_unknown_units() {
        let e = toml::from_str::<T>("d = 10")
            .err()
            .expect("a number is refused");
        assert!(e.to_string().contains(r#"like "10s""#), "{e}");
        let e = toml::from_str::<T>(r#"d = "2 parsecs""#)
            .err()
            .expect("refused");
        assert!(
            e.to_string().contains(r#"invalid duration "2 parsecs""#),
            "{e}"
        );
    }
}
