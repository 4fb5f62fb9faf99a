//! One Connect request: built from a route template, sent, counted and timed, its answer decoded,
//! and a failure turned into a [`ConnectError`] that names the method and path.

use std::time::{Duration, Instant};

use reqwest::header;
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::connect::client::ConnectClient;
use crate::connect::error::{ConnectError, parse_retry_after};
use crate::connect::filter::Filter;
use crate::connect::model::ErrorBody;

/// The longest excerpt of a non-JSON error body kept as the error message.
const MAX_MESSAGE_CHARS: usize = 200;

impl ConnectClient {
    pub(super) async fn json<T: DeserializeOwned>(
        &self,
        req: Request,
        what: &str,
    ) -> Result<T, ConnectError> {
        let resp = self.send(&req).await?;
        self.decode(&req, resp, what).await
    }

    pub(super) async fn decode<T: DeserializeOwned>(
        &self,
        req: &Request,
        resp: Response,
        what: &str,
    ) -> Result<T, ConnectError> {
        let body = resp.bytes().await.map_err(|e| self.transport(req, e))?;
        // Parsed without tracking the path first, which slows the parse of every item; only a body
        // that fails is parsed again, with the path, for the message.
        if let Ok(value) = T::deserialize(&mut serde_json::Deserializer::from_slice(&body)) {
            return Ok(value);
        }
        let mut de = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            let detail = if at == "." {
                format!("expected {what}: {}", e.inner())
            } else {
                format!("expected {what}: at {at}: {}", e.inner())
            };
            ConnectError::Decode {
                method: req.method.clone(),
                path: self.path_of(req),
                detail,
            }
        })
    }

    /// Sends the request; returns the response when its status is a success, else the error.
    pub(super) async fn send(&self, req: &Request) -> Result<Response, ConnectError> {
        let url = self.url_of(req);
        let mut builder = self.http.request(req.method.clone(), url);
        if let Some(body) = &req.body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let started = Instant::now();
        let result = builder.send().await;
        let elapsed = started.elapsed();
        let status_label = match &result {
            Ok(resp) => resp.status().as_u16().to_string(),
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(_) => "error".to_owned(),
        };
        record(req, &status_label, elapsed);
        tracing::debug!(
            method = %req.method,
            endpoint = req.endpoint,
            status = %status_label,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "connect request"
        );
        let resp = result.map_err(|e| self.transport(req, e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.status_error(req, resp).await)
    }

    async fn status_error(&self, req: &Request, resp: Response) -> ConnectError {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = resp.bytes().await.unwrap_or_default();
        ConnectError::Status {
            method: req.method.clone(),
            path: self.path_of(req),
            status,
            message: error_message(status, &body),
            retry_after,
        }
    }

    pub(super) fn transport(&self, req: &Request, err: reqwest::Error) -> ConnectError {
        let method = req.method.clone();
        let path = self.path_of(req);
        let err = err.without_url();
        if err.is_timeout() {
            let after = if err.is_connect() {
                self.connect_timeout
            } else {
                self.timeout
            };
            ConnectError::Timeout {
                method,
                path,
                after,
            }
        } else if err.is_connect() {
            ConnectError::Connect {
                method,
                path,
                detail: error_chain(&err),
            }
        } else {
            ConnectError::Transport {
                method,
                path,
                detail: error_chain(&err),
            }
        }
    }

    fn url_of(&self, req: &Request) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(req.segments.iter());
        }
        if !req.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(req.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// The request path as sent (percent-encoded), without the query.
    pub(super) fn path_of(&self, req: &Request) -> String {
        self.url_of(req).path().to_owned()
    }
}

/// What to send: method, route template, path segments (encoded when the URL is built),
/// query and JSON body.
pub(super) struct Request {
    method: Method,
    endpoint: &'static str,
    segments: Vec<String>,
    pub(super) query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub(super) fn new(method: Method, endpoint: &'static str, segments: &[&str]) -> Self {
        Self {
            method,
            endpoint,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    pub(super) fn get(endpoint: &'static str, segments: &[&str]) -> Self {
        Self::new(Method::GET, endpoint, segments)
    }

    pub(super) fn filter(mut self, filter: Option<&Filter>) -> Self {
        if let Some(f) = filter {
            self.query.push(("filter", f.to_string()));
        }
        self
    }

    pub(super) fn inline(mut self, inline: bool) -> Self {
        if inline {
            self.query.push(("inline_files", "true".to_owned()));
        }
        self
    }

    pub(super) fn body<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, ConnectError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ConnectError::Encode {
            method: self.method.clone(),
            path: self.endpoint.to_owned(),
            detail: e.to_string(),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

fn record(req: &Request, status: &str, elapsed: Duration) {
    metrics::counter!(
        "opsync_connect_requests_total",
        "endpoint" => req.endpoint,
        "method" => method_label(&req.method),
        "status" => status.to_owned(),
    )
    .increment(1);
    metrics::histogram!("opsync_connect_request_duration_seconds", "endpoint" => req.endpoint)
        .record(elapsed.as_secs_f64());
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// The message of an error response: `{"status","message"}`'s message, else a short excerpt
/// of the body, else the status's reason phrase.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
        && !parsed.message.is_empty()
    {
        return parsed.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    let mut excerpt: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    if text.chars().count() > MAX_MESSAGE_CHARS {
        excerpt.push('…');
    }
    excerpt
}

/// `err` and its sources, joined with ": ", skipping repeats.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        let body = br#"{"status":404,"message":"item x not found"}"#;
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, body),
            "item x not found"
        );
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b" upstream down\n"),
            "upstream down"
        );
        let long = "x".repeat(500);
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, long.as_bytes())
                .chars()
                .count(),
            MAX_MESSAGE_CHARS + 1
        );
    }
}
