//! The AWS query-API calls this rotator makes, SigV4-signed: IAM ListAccessKeys, CreateAccessKey,
//! UpdateAccessKey, DeleteAccessKey, and STS GetCallerIdentity; XML answers parsed with
//! `roxmltree`. Errors name the service, action, URL, status and AWS error code.

use std::time::Duration;

use opsync_aws_sigv4::{self as aws, Credentials};
use opsync_rotator_kit::http::{self, Endpoint, encode};
use opsync_rotator_kit::{PluginError, permanent, retryable, with_retry_hint};
use roxmltree::{Document, Node};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const IAM_VERSION: &str = "2010-05-08";
const STS_VERSION: &str = "2011-06-15";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Which query API a client calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Service {
    Iam,
    Sts,
}

impl Service {
    /// The name in the signature's scope.
    fn signing_name(self) -> &'static str {
        match self {
            Self::Iam => "iam",
            Self::Sts => "sts",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Self::Iam => IAM_VERSION,
            Self::Sts => STS_VERSION,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Iam => "IAM",
            Self::Sts => "STS",
        }
    }
}

/// One service endpoint and the credentials to sign with.
pub struct Client {
    service: Service,
    aws: aws::Client,
}

/// An error answer from AWS.
#[derive(Debug, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The answer's `Retry-After`, if any: the hint of a retryable error.
    pub retry_after: Option<Duration>,
}

/// What ListAccessKeys says about one key (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub active: bool,
    /// Unix seconds, when the answer carried a readable `CreateDate`.
    pub created: Option<i64>,
}

/// A key CreateAccessKey made; no `Debug`, the secret must not reach a log line.
pub struct NewKey {
    pub id: String,
    pub secret: String,
}

impl Client {
    /// `service` at `endpoint`, signed for `region` with `credentials`.
    pub fn new(
        service: Service,
        endpoint: Endpoint,
        region: String,
        credentials: Credentials,
    ) -> Self {
        let aws = aws::Client {
            endpoint,
            region,
            service: service.signing_name(),
            credentials,
        };
        Self { service, aws }
    }

    /// Calls `action`; `Ok(Err(..))` is an error answer from the service.
    fn call(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Result<String, AwsError>, PluginError> {
        let payload = form(action, self.service.version(), params).into_bytes();
        let headers = vec![("content-type".to_string(), FORM.to_string())];
        let response = self.aws.post(headers, payload)?;
        let body = String::from_utf8_lossy(&response.body).into_owned();
        if response.is_success() {
            Ok(Ok(body))
        } else {
            let mut error = parse_error(response.status, &body);
            error.retry_after = response.retry_after();
            Ok(Err(error))
        }
    }

    /// `IAM ListAccessKeys (POST http://host/)`, for messages.
    pub fn what(&self, action: &str) -> String {
        format!(
            "{} {action} (POST {}{}/)",
            self.service.label(),
            self.aws.endpoint.origin(),
            self.aws.endpoint.base_path
        )
    }

    /// The user's access keys.
    pub fn list_access_keys(&self, user: &str) -> Result<Vec<KeyInfo>, PluginError> {
        let action = "ListAccessKeys";
        let xml = self
            .call(action, &[("UserName", user)])?
            .map_err(|e| failure(&self.what(action), e))?;
        parse_key_list(&xml).map_err(|why| permanent(format!("{}: {why}", self.what(action))))
    }

    /// A new active key for the user.
    pub fn create_access_key(&self, user: &str) -> Result<NewKey, PluginError> {
        let action = "CreateAccessKey";
        let xml = self
            .call(action, &[("UserName", user)])?
            .map_err(|e| failure(&self.what(action), e))?;
        parse_new_key(&xml).map_err(|why| permanent(format!("{}: {why}", self.what(action))))
    }

    /// Sets a key `Active` or `Inactive`.
    pub fn set_key_status(
        &self,
        user: &str,
        key_id: &str,
        active: bool,
    ) -> Result<(), PluginError> {
        let action = "UpdateAccessKey";
        let status = if active { "Active" } else { "Inactive" };
        self.call(
            action,
            &[
                ("UserName", user),
                ("AccessKeyId", key_id),
                ("Status", status),
            ],
        )?
        .map(drop)
        .map_err(|e| failure(&self.what(action), e))
    }

    /// Deletes a key; one already gone counts as deleted.
    pub fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), PluginError> {
        let action = "DeleteAccessKey";
        match self.call(action, &[("UserName", user), ("AccessKeyId", key_id)])? {
            Ok(_) => Ok(()),
            Err(e) if e.code == "NoSuchEntity" => Ok(()),
            Err(e) => Err(failure(&self.what(action), e)),
        }
    }

    /// The ARN of whoever signed the call (STS GetCallerIdentity); `Ok(Err(..))` is the service
    /// refusing the credentials.
    pub fn caller_arn(&self) -> Result<Result<String, AwsError>, PluginError> {
        let action = "GetCallerIdentity";
        Ok(match self.call(action, &[])? {
            Ok(xml) => Ok(parse_caller_arn(&xml)
                .map_err(|why| permanent(format!("{}: {why}", self.what(action))))?),
            Err(e) => Err(e),
        })
    }
}

/// The form body of a query-API call: `Action`, `Version`, then `params`, percent-encoded.
pub fn form(action: &str, version: &str, params: &[(&str, &str)]) -> String {
    let mut out = format!("Action={}&Version={}", encode(action), encode(version));
    for (name, value) in params {
        out.push('&');
        out.push_str(&encode(name));
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

/// The plugin error for an AWS error answer: throttling is `retryable` whatever its status;
/// otherwise 401/403 (bad credentials, no permission) are `misconfigured`, 5xx `retryable`, the
/// rest `permanent`. A retryable error carries the answer's `Retry-After` as its hint.
pub fn failure(what: &str, e: AwsError) -> PluginError {
    let hint = e.retry_after;
    with_retry_hint(classify(what, e), hint)
}

fn classify(what: &str, e: AwsError) -> PluginError {
    let detail = match (e.code.is_empty(), e.message.is_empty()) {
        (true, _) => e.message.clone(),
        (false, true) => e.code.clone(),
        (false, false) => format!("{}: {}", e.code, e.message),
    };
    if matches!(
        e.code.as_str(),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "ServiceUnavailable"
    ) {
        return retryable(format!("{what}: status {}: {detail}", e.status));
    }
    http::status_error(what, e.status, &detail)
}

fn element<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

fn text_of(node: Node<'_, '_>, name: &str) -> Option<String> {
    element(node, name)
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn document(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| format!("the answer is not XML ({e})"))
}

/// Code and message of an error answer: `<ErrorResponse><Error>` (AWS) or
/// `<ErrorResponse><Errors><Error>` (moto); an unreadable body keeps only the status.
pub fn parse_error(status: u16, body: &str) -> AwsError {
    let (code, message) = match Document::parse(body) {
        Ok(doc) => {
            let root = doc.root();
            let error = element(root, "Error").unwrap_or(root);
            (
                text_of(error, "Code").unwrap_or_default(),
                text_of(error, "Message").unwrap_or_default(),
            )
        }
        Err(_) => (String::new(), String::new()),
    };
    AwsError {
        status,
        code,
        message,
        retry_after: None,
    }
}

/// The keys in a ListAccessKeys answer.
pub fn parse_key_list(xml: &str) -> Result<Vec<KeyInfo>, String> {
    let doc = document(xml)?;
    let list = element(doc.root(), "AccessKeyMetadata")
        .ok_or_else(|| "the answer has no AccessKeyMetadata".to_string())?;
    list.children()
        .filter(|n| n.is_element() && n.tag_name().name() == "member")
        .map(|member| {
            let id = text_of(member, "AccessKeyId")
                .ok_or_else(|| "a listed key has no AccessKeyId".to_string())?;
            let active = match text_of(member, "Status").as_deref() {
                Some("Active") => true,
                Some("Inactive") | Some("Expired") => false,
                other => return Err(format!("a listed key has the status {other:?}")),
            };
            let created = text_of(member, "CreateDate").and_then(|t| unix_time(&t));
            Ok(KeyInfo {
                id,
                active,
                created,
            })
        })
        .collect()
}

/// The key in a CreateAccessKey answer.
pub fn parse_new_key(xml: &str) -> Result<NewKey, String> {
    let doc = document(xml)?;
    let key = element(doc.root(), "AccessKey")
        .ok_or_else(|| "the answer has no AccessKey".to_string())?;
    match (text_of(key, "AccessKeyId"), text_of(key, "SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok(NewKey { id, secret }),
        _ => Err("the answer lacks the key id or its secret".to_string()),
    }
}

/// The ARN in a GetCallerIdentity answer.
pub fn parse_caller_arn(xml: &str) -> Result<String, String> {
    let doc = document(xml)?;
    text_of(doc.root(), "Arn").ok_or_else(|| "the answer has no Arn".to_string())
}

/// Unix seconds of an RFC 3339 time (`2026-11-26T08:10:07.506640Z`).
pub fn unix_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_percent_encoded() {
        assert_eq!(
            form("ListAccessKeys", IAM_VERSION, &[("UserName", "app+ci@x.y")]),
            "Action=ListAccessKeys&Version=2010-05-08&UserName=app%2Bci%40x.y"
        );
        assert_eq!(
            form("GetCallerIdentity", STS_VERSION, &[]),
            "Action=GetCallerIdentity&Version=2011-06-15"
        );
    }

    #[test]
    fn key_lists_parse() {
        let xml = r#"<ListAccessKeysResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListAccessKeysResult><AccessKeyMetadata><member><UserName>app</UserName><AccessKeyId>AKIA1</AccessKeyId><Status>Active</Status><CreateDate>2026-11-26T08:10:07.506640Z</CreateDate></member><member><UserName>app</UserName><AccessKeyId>AKIA2</AccessKeyId><Status>Inactive</Status><CreateDate>2015-03-09T18:39:23Z</CreateDate></member></AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListAccessKeysResponse>"#;
        let keys = parse_key_list(xml).expect("parses");
        assert_eq!(
            keys,
            vec![
                KeyInfo {
                    id: "AKIA1".into(),
                    active: true,
                    created: Some(1_795_680_607),
                },
                KeyInfo {
                    id: "AKIA2".into(),
                    active: false,
                    created: Some(1_425_926_363),
                },
            ]
        );
        let empty = "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata/></ListAccessKeysResult></ListAccessKeysResponse>";
        assert_eq!(parse_key_list(empty).expect("parses"), Vec::new());
        assert!(parse_key_list("<x/>").is_err());
        assert!(parse_key_list("not xml").is_err());
    }

    #[test]
    fn new_keys_and_identities_parse() {
        let xml = "<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>app</UserName><AccessKeyId>AKIA3</AccessKeyId><Status>Active</Status><SecretAccessKey>s3cr3t/+x</SecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>";
        let key = parse_new_key(xml).expect("parses");
        assert_eq!(
            (key.id.as_str(), key.secret.as_str()),
            ("AKIA3", "s3cr3t/+x")
        );
        let lacking = parse_new_key("<AccessKey><AccessKeyId>AKIA3</AccessKeyId></AccessKey>")
            .err()
            .expect("no secret");
        assert!(!lacking.contains("AKIA3"), "{lacking}");
        let who = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><UserId>AIDA</UserId><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/ci/app</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>";
        assert_eq!(
            parse_caller_arn(who).expect("parses"),
            "arn:aws:iam::123456789012:user/ci/app"
        );
    }

    #[test]
    fn errors_parse_in_both_shapes_and_map_to_kinds() {
        let moto = r#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"#;
        let e = parse_error(403, moto);
        assert_eq!(e.code, "InvalidClientTokenId");
        let aws = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name x cannot be found.</Message></Error><RequestId>r</RequestId></ErrorResponse>";
        let e = parse_error(404, aws);
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("NoSuchEntity", "The user with name x cannot be found.")
        );
        assert!(matches!(
            failure("IAM ListAccessKeys (POST http://h/)", e),
            PluginError::Permanent(m)
                if m == "IAM ListAccessKeys (POST http://h/): status 404: NoSuchEntity: The user with name x cannot be found."
        ));
        assert!(matches!(
            failure("x", parse_error(403, moto)),
            PluginError::Misconfigured(_)
        ));
        let throttled = AwsError {
            status: 400,
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(matches!(
            failure("x", throttled),
            PluginError::Retryable(opsync_rotator_kit::Retry {
                after_ms: Some(2000),
                ..
            })
        ));
        let garbage = parse_error(502, "<html>bad gateway");
        assert_eq!(garbage.code, "");
        assert!(
            matches!(failure("x", garbage), PluginError::Retryable(r) if r.message == "x: status 502" && r.after_ms.is_none())
        );
    }
}
