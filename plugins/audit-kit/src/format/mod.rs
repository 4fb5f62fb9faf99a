//! The record formats a sink can ship, chosen per sink by the `format` config key: `raw`
//! (Connect's `/v1/activity` JSON), `ocsf` (OCSF API Activity, class 6003) and `ecs` (Elastic
//! Common Schema). Actions and results opsync does not know (the daemon's own `DELIVER`,
//! `DEAD_LETTER`, ...) pass through verbatim.

pub mod ecs;
pub mod ocsf;
pub mod raw;

use serde::Serialize;

use crate::settings::choice;
use crate::{AuditEvent, PluginError};

/// The config key that picks the format.
pub const KEY: &str = "format";

/// How a record is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Ocsf,
    Ecs,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Ocsf => "ocsf",
            Self::Ecs => "ecs",
        }
    }

    /// The format config key `format` asks for; `default` when unset.
    pub fn load(default: Format) -> Result<Self, PluginError> {
        let all = [Self::Raw, Self::Ocsf, Self::Ecs];
        let names = all.map(Self::as_str);
        let picked = choice(KEY, &names, default.as_str())?;
        Ok(all
            .into_iter()
            .find(|f| f.as_str() == picked)
            .unwrap_or(default))
    }

    /// `event` as a document in this format, ready to serialize (it borrows the event).
    pub fn render(self, event: &AuditEvent) -> Result<Doc<'_>, PluginError> {
        match self {
            Self::Raw => Ok(Doc::Raw(raw::render(event))),
            Self::Ocsf => ocsf::render(event).map(Doc::Ocsf),
            Self::Ecs => ecs::render(event).map(Doc::Ecs),
        }
    }
}

/// One rendered record: serializes as the JSON object of its format. Typed structs that borrow
/// the record, written straight into the request body (no intermediate `serde_json::Value`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Doc<'a> {
    Raw(raw::RawDoc<'a>),
    Ocsf(ocsf::OcsfDoc<'a>),
    Ecs(ecs::EcsDoc<'a>),
}

/// `value` unless it is empty: Connect sends empty strings for fields it does not know, and
/// typed peers (an ES `ip` field) refuse an empty string.
pub(crate) fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// Lower-case `name`, for operation names built from Connect's upper-case enums.
pub(crate) fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
pub(crate) mod sample {
    use crate::{AuditActor, AuditEvent, AuditResource};

    /// A denied item read, as the host hands it to a sink.
    pub fn denied_read() -> AuditEvent {
        AuditEvent {
            request_id: "3f1c2d4e-0000-4000-8000-000000000001".into(),
            timestamp: "2024-05-01T12:00:00.123+00:00".into(),
            action: "READ".into(),
            outcome: "DENY".into(),
            actor: AuditActor {
                id: "actor-uuid".into(),
                account: "ACCOUNT1".into(),
                jti: "token-jti".into(),
                user_agent: "curl/8.0".into(),
                request_ip: "192.0.2.7".into(),
            },
            target: Some(AuditResource {
                kind: "ITEM".into(),
                vault_id: Some("ftz4ftz4ftz4ftz4ftz4ftz4ft".into()),
                item_id: Some("h2x6h2x6h2x6h2x6h2x6h2x6h2".into()),
                item_version: Some(4),
            }),
        }
    }

    /// One of the daemon's own records: an action Connect never sends, no target, no IP.
    pub fn daemon_event() -> AuditEvent {
        AuditEvent {
            request_id: "opsync-deliver-17".into(),
            timestamp: "2024-05-01T12:00:01Z".into(),
            action: "DEAD_LETTER".into(),
            outcome: "SUCCESS".into(),
            actor: AuditActor {
                id: "opsync".into(),
                account: String::new(),
                jti: String::new(),
                user_agent: String::new(),
                request_ip: String::new(),
            },
            target: None,
        }
    }
}
