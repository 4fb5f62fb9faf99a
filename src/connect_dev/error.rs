//! The API error type: a status and a message, answered as `{"status": N, "message": "..."}`.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::connect::model::ErrorBody;

/// A refusal or failure, answered with Connect's JSON error body. The message never holds a
/// secret: request values are described, not echoed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// Connect's generic 500.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: self.status.as_u16(),
            message: self.message.into_owned(),
        };
        json_response(self.status, &body)
    }
}

/// `body` as JSON with `Content-Type: application/json`.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, Bytes::from(bytes)),
        Err(_) => {
            let fallback = br#"{"status":500,"message":"Something went wrong"}"#;
            json_bytes(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(fallback),
            )
        }
    }
}

/// Already-serialised JSON with `Content-Type: application/json`.
pub fn json_bytes(status: StatusCode, bytes: Bytes) -> Response {
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Describes a serde error without the offending value: `invalid type: string "hunter2",
/// expected u64` becomes `invalid type: string, expected u64`.
pub fn describe_serde_error(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(expected_at) = rest.find(", expected")
        {
            let unexpected = &rest[..expected_at];
            let kind = unexpected
                .split(['"', '`'])
                .next()
                .unwrap_or(unexpected)
                .trim();
            return format!("{prefix}{kind}{}", &rest[expected_at..]);
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_lose_their_values() {
        assert_eq!(
            describe_serde_error(
                r#"invalid type: string "hunter2", expected u64 at line 1 column 9"#
            ),
            "invalid type: string, expected u64 at line 1 column 9"
        );
        assert_eq!(
            describe_serde_error("invalid type: floating point `1.5`, expected a string"),
            "invalid type: floating point, expected a string"
        );
        assert_eq!(
            describe_serde_error("missing field `category`"),
            "missing field `category`"
        );
    }
}
