//! A FAKE Elasticsearch `_bulk` endpoint (no real Elasticsearch can run here): NDJSON parsing
//! (400 on a malformed body), `create` actions with `_id` (201, or 409 for an id already stored),
//! per-item scripted statuses (429, 503, 400...), whole-request failures, an optional API key
//! (401 without it, 403 with a wrong one), and the stored documents for tests to count. Answers
//! have Elasticsearch's shape: HTTP 200 with `errors` and one `items[].create` per action.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::Server;

/// A failure of the whole `_bulk` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EsFailure {
    #[default]
    None,
    /// Every request gets this HTTP status (e.g. 503, 429) with an ES error body.
    Status(u16),
    /// This many in every ten requests (the first ones of each ten) get 503.
    TenthsFailing(u8),
}

#[derive(Default)]
struct Inner {
    api_key: Option<String>,
    failure: EsFailure,
    /// `_id` -> statuses its next attempts get, in order.
    scripted: HashMap<String, VecDeque<u16>>,
    /// (`_index`, `_id`) -> document.
    documents: BTreeMap<(String, String), Value>,
    /// The `_id`s of every `_bulk` request, in order.
    requests: Vec<Vec<String>>,
    /// Requests received (counts the failed ones too).
    received: u64,
}

/// The running fake.
pub struct EsFake {
    server: Server,
    inner: Arc<Mutex<Inner>>,
}

impl EsFake {
    /// Starts a fake; with `api_key`, requests must send `Authorization: ApiKey <api_key>`.
    pub async fn start(api_key: Option<&str>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            api_key: api_key.map(str::to_string),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/_bulk", post(bulk))
            .with_state(inner.clone());
        Self {
            server: Server::start(app).await,
            inner,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("es fake lock")
    }

    pub fn set_failure_mode(&self, failure: EsFailure) {
        self.lock().failure = failure;
    }

    /// The next `statuses.len()` attempts to create `id` get these statuses (then normal).
    pub fn script_item(&self, id: &str, statuses: &[u16]) {
        self.lock()
            .scripted
            .insert(id.to_string(), statuses.iter().copied().collect());
    }

    /// Stored documents: `(_index, _id)` -> source.
    pub fn documents(&self) -> BTreeMap<(String, String), Value> {
        self.lock().documents.clone()
    }

    /// How many documents are stored (without copying them).
    pub fn document_count(&self) -> usize {
        self.lock().documents.len()
    }

    /// The `_id`s each `_bulk` request carried, in order.
    pub fn requests(&self) -> Vec<Vec<String>> {
        self.lock().requests.clone()
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": { "type": kind, "reason": reason },
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

/// The `(index, id, document)` of each `create` of a `_bulk` body, or Elasticsearch's refusal
/// (parsed before the lock is taken, so concurrent requests are parsed in parallel).
fn parse_bulk(body: &[u8]) -> Result<Vec<(String, String, Value)>, Box<Response>> {
    if !body.is_empty() && !body.ends_with(b"\n") {
        return Err(Box::new(es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        )));
    }
    let lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() || !lines.len().is_multiple_of(2) {
        return Err(Box::new(es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added or a source line is missing;",
        )));
    }
    let mut parsed = Vec::new();
    for pair in lines.chunks(2) {
        let (Ok(action), Ok(source)) = (
            serde_json::from_slice::<Value>(pair[0]),
            serde_json::from_slice::<Value>(pair[1]),
        ) else {
            return Err(Box::new(es_error(
                StatusCode::BAD_REQUEST,
                "x_content_parse_exception",
                "a line of the bulk body is not JSON",
            )));
        };
        let Some(create) = action.get("create") else {
            return Err(Box::new(es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "only create actions are accepted (data streams)",
            )));
        };
        let index = create["_index"].as_str().unwrap_or("default").to_string();
        let Some(id) = create["_id"].as_str() else {
            return Err(Box::new(es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "the fake wants an _id on every create",
            )));
        };
        parsed.push((index, id.to_string(), source));
    }
    Ok(parsed)
}

async fn bulk(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = parse_bulk(&body);
    let mut inner = inner.lock().expect("es fake lock");
    if let Some(key) = &inner.api_key {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            None => {
                return es_error(
                    StatusCode::UNAUTHORIZED,
                    "security_exception",
                    "missing authentication credentials for REST request [/_bulk]",
                );
            }
            Some(v) if v.strip_prefix("ApiKey ") != Some(key.as_str()) => {
                return es_error(
                    StatusCode::FORBIDDEN,
                    "security_exception",
                    "unable to authenticate with provided credentials",
                );
            }
            Some(_) => {}
        }
    }
    inner.received += 1;
    match inner.failure {
        EsFailure::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return es_error(status, "scripted_failure", "the fake was told to fail");
        }
        EsFailure::TenthsFailing(n) if (inner.received % 10) < u64::from(n) => {
            return es_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "scripted_failure",
                "the fake was told to fail this request",
            );
        }
        _ => {}
    }
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(refused) => return *refused,
    };
    inner
        .requests
        .push(parsed.iter().map(|(_, id, _)| id.clone()).collect());
    let mut errors = false;
    let mut items = Vec::new();
    for (index, id, source) in parsed {
        let scripted = inner.scripted.get_mut(&id).and_then(VecDeque::pop_front);
        let key = (index.clone(), id.clone());
        let status = match scripted {
            Some(status) => status,
            None if inner.documents.contains_key(&key) => 409,
            None => {
                inner.documents.insert(key, source);
                201
            }
        };
        let mut item = json!({ "_index": index, "_id": id, "status": status });
        if status >= 300 {
            errors = true;
            let (kind, reason) = match status {
                409 => (
                    "version_conflict_engine_exception",
                    "document already exists",
                ),
                429 => (
                    "es_rejected_execution_exception",
                    "rejected execution (queue capacity reached)",
                ),
                400 => ("mapper_parsing_exception", "failed to parse field"),
                _ => ("scripted_failure", "the fake was told to fail this item"),
            };
            item["error"] = json!({ "type": kind, "reason": reason });
        } else {
            item["result"] = json!("created");
        }
        items.push(json!({ "create": item }));
    }
    (
        StatusCode::OK,
        axum::Json(json!({ "took": 1, "errors": errors, "items": items })),
    )
        .into_response()
}
