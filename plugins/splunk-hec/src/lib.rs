//! The built-in `splunk-hec` audit sink: posts a batch to HEC's `/services/collector/event` as
//! concatenated JSON envelopes (split at `max-batch-bytes`), on a channel of its own, then polls
//! `/services/collector/ack` until Splunk confirms every ack id of the batch. The batch is `ok`
//! only then; an ack still pending after `ack-timeout-ms` is `retryable` (the batch is sent again,
//! so HEC may hold duplicates: `request_id` is an indexed field to dedupe on at search time).
//!
//! Config: `url` (required, `http(s)://host[:port]`; grant its host:port), `token` (required
//! secret, the HEC token), `format` (`raw` default, `ocsf`, `ecs`), `index`, `source` (default
//! `op-connect:activity`), `sourcetype` (default `1password:connect:activity`), `host`, `ack`
//! (`true` default; `false` when the token has indexer acknowledgement off: a 200 is then taken as
//! delivered), `ack-timeout-ms` (default 10000), `ack-poll-ms` (default 250), `max-batch-bytes`
//! (default 1000000).

mod hec;

use opsync_audit_kit::format::Format;
use opsync_audit_kit::http::{self, Endpoint, Request};
use opsync_audit_kit::settings::{check_keys, flag, number, plain, required, secret};
use opsync_audit_kit::{AuditEvent, Guest, PluginError, Secret, retryable, sleep_ms};

use hec::{Envelope, EventAnswer, channel, chunks};

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
                source: plain("source")?.unwrap_or_else(|| "op-connect:activity".into()),
                sourcetype: plain("sourcetype")?
                    .unwrap_or_else(|| "1password:connect:activity".into()),
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
        lines.push(settings.envelope.line(event, doc)?);
    }
    let mut ack_ids = Vec::new();
    for (first, body) in chunks(&lines, settings.max_batch_bytes as usize) {
        let response = settings.post(EVENT_PATH.into(), channel, body)?;
        match hec::event_answer(response.status, &response.body) {
            EventAnswer::Accepted(Some(id)) => ack_ids.push(id),
            EventAnswer::Accepted(None) => {}
            EventAnswer::Failed(kind, detail, invalid) => {
                let detail = match invalid {
                    Some(n) => match batch.get(first + n) {
                        Some(event) => format!("{detail}; record {} was refused", event.request_id),
                        None => detail,
                    },
                    None => detail,
                };
                return Err(hec::error(kind, &what, response.status, &detail));
            }
        }
    }
    Ok(ack_ids)
}

/// Polls the ack endpoint until every id is confirmed or `ack-timeout-ms` passes.
fn confirm(settings: &Settings, channel: &str, mut pending: Vec<u64>) -> Result<(), PluginError> {
    let path = format!("{ACK_PATH}?channel={}", http::encode(channel));
    let what = settings.what(ACK_PATH);
    let polls = settings.ack_timeout_ms / settings.ack_poll_ms + 1;
    for poll in 0..polls {
        if poll > 0 {
            sleep_ms(settings.ack_poll_ms.into());
        }
        let body = serde_json::to_vec(&serde_json::json!({ "acks": pending }))
            .map_err(|e| retryable(format!("{what}: cannot render the ack query: {e}")))?;
        let response = settings.post(path.clone(), channel, body)?;
        match hec::ack_answer(response.status, &response.body) {
            Ok(confirmed) => pending.retain(|id| !confirmed.contains(id)),
            Err((kind, detail)) => return Err(hec::error(kind, &what, response.status, &detail)),
        }
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(retryable(format!(
        "{what}: {} ack ids not confirmed within {} ms (indexer acknowledgement timed out)",
        pending.len(),
        settings.ack_timeout_ms
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
