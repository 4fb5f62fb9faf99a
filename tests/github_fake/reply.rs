//! An answer (status, JSON body, headers) and GitHub's error bodies.

use serde_json::{Value, json};

/// Where GitHub's generic errors (bad credentials, unknown routes) point.
pub const REST_DOCS: &str = "https://docs.github.com/rest";

/// Where rate-limit errors point.
pub const RATE_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

/// One answer; `body` is `None` for 204.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(code: u16, body: Value) -> Self {
        Self {
            code,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    /// 201 with the empty object GitHub sends when a secret is created.
    pub fn created() -> Self {
        Self::json(201, json!({}))
    }

    pub fn no_content() -> Self {
        Self {
            code: 204,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// `{"message", "documentation_url", "status"}`, GitHub's basic error.
    pub fn error(code: u16, message: &str, documentation_url: &str) -> Self {
        Self::json(
            code,
            json!({
                "message": message,
                "documentation_url": documentation_url,
                "status": code.to_string(),
            }),
        )
    }

    /// 404 `Not Found`: an unknown route, repository, environment, organisation or secret, and a
    /// private repository the token may not see.
    pub fn not_found(documentation_url: &str) -> Self {
        Self::error(404, "Not Found", documentation_url)
    }

    /// 401 for a token GitHub does not know (revoked, expired, never issued).
    pub fn bad_credentials() -> Self {
        Self::error(401, "Bad credentials", REST_DOCS)
    }

    /// 401 for a request without `Authorization` on an endpoint that needs it.
    pub fn requires_authentication() -> Self {
        Self::error(401, "Requires authentication", REST_DOCS)
    }

    /// 400 for a body that is not JSON.
    pub fn problems_parsing_json(documentation_url: &str) -> Self {
        Self::error(400, "Problems parsing JSON", documentation_url)
    }

    /// 422 with the `errors` list of a validation failure.
    pub fn invalid(message: &str, documentation_url: &str, errors: Vec<Value>) -> Self {
        let mut reply = Self::error(422, message, documentation_url);
        if let Some(Value::Object(body)) = reply.body.as_mut() {
            body.insert("errors".into(), Value::Array(errors));
        }
        reply
    }

    /// The `message` of an error body, or "" for success bodies.
    pub fn message(&self) -> &str {
        self.body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// One entry of a 422's `errors`: which field of which resource failed, and how.
pub fn field_error(field: &str, code: &str, message: &str) -> Value {
    json!({"resource": "Secret", "field": field, "code": code, "message": message})
}
