//! The built-in `splunk-hec` audit sink: posts a batch to HEC's `/services/collector/event` as
//! concatenated JSON envelopes (split at `max-batch-bytes`), on a channel of its own, then polls
//! `/services/collector/ack` until Splunk confirms every ack id of the batch. The batch is `ok`
//! only then; an ack still pending after `ack-timeout-ms` is `retryable` (the batch is sent again,
//! so HEC may hold duplicates: `request_id` is an indexed field to dedupe on at search time).
//!
//! Config: `url` (required, `http(s)://host[:port]`; grant its host:port), `token` (required
//! secret, the HEC token), `format` (`raw` default, `ocsf`, `ecs`), `index`, `source` and
//! `sourcetype` (set, they apply to every record; unset, a Connect activity record gets
//! `op-connect:activity` and `1password:connect:activity`, an Events API record
//! `op-events:<stream>` and `1password:<stream>`, e.g. `1password:signinattempts`), `host`, `ack`
//! (`true` default: a 200 without an ack id is then `misconfigured`; `false` when the token has
//! indexer acknowledgement off: a 200 is taken as delivered), `ack-timeout-ms` (default 10000),
//! `ack-poll-ms` (first pause, doubled up to 2 s, at most 10 polls; default 250),
//! `max-batch-bytes` (default 1000000).

mod hec;

use opsync_audit_kit::format::Format;
use opsync_audit_kit::http::{self, Endpoint, Request};
use opsync_audit_kit::settings::{check_keys, flag, number, plain, required, secret};
use opsync_audit_kit::split;
use opsync_audit_kit::{
    AuditEvent, Guest, PluginError, Secret, misconfigured, retryable, sleep_ms, with_retry_hint,
};

use hec::{Envelope, EventAnswer, channel};

const KNOWN_KEYS: &[&str] = &[
    "url",
    "token",
    "format",
    "index",
    "source",
    "sourcetype",
    "host",
    "ack",
    "ack-timeout-ms",
    "ack-poll-ms",
    "max-batch-bytes",
];
const EVENT_PATH: &str = "/services/collector/event";
const ACK_PATH: &str = "/services/collector/ack";
/// Ack polls per call; with the event posts they stay under the sandbox's 16 requests per call.
const MAX_ACK_POLLS: u32 = 10;
const MAX_ACK_PAUSE_MS: u64 = 2_000;

struct Settings {
    url: Endpoint,
    token: Secret,
    format: Format,
    envelope: Envelope,
    ack: bool,
    ack_timeout_ms: u32,
    ack_poll_ms: u32,
    max_batch_bytes: u32,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        Ok(Self {
            url: Endpoint::parse("url", &required("url")?)?,
            token: secret("token")?,
            format: Format::load(Format::Raw)?,
            envelope: Envelope {
                index: plain("index")?,
                source: plain("source")?,
                sourcetype: plain("sourcetype")?,
                host: plain("host")?,
            },
            ack: flag("ack", true)?,
            ack_timeout_ms: number("ack-timeout-ms", 0..=25_000, 10_000)?,
            ack_poll_ms: number("ack-poll-ms", 10..=10_000, 250)?,
            max_batch_bytes: number("max-batch-bytes", 1_024..=100_000_000, 1_000_000)?,
        })
    }

    fn what(&self, path: &str) -> String {
        format!(
            "splunk-hec POST {}{}{path}",
            self.url.origin(),
            self.url.base_path
        )
    }

    fn post(
        &self,
        path: String,
        channel: &str,
        body: Vec<u8>,
    ) -> Result<http::Response, PluginError> {
        http::send(Request {
            method: "POST",
            endpoint: &self.url,
            path,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "opsync-splunk-hec".into()),
                (
                    "authorization".into(),
                    format!("Splunk {}", self.token.reveal()),
                ),
                ("x-splunk-request-channel".into(), channel.into()),
            ],
            body: Some(body),
        })
    }
}

/// Sends every chunk of the batch; returns the ack ids HEC handed out.
fn send(settings: &Settings, channel: &str, batch: &[AuditEvent]) -> Result<Vec<u64>, PluginError> {
    let what = settings.what(EVENT_PATH);
    let mut lines = Vec::with_capacity(batch.len());
    for event in batch {
        let doc = settings.format.render(event)?;
        lines.push(settings.envelope.line(event, &doc)?);
    }
    let mut ack_ids = Vec::new();
    let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
    for range in split::by_size(&sizes, settings.max_batch_bytes as usize) {
        let first = range.start;
        let body = lines[range].concat();
        let response = settings.post(EVENT_PATH.into(), channel, body)?;
        match hec::event_answer(response.status, &response.body) {
            EventAnswer::Accepted(Some(id)) => ack_ids.push(id),
            EventAnswer::Accepted(None) if settings.ack => {
                return Err(misconfigured(format!(
                    "{what}: status {}: HEC answered without an ackId, so indexer \
                     acknowledgement is off for this token; turn it on, or set `ack = false` to \
                     take a 200 as delivered",
                    response.status
                )));
            }
            EventAnswer::Accepted(None) => {}
            EventAnswer::Failed(kind, detail, invalid) => {
                let detail = match invalid {
                    Some(n) => match batch.get(first + n) {
                        Some(event) => format!("{detail}; record {} was refused", event.request_id),
                        None => detail,
                    },
                    None => detail,
                };
                let error = hec::error(kind, &what, response.status, &detail);
                return Err(with_retry_hint(error, response.retry_after()));
            }
        }
    }
    Ok(ack_ids)
}

/// Polls the ack endpoint until every id is confirmed or `ack-timeout-ms` passes. The pause
/// between polls starts at `ack-poll-ms` and doubles up to 2 s, and there are at most
/// `MAX_ACK_POLLS` polls: the sandbox allows a call 16 HTTP requests.
fn confirm(settings: &Settings, channel: &str, mut pending: Vec<u64>) -> Result<(), PluginError> {
    let path = format!("{ACK_PATH}?channel={}", http::encode(channel));
    let what = settings.what(ACK_PATH);
    let mut waited: u64 = 0;
    let mut pause = u64::from(settings.ack_poll_ms);
    let timeout = u64::from(settings.ack_timeout_ms);
    for _ in 0..MAX_ACK_POLLS {
        if waited >= timeout {
            break;
        }
        let nap = pause.min(timeout - waited);
        sleep_ms(nap);
        waited += nap;
        pause = (pause * 2).min(MAX_ACK_PAUSE_MS);
        let body = serde_json::to_vec(&serde_json::json!({ "acks": pending }))
            .map_err(|e| retryable(format!("{what}: cannot render the ack query: {e}")))?;
        let response = settings.post(path.clone(), channel, body)?;
        match hec::ack_answer(response.status, &response.body) {
            Ok(confirmed) => pending.retain(|id| !confirmed.contains(id)),
            Err((kind, detail)) => {
                let error = hec::error(kind, &what, response.status, &detail);
                return Err(with_retry_hint(error, response.retry_after()));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(retryable(format!(
        "{what}: {} ack ids not confirmed within {waited} ms (indexer acknowledgement timed out)",
        pending.len(),
    )))
}

struct SplunkHec;

impl Guest for SplunkHec {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        if batch.is_empty() {
            return Ok(());
        }
        let settings = Settings::load()?;
        let channel = channel();
        let ack_ids = send(&settings, &channel, &batch)?;
        if settings.ack && !ack_ids.is_empty() {
            confirm(&settings, &channel, ack_ids)?;
        }
        Ok(())
    }
}

opsync_audit_kit::export_audit_sink!(SplunkHec);
