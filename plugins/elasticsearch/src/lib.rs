//! The built-in `elasticsearch` audit sink: ships a batch with one `_bulk` request of `create`
//! actions whose `_id` is the record's `request-id`, so a re-sent record comes back 409 (already
//! delivered) instead of making a duplicate. Items answered 429 or 5xx are re-sent, and only
//! those, a bounded number of times inside the call; the batch is `ok` once every item is 201 or
//! 409.
//!
//! Config: `url` (required, `http(s)://host[:port][/prefix]`; grant its host:port), `index` (set,
//! every record goes there; unset, a Connect activity record goes to
//! `logs-onepassword_connect.activity-default` and an Events API record to the data stream of its
//! ECS dataset, `logs-1password.<stream>-default`), `api-key` (optional secret, sent as
//! `Authorization: ApiKey <value>`), `format` (`ecs` default, `ocsf`, `raw`), `max-retries`
//! (re-sends of failed items per call, 0-10, default 3), `retry-backoff-ms` (first pause, doubled
//! each time, default 200), `max-bulk-bytes` (a batch is split into `_bulk` requests of at most
//! this many bytes, default 900000: the sandbox caps a request body at 1 MiB by default).

mod bulk;

use std::borrow::Cow;

use opsync_audit_kit::format::Format;
use opsync_audit_kit::http::{self, Endpoint, Request};
use opsync_audit_kit::settings::{check_keys, number, optional_secret, plain, required};
use opsync_audit_kit::source::Source;
use opsync_audit_kit::split;
use opsync_audit_kit::{
    AuditEvent, Guest, PluginError, Secret, permanent, retryable, sleep_ms, with_retry_hint,
};

use bulk::{ItemOutcome, outcomes};

const KNOWN_KEYS: &[&str] = &[
    "url",
    "index",
    "api-key",
    "format",
    "max-retries",
    "retry-backoff-ms",
    "max-bulk-bytes",
];
const DEFAULT_INDEX: &str = "logs-onepassword_connect.activity-default";
const PATH: &str = "/_bulk";

/// The index of a record of `source` when the config sets none: Connect's activity keeps its
/// data stream, an Events API stream gets the one of its ECS dataset (`1password.<stream>`).
fn default_index(source: Source) -> Cow<'static, str> {
    match source {
        Source::Activity => Cow::Borrowed(DEFAULT_INDEX),
        Source::Events(stream) => Cow::Owned(format!("logs-1password.{stream}-default")),
    }
}

struct Settings {
    url: Endpoint,
    /// The configured index, for every record.
    index: Option<String>,
    api_key: Option<Secret>,
    format: Format,
    max_retries: u32,
    backoff_ms: u32,
    max_bulk_bytes: u32,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        Ok(Self {
            url: Endpoint::parse("url", &required("url")?)?,
            index: plain("index")?,
            api_key: optional_secret("api-key")?,
            format: Format::load(Format::Ecs)?,
            max_retries: number("max-retries", 0..=10, 3)?,
            backoff_ms: number("retry-backoff-ms", 0..=5_000, 200)?,
            max_bulk_bytes: number("max-bulk-bytes", 1_024..=100_000_000, 900_000)?,
        })
    }

    /// The index `event` goes to.
    fn index(&self, event: &AuditEvent) -> Result<Cow<'_, str>, PluginError> {
        Ok(match &self.index {
            Some(index) => Cow::Borrowed(index),
            None => default_index(Source::of(event)?),
        })
    }

    fn what(&self) -> String {
        format!(
            "elasticsearch POST {}{}{PATH}",
            self.url.origin(),
            self.url.base_path
        )
    }

    fn post(&self, ndjson: Vec<u8>) -> Result<http::Response, PluginError> {
        let mut headers = vec![
            ("content-type".into(), "application/x-ndjson".into()),
            ("accept".into(), "application/json".into()),
            ("user-agent".into(), "opsync-elasticsearch".into()),
        ];
        if let Some(key) = &self.api_key {
            headers.push(("authorization".into(), format!("ApiKey {}", key.reveal())));
        }
        http::send(Request {
            method: "POST",
            endpoint: &self.url,
            path: PATH.into(),
            headers,
            body: Some(ndjson),
        })
    }
}

/// The reason ES gave for a refused request: `error.type: error.reason`.
fn reason(response: &http::Response) -> String {
    let Some(json) = response.json() else {
        return String::new();
    };
    let error = &json["error"];
    match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_string(),
        _ => error.as_str().unwrap_or_default().to_string(),
    }
}

fn ship(settings: &Settings, batch: &[AuditEvent]) -> Result<(), PluginError> {
    let what = settings.what();
    let mut lines = Vec::with_capacity(batch.len());
    for event in batch {
        let doc = settings.format.render(event)?;
        let index = settings.index(event)?;
        lines.push(
            bulk::lines(&index, event, &doc).map_err(|e| {
                permanent(format!("record {}: cannot render: {e}", event.request_id))
            })?,
        );
    }
    // Indexes into `batch` still to be acknowledged.
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut rejected: Vec<String> = Vec::new();
    let mut pause = u64::from(settings.backoff_ms);
    let mut last_error = String::new();
    // The `Retry-After` of the last refused request, passed on when the batch is given up.
    let mut last_hint = None;
    for attempt in 0..=settings.max_retries {
        if attempt > 0 {
            sleep_ms(pause);
            pause = pause.saturating_mul(2);
        }
        let mut again = Vec::new();
        let sizes: Vec<usize> = pending.iter().map(|&i| lines[i].len()).collect();
        for range in split::by_size(&sizes, settings.max_bulk_bytes as usize) {
            let chunk = &pending[range];
            let body: Vec<u8> = chunk
                .iter()
                .flat_map(|&i| lines[i].iter().copied())
                .collect();
            let response = settings.post(body)?;
            if !response.is_success() {
                match http::status_error(&what, response.status, &reason(&response)) {
                    PluginError::Retryable(retry) => {
                        last_error = retry.message;
                        last_hint = response.retry_after();
                        again.extend_from_slice(chunk);
                        continue;
                    }
                    other => return Err(other),
                }
            }
            let ids: Vec<&str> = chunk
                .iter()
                .map(|&i| batch[i].request_id.as_str())
                .collect();
            let results = outcomes(&response.body, &ids)
                .map_err(|e| retryable(format!("{what}: status {}: {e}", response.status)))?;
            for (&index, outcome) in chunk.iter().zip(results) {
                match outcome {
                    ItemOutcome::Stored | ItemOutcome::AlreadyStored => {}
                    ItemOutcome::Retry(status) => {
                        last_error = format!(
                            "{what}: record {} answered status {status}",
                            batch[index].request_id
                        );
                        last_hint = None;
                        again.push(index);
                    }
                    ItemOutcome::Rejected(status, why) => rejected.push(format!(
                        "record {} status {status}: {why}",
                        batch[index].request_id
                    )),
                }
            }
        }
        pending = again;
        if pending.is_empty() {
            break;
        }
    }
    if !pending.is_empty() {
        let error = retryable(format!(
            "{} of {} records not acknowledged after {} attempts; last: {last_error}",
            pending.len(),
            batch.len(),
            settings.max_retries + 1
        ));
        return Err(with_retry_hint(error, last_hint));
    }
    if !rejected.is_empty() {
        let shown: Vec<String> = rejected.iter().take(3).cloned().collect();
        return Err(permanent(format!(
            "{what}: {} of {} records rejected: {}",
            rejected.len(),
            batch.len(),
            shown.join("; ")
        )));
    }
    Ok(())
}

struct Elasticsearch;

impl Guest for Elasticsearch {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn ingest(batch: Vec<AuditEvent>) -> Result<(), PluginError> {
        if batch.is_empty() {
            return Ok(());
        }
        ship(&Settings::load()?, &batch)
    }
}

opsync_audit_kit::export_audit_sink!(Elasticsearch);

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_audit_kit::source::Stream;

    #[test]
    fn unset_indexes_follow_the_records_log() {
        assert_eq!(
            default_index(Source::Activity),
            "logs-onepassword_connect.activity-default"
        );
        assert_eq!(
            default_index(Source::Events(Stream::SignInAttempts)),
            "logs-1password.signinattempts-default"
        );
        assert_eq!(
            default_index(Source::Events(Stream::AuditEvents)),
            "logs-1password.auditevents-default"
        );
        assert_eq!(
            default_index(Source::Events(Stream::ItemUsages)),
            "logs-1password.itemusages-default"
        );
    }
}
