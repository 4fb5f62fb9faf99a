//! Sign-in attempts (`signinattempts`) as OCSF Authentication (class 3002).
//!
//! Activity 1 Logon; status Success when `category` is `success` and Failure otherwise;
//! `status_detail` `category/type`; the user who tried to sign in as `user`; the client's address,
//! location and OS as `src_endpoint`; the client app as `http_request.user_agent`.

use serde::Serialize;

use super::parts::{
    CATEGORY_NAME, CATEGORY_UID, Endpoint, HttpRequest, Metadata, SEVERITY, SEVERITY_ID, Session,
    User, time,
};
use crate::events::SignInAttempt;
use crate::source::Stream;
use crate::{AuditEvent, PluginError};

/// Authentication.
pub const CLASS_UID: u32 = 3002;
/// Logon: every attempt asks for a new session.
pub const ACTIVITY_ID: u32 = 1;

/// One OCSF Authentication event.
#[derive(Debug, Serialize)]
pub struct AuthenticationDoc<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<String>,
    time: i64,
    metadata: Metadata<'a>,
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<Session<'a>>,
    service: Service,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
}

/// The service signed in to (Authentication needs a `service` or a `dst_endpoint`).
#[derive(Debug, Serialize)]
struct Service {
    name: &'static str,
}

/// `(status_id, status)`: by `category` when the record has one, else by the host's outcome.
fn status(attempt: &SignInAttempt<'_>, outcome: &str) -> (u32, &'static str) {
    match attempt.succeeded() {
        Some(true) => (1, "Success"),
        Some(false) => (2, "Failure"),
        None => super::status(outcome),
    }
}

/// A `signinattempts` record: `target_user` tried to sign in from `client`.
// Closest class: a sign-in attempt is a logon request to 1Password, successful or not.
pub fn render<'a>(
    event: &'a AuditEvent,
    attempt: SignInAttempt<'a>,
) -> Result<AuthenticationDoc<'a>, PluginError> {
    let (status_id, status_name) = status(&attempt, &event.outcome);
    let status_detail = attempt.status_detail();
    let http_request = HttpRequest::new(event, attempt.client.as_ref());
    Ok(AuthenticationDoc {
        class_uid: CLASS_UID,
        class_name: "Authentication",
        category_uid: CATEGORY_UID,
        category_name: CATEGORY_NAME,
        activity_id: ACTIVITY_ID,
        activity_name: "Logon",
        type_uid: CLASS_UID * 100 + ACTIVITY_ID,
        type_name: "Authentication: Logon",
        severity_id: SEVERITY_ID,
        severity: SEVERITY,
        status_id,
        status: status_name,
        status_detail,
        time: time(event)?,
        metadata: Metadata::new(
            event,
            Stream::SignInAttempts,
            attempt.kind,
            attempt.account_uuid,
        ),
        user: User::new(event, attempt.target_user, None),
        session: Session::new(attempt.session_uuid, None),
        service: Service { name: "1Password" },
        src_endpoint: Endpoint::new(
            event,
            None,
            attempt.client.as_ref().and_then(|c| c.ip_address.clone()),
            attempt.location,
            attempt.country,
            attempt.client,
        ),
        http_request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Detail, Record};
    use crate::format::sample;
    use serde_json::{Value, json};

    fn render(event: &AuditEvent) -> Value {
        let Ok(Detail {
            record: Record::SignInAttempt(attempt),
            ..
        }) = Detail::read(event, Stream::SignInAttempts)
        else {
            panic!("a sign-in attempt")
        };
        serde_json::to_value(super::render(event, attempt).expect("renders")).expect("serializes")
    }

    #[test]
    fn a_failed_sign_in_maps_field_by_field() {
        assert_eq!(
            render(&sample::sign_in_failed()),
            json!({
                "class_uid": 3002,
                "class_name": "Authentication",
                "category_uid": 3,
                "category_name": "Identity & Access Management",
                "activity_id": 1,
                "activity_name": "Logon",
                "type_uid": 300201,
                "type_name": "Authentication: Logon",
                "severity_id": 1,
                "severity": "Informational",
                "status_id": 2,
                "status": "Failure",
                "status_detail": "credentials_failed/password_secret_bad",
                "time": 1_714_564_800_123_i64,
                "metadata": {
                    "version": "1.3.0",
                    "uid": "56YE2TYN2VFYRLNSHKPW5NVT5E",
                    "original_time": "2024-05-01T09:00:00.123-03:00",
                    "log_name": "signinattempts",
                    "event_code": "password_secret_bad",
                    "tenant_uid": "VZSYVT2LGHTBWBQGUJAIZVRABM",
                    "product": {
                        "name": "1Password",
                        "vendor_name": "1Password",
                        "feature": {"name": "Events API"},
                    },
                },
                "user": {
                    "uid": "IR7VJHJ36JHINBFAD7V2T5MP3E",
                    "name": "Zoë \"Z\" Appleseed",
                    "email_addr": "zoe@example.com",
                },
                "session": {"uid": "A5K6COGVRVEJXJW3XQZGS7VAMM"},
                "service": {"name": "1Password"},
                "src_endpoint": {
                    "ip": "192.0.2.10",
                    "location": {
                        "country": "CA",
                        "region": "Ontario",
                        "city": "Toronto",
                        "lat": 43.6532,
                        "long": -79.3832,
                    },
                    "os": {"name": "MacOSX", "type_id": 300, "version": "14.4.1"},
                },
                "http_request": {"user_agent": "1Password Browser Extension/20184"},
            })
        );
    }

    #[test]
    fn a_sparse_success_keeps_only_what_it_has() {
        let doc = render(&sample::sign_in_sparse());
        assert_eq!(doc["status_id"], 1);
        assert_eq!(doc["status"], "Success");
        assert_eq!(doc["status_detail"], "success");
        assert_eq!(doc["type_uid"], 300201);
        assert_eq!(doc["metadata"]["uid"], "5HU2ZWJPLZDXHJQ4EBKZAFGXVA");
        assert_eq!(doc["metadata"]["log_name"], "signinattempts");
        assert_eq!(doc["user"], json!({}));
        for absent in ["session", "src_endpoint", "http_request"] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
        for absent in ["event_code", "tenant_uid"] {
            assert!(doc["metadata"].get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn without_a_category_the_hosts_outcome_decides() {
        let mut event = sample::sign_in_sparse();
        event.outcome = "DENY".into();
        event.detail = Some(r#"{"type":"mfa_bad","country":"DE"}"#.into());
        let doc = render(&event);
        assert_eq!(doc["status_id"], 2);
        assert_eq!(doc["status_detail"], "mfa_bad");
        assert_eq!(doc["src_endpoint"], json!({"location": {"country": "DE"}}));
    }
}
