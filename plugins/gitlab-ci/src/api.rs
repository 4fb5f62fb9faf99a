//! The REST calls on one variable (read, create, update, delete) and GitLab's answers as errors.
//!
//! Requests go to `/api/v4` under the base URL; errors name the method, the path and GitLab's
//! message, never the token or a value.

use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::http::{self, Endpoint, Request, Response, encode, status_error};
use opsync_destination_kit::{PluginError, misconfigured, permanent, retryable, retryable_after};
use serde_json::Value;

use crate::halt::{Halt, rate_limit_delay};
use crate::settings::{API_ROOT, Target};
use crate::variable::Variable;

const JSON: &str = "application/json";
/// What replaces a value GitLab echoed in a message.
const REDACTED: &str = "[REDACTED]";
/// Values shorter than this are not looked for in messages (they would match ordinary words;
/// the host redacts every revealed value from errors anyway).
const REDACT_MIN: usize = 3;

/// Where and how to reach the variables of one project or group.
pub(crate) struct Api {
    pub(crate) endpoint: Endpoint,
    /// Revealed once per call; never logged (the struct has no `Debug`).
    pub(crate) token: String,
    pub(crate) target: Target,
    pub(crate) halt: Halt,
}

impl Api {
    /// `` `KEY` (scope SCOPE) of project group/app ``, for messages.
    pub(crate) fn location(&self, key: &str, scope: &str) -> String {
        format!("`{key}` (scope {scope}) of {}", self.target)
    }

    /// `project group/app: KEY, KEY (scope SCOPE)`, for receipts.
    pub(crate) fn receipt_location(&self, keys: &[&str], scope: &str) -> String {
        format!("{}: {} (scope {scope})", self.target, keys.join(", "))
    }

    fn collection_path(&self) -> String {
        format!(
            "{API_ROOT}/{}/{}/variables",
            self.target.collection(),
            encode(self.target.id())
        )
    }

    fn variable_path(&self, key: &str) -> String {
        format!("{}/{}", self.collection_path(), encode(key))
    }

    /// The variable of `key` in `scope`; none when there is none.
    pub(crate) fn get(&self, key: &str, scope: &str) -> Result<Option<Variable>, PluginError> {
        let path = self.variable_path(key);
        let what = format!("cannot read variable {}", self.location(key, scope));
        let response = self.call("GET", &path, &scope_query(scope), None)?;
        if response.status == 404 {
            if names_target(&response) {
                return Err(self.target_not_found("GET", &path, &response));
            }
            return Ok(None);
        }
        let body = self.success("GET", &path, &what, &response, &[])?;
        let found = Variable::from_json(&body).ok_or_else(|| {
            permanent(format!("{what}: GET {path}: the answer is not a variable"))
        })?;
        // A GitLab that ignores the filter answers the key's variable of another scope: that is
        // not the one asked for.
        Ok((found.key == key && found.environment_scope == scope).then_some(found))
    }

    /// Creates `wanted`; returns it as GitLab stored it.
    pub(crate) fn create(&self, wanted: &Variable) -> Result<Variable, PluginError> {
        let path = self.collection_path();
        let what = format!(
            "cannot create variable {}",
            self.location(&wanted.key, &wanted.environment_scope)
        );
        let response = self.call("POST", &path, "", Some(&wanted.body()))?;
        if response.status == 404 {
            return Err(self.target_not_found("POST", &path, &response));
        }
        if response.status == 400 && gitlab_message(&response).contains("has already been taken") {
            // Created by someone else since it was read: the next attempt reads it again (and
            // checks whose it is).
            return Err(retryable(format!(
                "{what}: POST {path}: status 400: {}: it was created meanwhile",
                detail(&response, &secrets(wanted))
            )));
        }
        let body = self.success("POST", &path, &what, &response, &secrets(wanted))?;
        Ok(stored(&body, wanted))
    }

    /// Updates the variable of `wanted`'s key and scope to `wanted`; returns it as GitLab
    /// stored it.
    pub(crate) fn update(&self, wanted: &Variable) -> Result<Variable, PluginError> {
        let scope = &wanted.environment_scope;
        let path = self.variable_path(&wanted.key);
        let what = format!(
            "cannot update variable {}",
            self.location(&wanted.key, scope)
        );
        // The key is the path's; the body says everything else.
        let mut body = wanted.body();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("key");
        }
        let response = self.call("PUT", &path, &scope_query(scope), Some(&body))?;
        if response.status == 404 {
            if names_target(&response) {
                return Err(self.target_not_found("PUT", &path, &response));
            }
            // Deleted since it was read: the next attempt creates it.
            return Err(retryable(format!(
                "{what}: PUT {path}: status 404: it was deleted meanwhile"
            )));
        }
        let body = self.success("PUT", &path, &what, &response, &secrets(wanted))?;
        Ok(stored(&body, wanted))
    }

    /// Deletes the variable of `key` in `scope`. False when it was already gone.
    pub(crate) fn delete(&self, key: &str, scope: &str) -> Result<bool, PluginError> {
        let path = self.variable_path(key);
        let what = format!("cannot delete variable {}", self.location(key, scope));
        let response = self.call("DELETE", &path, &scope_query(scope), None)?;
        if response.status == 404 {
            if names_target(&response) {
                return Err(self.target_not_found("DELETE", &path, &response));
            }
            return Ok(false);
        }
        self.success("DELETE", &path, &what, &response, &[])
            .map(|_| true)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> Result<Response, PluginError> {
        self.halt.check()?;
        let mut headers = vec![
            ("private-token".to_string(), self.token.clone()),
            ("accept".to_string(), JSON.to_string()),
            ("user-agent".to_string(), "opsync".to_string()),
        ];
        let body = http::json_body(&mut headers, JSON, body)?;
        http::send(Request {
            method,
            endpoint: &self.endpoint,
            path: format!("{path}{query}"),
            headers,
            body,
        })
    }

    /// The JSON body of a 2xx answer (`null` when empty), or the error for its status.
    fn success(
        &self,
        method: &str,
        path: &str,
        what: &str,
        response: &Response,
        values: &[&str],
    ) -> Result<Value, PluginError> {
        if !response.is_success() {
            return Err(self.failure(method, path, what, response, values));
        }
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        response
            .json()
            .ok_or_else(|| permanent(format!("{what}: {method} {path}: the answer is not JSON")))
    }

    /// The error for a non-2xx answer: 429 retryable after the delay it asks (and the call
    /// stops), 401 and 403 `misconfigured` (and the call stops), 5xx (and 408) retryable with
    /// its `Retry-After`, other statuses `permanent`. It names the method, the path (without its
    /// query) and GitLab's message, with `values` redacted from it.
    pub(crate) fn failure(
        &self,
        method: &str,
        path: &str,
        what: &str,
        response: &Response,
        values: &[&str],
    ) -> PluginError {
        let what = format!("{what}: {method} {path}");
        let detail = detail(response, values);
        match response.status {
            429 => {
                let delay = rate_limit_delay(response, Instant::now());
                let because = match detail.is_empty() {
                    true => String::new(),
                    false => format!(": {detail}"),
                };
                let error = retryable_after(
                    format!(
                        "{what}: status 429{because} (GitLab's rate limit; retry after {} s)",
                        delay.as_secs()
                    ),
                    delay,
                );
                self.halt.stop(&error);
                error
            }
            401 | 403 => {
                let hint = match response.status {
                    401 => "the token was refused: revoked, expired, or not a token of this GitLab",
                    _ => {
                        "the token may not do this: variables need the `api` scope, and the \
                         Maintainer role on a project or the Owner role on a group"
                    }
                };
                let detail = match detail.is_empty() {
                    true => hint.to_string(),
                    false => format!("{detail} ({hint})"),
                };
                let error = status_error(&what, response.status, &detail);
                self.halt.stop(&error);
                error
            }
            _ => response.error(&what, &detail),
        }
    }

    /// The project or group does not exist, or the token cannot see it: `misconfigured`, and the
    /// call stops.
    fn target_not_found(&self, method: &str, path: &str, response: &Response) -> PluginError {
        let mut text = format!(
            "{} was not found at {} (or the token cannot see it): {method} {path}: status 404",
            self.target,
            self.endpoint.origin()
        );
        let detail = detail(response, &[]);
        if !detail.is_empty() {
            text.push_str(": ");
            text.push_str(&detail);
        }
        let error = misconfigured(text);
        self.halt.stop(&error);
        error
    }
}

/// `?filter[environment_scope]=SCOPE`, which selects the variable of that scope among those of
/// one key.
pub(crate) fn scope_query(scope: &str) -> String {
    format!("?filter[environment_scope]={}", encode(scope))
}

/// The variable as a write answered it; `wanted` when the answer does not say (no value).
fn stored(body: &Value, wanted: &Variable) -> Variable {
    Variable::from_json(body)
        .filter(|v| v.key == wanted.key && v.value.is_some())
        .unwrap_or_else(|| wanted.clone())
}

/// The values a request carries, to keep out of its error.
fn secrets(variable: &Variable) -> Vec<&str> {
    variable.value.as_deref().into_iter().collect()
}

/// Whether a 404 is about the project or group (`404 Project Not Found`, `404 Group Not
/// Found`), not the variable (`404 Variable Not Found`).
pub(crate) fn names_target(response: &Response) -> bool {
    let message = gitlab_message(response).to_ascii_lowercase();
    message.contains("project not found") || message.contains("group not found")
}

/// GitLab's message with `values` redacted from it.
pub(crate) fn detail(response: &Response, values: &[&str]) -> String {
    let mut text = gitlab_message(response);
    for value in values {
        if value.chars().count() >= REDACT_MIN {
            text = text.replace(value, REDACTED);
        }
    }
    text
}

/// The error text of a GitLab answer: its `message` (a string, or validation errors by
/// attribute: `value: is invalid`), `error` and `error_description`; empty when the body is not
/// JSON.
pub(crate) fn gitlab_message(response: &Response) -> String {
    let Some(body) = response.json() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for name in ["message", "error", "error_description"] {
        flatten(&body[name], None, &mut parts);
    }
    parts.join("; ")
}

fn flatten(value: &Value, attribute: Option<&str>, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(match attribute {
            Some(attribute) => format!("{attribute}: {text}"),
            None => text.clone(),
        }),
        Value::Array(items) => items.iter().for_each(|v| flatten(v, attribute, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(v, Some(k), out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::variable;
    use opsync_destination_kit::Retry;

    fn api(target: Target) -> Api {
        Api {
            endpoint: Endpoint::parse("api-url", "https://gitlab.example.com").expect("valid"),
            token: "glpat-SECRETTOKEN".into(),
            target,
            halt: Halt::default(),
        }
    }

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn paths_encode_the_project_path_and_the_scope() {
        let project = api(Target::Project("group/sub/app".into()));
        assert_eq!(
            project.variable_path("DB_PASSWORD"),
            "/api/v4/projects/group%2Fsub%2Fapp/variables/DB_PASSWORD"
        );
        assert_eq!(
            project.collection_path(),
            "/api/v4/projects/group%2Fsub%2Fapp/variables"
        );
        let group = api(Target::Group("42".into()));
        assert_eq!(group.collection_path(), "/api/v4/groups/42/variables");
        assert_eq!(scope_query("*"), "?filter[environment_scope]=%2A");
        assert_eq!(
            scope_query("review/*"),
            "?filter[environment_scope]=review%2F%2A"
        );
        assert_eq!(
            project.location("DB_PASSWORD", "*"),
            "`DB_PASSWORD` (scope *) of project group/sub/app"
        );
        assert_eq!(
            group.receipt_location(&["A", "B"], "production"),
            "group 42: A, B (scope production)"
        );
    }

    #[test]
    fn gitlab_messages_are_strings_or_errors_by_attribute() {
        let m = |body: &str| gitlab_message(&response(400, body, &[]));
        assert_eq!(m(r#"{"message":"401 Unauthorized"}"#), "401 Unauthorized");
        assert_eq!(
            m(r#"{"message":{"key":["(DB) has already been taken"],"value":["is invalid"]}}"#),
            "key: (DB) has already been taken; value: is invalid"
        );
        assert_eq!(m(r#"{"error":"key is missing"}"#), "key is missing");
        assert_eq!(
            m(
                r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges."}"#
            ),
            "insufficient_scope; The request requires higher privileges."
        );
        assert_eq!(m("Retry later\n"), "");
        assert_eq!(m(""), "");
        assert!(names_target(&response(
            404,
            r#"{"message":"404 Project Not Found"}"#,
            &[]
        )));
        assert!(names_target(&response(
            404,
            r#"{"message":"404 Group Not Found"}"#,
            &[]
        )));
        assert!(!names_target(&response(
            404,
            r#"{"message":"404 Variable Not Found"}"#,
            &[]
        )));
        assert!(!names_target(&response(404, "", &[])));
    }

    #[test]
    fn a_rate_limit_stops_the_call_with_its_delay() {
        let api = api(Target::Project("group/app".into()));
        let limited = response(
            429,
            r#"{"message":"This endpoint has been requested too many times. Try again later."}"#,
            &[("Retry-After", "30")],
        );
        let err = api.failure("GET", "/api/v4/p", "cannot read variable", &limited, &[]);
        assert!(
            matches!(&err, PluginError::Retryable(Retry { message, after_ms: Some(30_000) })
                if message.starts_with("cannot read variable: GET /api/v4/p: status 429: This endpoint")
                    && message.contains("retry after 30 s")),
            "{err:?}"
        );
        // Every later request of the call fails the same way, without being sent.
        let Err(later) = api.get("OTHER", "*") else {
            panic!("not halted")
        };
        assert!(
            matches!(&later, PluginError::Retryable(Retry { message, after_ms: Some(30_000) })
                if message.starts_with("not attempted")),
            "{later:?}"
        );
        // Without Retry-After: the reset time, at least a second.
        let api = self::api(Target::Project("group/app".into()));
        let reset = (Instant::now().unix() - 10).to_string();
        let err = api.failure(
            "PUT",
            "/p",
            "x",
            &response(429, "", &[("RateLimit-Reset", &reset)]),
            &[],
        );
        assert!(matches!(
            err,
            PluginError::Retryable(Retry {
                after_ms: Some(1000),
                ..
            })
        ));
    }

    #[test]
    fn refused_tokens_are_misconfigured_and_never_named() {
        let api = api(Target::Group("infra".into()));
        let err = api.failure(
            "GET",
            "/api/v4/groups/infra/variables/K",
            "cannot read variable",
            &response(401, r#"{"message":"401 Unauthorized"}"#, &[]),
            &[],
        );
        let PluginError::Misconfigured(msg) = &err else {
            panic!("401 is misconfigured: {err:?}")
        };
        assert!(msg.starts_with(
            "cannot read variable: GET /api/v4/groups/infra/variables/K: status 401: 401 Unauthorized ("
        ));
        assert!(msg.contains("revoked, expired") && !msg.contains("SECRETTOKEN"));
        assert!(matches!(
            api.halt.check(),
            Err(PluginError::Misconfigured(_))
        ));
        let api = self::api(Target::Group("infra".into()));
        let err = api.failure(
            "PUT",
            "/p",
            "x",
            &response(403, r#"{"message":"403 Forbidden"}"#, &[]),
            &[],
        );
        assert!(
            matches!(&err, PluginError::Misconfigured(m)
                if m.starts_with("x: PUT /p: status 403: 403 Forbidden (") && m.contains("Maintainer")),
            "{err:?}"
        );
    }

    #[test]
    fn validation_errors_are_permanent_and_never_echo_a_value() {
        let api = api(Target::Project("1".into()));
        let wanted = variable("DB_PASSWORD", "hunter2-hunter2");
        let echoed = response(
            400,
            r#"{"message":{"value":["hunter2-hunter2 is invalid"]}}"#,
            &[],
        );
        let err = api.failure("POST", "/p", "x", &echoed, &secrets(&wanted));
        assert!(
            matches!(&err, PluginError::Permanent(m) if m == "x: POST /p: status 400: value: [REDACTED] is invalid"),
            "{err:?}"
        );
        assert!(api.halt.check().is_ok(), "a 400 holds for one change only");
        // 5xx: retryable with the Retry-After hint; the call goes on.
        let err = api.failure(
            "GET",
            "/p",
            "x",
            &response(503, "", &[("Retry-After", "7")]),
            &[],
        );
        assert!(matches!(
            err,
            PluginError::Retryable(Retry {
                after_ms: Some(7000),
                ..
            })
        ));
        assert!(api.halt.check().is_ok());
    }

    #[test]
    fn a_missing_project_is_misconfigured_and_stops_the_call() {
        let api = api(Target::Project("group/app".into()));
        let err = api.target_not_found(
            "GET",
            "/api/v4/projects/group%2Fapp/variables/K",
            &response(404, r#"{"message":"404 Project Not Found"}"#, &[]),
        );
        assert!(
            matches!(&err, PluginError::Misconfigured(m)
                if m == "project group/app was not found at https://gitlab.example.com (or the token cannot see it): GET /api/v4/projects/group%2Fapp/variables/K: status 404: 404 Project Not Found"),
            "{err:?}"
        );
        assert!(
            matches!(api.halt.check(), Err(PluginError::Misconfigured(m)) if m.starts_with("not attempted"))
        );
    }

    #[test]
    fn a_write_answer_without_a_value_keeps_what_was_sent() {
        let wanted = variable("K", "hunter22");
        let mut answer = wanted.body();
        assert!(stored(&answer, &wanted) == wanted);
        answer["masked"] = Value::Bool(true);
        assert!(stored(&answer, &wanted).masked);
        assert!(stored(&serde_json::json!({"key": "K"}), &wanted) == wanted);
        assert!(stored(&Value::Null, &wanted) == wanted);
    }
}
