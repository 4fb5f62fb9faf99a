//! Which log an audit record comes from: Connect's activity or an Events API stream.
//!
//! `activity` covers Connect's `/v1/activity` and opsync's own events; the streams of the
//! account-wide 1Password Events API are `auditevents`, `itemusages` and `signinattempts`.

use std::fmt;

use crate::{AuditEvent, PluginError, permanent};

/// The `source` of Connect's `/v1/activity` records and of opsync's own events.
pub const ACTIVITY: &str = "activity";

/// A stream of the Events API; its record is the audit record's `detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `auditevents`: actions team members performed in the account.
    AuditEvents,
    /// `itemusages`: items of shared vaults used, revealed, copied, filled.
    ItemUsages,
    /// `signinattempts`: sign-in attempts, successful or not.
    SignInAttempts,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Self::AuditEvents, Self::ItemUsages, Self::SignInAttempts];

    /// The stream's name, as the Events API's endpoint and the record's `source` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuditEvents => "auditevents",
            Self::ItemUsages => "itemusages",
            Self::SignInAttempts => "signinattempts",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The log of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Connect's `/v1/activity` or opsync's own events: the common fields say everything.
    Activity,
    /// An Events API stream: `detail` holds the record as the API returned it.
    Events(Stream),
}

impl Source {
    /// The log `event` comes from; a `source` no sink knows is `permanent`, naming the record.
    pub fn of(event: &AuditEvent) -> Result<Self, PluginError> {
        let name = event.source.as_str();
        if name == ACTIVITY {
            return Ok(Self::Activity);
        }
        Stream::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .map(Self::Events)
            .ok_or_else(|| {
                permanent(format!(
                    "record {}: source `{name}` is not one the audit sinks know ({ACTIVITY}, \
                     auditevents, itemusages, signinattempts)",
                    event.request_id
                ))
            })
    }

    /// The stream, for an Events API record.
    pub fn stream(self) -> Option<Stream> {
        match self {
            Self::Activity => None,
            Self::Events(stream) => Some(stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;

    #[test]
    fn sources_by_name() {
        assert_eq!(
            Source::of(&sample::denied_read()).ok(),
            Some(Source::Activity)
        );
        assert_eq!(
            Source::of(&sample::daemon_event()).ok(),
            Some(Source::Activity)
        );
        for stream in Stream::ALL {
            let mut event = sample::denied_read();
            event.source = stream.to_string();
            assert_eq!(Source::of(&event).ok(), Some(Source::Events(stream)));
            assert_eq!(Source::Events(stream).stream(), Some(stream));
        }
        assert_eq!(Source::Activity.stream(), None);
    }

    #[test]
    fn an_unknown_source_is_permanent_and_names_the_record() {
        let mut event = sample::denied_read();
        event.source = "Activity".into();
        let err = Source::of(&event).expect_err("unknown");
        assert!(
            matches!(&err, PluginError::Permanent(m)
                if m.starts_with("record 3f1c2d4e-0000-4000-8000-000000000001: source `Activity`")),
            "{err:?}"
        );
    }
}
