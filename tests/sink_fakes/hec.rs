//! A FAKE Splunk HTTP Event Collector (no real HEC can run here): `/services/collector/event`
//! with token check (401 codes 2/3, 403 code 4), concatenated-JSON parsing (400 code 5/6/12 with
//! `invalid-event-number`), the `X-Splunk-Request-Channel` requirement (400 code 10), ack ids per
//! channel, `/services/collector/ack`, and scripted failures (busy 503 code 9, ack disabled 400
//! code 14, acks that never confirm). Response codes and texts follow Splunk's documentation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::Server;

/// What the fake does wrong, on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HecFailure {
    /// Behave like a healthy HEC with indexer acknowledgement on.
    #[default]
    None,
    /// Every event post gets 503 code 9 "Server is busy".
    Busy,
    /// The token has indexer acknowledgement off: 400 code 14 when asked for acks.
    AckDisabled,
    /// Ack ids are handed out but never confirmed.
    NeverAck,
    /// Accept events but hand out no ack id (HEC with ack off on the token).
    NoAckIds,
}

/// Event envelopes as received (shared, not copied, between the lists that hold them).
type Envelopes = Vec<Arc<Value>>;

#[derive(Default)]
struct Inner {
    token: String,
    failure: HecFailure,
    /// Polls an ack id stays unconfirmed before it confirms.
    ack_after_polls: u32,
    next_ack: u64,
    /// channel -> ack id -> (polls seen, events of that post).
    pending: HashMap<String, HashMap<u64, (u32, Envelopes)>>,
    /// Envelopes accepted, in order.
    received: Envelopes,
    /// Envelopes whose ack was confirmed (or accepted without an ack id).
    indexed: Envelopes,
    event_posts: usize,
    ack_polls: usize,
    channels: Vec<String>,
}

/// The running fake.
pub struct HecFake {
    server: Server,
    inner: Arc<Mutex<Inner>>,
}

impl HecFake {
    /// Starts a fake whose only valid token is `token`; acks confirm on the second poll.
    pub async fn start(token: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_string(),
            ack_after_polls: 1,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/services/collector/event", post(event))
            .route("/services/collector", post(event))
            .route("/services/collector/ack", post(ack))
            .with_state(inner.clone());
        Self {
            server: Server::start(app).await,
            inner,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("hec fake lock")
    }

    pub fn set_failure_mode(&self, failure: HecFailure) {
        self.lock().failure = failure;
    }

    /// How many polls an ack id stays unconfirmed.
    pub fn set_ack_after_polls(&self, polls: u32) {
        self.lock().ack_after_polls = polls;
    }

    /// Every envelope accepted by the event endpoint, acknowledged or not.
    pub fn received(&self) -> Vec<Value> {
        self.lock().received.iter().map(|e| (**e).clone()).collect()
    }

    /// The envelopes HEC has confirmed as indexed.
    pub fn events(&self) -> Vec<Value> {
        self.lock().indexed.iter().map(|e| (**e).clone()).collect()
    }

    /// How many envelopes HEC has confirmed (without copying them).
    pub fn event_count(&self) -> usize {
        self.lock().indexed.len()
    }

    /// How many confirmed envelopes match `keep` (without copying them).
    pub fn count_where(&self, keep: impl Fn(&Value) -> bool) -> usize {
        self.lock().indexed.iter().filter(|e| keep(e)).count()
    }

    /// The records HEC confirmed as indexed: the `event` of each confirmed envelope.
    pub fn documents(&self) -> Vec<Value> {
        self.lock()
            .indexed
            .iter()
            .map(|envelope| envelope["event"].clone())
            .collect()
    }

    pub fn event_posts(&self) -> usize {
        self.lock().event_posts
    }

    pub fn ack_polls(&self) -> usize {
        self.lock().ack_polls
    }

    /// The request channels seen, in order of first use.
    pub fn channels(&self) -> Vec<String> {
        self.lock().channels.clone()
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn hec_error(status: StatusCode, text: &str, code: u32) -> Response {
    answer(status, json!({ "text": text, "code": code }))
}

/// The token check shared by both endpoints: the refusal, if any.
fn refusal(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Some(hec_error(StatusCode::UNAUTHORIZED, "Token is required", 2));
    };
    let Some(token) = value.strip_prefix("Splunk ") else {
        return Some(hec_error(
            StatusCode::UNAUTHORIZED,
            "Invalid authorization",
            3,
        ));
    };
    (token != inner.token).then(|| hec_error(StatusCode::FORBIDDEN, "Invalid token", 4))
}

fn channel(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query.get("channel").cloned())
}

/// The envelopes of an event body, or HEC's refusal (parsed before the lock is taken, so
/// concurrent requests are parsed in parallel, as on a real indexer).
fn parse_events(body: &[u8]) -> Result<Envelopes, Box<Response>> {
    let mut events = Vec::new();
    for (n, parsed) in serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .enumerate()
    {
        let refuse = |text: &str, code: u32| {
            answer(
                StatusCode::BAD_REQUEST,
                json!({ "text": text, "code": code, "invalid-event-number": n }),
            )
        };
        let Ok(envelope) = parsed else {
            return Err(Box::new(refuse("Invalid data format", 6)));
        };
        match envelope.get("event") {
            None => return Err(Box::new(refuse("Event field is required", 12))),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(Box::new(refuse("Event field cannot be blank", 13)));
            }
            Some(_) => {}
        }
        events.push(Arc::new(envelope));
    }
    Ok(events)
}

async fn event(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse_events(&body);
    let mut inner = inner.lock().expect("hec fake lock");
    if let Some(refused) = refusal(&inner, &headers) {
        return refused;
    }
    inner.event_posts += 1;
    if inner.failure == HecFailure::Busy {
        return hec_error(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9);
    }
    let acks = !matches!(
        inner.failure,
        HecFailure::NoAckIds | HecFailure::AckDisabled
    );
    let channel = channel(&headers, &query);
    if acks && channel.is_none() {
        return hec_error(StatusCode::BAD_REQUEST, "Data channel is missing", 10);
    }
    let events = match parsed {
        Ok(events) => events,
        Err(refused) => return *refused,
    };
    if events.is_empty() {
        return hec_error(StatusCode::BAD_REQUEST, "No data", 5);
    }
    inner.received.extend(events.iter().cloned());
    let Some(channel) = channel.filter(|_| acks) else {
        inner.indexed.extend(events);
        return answer(StatusCode::OK, json!({ "text": "Success", "code": 0 }));
    };
    if !inner.channels.contains(&channel) {
        inner.channels.push(channel.clone());
    }
    let id = inner.next_ack;
    inner.next_ack += 1;
    inner
        .pending
        .entry(channel)
        .or_default()
        .insert(id, (0, events));
    answer(
        StatusCode::OK,
        json!({ "text": "Success", "code": 0, "ackId": id }),
    )
}

async fn ack(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().expect("hec fake lock");
    if let Some(refused) = refusal(&inner, &headers) {
        return refused;
    }
    inner.ack_polls += 1;
    if inner.failure == HecFailure::AckDisabled {
        return hec_error(StatusCode::BAD_REQUEST, "ACK is disabled", 14);
    }
    let Some(channel) = channel(&headers, &query) else {
        return hec_error(StatusCode::BAD_REQUEST, "Data channel is missing", 10);
    };
    let Some(ids) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["acks"].as_array().cloned())
    else {
        return hec_error(StatusCode::BAD_REQUEST, "Invalid data format", 6);
    };
    let (after, never) = (inner.ack_after_polls, inner.failure == HecFailure::NeverAck);
    let mut confirmed = Vec::new();
    let mut acks = serde_json::Map::new();
    let pending = inner.pending.entry(channel).or_default();
    for id in ids.iter().filter_map(Value::as_u64) {
        let done = match pending.get_mut(&id) {
            Some((polls, _)) if !never && *polls >= after => true,
            Some((polls, _)) => {
                *polls += 1;
                false
            }
            None => false,
        };
        if done && let Some((_, events)) = pending.remove(&id) {
            confirmed.extend(events);
        }
        acks.insert(id.to_string(), Value::Bool(done));
    }
    inner.indexed.extend(confirmed);
    answer(StatusCode::OK, json!({ "acks": acks }))
}
