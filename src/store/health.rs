//! What the daemon last learned about its own health, kept for the status page and
//! `opsync status --json`: the last poll's outcome and the plugins it could not use.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::store::error::{SqlContext, StoreError};
use crate::store::{SqliteStore, clip, from_millis, to_millis};

const POLL_OK: &str = "health_poll_ok_at";
const POLL_ERROR: &str = "health_poll_error";
const UNUSABLE: &str = "health_unusable_plugins";

/// An error with the time it happened (its text holds no secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noted {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// The last successful poll of Connect and the last failed one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollHealth {
    pub last_ok: Option<DateTime<Utc>>,
    pub last_error: Option<Noted>,
}

/// A plugin instance the daemon could not load, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnusablePlugin {
    pub name: String,
    pub reason: String,
}

impl SqliteStore {
    /// Records a successful poll at `at`.
    pub fn note_poll_ok(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.put_meta(POLL_OK, &to_millis(at).to_string())
    }

    /// Records a failed poll at `at` (the message is cut to the ledger's error length).
    pub fn note_poll_error(&self, at: DateTime<Utc>, message: &str) -> Result<(), StoreError> {
        let noted = Noted {
            at,
            message: clip(message).to_owned(),
        };
        self.put_meta(POLL_ERROR, &to_json(&noted)?)
    }

    /// The last poll outcomes recorded.
    pub fn poll_health(&self) -> Result<PollHealth, StoreError> {
        let last_ok = match self.meta(POLL_OK)? {
            Some(ms) => Some(from_millis(ms.parse().map_err(|_| {
                StoreError::Corrupt(format!("meta {POLL_OK} is not a time: {ms:?}"))
            })?)),
            None => None,
        };
        let last_error = match self.meta(POLL_ERROR)? {
            Some(text) => Some(from_json(POLL_ERROR, &text)?),
            None => None,
        };
        Ok(PollHealth {
            last_ok,
            last_error,
        })
    }

    /// Replaces the list of plugins the daemon could not load (empty: all usable).
    pub fn note_unusable_plugins(&self, plugins: &[UnusablePlugin]) -> Result<(), StoreError> {
        self.put_meta(UNUSABLE, &to_json(plugins)?)
    }

    /// The plugins the last daemon start could not load.
    pub fn unusable_plugins(&self) -> Result<Vec<UnusablePlugin>, StoreError> {
        match self.meta(UNUSABLE)? {
            Some(text) => from_json(UNUSABLE, &text),
            None => Ok(Vec::new()),
        }
    }

    fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .op("write health")
            .map(drop)
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("health record: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(key: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("meta {key}: {e}")))
}
