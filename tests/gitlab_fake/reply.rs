//! Answers as GitLab's API sends them: JSON bodies, `{"message": ...}` and Grape `{"error": ...}`.

use serde_json::{Map, Value, json};

/// What an answer carries after its status line.
#[derive(Debug)]
pub enum Body {
    Json(Value),
    /// `text/plain`, as the rate limiter's `Retry later`.
    Text(String),
    /// 204 No Content.
    Empty,
}

/// One HTTP answer of the fake.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub body: Body,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(code: u16, body: Value) -> Self {
        Self {
            code,
            body: Body::Json(body),
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    pub fn created(body: Value) -> Self {
        Self::json(201, body)
    }

    pub fn no_content() -> Self {
        Self {
            code: 204,
            body: Body::Empty,
            headers: Vec::new(),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The JSON body (`null` for text and empty bodies), for the seeding API's panics.
    pub fn json_body(&self) -> Value {
        match &self.body {
            Body::Json(value) => value.clone(),
            Body::Text(text) => json!(text),
            Body::Empty => Value::Null,
        }
    }
}

/// `{"message": MESSAGE}`: what Grape's `render_api_error!` helpers answer.
pub fn message(code: u16, message: &str) -> Reply {
    Reply::json(code, json!({ "message": message }))
}

/// `{"error": MESSAGE}`: Grape's own answers (unknown routes, parameter errors).
pub fn error(code: u16, message: &str) -> Reply {
    Reply::json(code, json!({ "error": message }))
}

/// `404 Project Not Found`, `404 Variable Not Found`, ...
pub fn not_found(resource: &str) -> Reply {
    message(404, &format!("404 {resource} Not Found"))
}

/// A path or method no endpoint serves.
pub fn route_not_found() -> Reply {
    error(404, "404 Not Found")
}

pub fn unauthorized() -> Reply {
    message(401, "401 Unauthorized")
}

pub fn forbidden() -> Reply {
    message(403, "403 Forbidden")
}

/// A revoked or expired access token, as rack-oauth2 renders GitLab's `invalid_token` errors.
pub fn invalid_token(description: &str) -> Reply {
    let mut reply = Reply::json(
        401,
        json!({ "error": "invalid_token", "error_description": description }),
    );
    reply.headers.push((
        "WWW-Authenticate".into(),
        format!("Bearer realm=\"\", error=\"invalid_token\", error_description=\"{description}\""),
    ));
    reply
}

/// Parameter errors Grape found before the endpoint ran, joined as Grape joins them.
pub fn bad_params(errors: &[String]) -> Reply {
    error(400, &errors.join(", "))
}

/// A model that failed validation: `{"message": {"field": ["problem", ...]}}`.
pub fn validation(errors: &[(&str, String)]) -> Reply {
    let mut fields = Map::new();
    for (field, problem) in errors {
        let list = fields
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.push(json!(problem));
        }
    }
    Reply::json(400, json!({ "message": fields }))
}

/// The rate limiter's answer: 429 with GitLab's default plain-text response.
pub fn throttled() -> Reply {
    Reply {
        code: 429,
        body: Body::Text("Retry later\n".into()),
        headers: Vec::new(),
    }
}
