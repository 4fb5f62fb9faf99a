//! The KV v2 calls this plugin makes: read a secret's metadata, read its current data, write data
//! with check-and-set, set custom metadata, soft-delete the current version, destroy everything.

use opsync_destination_kit::http::{self, Endpoint, Request, Response, encode_path};
use opsync_destination_kit::{PluginError, permanent, retryable};
use serde_json::{Map, Value, json};

/// Where and how to reach one KV v2 mount.
pub struct Kv {
    pub address: Endpoint,
    /// Revealed once per call; never logged (the struct has no `Debug`).
    pub token: String,
    pub namespace: Option<String>,
    pub mount: String,
}

/// What KV v2 keeps about one secret.
pub struct Metadata {
    pub current_version: u64,
    /// Whether the current version is deleted or destroyed.
    pub current_gone: bool,
    pub custom: Map<String, Value>,
}

impl Kv {
    /// The secret's metadata; none when the path holds no secret.
    pub fn metadata(&self, path: &str) -> Result<Option<Metadata>, PluginError> {
        let response = self.call("GET", "metadata", path, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let body = self.ok("read the metadata of", path, response)?;
        let data = &body["data"];
        let current_version = data["current_version"].as_u64().unwrap_or(0);
        let current = &data["versions"][current_version.to_string()];
        let current_gone = current_version == 0
            || current["destroyed"].as_bool().unwrap_or(false)
            || current["deletion_time"]
                .as_str()
                .is_some_and(|t| !t.is_empty());
        let custom = data["custom_metadata"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        Ok(Some(Metadata {
            current_version,
            current_gone,
            custom,
        }))
    }

    /// The current version's data; none when the path holds no secret, or its current version
    /// is deleted or destroyed.
    pub fn read(&self, path: &str) -> Result<Option<Value>, PluginError> {
        let response = self.call("GET", "data", path, None)?;
        // Also what KV v2 answers for a deleted or destroyed current version.
        if response.status == 404 {
            return Ok(None);
        }
        let body = self.ok("read", path, response)?;
        Ok(current_data(&body))
    }

    /// Writes a new version, only if the secret's current version is still `cas` (0: only if it
    /// does not exist). Returns the new version.
    pub fn write(&self, path: &str, data: &Value, cas: u64) -> Result<u64, PluginError> {
        let body = json!({ "options": { "cas": cas }, "data": data });
        let response = self.call("POST", "data", path, Some(&body))?;
        if response.status == 400 && detail(&response).contains("check-and-set") {
            return Err(retryable(format!(
                "{}: changed by someone else while opsync wrote it (check-and-set {cas})",
                self.location(path)
            )));
        }
        let body = self.ok("write", path, response)?;
        body["data"]["version"].as_u64().ok_or_else(|| {
            permanent(format!(
                "{}: the write answered no version",
                self.location(path)
            ))
        })
    }

    /// Replaces the secret's custom metadata.
    pub fn set_custom_metadata(
        &self,
        path: &str,
        custom: &Map<String, Value>,
    ) -> Result<(), PluginError> {
        let body = json!({ "custom_metadata": custom });
        let response = self.call("POST", "metadata", path, Some(&body))?;
        self.ok("set the metadata of", path, response).map(|_| ())
    }

    /// Soft-deletes the current version (it can be undeleted).
    pub fn delete_current(&self, path: &str) -> Result<(), PluginError> {
        let response = self.call("DELETE", "data", path, None)?;
        self.ok("delete", path, response).map(|_| ())
    }

    /// Removes the secret: every version and its metadata.
    pub fn destroy(&self, path: &str) -> Result<(), PluginError> {
        let response = self.call("DELETE", "metadata", path, None)?;
        self.ok("destroy", path, response).map(|_| ())
    }

    /// `mount/path`, for receipts and messages.
    pub fn location(&self, path: &str) -> String {
        format!("{}/{path}", self.mount)
    }

    fn call(
        &self,
        method: &str,
        kind: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, PluginError> {
        let mut headers = vec![
            ("x-vault-token".to_string(), self.token.clone()),
            ("x-vault-request".to_string(), "true".to_string()),
        ];
        if let Some(ns) = &self.namespace {
            headers.push(("x-vault-namespace".into(), ns.clone()));
        }
        let body = http::json_body(&mut headers, "application/json", body)?;
        http::send(Request {
            method,
            endpoint: &self.address,
            path: format!(
                "/v1/{}/{kind}/{}",
                encode_path(&self.mount),
                encode_path(path)
            ),
            headers,
            body,
        })
    }

    /// The JSON body of a successful response (`null` for 204), or the error for its status.
    fn ok(&self, action: &str, path: &str, response: Response) -> Result<Value, PluginError> {
        if !response.is_success() {
            return Err(response.error(
                &format!("cannot {action} {}", self.location(path)),
                &detail(&response),
            ));
        }
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        response
            .json()
            .ok_or_else(|| permanent(format!("{}: the answer is not JSON", self.location(path))))
    }
}

/// The data of a KV v2 read (`{"data": {"data": ..., "metadata": ...}}`); none when the version
/// read is deleted or destroyed (its data is then `null`).
pub fn current_data(body: &Value) -> Option<Value> {
    let version = &body["data"];
    let metadata = &version["metadata"];
    let gone = metadata["destroyed"].as_bool().unwrap_or(false)
        || metadata["deletion_time"]
            .as_str()
            .is_some_and(|t| !t.is_empty());
    match &version["data"] {
        Value::Null => None,
        _ if gone => None,
        data => Some(data.clone()),
    }
}

/// Vault's `{"errors": [...]}` joined; these name paths and policies, never values.
fn detail(response: &Response) -> String {
    response
        .json()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_destroyed_current_version_has_no_data() {
        let live = json!({"data": {
            "data": {"password": "x"},
            "metadata": {"version": 3, "deletion_time": "", "destroyed": false},
        }});
        assert_eq!(current_data(&live), Some(json!({"password": "x"})));
        let deleted = json!({"data": {
            "data": null,
            "metadata": {"version": 3, "deletion_time": "2024-05-01T12:00:00Z", "destroyed": false},
        }});
        assert_eq!(current_data(&deleted), None);
        let destroyed = json!({"data": {
            "data": null,
            "metadata": {"version": 3, "deletion_time": "", "destroyed": true},
        }});
        assert_eq!(current_data(&destroyed), None);
        assert_eq!(current_data(&json!({})), None);
    }
}
