//! A small blocking HTTP client over `wasi:http` (the only network a plugin has), endpoint parsing,
//! percent-encoding, and the mapping of transport errors and statuses to plugin errors (with the
//! peer's `Retry-After` as the retry hint).

use std::sync::Mutex;
use std::time::Duration;

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use crate::clock::Instant;
use crate::{PluginError, misconfigured, permanent, retryable, with_retry_hint};

/// Bytes handed to an output stream per write (the most `blocking-write-and-flush` takes).
const WRITE_CHUNK: usize = 4096;

/// The longest `Retry-After` passed on as a retry hint; a longer one is cut to this (the host
/// bounds hints further, by its `delivery.retry_hint_max`).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// The origins (`scheme://authority`) the host let a request of this call through to. An
/// instance serves one call, so this is per call. The host's allow-list is by scheme, host and
/// port: a request it refuses to an origin it let through before was refused for the call's
/// request budget, not for the allow-list.
static REACHED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Where a destination lives: `http(s)://host[:port][/base/path]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// `host[:port]`, as sent in the `Host` header.
    pub authority: String,
    /// A path prefix without a trailing `/` (empty for none).
    pub base_path: String,
}

impl Endpoint {
    /// Parses the value of config key `key`.
    pub fn parse(key: &str, text: &str) -> Result<Self, PluginError> {
        let bad = |why: &str| misconfigured(format!("`{key}` is `{text}`: {why}"));
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("write it as http(s)://host[:port][/path]"));
        };
        if rest.contains(['?', '#', '@', ' ']) {
            return Err(bad("give only scheme, host, port and path"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.starts_with(':') {
            return Err(bad("the host is empty"));
        }
        if let Some((_, port)) = authority.rsplit_once(':')
            && !authority.ends_with(']')
            && port.parse::<u16>().is_err()
        {
            return Err(bad("the port is not a number"));
        }
        Ok(Self {
            https,
            authority: authority.to_ascii_lowercase(),
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `scheme://authority`, for messages and the allow-list.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

/// One request. `path` starts with `/` and may carry a query; it is appended to the base path.
pub struct Request<'a> {
    pub method: &'a str,
    pub endpoint: &'a Endpoint,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// `value` as JSON bytes, for a request body.
pub fn encode_json(value: &serde_json::Value) -> Result<Vec<u8>, PluginError> {
    serde_json::to_vec(value).map_err(|e| permanent(format!("cannot render JSON: {e}")))
}

/// A request's JSON body, if it has one: encoded, with its `content-type` added to `headers`.
pub fn json_body(
    headers: &mut Vec<(String, String)>,
    content_type: &str,
    body: Option<&serde_json::Value>,
) -> Result<Option<Vec<u8>>, PluginError> {
    let Some(value) = body else {
        return Ok(None);
    };
    headers.push(("content-type".into(), content_type.into()));
    encode_json(value).map(Some)
}

/// A response, read to its end.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// When the peer said to retry: its `Retry-After` (delta-seconds, or an HTTP-date against
    /// the guest's clock), at most [`RETRY_AFTER_MAX`]; none when absent or unparsable.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.header("retry-after")?, Instant::now())
    }

    /// The error for this (non-2xx) response: [`status_error`], with the `Retry-After` hint
    /// when the status is worth retrying.
    pub fn error(&self, what: &str, detail: &str) -> PluginError {
        with_retry_hint(status_error(what, self.status, detail), self.retry_after())
    }
}

/// Sends `request` and reads the whole response. Transport failures map to plugin errors: a
/// request the host's allow-list refuses is `misconfigured`, a connection problem `retryable`.
pub fn send(request: Request<'_>) -> Result<Response, PluginError> {
    let origin = request.endpoint.origin();
    let target = format!("{} {origin}", request.method);
    let fail = |what: &str| retryable(format!("{target}: {what}"));
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone().into_bytes()))
        .collect();
    if let Some(body) = &request.body {
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&headers)
        .map_err(|e| permanent(format!("{target}: a request header was refused: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let scheme = if request.endpoint.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let mut path = format!("{}{}", request.endpoint.base_path, request.path);
    if path.is_empty() {
        path.push('/');
    }
    outgoing
        .set_method(&method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(&request.endpoint.authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(&path)))
        .map_err(|()| permanent(format!("{target}: the request line was refused")))?;
    let body = outgoing
        .body()
        .map_err(|()| fail("the request body is not available"))?;
    let future =
        outgoing_handler::handle(outgoing, None).map_err(|e| transport(&target, &origin, &e))?;
    // A refused request fails the body stream too; the response future then says why, so a
    // write error is reported only when the future has nothing better.
    let written = write_body(&target, body, request.body.as_deref().unwrap_or_default());
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| fail("no response"))?
        .map_err(|()| fail("the response was already taken"))?
        .map_err(|e| transport(&target, &origin, &e))?;
    reached(&origin);
    written?;
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| fail("the response body is not available"))?;
    let body = read_all(&target, &incoming)?;
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn write_body(target: &str, body: OutgoingBody, bytes: &[u8]) -> Result<(), PluginError> {
    {
        let stream = body.write().map_err(|()| {
            retryable(format!(
                "{target}: the request body stream is not available"
            ))
        })?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(target, e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| transport(target, "", &e))
}

fn read_all(target: &str, body: &IncomingBody) -> Result<Vec<u8>, PluginError> {
    let stream = body.stream().map_err(|()| {
        retryable(format!(
            "{target}: the response body stream is not available"
        ))
    })?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(out),
            Err(e) => return Err(stream_error(target, e)),
        }
    }
}

fn stream_error(target: &str, e: StreamError) -> PluginError {
    match e {
        StreamError::Closed => retryable(format!("{target}: the connection closed early")),
        StreamError::LastOperationFailed(err) => {
            match crate::bindings::wasi::http::types::http_error_code(&err) {
                Some(code) => transport(target, "", &code),
                None => retryable(format!("{target}: {}", err.to_debug_string())),
            }
        }
    }
}

/// Remembers that the host let a request to `origin` through.
fn reached(origin: &str) {
    let mut reached = REACHED.lock().unwrap_or_else(|e| e.into_inner());
    if !reached.iter().any(|o| o == origin) {
        reached.push(origin.to_string());
    }
}

fn was_reached(origin: &str) -> bool {
    let reached = REACHED.lock().unwrap_or_else(|e| e.into_inner());
    reached.iter().any(|o| o == origin)
}

/// Maps a `wasi:http` error code to a plugin error; `origin` is the request's (empty when the
/// error is not the host's verdict on a new request).
fn transport(target: &str, origin: &str, code: &ErrorCode) -> PluginError {
    match code {
        // Allowed before in this call: the call's request budget is spent (a batch of many
        // changes, say). The changes left wait for the next attempt.
        ErrorCode::HttpRequestDenied if !origin.is_empty() && was_reached(origin) => {
            retryable(format!(
                "{target}: the host refused the request: this call's HTTP request budget is spent"
            ))
        }
        ErrorCode::HttpRequestDenied => misconfigured(format!(
            "{target}: the host refused the request; is this host:port in the plugin's allowed hosts?"
        )),
        ErrorCode::HttpRequestBodySize(_) | ErrorCode::HttpResponseBodySize(_) => permanent(
            format!("{target}: a body is above the plugin's size limit ({code:?})"),
        ),
        ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) => {
            misconfigured(format!("{target}: TLS failed ({code:?})"))
        }
        _ => retryable(format!("{target}: {code:?}")),
    }
}

/// The error for a non-2xx status: 401/403 mean the credentials or grants are wrong
/// (`misconfigured`); 408, 425, 429 and 5xx are worth retrying; other statuses are `permanent`.
/// `detail` is the destination's own message (keep values out of it). With the response at hand,
/// [`Response::error`] adds its `Retry-After` as the retry hint.
pub fn status_error(what: &str, status: u16, detail: &str) -> PluginError {
    let detail: String = detail.chars().take(300).collect();
    let msg = if detail.is_empty() {
        format!("{what}: status {status}")
    } else {
        format!("{what}: status {status}: {detail}")
    };
    match status {
        401 | 403 => misconfigured(msg),
        408 | 425 | 429 | 500..=599 => retryable(msg),
        _ => permanent(msg),
    }
}

/// A `Retry-After` value at `now`: delta-seconds, or an HTTP-date (IMF-fixdate, or the obsolete
/// RFC 850 and asctime forms, RFC 9110 section 5.6.7); a date in the past is zero. Capped at
/// [`RETRY_AFTER_MAX`]; `None` when unparsable.
pub fn retry_after(value: &str, now: Instant) -> Option<Duration> {
    let value = value.trim();
    let after = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = http_date(value)?;
        Duration::from_secs(u64::try_from(at.saturating_sub(now.unix())).unwrap_or(0))
    };
    Some(after.min(RETRY_AFTER_MAX))
}

/// An HTTP-date as Unix seconds.
fn http_date(text: &str) -> Option<i64> {
    let (day, month, year, clock) = match text.split_once(',') {
        // `Sun, 06 Nov 1994 08:49:37 GMT` or `Sunday, 06-Nov-94 08:49:37 GMT`.
        Some((_weekday, rest)) => match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
            [day, month, year, clock, "GMT"] => (*day, *month, year.parse().ok()?, *clock),
            [date, clock, "GMT"] => {
                let mut parts = date.split('-');
                let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() || year.len() != 2 {
                    return None;
                }
                let yy: i32 = year.parse().ok()?;
                (
                    day,
                    month,
                    if yy < 70 { 2000 + yy } else { 1900 + yy },
                    *clock,
                )
            }
            _ => return None,
        },
        // `Sun Nov  6 08:49:37 1994`.
        None => match text.split_whitespace().collect::<Vec<_>>().as_slice() {
            [_weekday, month, day, clock, year] => (*day, *month, year.parse().ok()?, *clock),
            _ => return None,
        },
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)?;
    let month = time::Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let day: u8 = day.parse().ok()?;
    let mut hms = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    let at = time::Date::from_calendar_date(year, month, day)
        .ok()?
        .with_hms(h, m, s)
        .ok()?;
    Some(at.assume_utc().unix_timestamp())
}

/// Percent-encodes `s` for one path segment or query value: everything but `A-Z a-z 0-9 - . _ ~`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes each `/`-separated part of `path`, keeping the slashes.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("address", "http://127.0.0.1:8200").expect("valid");
        assert!(!e.https);
        assert_eq!(e.authority, "127.0.0.1:8200");
        assert_eq!(e.base_path, "");
        let e = Endpoint::parse("url", "https://Hooks.Example.com/in/opsync/").expect("valid");
        assert_eq!(e.origin(), "https://hooks.example.com");
        assert_eq!(e.base_path, "/in/opsync");
        for bad in [
            "127.0.0.1:8200",
            "ftp://x",
            "http://",
            "http://:80",
            "http://x:port",
            "http://u:p@x",
            "http://x/?q",
        ] {
            assert!(Endpoint::parse("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("a b/c~"), "a%20b%2Fc~");
        assert_eq!(encode_path("prod/My DB"), "prod/My%20DB");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        // 1994-11-06T08:49:37Z.
        let now = Instant::from_unix(784_111_777);
        let secs = |s| retry_after(s, now).map(|d| d.as_secs());
        assert_eq!(secs("120"), Some(120));
        assert_eq!(secs(" 0 "), Some(0));
        // Capped at a day, even past u64.
        assert_eq!(secs("86401"), Some(86_400));
        assert_eq!(secs("99999999999999999999999"), Some(86_400));
        // The three HTTP-date forms, 90 s from now.
        assert_eq!(secs("Sun, 06 Nov 1994 08:51:07 GMT"), Some(90));
        assert_eq!(secs("Sunday, 06-Nov-94 08:51:07 GMT"), Some(90));
        assert_eq!(secs("Sun Nov  6 08:51:07 1994"), Some(90));
        // A date in the past: retry now. Far in the future: the cap.
        assert_eq!(secs("Sat, 05 Nov 1994 08:49:37 GMT"), Some(0));
        assert_eq!(secs("Fri, 01 Jan 2100 00:00:00 GMT"), Some(86_400));
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:51:07",
            "Sun, 06 Nov 1994 08:51:07 PST",
            "Sun, 31 Feb 1994 08:51:07 GMT",
            "Sun, 06 Foo 1994 08:51:07 GMT",
            "Sun, 06 Nov 1994 25:51:07 GMT",
            "Sun, 06 Nov 1994 08:51 GMT",
            "Sunday, 06-Nov-1994 08:51:07 GMT",
        ] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn responses_carry_their_retry_after_into_retryable_errors() {
        let response = |status, retry_after: &str| Response {
            status,
            headers: vec![("Retry-After".into(), retry_after.as_bytes().to_vec())],
            body: Vec::new(),
        };
        assert!(matches!(
            response(429, "30").error("x", ""),
            PluginError::Retryable(crate::Retry {
                after_ms: Some(30_000),
                ..
            })
        ));
        assert!(matches!(
            response(503, "7").error("x", "busy"),
            PluginError::Retryable(crate::Retry { message, after_ms: Some(7_000) })
                if message == "x: status 503: busy"
        ));
        assert!(matches!(
            response(503, "whenever").error("x", ""),
            PluginError::Retryable(crate::Retry { after_ms: None, .. })
        ));
        // Not retryable: the header does not matter.
        assert!(matches!(
            response(400, "30").error("x", ""),
            PluginError::Permanent(_)
        ));
    }

    #[test]
    fn a_refusal_after_an_allowed_request_to_the_origin_is_the_spent_budget() {
        let origin = "http://budget.test:8200";
        let denied = || {
            transport(
                "POST http://budget.test:8200",
                origin,
                &ErrorCode::HttpRequestDenied,
            )
        };
        assert!(matches!(denied(), PluginError::Misconfigured(_)));
        reached(origin);
        assert!(matches!(
            denied(),
            PluginError::Retryable(crate::Retry { message, after_ms: None })
                if message.contains("request budget is spent")
        ));
        // Another origin is still the allow-list's refusal.
        assert!(matches!(
            transport(
                "POST http://other.test",
                "http://other.test",
                &ErrorCode::HttpRequestDenied
            ),
            PluginError::Misconfigured(_)
        ));
    }

    #[test]
    fn statuses() {
        assert!(matches!(
            status_error("x", 403, ""),
            PluginError::Misconfigured(_)
        ));
        assert!(matches!(
            status_error("x", 503, ""),
            PluginError::Retryable(_)
        ));
        assert!(matches!(
            status_error("x", 429, ""),
            PluginError::Retryable(_)
        ));
        assert!(
            matches!(status_error("x", 400, "bad"), PluginError::Permanent(m) if m == "x: status 400: bad")
        );
    }
}
