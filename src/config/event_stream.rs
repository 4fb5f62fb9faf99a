//! The Events API's streams (`auditevents`, `itemusages`, `signinattempts`) and versions, as
//! configured: a stream's name is also the token feature that reads it and its records' `source`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One stream of the 1Password Events API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStream {
    /// Actions of team members in the account (`/api/v{1,2}/auditevents`).
    AuditEvents,
    /// Uses of items in shared vaults (`/api/v{1,2}/itemusages`).
    ItemUsages,
    /// Sign-in attempts, successful or not (`/api/v{1,2}/signinattempts`).
    SignInAttempts,
}

impl EventStream {
    /// Every stream, in the order they are read.
    pub const ALL: [EventStream; 3] = [
        EventStream::AuditEvents,
        EventStream::ItemUsages,
        EventStream::SignInAttempts,
    ];

    /// The stream's name: its endpoint, the token feature that reads it, its records' `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuditEvents => "auditevents",
            Self::ItemUsages => "itemusages",
            Self::SignInAttempts => "signinattempts",
        }
    }
}

impl fmt::Display for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which endpoints are read: v2 adds account fields to every record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    V1,
    #[default]
    V2,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// A name that is not a stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown Events API stream {0:?} (expected auditevents, itemusages or signinattempts)")]
pub struct UnknownStream(pub String);

impl FromStr for EventStream {
    type Err = UnknownStream;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|stream| stream.as_str() == s)
            .ok_or_else(|| UnknownStream(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_named() {
        for stream in EventStream::ALL {
            assert_eq!(stream.as_str().parse::<EventStream>(), Ok(stream));
        }
        let e = "audit".parse::<EventStream>().expect_err("not a stream");
        assert!(e.to_string().contains("\"audit\""), "{e}");
    }
}
