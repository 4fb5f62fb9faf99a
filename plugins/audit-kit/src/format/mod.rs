//! The record formats a sink can ship, chosen per sink by the `format` config key. A record's
//! `source` says which log it comes from, and each format has a shape per log:
//!
//! - `raw`: a Connect activity record (and opsync's own) in the shape of Connect's `/v1/activity`
//!   JSON; an Events API record is its `detail` byte for byte, the object the Events API returned
//!   (as 1Password's own connectors ship it; its `uuid` is the request-id).
//! - `ocsf` (OCSF 1.3): activity is API Activity (class 6003); `signinattempts` Authentication
//!   (3002, Logon, Success/Failure by `category`); `auditevents` Entity Management (3004, activity
//!   by action: create, read/view, update/edit, delete/purge, else 99 Other named by the action);
//!   `itemusages` Entity Management (3004, Read, named by the action, the item as the entity and
//!   its vault as the entity's group). Events API documents carry `metadata.uid` = request-id,
//!   `metadata.log_name` = the stream, `metadata.product` 1Password / feature Events API, time in
//!   epoch milliseconds and severity 1 (Informational).
//! - `ecs` (ECS 8.11): activity is `event.category` `api`; Events API documents have `event.id` =
//!   request-id, `event.module` `1password`, `event.dataset` `1password.<stream>`: `signinattempts`
//!   are `authentication`/`start` (action the `category`, reason the `type`), `auditevents` `iam`
//!   (type by action), `itemusages` `database`/`access`; with `user`, `source.ip`, `source.geo`,
//!   `user_agent` and `onepassword.*` for the rest.
//!
//! Actions and results opsync does not know (the daemon's own `DELIVER`, `DEAD_LETTER`, an Events
//! API action added later, ...) pass through verbatim. A record whose `source` is unknown, or
//! whose `detail` is not a JSON object of its stream's shape, is `permanent` for that record alone.

pub mod ecs;
pub mod ocsf;
pub mod raw;
#[cfg(test)]
pub(crate) mod sample;
pub mod verb;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::events::{Detail, Record};
use crate::settings::choice;
use crate::source::Source;
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

    /// `event` as a document in this format, ready to serialize (it borrows the event). An
    /// unknown `source`, or an Events API record whose `detail` is missing or not of its stream's
    /// shape, is `permanent`, naming the record.
    pub fn render(self, event: &AuditEvent) -> Result<Doc<'_>, PluginError> {
        let stream = match Source::of(event)? {
            Source::Activity => {
                return match self {
                    Self::Raw => Ok(Doc::Raw(raw::render(event))),
                    Self::Ocsf => ocsf::render(event).map(Doc::Ocsf),
                    Self::Ecs => ecs::render(event).map(Doc::Ecs),
                };
            }
            Source::Events(stream) => stream,
        };
        let detail = Detail::read(event, stream)?;
        match (self, detail.record) {
            (Self::Raw, _) => Ok(Doc::Verbatim(detail.raw)),
            (Self::Ocsf, Record::SignInAttempt(r)) => {
                ocsf::authentication::render(event, r).map(|d| Doc::OcsfAuthentication(Box::new(d)))
            }
            (Self::Ocsf, Record::AuditEvent(r)) => {
                ocsf::entity::audit_event(event, r).map(|d| Doc::OcsfEntityManagement(Box::new(d)))
            }
            (Self::Ocsf, Record::ItemUsage(r)) => {
                ocsf::entity::item_usage(event, r).map(|d| Doc::OcsfEntityManagement(Box::new(d)))
            }
            (Self::Ecs, Record::SignInAttempt(r)) => {
                ecs::events::sign_in_attempt(event, r).map(|d| Doc::EcsEvents(Box::new(d)))
            }
            (Self::Ecs, Record::AuditEvent(r)) => {
                ecs::events::audit_event(event, r).map(|d| Doc::EcsEvents(Box::new(d)))
            }
            (Self::Ecs, Record::ItemUsage(r)) => {
                ecs::events::item_usage(event, r).map(|d| Doc::EcsEvents(Box::new(d)))
            }
        }
    }
}

/// One rendered record: serializes as the JSON object of its format. Typed structs that borrow
/// the record, written straight into the request body (no intermediate `serde_json::Value`); the
/// larger Events API documents are boxed.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Doc<'a> {
    /// `raw`, a Connect activity record.
    Raw(raw::RawDoc<'a>),
    /// `raw`, an Events API record: its `detail` as it came, serialized without re-encoding.
    Verbatim(&'a RawValue),
    /// `ocsf`, a Connect activity record.
    Ocsf(ocsf::OcsfDoc<'a>),
    /// `ocsf`, a sign-in attempt.
    OcsfAuthentication(Box<ocsf::authentication::AuthenticationDoc<'a>>),
    /// `ocsf`, an audit event or an item usage.
    OcsfEntityManagement(Box<ocsf::entity::EntityDoc<'a>>),
    /// `ecs`, a Connect activity record.
    Ecs(ecs::EcsDoc<'a>),
    /// `ecs`, an Events API record.
    EcsEvents(Box<ecs::events::EventsDoc<'a>>),
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
mod tests {
    use super::*;
    use serde_json::Value;

    fn render(format: Format, event: &AuditEvent) -> Result<Value, PluginError> {
        let doc = format.render(event)?;
        Ok(serde_json::to_value(&doc).expect("serializes"))
    }

    const FORMATS: [Format; 3] = [Format::Raw, Format::Ocsf, Format::Ecs];

    /// Where each format carries the request-id.
    fn request_id(format: Format, doc: &Value) -> &Value {
        match format {
            Format::Raw if doc.get("requestId").is_some() => &doc["requestId"],
            Format::Raw => &doc["uuid"],
            Format::Ocsf => &doc["metadata"]["uid"],
            Format::Ecs => &doc["event"]["id"],
        }
    }

    #[test]
    fn every_stream_renders_in_every_format_with_its_request_id() {
        for event in [
            sample::denied_read(),
            sample::daemon_event(),
            sample::sign_in_failed(),
            sample::sign_in_sparse(),
            sample::item_usage(),
            sample::item_usage_sparse(),
            sample::audit_event(),
            sample::audit_event_sparse(),
        ] {
            for format in FORMATS {
                let doc = render(format, &event).expect("renders");
                assert_eq!(
                    request_id(format, &doc),
                    event.request_id.as_str(),
                    "{} in {}",
                    event.source,
                    format.as_str()
                );
            }
        }
    }

    #[test]
    fn events_records_take_their_streams_class_and_dataset() {
        for (event, class_uid, dataset) in [
            (sample::sign_in_failed(), 3002, "1password.signinattempts"),
            (sample::item_usage(), 3004, "1password.itemusages"),
            (sample::audit_event(), 3004, "1password.auditevents"),
        ] {
            let ocsf = render(Format::Ocsf, &event).expect("renders");
            assert_eq!(ocsf["class_uid"], class_uid);
            assert_eq!(ocsf["metadata"]["log_name"], event.source.as_str());
            let ecs = render(Format::Ecs, &event).expect("renders");
            assert_eq!(ecs["event"]["dataset"], dataset);
            assert_eq!(ecs["event"]["module"], "1password");
            assert_eq!(ecs["event"]["kind"], "event");
        }
    }

    #[test]
    fn activity_records_keep_their_shapes() {
        let event = sample::denied_read();
        assert!(matches!(Format::Raw.render(&event), Ok(Doc::Raw(_))));
        assert!(matches!(Format::Ocsf.render(&event), Ok(Doc::Ocsf(_))));
        assert!(matches!(Format::Ecs.render(&event), Ok(Doc::Ecs(_))));
        // A detail on an activity record is not read.
        let mut with_detail = event.clone();
        with_detail.detail = Some("not json".into());
        for format in FORMATS {
            assert_eq!(
                render(format, &with_detail).expect("renders"),
                render(format, &event).expect("renders")
            );
        }
    }

    #[test]
    fn a_bad_record_is_permanent_in_every_format_and_names_the_record() {
        let mut bad_detail = sample::audit_event();
        bad_detail.detail = Some("{\"object_type\": [\"user\"]}".into());
        let mut no_detail = sample::item_usage();
        no_detail.detail = None;
        let mut unknown = sample::sign_in_failed();
        unknown.source = "auditevents/v3".into();
        for event in [bad_detail, no_detail, unknown] {
            for format in FORMATS {
                let err = format.render(&event).expect_err("refused");
                assert!(
                    matches!(&err, PluginError::Permanent(m)
                        if m.starts_with(&format!("record {}: ", event.request_id))),
                    "{}: {err:?}",
                    format.as_str()
                );
            }
        }
    }
}
