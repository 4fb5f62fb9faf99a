//! `ConnectClient`: one method per Connect API endpoint, over a pooled reqwest client.
//!
//! Every request is counted in `opsync_connect_requests_total{endpoint,method,status}` and
//! timed in `opsync_connect_request_duration_seconds{endpoint}`, where `endpoint` is the route
//! template (never an id), and logged at debug level without the token.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::connect::error::{ConnectError, parse_retry_after};
use crate::connect::filter::Filter;
use crate::connect::model::{
    ApiRequest, ErrorBody, File, Item, PatchOp, SecretString, ServerHealth, Vault,
};

/// Route templates, used as the `endpoint` metric label.
mod route {
    pub const VAULTS: &str = "/v1/vaults";
    pub const VAULT: &str = "/v1/vaults/{vault}";
    pub const ITEMS: &str = "/v1/vaults/{vault}/items";
    pub const ITEM: &str = "/v1/vaults/{vault}/items/{item}";
    pub const FILES: &str = "/v1/vaults/{vault}/items/{item}/files";
    pub const FILE: &str = "/v1/vaults/{vault}/items/{item}/files/{file}";
    pub const FILE_CONTENT: &str = "/v1/vaults/{vault}/items/{item}/files/{file}/content";
    pub const ACTIVITY: &str = "/v1/activity";
    pub const HEARTBEAT: &str = "/heartbeat";
    pub const HEALTH: &str = "/health";
    pub const METRICS: &str = "/metrics";
}

/// The longest excerpt of a non-JSON error body kept as the error message.
const MAX_MESSAGE_CHARS: usize = 200;

/// The part of the activity log a response covers, from its `Content-Range` header.
///
/// Connect documents `Content-Range: 1-50/1134` (no unit); an RFC 9110 form with a unit
/// (`items 0-49/1134`) is accepted too. A `*` total is kept as `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses a `Content-Range` value; `None` when it is not of the form `[unit ]start-end/total`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let spec = match value.split_once(' ') {
            Some((unit, rest)) if !unit.contains('-') => rest.trim(),
            _ => value,
        };
        let (range, total) = spec.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        let range = Self {
            start: start.trim().parse().ok()?,
            end: end.trim().parse().ok()?,
            total,
        };
        (range.start <= range.end).then_some(range)
    }
}

/// One page of `GET /v1/activity`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityPage {
    pub records: Vec<ApiRequest>,
    /// `None` when the server sent no `Content-Range` (or one that does not parse).
    pub range: Option<ContentRange>,
}

/// A client for one Connect server, holding a pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct ConnectClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for ConnectClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectClient")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How to reach a Connect server: where, with which token, how patiently.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub host: Url,
    pub token: SecretString,
    pub user_agent: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
}

impl ConnectClient {
    /// Builds a client from `options` (the `[connect]` settings turn into them).
    pub fn new(options: impl Into<ClientOptions>) -> Result<Self, ConnectError> {
        let settings = options.into();
        let base = base_url(&settings.host)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", settings.token.expose()))
            .map_err(|_| ConnectError::InvalidToken)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .user_agent(settings.user_agent)
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .build()
            .map_err(|e| ConnectError::Build(error_chain(&e.without_url())))?;
        Ok(Self {
            http,
            base,
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET /v1/vaults`, optionally with a SCIM filter such as `name eq "Prod"`.
    pub async fn list_vaults(&self, filter: Option<&Filter>) -> Result<Vec<Vault>, ConnectError> {
        let req = Request::get(route::VAULTS, &["v1", "vaults"]).filter(filter);
        self.json(req, "a list of vaults").await
    }

    /// `GET /v1/vaults/{vault}`.
    pub async fn get_vault(&self, vault: &str) -> Result<Vault, ConnectError> {
        let req = Request::get(route::VAULT, &["v1", "vaults", vault]);
        self.json(req, "a vault").await
    }

    /// `GET /v1/vaults/{vault}/items`: item summaries (no fields, sections or files).
    pub async fn list_items(
        &self,
        vault: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Item>, ConnectError> {
        let req = Request::get(route::ITEMS, &["v1", "vaults", vault, "items"]).filter(filter);
        self.json(req, "a list of items").await
    }

    /// `GET /v1/vaults/{vault}/items/{item}`: the full item.
    pub async fn get_item(&self, vault: &str, item: &str) -> Result<Item, ConnectError> {
        let req = Request::get(route::ITEM, &["v1", "vaults", vault, "items", item]);
        self.json(req, "an item").await
    }

    /// `POST /v1/vaults/{vault}/items`: creates an item and returns it as the server stored it.
    pub async fn create_item(&self, vault: &str, item: &Item) -> Result<Item, ConnectError> {
        let req = Request::new(
            Method::POST,
            route::ITEMS,
            &["v1", "vaults", vault, "items"],
        )
        .body(item)?;
        self.json(req, "the created item").await
    }

    /// `PUT /v1/vaults/{vault}/items/{item}`: replaces the whole item.
    pub async fn replace_item(
        &self,
        vault: &str,
        item_id: &str,
        item: &Item,
    ) -> Result<Item, ConnectError> {
        let req = Request::new(
            Method::PUT,
            route::ITEM,
            &["v1", "vaults", vault, "items", item_id],
        )
        .body(item)?;
        self.json(req, "the replaced item").await
    }

    /// `PATCH /v1/vaults/{vault}/items/{item}` with a JSON Patch document.
    pub async fn patch_item(
        &self,
        vault: &str,
        item: &str,
        ops: &[PatchOp],
    ) -> Result<Item, ConnectError> {
        let req = Request::new(
            Method::PATCH,
            route::ITEM,
            &["v1", "vaults", vault, "items", item],
        )
        .body(ops)?;
        self.json(req, "the patched item").await
    }

    /// `DELETE /v1/vaults/{vault}/items/{item}`.
    pub async fn delete_item(&self, vault: &str, item: &str) -> Result<(), ConnectError> {
        let req = Request::new(
            Method::DELETE,
            route::ITEM,
            &["v1", "vaults", vault, "items", item],
        );
        self.send(&req).await.map(drop)
    }

    /// `GET .../items/{item}/files`, with base64 `content` when `inline` is set.
    pub async fn list_files(
        &self,
        vault: &str,
        item: &str,
        inline: bool,
    ) -> Result<Vec<File>, ConnectError> {
        let req = Request::get(
            route::FILES,
            &["v1", "vaults", vault, "items", item, "files"],
        )
        .inline(inline);
        self.json(req, "a list of files").await
    }

    /// `GET .../items/{item}/files/{file}`, with base64 `content` when `inline` is set.
    pub async fn get_file(
        &self,
        vault: &str,
        item: &str,
        file: &str,
        inline: bool,
    ) -> Result<File, ConnectError> {
        let req = Request::get(
            route::FILE,
            &["v1", "vaults", vault, "items", item, "files", file],
        )
        .inline(inline);
        self.json(req, "a file").await
    }

    /// `GET .../files/{file}/content`: the file's bytes.
    pub async fn get_file_content(
        &self,
        vault: &str,
        item: &str,
        file: &str,
    ) -> Result<Vec<u8>, ConnectError> {
        let req = Request::get(
            route::FILE_CONTENT,
            &[
                "v1", "vaults", vault, "items", item, "files", file, "content",
            ],
        );
        let resp = self.send(&req).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(&req, e))?;
        Ok(bytes.to_vec())
    }

    /// `GET /v1/activity?limit=&offset=`: one page of API request records.
    pub async fn activity(&self, limit: u32, offset: u64) -> Result<ActivityPage, ConnectError> {
        let mut req = Request::get(route::ACTIVITY, &["v1", "activity"]);
        req.query.push(("limit", limit.to_string()));
        req.query.push(("offset", offset.to_string()));
        let resp = self.send(&req).await?;
        let range = resp
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(ContentRange::parse);
        let records = self
            .decode(&req, resp, "a list of activity records")
            .await?;
        Ok(ActivityPage { records, range })
    }

    /// `GET /heartbeat`: succeeds when the server is up.
    pub async fn heartbeat(&self) -> Result<(), ConnectError> {
        let req = Request::get(route::HEARTBEAT, &["heartbeat"]);
        self.send(&req).await.map(drop)
    }

    /// `GET /health`: the server's version and the state of its dependencies.
    pub async fn health(&self) -> Result<ServerHealth, ConnectError> {
        let req = Request::get(route::HEALTH, &["health"]);
        self.json(req, "a health report").await
    }

    /// `GET /metrics`: the server's Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, ConnectError> {
        let req = Request::get(route::METRICS, &["metrics"]);
        let resp = self.send(&req).await?;
        resp.text().await.map_err(|e| self.transport(&req, e))
    }

    /// The vault whose name is exactly `name` (case-sensitive); an error unless exactly one.
    pub async fn find_vault_by_name(&self, name: &str) -> Result<Vault, ConnectError> {
        let filter = filterable(name).then(|| Filter::name_eq(name));
        let vaults = self.list_vaults(filter.as_ref()).await?;
        let mut matches: Vec<Vault> = vaults.into_iter().filter(|v| v.name == name).collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(ConnectError::NotFound {
                kind: "vault",
                name: name.to_owned(),
                scope: None,
            }),
            count => Err(ConnectError::Ambiguous {
                kind: "vault",
                name: name.to_owned(),
                scope: None,
                count,
            }),
        }
    }

    /// The full item whose title is exactly `title` (case-sensitive) in `vault`; an error
    /// unless exactly one item has it.
    pub async fn find_item_by_title(&self, vault: &str, title: &str) -> Result<Item, ConnectError> {
        let filter = filterable(title).then(|| Filter::title_eq(title));
        let items = self.list_items(vault, filter.as_ref()).await?;
        let matches: Vec<&Item> = items.iter().filter(|i| i.title == title).collect();
        match matches.as_slice() {
            [one] => self.get_item(vault, &one.id).await,
            [] => Err(ConnectError::NotFound {
                kind: "item",
                name: title.to_owned(),
                scope: Some(format!("vault {vault}")),
            }),
            many => Err(ConnectError::Ambiguous {
                kind: "item",
                name: title.to_owned(),
                scope: Some(format!("vault {vault}")),
                count: many.len(),
            }),
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: Request, what: &str) -> Result<T, ConnectError> {
        let resp = self.send(&req).await?;
        self.decode(&req, resp, what).await
    }

    async fn decode<T: DeserializeOwned>(
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
    async fn send(&self, req: &Request) -> Result<Response, ConnectError> {
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

    fn transport(&self, req: &Request, err: reqwest::Error) -> ConnectError {
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
    fn path_of(&self, req: &Request) -> String {
        self.url_of(req).path().to_owned()
    }
}

/// What to send: method, route template, path segments (encoded when the URL is built),
/// query and JSON body.
struct Request {
    method: Method,
    endpoint: &'static str,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    fn new(method: Method, endpoint: &'static str, segments: &[&str]) -> Self {
        Self {
            method,
            endpoint,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    fn get(endpoint: &'static str, segments: &[&str]) -> Self {
        Self::new(Method::GET, endpoint, segments)
    }

    fn filter(mut self, filter: Option<&Filter>) -> Self {
        if let Some(f) = filter {
            self.query.push(("filter", f.to_string()));
        }
        self
    }

    fn inline(mut self, inline: bool) -> Self {
        if inline {
            self.query.push(("inline_files", "true".to_owned()));
        }
        self
    }

    fn body<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, ConnectError> {
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

/// Whether a server-side `eq` filter can carry `value`. Real Connect refuses `'` in values
/// and no SDK escapes `"`, so for such values the caller lists everything and matches here.
fn filterable(value: &str) -> bool {
    !value.contains(['"', '\'', '\\'])
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
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
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

/// Checks the host and makes sure its path ends with `/`, so paths append below it.
fn base_url(host: &Url) -> Result<Url, ConnectError> {
    let mut shown = host.clone();
    // Never echo credentials someone put in the URL.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let invalid = |reason: &str| ConnectError::InvalidHost {
        host: shown.as_str().to_owned(),
        reason: reason.to_owned(),
    };
    if !matches!(host.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if host.host_str().is_none() {
        return Err(invalid("it has no host name"));
    }
    if !host.username().is_empty() || host.password().is_some() {
        return Err(invalid(
            "it must not hold credentials; set the token separately",
        ));
    }
    if host.query().is_some() || host.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    let mut base = host.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            ContentRange::parse("1-50/1134"),
            Some(ContentRange {
                start: 1,
                end: 50,
                total: Some(1134)
            })
        );
        assert_eq!(
            ContentRange::parse("items 0-49/1134"),
            Some(ContentRange {
                start: 0,
                end: 49,
                total: Some(1134)
            })
        );
        assert_eq!(
            ContentRange::parse("0-9/*"),
            Some(ContentRange {
                start: 0,
                end: 9,
                total: None
            })
        );
        assert_eq!(ContentRange::parse("*/0"), None);
        assert_eq!(ContentRange::parse("9-1/10"), None);
        assert_eq!(ContentRange::parse("garbage"), None);
    }

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

    #[test]
    fn base_urls() {
        let u = |s: &str| Url::parse(s).expect("test URL parses");
        assert_eq!(
            base_url(&u("http://h:8080")).expect("ok").as_str(),
            "http://h:8080/"
        );
        assert_eq!(
            base_url(&u("https://h/connect")).expect("ok").as_str(),
            "https://h/connect/"
        );
        assert!(base_url(&u("ftp://h")).is_err());
        assert!(base_url(&u("http://user:pw@h")).is_err());
        let err = base_url(&u("http://user:pw@h")).expect_err("credentials refused");
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn filters_skip_quotes() {
        assert!(filterable("db"));
        assert!(!filterable(r#"a"b"#));
        assert!(!filterable("it's"));
        assert!(!filterable(r"a\b"));
    }
}
