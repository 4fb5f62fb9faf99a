//! The REST transport: GitHub's headers, the halt on a rate limit, and errors from answers.

use std::cell::RefCell;
use std::time::Duration;

use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::http::{self, Endpoint, Request, Response};
use opsync_destination_kit::{PluginError, permanent, retryable_after};
use serde_json::Value;

use crate::ratelimit;

/// The REST API version every request asks for.
pub(crate) const API_VERSION: &str = "2022-11-28";
const ACCEPT: &str = "application/vnd.github+json";
const USER_AGENT: &str = "opsync";

/// The longest part of GitHub's message kept in an error.
const DETAIL_MAX: usize = 300;

/// GitHub's API at `api-url`, for one call.
pub(crate) struct GitHub {
    pub(crate) endpoint: Endpoint,
    /// Set by the first rate-limited answer: from then on no request of this call is sent, and
    /// every event not yet done fails with this error's retry hint.
    halted: RefCell<Option<Halt>>,
}

/// A rate limit hit in this call: what was refused, and how long to wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Halt {
    pub(crate) message: String,
    pub(crate) after: Duration,
}

impl Halt {
    /// The error of the request that hit the limit.
    pub(crate) fn error(&self) -> PluginError {
        retryable_after(self.message.clone(), self.after)
    }

    /// The error of an event not attempted because of it: the same retry hint, so the host
    /// backs off every change of the batch instead of sending them again at once.
    pub(crate) fn not_attempted(&self) -> PluginError {
        retryable_after(
            format!(
                "not attempted: GitHub rate-limited an earlier request of this call, so it makes \
                 no more ({})",
                self.message
            ),
            self.after,
        )
    }
}

impl GitHub {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            halted: RefCell::new(None),
        }
    }

    /// The rate limit hit earlier in this call, if one was.
    pub(crate) fn halted(&self) -> Option<Halt> {
        self.halted.borrow().clone()
    }

    /// Sends one request with `bearer` as its credentials, unless a rate limit stopped this call's
    /// requests. A rate-limited answer stops them and fails with the wait it asks for; any
    /// other answer is returned as it is.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> Result<Response, PluginError> {
        if let Some(halt) = self.halted() {
            return Err(halt.not_attempted());
        }
        let mut headers = vec![
            ("accept".to_string(), ACCEPT.to_string()),
            ("x-github-api-version".to_string(), API_VERSION.to_string()),
            ("authorization".to_string(), format!("Bearer {bearer}")),
            ("user-agent".to_string(), USER_AGENT.to_string()),
        ];
        let body = http::json_body(&mut headers, "application/json", body)?;
        let response = http::send(Request {
            method,
            endpoint: &self.endpoint,
            path: path.to_string(),
            headers,
            body,
        })?;
        if let Some(halt) = rate_limited(method, path, &response, Instant::now()) {
            let error = halt.error();
            *self.halted.borrow_mut() = Some(halt);
            return Err(error);
        }
        Ok(response)
    }
}

/// The halt for a rate-limited answer to `method path`; none for any other answer.
pub(crate) fn rate_limited(
    method: &str,
    path: &str,
    response: &Response,
    now: Instant,
) -> Option<Halt> {
    let message = message(response);
    let after = ratelimit::delay(response, &message, now)?;
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    Some(Halt {
        message: format!(
            "{method} {path}: rate-limited by GitHub (status {}{detail}); retry in {} s",
            response.status,
            after.as_secs()
        ),
        after,
    })
}

/// GitHub's `message` of an error answer, with the `message`s (or `code`s) of its `errors` when
/// it has any (a 422's details), cut to a few hundred characters; empty when the body has none.
/// GitHub's messages name resources and rules, never secret values.
pub(crate) fn message(response: &Response) -> String {
    let Some(body) = response.json() else {
        return String::new();
    };
    let mut text = body["message"].as_str().unwrap_or_default().to_string();
    let details: Vec<String> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    _ => e["message"]
                        .as_str()
                        .or_else(|| e["code"].as_str())
                        .map(String::from),
                })
                .collect()
        })
        .unwrap_or_default();
    if !details.is_empty() {
        text = format!("{text} ({})", details.join("; "));
    }
    text.chars().take(DETAIL_MAX).collect()
}

/// The error for a non-2xx answer to `method path`; `what` says what failed. By the kit's
/// mapping: 401 (`Bad credentials`: an expired or revoked token) and 403 (a missing permission;
/// rate limits were taken out before) are `misconfigured`, so the route pauses and nothing is
/// dead-lettered; 408, 429 and 5xx retryable with the `Retry-After` hint; other 4xx (422: GitHub
/// refused the request) permanent.
pub(crate) fn status_error(
    method: &str,
    path: &str,
    what: &str,
    response: &Response,
) -> PluginError {
    let mut detail = message(response);
    let hint = match response.status {
        401 => Some("the token was refused: expired, revoked, or not a token of this GitHub"),
        403 => Some("the token lacks the permission"),
        _ => None,
    };
    if let Some(hint) = hint {
        detail = if detail.is_empty() {
            hint.to_string()
        } else {
            format!("{detail} ({hint})")
        };
    }
    response.error(&format!("{what}: {method} {path}"), &detail)
}

/// The JSON body of a 2xx answer (`Null` when empty), or the error for its status.
pub(crate) fn success(
    method: &str,
    path: &str,
    what: &str,
    response: Response,
) -> Result<Value, PluginError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_destination_kit::Retry;

    /// The retry hint of an error, if it has one.
    fn after_ms(error: &PluginError) -> Option<u64> {
        match error {
            PluginError::Retryable(Retry { after_ms, .. }) => *after_ms,
            _ => None,
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
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
    fn messages_carry_githubs_details() {
        let r = response(
            422,
            &[],
            r#"{"message":"Validation Failed","errors":[{"resource":"Secret","code":"custom","message":"visibility is invalid"},{"code":"missing_field"},"plain"],"documentation_url":"https://docs.github.com/rest"}"#,
        );
        assert_eq!(
            message(&r),
            "Validation Failed (visibility is invalid; missing_field; plain)"
        );
        assert_eq!(message(&response(500, &[], "<html>oops</html>")), "");
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
        assert_eq!(message(&response(400, &[], &long)).len(), DETAIL_MAX);
    }

    #[test]
    fn statuses_become_plugin_errors() {
        let path = "/repos/acme/api/actions/secrets/DB";
        let bad_credentials = response(
            401,
            &[],
            r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#,
        );
        let err = status_error("PUT", path, "cannot write secret DB", &bad_credentials);
        assert!(
            matches!(&err, PluginError::Misconfigured(m)
                if m.starts_with("cannot write secret DB: PUT /repos/acme/api/actions/secrets/DB: status 401: Bad credentials")
                && m.contains("expired, revoked")),
            "{err:?}"
        );
        let forbidden = response(
            403,
            &[("x-ratelimit-remaining", "4999")],
            r#"{"message":"Resource not accessible by personal access token"}"#,
        );
        let err = status_error("GET", path, "x", &forbidden);
        assert!(
            matches!(&err, PluginError::Misconfigured(m) if m.contains("Resource not accessible") && m.contains("lacks the permission")),
            "{err:?}"
        );
        let invalid = response(422, &[], r#"{"message":"Validation Failed"}"#);
        assert!(matches!(
            status_error("PUT", path, "x", &invalid),
            PluginError::Permanent(m) if m == format!("x: PUT {path}: status 422: Validation Failed")
        ));
        let unavailable = response(503, &[("retry-after", "7")], "");
        assert_eq!(
            after_ms(&status_error("GET", path, "x", &unavailable)),
            Some(7000)
        );
        assert!(matches!(
            status_error("GET", path, "x", &response(502, &[], "")),
            PluginError::Retryable(Retry { after_ms: None, .. })
        ));
    }

    #[test]
    fn a_rate_limited_answer_halts_with_its_wait() {
        let now = Instant::from_unix(1_700_000_000);
        let path = "/repos/acme/api/actions/secrets/public-key";
        let limited = response(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000300"),
            ],
            r#"{"message":"API rate limit exceeded for user ID 1."}"#,
        );
        let halt = rate_limited("GET", path, &limited, now).expect("rate-limited");
        assert_eq!(halt.after, Duration::from_secs(300));
        assert_eq!(
            halt.message,
            format!(
                "GET {path}: rate-limited by GitHub (status 403: API rate limit exceeded for user \
                 ID 1.); retry in 300 s"
            )
        );
        assert_eq!(after_ms(&halt.error()), Some(300_000));
        let later = halt.not_attempted();
        assert_eq!(after_ms(&later), Some(300_000));
        assert!(
            matches!(&later, PluginError::Retryable(r) if r.message.starts_with("not attempted") && r.message.contains(&halt.message))
        );
        let forbidden = response(
            403,
            &[("x-ratelimit-remaining", "10")],
            r#"{"message":"Must have admin rights to Repository."}"#,
        );
        assert_eq!(rate_limited("GET", path, &forbidden, now), None);
    }
}
