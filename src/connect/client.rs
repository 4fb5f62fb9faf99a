//! `ConnectClient`: one method per Connect API endpoint, over a pooled reqwest client.
//!
//! Every request is counted in `opsync_connect_requests_total{endpoint,method,status}` and
//! timed in `opsync_connect_request_duration_seconds{endpoint}`, where `endpoint` is the route
//! template (never an id), and logged at debug level without the token.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use crate::connect::error::ConnectError;
use crate::connect::filter::Filter;
use crate::connect::model::{ApiRequest, File, Item, PatchOp, SecretString, ServerHealth, Vault};

mod request;

use request::{Request, error_chain};

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
}

/// Whether a server-side `eq` filter can carry `value`. Real Connect refuses `'` in values
/// and no SDK escapes `"`, so for such values the caller lists everything and matches here.
fn filterable(value: &str) -> bool {
    !value.contains(['"', '\'', '\\'])
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
