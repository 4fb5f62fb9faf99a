//! A small blocking HTTP client over `wasi:http` (the only network a plugin has), endpoint parsing,
//! percent-encoding, and the mapping of transport errors and statuses to plugin errors.

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use crate::{PluginError, misconfigured, permanent, retryable};

/// Bytes handed to an output stream per write (the most `blocking-write-and-flush` takes).
const WRITE_CHUNK: usize = 4096;

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
}

/// Sends `request` and reads the whole response. Transport failures map to plugin errors: a
/// request the host's allow-list refuses is `misconfigured`, a connection problem `retryable`.
pub fn send(request: Request<'_>) -> Result<Response, PluginError> {
    let target = format!("{} {}", request.method, request.endpoint.origin());
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
    let future = outgoing_handler::handle(outgoing, None).map_err(|e| transport(&target, &e))?;
    // A refused request fails the body stream too; the response future then says why, so a
    // write error is reported only when the future has nothing better.
    let written = write_body(&target, body, request.body.as_deref().unwrap_or_default());
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| fail("no response"))?
        .map_err(|()| fail("the response was already taken"))?
        .map_err(|e| transport(&target, &e))?;
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
    OutgoingBody::finish(body, None).map_err(|e| transport(target, &e))
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
                Some(code) => transport(target, &code),
                None => retryable(format!("{target}: {}", err.to_debug_string())),
            }
        }
    }
}

/// Maps a `wasi:http` error code to a plugin error.
fn transport(target: &str, code: &ErrorCode) -> PluginError {
    match code {
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
/// `detail` is the destination's own message (keep values out of it).
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
