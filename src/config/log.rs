//! The `[log]` section: how much opsync logs, and in which format.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `[log]` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A level (`info`) or a tracing filter (`info,opsync::connect=debug`).
    pub level: LogLevel,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// A validated log filter: a level name, or a list of tracing directives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogLevel(String);

impl LogLevel {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LogLevel {
    fn default() -> Self {
        Self("info".to_owned())
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<LogLevel> for String {
    fn from(level: LogLevel) -> Self {
        level.0
    }
}

impl TryFrom<String> for LogLevel {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim().to_owned();
        let expected = || {
            format!(
                "invalid log level {s:?} (expected one of {}, or a filter like \"info,opsync=debug\")",
                LEVELS.join(", ")
            )
        };
        if !s.contains(['=', ',']) {
            let lower = s.to_ascii_lowercase();
            return if LEVELS.contains(&lower.as_str()) {
                Ok(Self(lower))
            } else {
                Err(expected())
            };
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(&s)
            .map(|_| Self(s.clone()))
            .map_err(|e| format!("{}: {e}", expected()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_filters() {
        assert_eq!(
            LogLevel::try_from("DEBUG".to_owned()),
            Ok(LogLevel("debug".into()))
        );
        assert!(LogLevel::try_from("info,opsync::connect=debug".to_owned()).is_ok());
        let err = LogLevel::try_from("verbose".to_owned()).expect_err("not a level");
        assert!(err.contains("invalid log level \"verbose\""), "{err}");
        assert!(LogLevel::try_from("opsync=loud".to_owned()).is_err());
    }
}
