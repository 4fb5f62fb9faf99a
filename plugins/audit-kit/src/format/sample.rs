//! Audit records as the host hands them to a sink, for the formats' tests.
//!
//! Connect activity, opsync's own events, and a record of each Events API stream: whole, and with
//! most optional fields missing.

use crate::{AuditActor, AuditEvent, AuditResource};

fn actor(id: &str, account: &str, user_agent: &str, request_ip: &str) -> AuditActor {
    AuditActor {
        id: id.into(),
        account: account.into(),
        jti: String::new(),
        user_agent: user_agent.into(),
        request_ip: request_ip.into(),
    }
}

const ACCOUNT: &str = "VZSYVT2LGHTBWBQGUJAIZVRABM";

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
        source: "activity".into(),
        detail: None,
    }
}

/// One of the daemon's own records: an action Connect never sends, no target, no IP.
pub fn daemon_event() -> AuditEvent {
    AuditEvent {
        request_id: "opsync-deliver-17".into(),
        timestamp: "2024-05-01T12:00:01Z".into(),
        action: "DEAD_LETTER".into(),
        outcome: "SUCCESS".into(),
        actor: actor("opsync", "", "", ""),
        target: None,
        source: "activity".into(),
        detail: None,
    }
}

/// The `detail` of [`sign_in_failed`]: compact, with escapes in the user's name.
pub const SIGN_IN_FAILED: &str = r#"{"uuid":"56YE2TYN2VFYRLNSHKPW5NVT5E","session_uuid":"A5K6COGVRVEJXJW3XQZGS7VAMM","timestamp":"2024-05-01T09:00:00.123-03:00","category":"credentials_failed","type":"password_secret_bad","country":"CA","details":null,"target_user":{"uuid":"IR7VJHJ36JHINBFAD7V2T5MP3E","name":"Zo\u00eb \"Z\" Appleseed","email":"zoe@example.com","user_type":"user"},"client":{"app_name":"1Password Browser Extension","app_version":"20184","platform_name":"Chrome","platform_version":"124.0.6367.91","os_name":"MacOSX","os_version":"14.4.1","ip_address":"192.0.2.10"},"location":{"country":"CA","region":"Ontario","city":"Toronto","latitude":43.6532,"longitude":-79.3832},"account_uuid":"VZSYVT2LGHTBWBQGUJAIZVRABM"}"#;

/// A sign-in attempt with a wrong password: every field there.
pub fn sign_in_failed() -> AuditEvent {
    AuditEvent {
        request_id: "56YE2TYN2VFYRLNSHKPW5NVT5E".into(),
        timestamp: "2024-05-01T09:00:00.123-03:00".into(),
        action: "signin".into(),
        outcome: "DENY".into(),
        actor: actor(
            "IR7VJHJ36JHINBFAD7V2T5MP3E",
            ACCOUNT,
            "1Password Browser Extension/20184",
            "192.0.2.10",
        ),
        target: None,
        source: "signinattempts".into(),
        detail: Some(SIGN_IN_FAILED.into()),
    }
}

/// A successful sign-in attempt with most optional fields absent or null.
pub fn sign_in_sparse() -> AuditEvent {
    AuditEvent {
        request_id: "5HU2ZWJPLZDXHJQ4EBKZAFGXVA".into(),
        timestamp: "2024-05-01T12:00:05Z".into(),
        action: "signin".into(),
        outcome: "SUCCESS".into(),
        actor: actor("", "", "", ""),
        target: None,
        source: "signinattempts".into(),
        detail: Some(
            r#"{"uuid":"5HU2ZWJPLZDXHJQ4EBKZAFGXVA","timestamp":"2024-05-01T12:00:05Z","category":"success","type":null,"details":null,"target_user":null,"client":null,"location":null}"#
                .into(),
        ),
    }
}

/// The `detail` of [`item_usage`]: spaced, as a pretty-printing peer might send it.
pub const ITEM_USAGE: &str = r#"{"uuid": "MCQODWN6NJC5VLCQIRWQTZXF4Q", "timestamp": "2024-05-01T12:00:00.123Z", "used_version": 3, "vault_uuid": "jaqxqf5qylslqiitnduawrndc5", "item_uuid": "fdalkrf4myfn3z4a3oasavexam", "action": "reveal", "user": {"uuid": "IR7VJHJ36JHINBFAD7V2T5MP3E", "name": "Wendy Appleseed", "email": "wendy@example.com", "user_type": "user"}, "client": {"app_name": "1Password for Mac", "app_version": "81043004", "platform_name": "Mac", "platform_version": "14.4.1", "os_name": "MacOSX", "os_version": "14.4.1", "ip_address": "198.51.100.23"}, "location": {"country": "US", "region": "California", "city": "San Francisco", "latitude": 37.7749, "longitude": -122.4194}, "account_uuid": "VZSYVT2LGHTBWBQGUJAIZVRABM"}"#;

/// An item's password revealed: every field there.
pub fn item_usage() -> AuditEvent {
    AuditEvent {
        request_id: "MCQODWN6NJC5VLCQIRWQTZXF4Q".into(),
        timestamp: "2024-05-01T12:00:00.123Z".into(),
        action: "reveal".into(),
        outcome: "SUCCESS".into(),
        actor: actor(
            "IR7VJHJ36JHINBFAD7V2T5MP3E",
            ACCOUNT,
            "1Password for Mac/81043004",
            "198.51.100.23",
        ),
        target: Some(AuditResource {
            kind: "item".into(),
            vault_id: Some("jaqxqf5qylslqiitnduawrndc5".into()),
            item_id: Some("fdalkrf4myfn3z4a3oasavexam".into()),
            item_version: Some(3),
        }),
        source: "itemusages".into(),
        detail: Some(ITEM_USAGE.into()),
    }
}

/// An item copied, with most optional fields absent, null or empty.
pub fn item_usage_sparse() -> AuditEvent {
    AuditEvent {
        request_id: "Q5VZUX2SHBFCTPCOFIG3DPRRIE".into(),
        timestamp: "2024-05-01T12:00:10Z".into(),
        action: "secure-copy".into(),
        outcome: "SUCCESS".into(),
        actor: actor("", "", "", ""),
        target: Some(AuditResource {
            kind: "item".into(),
            vault_id: None,
            item_id: Some("fdalkrf4myfn3z4a3oasavexam".into()),
            item_version: None,
        }),
        source: "itemusages".into(),
        detail: Some(
            r#"{"uuid":"Q5VZUX2SHBFCTPCOFIG3DPRRIE","timestamp":"2024-05-01T12:00:10Z","action":"secure-copy","item_uuid":"fdalkrf4myfn3z4a3oasavexam","vault_uuid":"","client":{},"user":null}"#
                .into(),
        ),
    }
}

/// The `detail` of [`audit_event`].
pub const AUDIT_EVENT: &str = r#"{"uuid":"3Z5ZEF4NFBC4BHNKFHMCFZPM6U","timestamp":"2024-05-01T12:00:00.123Z","actor_uuid":"FAKXLLFHFZEBVP5D6OBBY6NFQE","actor_details":{"uuid":"FAKXLLFHFZEBVP5D6OBBY6NFQE","name":"Admin Appleseed","email":"admin@example.com"},"action":"suspend","object_type":"user","object_uuid":"IR7VJHJ36JHINBFAD7V2T5MP3E","object_details":{"uuid":"IR7VJHJ36JHINBFAD7V2T5MP3E","name":"Wendy Appleseed","email":"wendy@example.com"},"aux_id":9,"aux_uuid":"K7C4BWTUBVHHBKXAXSYJPOIVBA","aux_details":{"uuid":"K7C4BWTUBVHHBKXAXSYJPOIVBA","name":"Owners","email":""},"aux_info":"","session":{"uuid":"ODOHXUYQCJBUJKRGZNNPBJURPE","login_time":"2024-05-01T11:58:01.5Z","device_uuid":"rqtd557fn2husnstp5nc66w2xa","ip":"203.0.113.5"},"location":{"country":"CA","region":"Ontario","city":"Toronto","latitude":43.6532,"longitude":-79.3832},"actor_type":"user","actor_account_uuid":"VZSYVT2LGHTBWBQGUJAIZVRABM","account_uuid":"VZSYVT2LGHTBWBQGUJAIZVRABM"}"#;

/// An administrator suspending a user: every field there.
pub fn audit_event() -> AuditEvent {
    AuditEvent {
        request_id: "3Z5ZEF4NFBC4BHNKFHMCFZPM6U".into(),
        timestamp: "2024-05-01T12:00:00.123Z".into(),
        action: "suspend".into(),
        outcome: "SUCCESS".into(),
        actor: actor("FAKXLLFHFZEBVP5D6OBBY6NFQE", ACCOUNT, "", "203.0.113.5"),
        target: Some(AuditResource {
            kind: "user".into(),
            vault_id: None,
            item_id: None,
            item_version: None,
        }),
        source: "auditevents".into(),
        detail: Some(AUDIT_EVENT.into()),
    }
}

/// A vault created, with most optional fields absent or null.
pub fn audit_event_sparse() -> AuditEvent {
    AuditEvent {
        request_id: "WQJ5QHXJWZGBLL7OQBOKQ6AP6U".into(),
        timestamp: "2024-05-01T12:00:20Z".into(),
        action: "create".into(),
        outcome: "SUCCESS".into(),
        actor: actor("FAKXLLFHFZEBVP5D6OBBY6NFQE", "", "", ""),
        target: Some(AuditResource {
            kind: "vault".into(),
            vault_id: None,
            item_id: None,
            item_version: None,
        }),
        source: "auditevents".into(),
        detail: Some(
            r#"{"uuid":"WQJ5QHXJWZGBLL7OQBOKQ6AP6U","timestamp":"2024-05-01T12:00:20Z","actor_uuid":"FAKXLLFHFZEBVP5D6OBBY6NFQE","action":"create","object_type":"vault","actor_details":null,"session":null,"location":null}"#
                .into(),
        ),
    }
}
