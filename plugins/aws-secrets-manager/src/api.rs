//! The Secrets Manager JSON API calls this plugin makes (DescribeSecret, CreateSecret,
//! PutSecretValue, GetSecretValue, TagResource, RestoreSecret, DeleteSecret), each SigV4-signed.

use std::time::Duration;

use opsync_aws_sigv4::{Client, Credentials};
use opsync_destination_kit::http::{self, Endpoint, Response};
use opsync_destination_kit::{PluginError, misconfigured, permanent, retryable, with_retry_hint};
use serde_json::{Value, json};

const SERVICE: &str = "secretsmanager";

/// One region's Secrets Manager endpoint and the credentials to call it.
pub struct SecretsManager(Client);

/// An error answer: the exception name (without its namespace) and message.
pub struct AwsError {
    pub status: u16,
    pub kind: String,
    pub message: String,
    /// The answer's `Retry-After`, if any: the hint of a retryable error.
    pub retry_after: Option<Duration>,
}

/// What DescribeSecret tells about a secret.
pub struct Description {
    pub arn: String,
    pub tags: Vec<(String, String)>,
    /// Scheduled for deletion.
    pub deleted: bool,
    pub version_ids: Vec<String>,
}

impl Description {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl SecretsManager {
    /// The endpoint of `region`, signed for with `credentials`.
    pub fn new(endpoint: Endpoint, region: String, credentials: Credentials) -> Self {
        Self(Client {
            endpoint,
            region,
            service: SERVICE,
            credentials,
        })
    }

    /// Calls `action` with `body`; `Ok(Err(..))` is an error answer from the service.
    fn call(&self, action: &str, body: &Value) -> Result<Result<Value, AwsError>, PluginError> {
        let payload = http::encode_json(body)?;
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                format!("secretsmanager.{action}"),
            ),
        ];
        let response = self.0.post(headers, payload)?;
        Ok(parse(response))
    }

    /// The secret called `name`; none if it does not exist.
    pub fn describe(&self, name: &str) -> Result<Option<Description>, PluginError> {
        match self.call("DescribeSecret", &json!({ "SecretId": name }))? {
            Ok(v) => Ok(Some(Description {
                arn: v["ARN"].as_str().unwrap_or(name).to_string(),
                tags: v["Tags"]
                    .as_array()
                    .map(|tags| {
                        tags.iter()
                            .filter_map(|t| {
                                Some((
                                    t["Key"].as_str()?.to_string(),
                                    t["Value"].as_str()?.to_string(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                deleted: !v["DeletedDate"].is_null(),
                version_ids: v["VersionIdsToStages"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            })),
            Err(e) if e.kind == "ResourceNotFoundException" => Ok(None),
            Err(e) => Err(failure("describe", name, e)),
        }
    }

    /// Creates the secret with its first version; returns (ARN, version id).
    pub fn create(
        &self,
        name: &str,
        value: &str,
        token: &str,
        tags: &[(String, String)],
        kms_key_id: Option<&str>,
        description: &str,
    ) -> Result<(String, String), PluginError> {
        let mut body = json!({
            "Name": name,
            "SecretString": value,
            "ClientRequestToken": token,
            "Description": description,
            "Tags": tag_list(tags),
        });
        if let (Some(key), Value::Object(map)) = (kms_key_id, &mut body) {
            map.insert("KmsKeyId".into(), Value::String(key.to_string()));
        }
        match self.call("CreateSecret", &body)? {
            Ok(v) => Ok(arn_and_version(&v, name, token)),
            Err(e) if e.kind == "ResourceExistsException" => Err(retryable(format!(
                "{name} was created by someone else meanwhile; will look again"
            ))),
            Err(e) => Err(failure("create", name, e)),
        }
    }

    /// The current value (`AWSCURRENT`) of the secret `name` as stored: its `SecretString`, else
    /// its `SecretBinary` (as the base64 text AWS answers). None when there is no such secret,
    /// no current value, or the secret is scheduled for deletion.
    pub fn current_value(&self, name: &str) -> Result<Option<Vec<u8>>, PluginError> {
        match self.call("GetSecretValue", &json!({ "SecretId": name }))? {
            Ok(v) => Ok(v["SecretString"]
                .as_str()
                .or_else(|| v["SecretBinary"].as_str())
                .map(|value| value.as_bytes().to_vec())),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(failure("read the value of", name, e)),
        }
    }

    /// Puts a new version; a replay with the same token and value is a no-op at AWS.
    pub fn put(&self, arn: &str, value: &str, token: &str) -> Result<String, PluginError> {
        let body = json!({ "SecretId": arn, "SecretString": value, "ClientRequestToken": token });
        match self.call("PutSecretValue", &body)? {
            Ok(v) => Ok(arn_and_version(&v, arn, token).1),
            Err(e) => Err(failure("put a value into", arn, e)),
        }
    }

    pub fn tag(&self, arn: &str, tags: &[(String, String)]) -> Result<(), PluginError> {
        let body = json!({ "SecretId": arn, "Tags": tag_list(tags) });
        self.call("TagResource", &body)?
            .map(|_| ())
            .map_err(|e| failure("tag", arn, e))
    }

    pub fn restore(&self, arn: &str) -> Result<(), PluginError> {
        self.call("RestoreSecret", &json!({ "SecretId": arn }))?
            .map(|_| ())
            .map_err(|e| failure("restore", arn, e))
    }

    /// Deletes the secret after `recovery_days`, or at once when `None`.
    pub fn delete(&self, arn: &str, recovery_days: Option<u32>) -> Result<(), PluginError> {
        let body = match recovery_days {
            Some(days) => json!({ "SecretId": arn, "RecoveryWindowInDays": days }),
            None => json!({ "SecretId": arn, "ForceDeleteWithoutRecovery": true }),
        };
        match self.call("DeleteSecret", &body)? {
            Ok(_) => Ok(()),
            Err(e) if e.kind == "ResourceNotFoundException" => Ok(()),
            Err(e) => Err(failure("delete", arn, e)),
        }
    }
}

/// Whether an error answer to GetSecretValue means there is no value to read: no such secret
/// (or no current version), or a secret scheduled for deletion (`InvalidRequestException`:
/// "... because it was marked for deletion").
pub fn is_absent(e: &AwsError) -> bool {
    e.kind == "ResourceNotFoundException"
        || (e.kind == "InvalidRequestException" && e.message.to_lowercase().contains("delet"))
}

fn tag_list(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

fn arn_and_version(v: &Value, fallback_arn: &str, token: &str) -> (String, String) {
    (
        v["ARN"].as_str().unwrap_or(fallback_arn).to_string(),
        v["VersionId"].as_str().unwrap_or(token).to_string(),
    )
}

fn parse(response: Response) -> Result<Value, AwsError> {
    let json = response.json();
    if response.is_success() {
        return Ok(json.unwrap_or(Value::Null));
    }
    let retry_after = response.retry_after();
    let json = json.unwrap_or(Value::Null);
    let kind = json["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        .or_else(|| response.header("x-amzn-errortype"))
        .or_else(|| xml_code(&response.body))
        .map(|t| t.split(':').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let message = json["message"]
        .as_str()
        .or_else(|| json["Message"].as_str())
        .unwrap_or_default()
        .to_string();
    Err(AwsError {
        status: response.status,
        kind,
        message,
        retry_after,
    })
}

/// The `<Code>` of an XML error answer (what signature failures come as on some endpoints).
fn xml_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(text[start..start + len].to_string())
}

/// Maps an error answer to a plugin error: credential and permission problems are
/// `misconfigured`, throttling and service faults `retryable` (after the answer's `Retry-After`
/// when it has one), the rest `permanent`.
fn failure(action: &str, name: &str, e: AwsError) -> PluginError {
    let hint = e.retry_after;
    with_retry_hint(classify(action, name, e), hint)
}

fn classify(action: &str, name: &str, e: AwsError) -> PluginError {
    let msg: String = format!(
        "cannot {action} {name}: {} {}: {}",
        e.status, e.kind, e.message
    )
    .chars()
    .take(500)
    .collect();
    match e.kind.as_str() {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "AccessDeniedException"
        | "AccessDenied" => misconfigured(msg),
        "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestTimeout"
        | "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable" => retryable(msg),
        _ if e.status >= 500 || e.status == 429 => retryable(msg),
        _ if e.status == 401 || e.status == 403 => misconfigured(msg),
        _ => permanent(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, retry_after: Option<&str>) -> AwsError {
        let headers = retry_after
            .map(|v| vec![("retry-after".to_string(), v.as_bytes().to_vec())])
            .unwrap_or_default();
        match parse(Response {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }) {
            Err(e) => e,
            Ok(_) => panic!("an error answer"),
        }
    }

    #[test]
    fn missing_and_deleted_secrets_read_as_absent() {
        let missing = answer(
            400,
            r#"{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}"#,
            None,
        );
        assert!(is_absent(&missing));
        let deleted = answer(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#InvalidRequestException","Message":"You can't perform this operation on the secret because it was marked for deletion."}"#,
            None,
        );
        assert!(is_absent(&deleted));
        let moto = answer(
            400,
            r#"{"__type":"InvalidRequestException","message":"An error occurred (InvalidRequestException) when calling the GetSecretValue operation: You tried to perform the operation on a secret that's currently marked deleted."}"#,
            None,
        );
        assert!(is_absent(&moto));
        let other = answer(
            400,
            r#"{"__type":"InvalidRequestException","Message":"The parameter is not valid."}"#,
            None,
        );
        assert!(!is_absent(&other));
        assert!(matches!(
            failure("read the value of", "x", other),
            PluginError::Permanent(_)
        ));
    }

    #[test]
    fn throttling_passes_on_retry_after() {
        let throttled = answer(
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            Some("3"),
        );
        assert!(matches!(
            failure("put a value into", "x", throttled),
            PluginError::Retryable(opsync_destination_kit::Retry {
                after_ms: Some(3000),
                ..
            })
        ));
        let unavailable = answer(503, "", None);
        assert!(matches!(
            failure("describe", "x", unavailable),
            PluginError::Retryable(opsync_destination_kit::Retry { after_ms: None, .. })
        ));
    }
}
