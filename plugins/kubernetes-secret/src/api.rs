//! The Kubernetes API calls: read, apply, merge-patch and delete a Secret, restart a workload,
//! and the API's `Status` answers turned into plugin errors (never with the token or a value).

use opsync_destination_kit::http::{self, Endpoint, Request, Response, encode};
use opsync_destination_kit::{PluginError, permanent, retryable};
use serde_json::{Map, Value, json};

use crate::names::Workload;

/// The field manager of every write, so server-side apply tracks what opsync owns.
pub const FIELD_MANAGER: &str = "opsync";

const APPLY: &str = "application/apply-patch+yaml";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
const JSON: &str = "application/json";

/// The longest part of an API `Status` message kept in an error.
const DETAIL_MAX: usize = 300;

/// Where and how to reach the API server, for one namespace.
pub struct Api {
    pub server: Endpoint,
    /// Read once per call; never logged (the struct has no `Debug`).
    pub token: String,
    pub namespace: String,
}

/// What this plugin reads of a Secret.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stored {
    pub resource_version: Option<String>,
    pub labels: Map<String, Value>,
    pub annotations: Map<String, Value>,
    /// `Opaque` when the answer has none (the API's default).
    pub secret_type: String,
    /// Key to base64 value; empty when the answer has none (the API leaves out an empty map).
    pub data: Map<String, Value>,
}

impl Stored {
    pub fn from_json(secret: &Value) -> Self {
        let meta = &secret["metadata"];
        let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
        Self {
            resource_version: meta["resourceVersion"].as_str().map(String::from),
            labels: object(&meta["labels"]),
            annotations: object(&meta["annotations"]),
            secret_type: secret["type"].as_str().unwrap_or("Opaque").to_string(),
            data: object(&secret["data"]),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).and_then(Value::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).and_then(Value::as_str)
    }
}

impl Api {
    /// `NAMESPACE/NAME`, for receipts and messages.
    pub fn location(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    fn secret_path(&self, name: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/secrets/{}",
            encode(&self.namespace),
            encode(name)
        )
    }

    /// The Secret; none when there is none of that name.
    pub fn get(&self, name: &str) -> Result<Option<Stored>, PluginError> {
        let path = self.secret_path(name);
        let response = self.call("GET", &path, None, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let what = format!("cannot read Secret {}", self.location(name));
        let body = success("GET", &path, &what, response)?;
        Ok(Some(Stored::from_json(&body)))
    }

    /// Server-side apply of `secret` (a whole Secret object); `force` takes over fields other
    /// managers own. Returns the Secret as stored.
    pub fn apply(&self, name: &str, secret: &Value, force: bool) -> Result<Stored, PluginError> {
        let path = self.secret_path(name);
        let query = if force {
            format!("?fieldManager={FIELD_MANAGER}&force=true")
        } else {
            format!("?fieldManager={FIELD_MANAGER}")
        };
        let response = self.call(
            "PATCH",
            &format!("{path}{query}"),
            Some(APPLY),
            Some(secret),
        )?;
        let what = format!("cannot apply Secret {}", self.location(name));
        if response.status == 409 {
            let body = response.json().unwrap_or(Value::Null);
            let conflicts = conflicts(&body);
            if !conflicts.is_empty() {
                return Err(permanent(conflict_message(&what, &conflicts)));
            }
            // Not a field conflict: the object changed while it was applied.
            return Err(retryable(format!(
                "{what}: PATCH {path}: status 409: {}",
                status_message(&response)
            )));
        }
        let body = success("PATCH", &path, &what, response)?;
        Ok(Stored::from_json(&body))
    }

    /// A JSON merge patch of the Secret (its metadata), as an update by opsync's field manager.
    /// Returns the Secret as stored.
    pub fn merge_patch(&self, name: &str, patch: &Value) -> Result<Stored, PluginError> {
        let path = self.secret_path(name);
        let query = format!("?fieldManager={FIELD_MANAGER}");
        let response = self.call(
            "PATCH",
            &format!("{path}{query}"),
            Some(MERGE_PATCH),
            Some(patch),
        )?;
        let what = format!("cannot annotate Secret {}", self.location(name));
        let body = success("PATCH", &path, &what, response)?;
        Ok(Stored::from_json(&body))
    }

    /// Deletes the Secret if it still is at `resource_version` (the one just read). False when
    /// it was already gone.
    pub fn delete(&self, name: &str, resource_version: Option<&str>) -> Result<bool, PluginError> {
        let path = self.secret_path(name);
        let options = match resource_version {
            Some(rv) => json!({ "preconditions": { "resourceVersion": rv } }),
            None => json!({}),
        };
        let response = self.call("DELETE", &path, Some(JSON), Some(&options))?;
        let what = format!("cannot delete Secret {}", self.location(name));
        match response.status {
            404 => Ok(false),
            // The precondition failed: it changed since it was read; the next attempt reads it
            // again (and checks again whose it is).
            409 => Err(retryable(format!(
                "{what}: DELETE {path}: status 409: {}",
                status_message(&response)
            ))),
            _ => success("DELETE", &path, &what, response).map(|_| true),
        }
    }

    /// What `kubectl rollout restart` does: stamps the pod template with
    /// `kubectl.kubernetes.io/restartedAt` = `at`, which rolls the workload's pods.
    pub fn restart(&self, workload: &Workload, at: &str) -> Result<(), PluginError> {
        let path = format!(
            "/apis/apps/v1/namespaces/{}/{}/{}",
            encode(&self.namespace),
            workload.kind.resource(),
            encode(&workload.name)
        );
        let patch = restart_patch(at);
        let response = self.call(
            "PATCH",
            &format!("{path}?fieldManager={FIELD_MANAGER}"),
            Some(STRATEGIC_MERGE_PATCH),
            Some(&patch),
        )?;
        let what = format!("cannot restart {workload} in namespace {}", self.namespace);
        if response.status == 404 {
            return Err(permanent(format!(
                "{what}: PATCH {path}: status 404: it does not exist ({})",
                status_message(&response)
            )));
        }
        success("PATCH", &path, &what, response).map(|_| ())
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Response, PluginError> {
        let mut headers = vec![
            (
                "authorization".to_string(),
                format!("Bearer {}", self.token),
            ),
            ("accept".to_string(), JSON.to_string()),
            ("user-agent".to_string(), "opsync".to_string()),
        ];
        let body = http::json_body(&mut headers, content_type.unwrap_or(JSON), body)?;
        http::send(Request {
            method,
            endpoint: &self.server,
            path: path.to_string(),
            headers,
            body,
        })
    }
}

/// The strategic merge patch of a restart.
pub fn restart_patch(at: &str) -> Value {
    json!({
        "spec": { "template": { "metadata": { "annotations": {
            "kubectl.kubernetes.io/restartedAt": at,
        } } } }
    })
}

/// The JSON body of a 2xx answer, or the error for its status. `what` says what failed; the
/// error names the method, the path (without its query) and the API's `Status` message.
fn success(method: &str, path: &str, what: &str, response: Response) -> Result<Value, PluginError> {
    if !response.is_success() {
        return Err(status_error(method, path, what, &response));
    }
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    response
        .json()
        .ok_or_else(|| permanent(format!("{what}: {method} {path}: the answer is not JSON")))
}

/// The error for a non-2xx answer, by the kit's mapping: 401 and 403 are `misconfigured` (the
/// route pauses and retries: a rotated token or a fixed Role lets it go on, nothing is
/// dead-lettered), 429 and 5xx retryable with the `Retry-After` hint, other 4xx permanent.
pub fn status_error(method: &str, path: &str, what: &str, response: &Response) -> PluginError {
    let what = format!("{what}: {method} {path}");
    let mut detail: String = status_message(response).chars().take(DETAIL_MAX).collect();
    let hint = match response.status {
        401 => Some("the token was refused (expired, or not a token of this cluster)"),
        403 => Some("the token's RBAC role does not allow it"),
        _ => None,
    };
    if let Some(hint) = hint {
        detail = match detail.is_empty() {
            true => hint.to_string(),
            false => format!("{detail} ({hint})"),
        };
    }
    response.error(&what, &detail)
}

/// The `message` of an API `Status` answer (names objects, fields and RBAC rules, never data
/// values); empty when the body is not one.
pub fn status_message(response: &Response) -> String {
    response
        .json()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_default()
}

/// The field-manager conflicts of a 409 `Status` answer to an apply: (field, manager) pairs from
/// its `details.causes` of reason `FieldManagerConflict`.
pub fn conflicts(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .map(|causes| {
            causes
                .iter()
                .filter(|c| c["reason"] == "FieldManagerConflict")
                .map(|c| {
                    let field = c["field"].as_str().unwrap_or("?").to_string();
                    let message = c["message"].as_str().unwrap_or_default();
                    (field, manager_of(message))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The manager a conflict cause names: `conflict with "kubectl-edit" using v1` gives
/// `kubectl-edit`, and a subresource is kept (`kubectl (subresource scale)`); the whole message
/// when it has another form.
fn manager_of(message: &str) -> String {
    let quoted = |s: &str| -> Option<(String, usize)> {
        let start = s.find('"')? + 1;
        let len = s[start..].find('"')?;
        Some((s[start..start + len].to_string(), start + len + 1))
    };
    let Some(rest) = message.strip_prefix("conflict with ") else {
        return message.to_string();
    };
    let Some((manager, end)) = quoted(rest) else {
        return message.to_string();
    };
    match rest[end..]
        .strip_prefix(" with subresource ")
        .and_then(quoted)
    {
        Some((sub, _)) => format!("{manager} (subresource {sub})"),
        None => manager,
    }
}

/// The error message of a field-manager conflict: the fields, who manages them, and the way out.
pub fn conflict_message(what: &str, conflicts: &[(String, String)]) -> String {
    let list: Vec<String> = conflicts
        .iter()
        .map(|(field, manager)| format!("{field} (managed by {manager})"))
        .collect();
    format!(
        "{what}: other field managers own fields opsync would change: {}; set `force = true` to \
         take them over",
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str, retry_after: Option<&str>) -> Response {
        Response {
            status,
            headers: retry_after
                .map(|v| vec![("Retry-After".to_string(), v.as_bytes().to_vec())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn conflicts_name_the_fields_and_their_managers() {
        let status: Value = serde_json::from_str(
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure",
                "message":"Apply failed with 2 conflicts: ...","reason":"Conflict","code":409,
                "details":{"causes":[
                  {"reason":"FieldManagerConflict","message":"conflict with \"kubectl-client-side-apply\" using v1","field":".data.password"},
                  {"reason":"FieldManagerConflict","message":"conflict with \"kubectl\" with subresource \"status\" using v1","field":".metadata.labels.team"},
                  {"reason":"FieldValueInvalid","message":"other","field":".x"},
                  {"reason":"FieldManagerConflict","message":"something else","field":".type"}
                ]}}"#,
        )
        .expect("json");
        let found = conflicts(&status);
        assert_eq!(
            found,
            vec![
                (
                    ".data.password".to_string(),
                    "kubectl-client-side-apply".to_string()
                ),
                (
                    ".metadata.labels.team".to_string(),
                    "kubectl (subresource status)".to_string()
                ),
                (".type".to_string(), "something else".to_string()),
            ]
        );
        let msg = conflict_message("cannot apply Secret prod/db", &found[..1]);
        assert_eq!(
            msg,
            "cannot apply Secret prod/db: other field managers own fields opsync would change: \
             .data.password (managed by kubectl-client-side-apply); set `force = true` to take \
             them over"
        );
        assert!(conflicts(&json!({"message": "Operation cannot be fulfilled"})).is_empty());
        assert!(conflicts(&Value::Null).is_empty());
    }

    #[test]
    fn statuses_name_method_path_and_the_api_message() {
        let forbidden = response(
            403,
            r#"{"kind":"Status","message":"secrets \"db\" is forbidden: User \"system:serviceaccount:ops:opsync\" cannot patch resource \"secrets\" in the namespace \"prod\"","reason":"Forbidden","code":403}"#,
            None,
        );
        let err = status_error(
            "PATCH",
            "/api/v1/namespaces/prod/secrets/db",
            "cannot apply Secret prod/db",
            &forbidden,
        );
        let PluginError::Misconfigured(msg) = err else {
            panic!("403 is misconfigured: {err:?}")
        };
        assert!(msg.starts_with(
            "cannot apply Secret prod/db: PATCH /api/v1/namespaces/prod/secrets/db: status 403: secrets \"db\" is forbidden"
        ));
        assert!(msg.contains("RBAC"));
        assert!(matches!(
            status_error("GET", "/p", "x", &response(401, "", None)),
            PluginError::Misconfigured(m) if m == "x: GET /p: status 401: the token was refused (expired, or not a token of this cluster)"
        ));
        assert!(matches!(
            status_error("GET", "/p", "x", &response(429, "{}", Some("3"))),
            PluginError::Retryable(opsync_destination_kit::Retry {
                after_ms: Some(3000),
                ..
            })
        ));
        assert!(matches!(
            status_error("GET", "/p", "x", &response(503, "oops", None)),
            PluginError::Retryable(opsync_destination_kit::Retry { message, after_ms: None })
                if message == "x: GET /p: status 503"
        ));
        let invalid = response(
            422,
            r#"{"kind":"Status","message":"Secret \"db\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable","reason":"Invalid","code":422}"#,
            None,
        );
        assert!(matches!(
            status_error("PATCH", "/p", "x", &invalid),
            PluginError::Permanent(m) if m.ends_with("status 422: Secret \"db\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable")
        ));
    }

    #[test]
    fn secrets_are_read_with_the_apis_defaults() {
        let stored = Stored::from_json(&json!({
            "metadata": {
                "name": "db", "resourceVersion": "42",
                "labels": {"app.kubernetes.io/managed-by": "opsync"},
                "annotations": {"opsync.io/item-id": "itm1"},
            },
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "YQ=="},
        }));
        assert_eq!(stored.resource_version.as_deref(), Some("42"));
        assert_eq!(stored.label("app.kubernetes.io/managed-by"), Some("opsync"));
        assert_eq!(stored.annotation("opsync.io/item-id"), Some("itm1"));
        assert_eq!(stored.secret_type, "kubernetes.io/tls");
        assert_eq!(stored.data["tls.crt"], "YQ==");
        // No type, no data (an empty Secret): Opaque and empty.
        let empty = Stored::from_json(&json!({"metadata": {"name": "x"}}));
        assert_eq!(empty.secret_type, "Opaque");
        assert!(empty.data.is_empty() && empty.labels.is_empty());
    }

    #[test]
    fn the_restart_patch_is_kubectls() {
        assert_eq!(
            restart_patch("2024-05-01T12:30:00Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2024-05-01T12:30:00Z"}}}}}"#
        );
    }
}
