//! Events API (v2) records as an audit record's `detail` carries them, typed and borrowed.
//!
//! Only the fields the OCSF and ECS mappings read are typed, borrowed from `detail`. Every field
//! is optional (absent, `null` and `""` read as none) and fields the mappings do not read are
//! ignored; a `detail` that is not a JSON object, or holds a read field of another JSON type than
//! the API documents, is `permanent` for its record.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::source::Stream;
use crate::{AuditEvent, PluginError, permanent};

/// A string of a record: borrowed from `detail`, or owned when JSON escapes had to be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn borrowed(text: &'a str) -> Self {
        Self(Cow::Borrowed(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `detail` when present, else the host's common field `common` unless it is empty.
pub fn or_common<'a>(detail: Option<Text<'a>>, common: &'a str) -> Option<Text<'a>> {
    detail.or_else(|| (!common.is_empty()).then(|| Text::borrowed(common)))
}

/// Reads an optional string field: a string, or none for `null` and `""` (and, through
/// `#[serde(default)]`, for an absent field). Another JSON type is an error.
fn text<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Text<'a>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }

        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }

        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
    }

    let value = deserializer.deserialize_option(Optional)?;
    Ok(value.filter(|v| !v.is_empty()).map(Text))
}

/// A user or another object as the API describes it (`actor_details`, `object_details`, `user`,
/// `target_user`): objects other than users have no e-mail address.
#[derive(Debug, Default, Deserialize)]
pub struct Named<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub uuid: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub name: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub email: Option<Text<'a>>,
}

/// Where the request came from, by IP geolocation.
#[derive(Debug, Default, Deserialize)]
pub struct Location<'a> {
    /// ISO 3166-1 alpha-2.
    #[serde(default, borrow, deserialize_with = "text")]
    pub country: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub region: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub city: Option<Text<'a>>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
}

/// The 1Password app that made the request, and the system it ran on.
#[derive(Debug, Default, Deserialize)]
pub struct Client<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub app_name: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub app_version: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub platform_name: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub platform_version: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub os_name: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub os_version: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub ip_address: Option<Text<'a>>,
}

/// The session an audit event happened in.
#[derive(Debug, Default, Deserialize)]
pub struct Session<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub uuid: Option<Text<'a>>,
    /// RFC 3339.
    #[serde(default, borrow, deserialize_with = "text")]
    pub login_time: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub device_uuid: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub ip: Option<Text<'a>>,
}

/// An `auditevents` record (its `action` is the common field `action`).
#[derive(Debug, Default, Deserialize)]
pub struct AuditEventRecord<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub actor_uuid: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub actor_details: Option<Named<'a>>,
    /// `user`, `member`, `service_account`, ... verbatim.
    #[serde(default, borrow, deserialize_with = "text")]
    pub actor_type: Option<Text<'a>>,
    /// The actor's own account, when it is not the record's (a managed service provider).
    #[serde(default, borrow, deserialize_with = "text")]
    pub actor_account_uuid: Option<Text<'a>>,
    /// `item`, `vault`, `user`, `group`, ... verbatim.
    #[serde(default, borrow, deserialize_with = "text")]
    pub object_type: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub object_uuid: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub object_details: Option<Named<'a>>,
    #[serde(default)]
    pub aux_id: Option<i64>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub aux_uuid: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub aux_info: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub session: Option<Session<'a>>,
    #[serde(default, borrow)]
    pub location: Option<Location<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub account_uuid: Option<Text<'a>>,
}

/// An `itemusages` record (its `action` is the common field `action`).
#[derive(Debug, Default, Deserialize)]
pub struct ItemUsage<'a> {
    /// The item version used.
    #[serde(default)]
    pub used_version: Option<u64>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub vault_uuid: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub item_uuid: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub user: Option<Named<'a>>,
    #[serde(default, borrow)]
    pub client: Option<Client<'a>>,
    #[serde(default, borrow)]
    pub location: Option<Location<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub account_uuid: Option<Text<'a>>,
}

/// A `signinattempts` record.
#[derive(Debug, Default, Deserialize)]
pub struct SignInAttempt<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub session_uuid: Option<Text<'a>>,
    /// `success`, `credentials_failed`, `mfa_failed`, `sso_failed`, ... verbatim.
    #[serde(default, borrow, deserialize_with = "text")]
    pub category: Option<Text<'a>>,
    /// `credentials_ok`, `mfa_ok`, `password_secret_bad`, ... verbatim.
    #[serde(default, borrow, deserialize_with = "text", rename = "type")]
    pub kind: Option<Text<'a>>,
    /// ISO 3166-1 alpha-2, as `location.country`.
    #[serde(default, borrow, deserialize_with = "text")]
    pub country: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub details: Option<SignInDetails<'a>>,
    #[serde(default, borrow)]
    pub target_user: Option<Named<'a>>,
    #[serde(default, borrow)]
    pub client: Option<Client<'a>>,
    #[serde(default, borrow)]
    pub location: Option<Location<'a>>,
    #[serde(default, borrow, deserialize_with = "text")]
    pub account_uuid: Option<Text<'a>>,
}

impl SignInAttempt<'_> {
    /// True when `category` is `success`; none without a category.
    pub fn succeeded(&self) -> Option<bool> {
        self.category.as_ref().map(|c| c.as_str() == "success")
    }

    /// `category/type`, or whichever of the two the record has.
    pub fn status_detail(&self) -> Option<String> {
        match (&self.category, &self.kind) {
            (Some(category), Some(kind)) => Some(format!("{category}/{kind}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
            (None, None) => None,
        }
    }
}

/// What more a sign-in attempt's `type` says (e.g. the SSO provider's message).
#[derive(Debug, Default, Deserialize)]
pub struct SignInDetails<'a> {
    #[serde(default, borrow, deserialize_with = "text")]
    pub value: Option<Text<'a>>,
}

/// An Events API record, typed by its stream.
#[derive(Debug)]
pub enum Record<'a> {
    AuditEvent(AuditEventRecord<'a>),
    ItemUsage(ItemUsage<'a>),
    SignInAttempt(SignInAttempt<'a>),
}

/// The `detail` of an Events API record: its JSON as is, and the record read from it.
#[derive(Debug)]
pub struct Detail<'a> {
    pub raw: &'a RawValue,
    pub record: Record<'a>,
}

impl<'a> Detail<'a> {
    /// Reads the `detail` of `event`, a record of `stream`. A missing `detail`, or one that is
    /// not a JSON object of the stream's shape, is `permanent`, naming the record.
    pub fn read(event: &'a AuditEvent, stream: Stream) -> Result<Self, PluginError> {
        let id = &event.request_id;
        let Some(text) = event.detail.as_deref() else {
            return Err(permanent(format!(
                "record {id}: a `{stream}` record without its `detail`"
            )));
        };
        let invalid = |why: String| {
            permanent(format!(
                "record {id}: `detail` is not an Events API `{stream}` record: {why}"
            ))
        };
        let raw: &'a RawValue =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        if !raw.get().starts_with('{') {
            return Err(invalid("not a JSON object".into()));
        }
        let field = |e: serde_json::Error| invalid(e.to_string());
        let record = match stream {
            Stream::AuditEvents => {
                Record::AuditEvent(AuditEventRecord::deserialize(raw).map_err(field)?)
            }
            Stream::ItemUsages => Record::ItemUsage(ItemUsage::deserialize(raw).map_err(field)?),
            Stream::SignInAttempts => {
                Record::SignInAttempt(SignInAttempt::deserialize(raw).map_err(field)?)
            }
        };
        Ok(Self { raw, record })
    }
}

/// The client as a user agent: the host's `actor.user-agent` (`app_name/app_version`), else the
/// same built from `client`.
pub fn user_agent<'a>(event: &'a AuditEvent, client: Option<&Client<'a>>) -> Option<Text<'a>> {
    if !event.actor.user_agent.is_empty() {
        return Some(Text::borrowed(&event.actor.user_agent));
    }
    let client = client?;
    let name = client.app_name.as_ref()?;
    Some(match &client.app_version {
        Some(version) => Text(Cow::Owned(format!("{name}/{version}"))),
        None => name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sample;

    fn read(event: &AuditEvent) -> Result<Record<'_>, PluginError> {
        let stream = crate::source::Source::of(event)?
            .stream()
            .expect("an Events API record");
        Detail::read(event, stream).map(|d| d.record)
    }

    fn message(err: PluginError) -> String {
        match err {
            PluginError::Permanent(m) => m,
            other => panic!("not permanent: {other:?}"),
        }
    }

    #[test]
    fn a_full_sign_in_attempt_reads_field_by_field() {
        let event = sample::sign_in_failed();
        let Ok(Record::SignInAttempt(r)) = read(&event) else {
            panic!("a sign-in attempt")
        };
        assert_eq!(r.succeeded(), Some(false));
        assert_eq!(
            r.status_detail().as_deref(),
            Some("credentials_failed/password_secret_bad")
        );
        let user = r.target_user.expect("target_user");
        // Escaped in `detail`: decoded, so owned.
        assert_eq!(user.name.expect("name").as_str(), "Zoë \"Z\" Appleseed");
        assert!(matches!(user.uuid.expect("uuid").0, Cow::Borrowed(_)));
        let client = r.client.expect("client");
        assert_eq!(client.os_name.expect("os").as_str(), "MacOSX");
        let location = r.location.expect("location");
        assert_eq!(location.latitude, Some(43.6532));
        assert!(r.details.is_none(), "null reads as none");
    }

    #[test]
    fn missing_null_and_empty_fields_read_as_none() {
        for event in [
            sample::sign_in_sparse(),
            sample::item_usage_sparse(),
            sample::audit_event_sparse(),
        ] {
            let record = read(&event).expect("reads");
            if let Record::SignInAttempt(r) = record {
                assert_eq!(r.succeeded(), Some(true));
                assert!(r.kind.is_none() && r.target_user.is_none() && r.client.is_none());
                assert_eq!(r.status_detail().as_deref(), Some("success"));
            } else if let Record::ItemUsage(r) = record {
                assert!(r.used_version.is_none() && r.user.is_none());
                assert!(r.client.expect("{} is a client").ip_address.is_none());
            } else if let Record::AuditEvent(r) = record {
                assert!(r.actor_details.is_none() && r.object_uuid.is_none());
                assert!(r.session.is_none() && r.aux_id.is_none());
            }
        }
    }

    #[test]
    fn a_detail_that_is_not_its_streams_json_is_permanent_and_names_the_record() {
        let cases = [
            ("{\"category\": ", "not JSON"),
            ("[\"success\"]", "not a JSON object"),
            ("\"success\"", "not a JSON object"),
            (
                "{\"category\": 7}",
                "invalid type: integer `7`, expected a string",
            ),
            ("{\"target_user\": \"u\"}", "invalid type: string"),
            ("{\"location\": {\"latitude\": \"north\"}}", "expected f64"),
        ];
        for (detail, why) in cases {
            let mut event = sample::sign_in_sparse();
            event.detail = Some(detail.into());
            let m = message(read(&event).expect_err(detail));
            assert!(
                m.starts_with(
                    "record 5HU2ZWJPLZDXHJQ4EBKZAFGXVA: `detail` is not an Events API \
                     `signinattempts` record: "
                ) && m.contains(why),
                "{detail}: {m}"
            );
        }
        let mut event = sample::item_usage_sparse();
        event.detail = Some("{\"used_version\": \"3\"}".into());
        assert!(message(read(&event).expect_err("a string version")).contains("`itemusages`"));
        event.detail = None;
        assert_eq!(
            message(read(&event).expect_err("no detail")),
            "record Q5VZUX2SHBFCTPCOFIG3DPRRIE: a `itemusages` record without its `detail`"
        );
    }

    #[test]
    fn the_raw_detail_is_the_object_without_surrounding_whitespace() {
        let mut event = sample::sign_in_sparse();
        event.detail = Some("  {\"category\":\"success\"}\n".into());
        let detail = Detail::read(&event, Stream::SignInAttempts).expect("reads");
        assert_eq!(detail.raw.get(), "{\"category\":\"success\"}");
    }

    #[test]
    fn user_agents_come_from_the_host_else_from_the_client() {
        let mut event = sample::item_usage();
        event.actor.user_agent = "host/1".into();
        let Ok(Record::ItemUsage(r)) = read(&event) else {
            panic!("an item usage")
        };
        let agent = |event| user_agent(event, r.client.as_ref()).map(|t| t.to_string());
        assert_eq!(agent(&event), Some("host/1".into()));
        let mut bare = event.clone();
        bare.actor.user_agent.clear();
        assert_eq!(agent(&bare), Some("1Password for Mac/81043004".into()));
        assert_eq!(user_agent(&bare, None), None);
    }
}
