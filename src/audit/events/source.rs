//! Reading the Events API into the outbox: each configured stream from its saved cursor (a
//! reset cursor at `start_time` the first time), page after page while `has_more`, every page
//! added together with the cursor that follows it; 429s waited out on the same cursor; and
//! the replays `opsync audit replay --stream` asked for, as copies addressed to one sink.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::audit::error::AuditError;
use crate::audit::events::budget::Budget;
use crate::audit::events::client::{EventsClient, Introspection, Page, PageFrom};
use crate::audit::events::normalize::normalize;
use crate::config::EventStream;
use crate::config::{EventsSourceSettings, StartTime};
use crate::connect::model::SecretString;
use crate::shutdown::Shutdown;
use crate::store::{NewRecord, Replay, Store};
use crate::telemetry::names;

/// Longest wait after a 429 without `Retry-After` (the waits double from one second).
const THROTTLE_MAX: Duration = Duration::from_secs(60);

/// What one read of one stream did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRead {
    pub stream: EventStream,
    pub requests: u32,
    /// Records new to the outbox.
    pub added: u64,
    /// Requests answered 429 (and asked again after the wait).
    pub throttled: u32,
}

impl StreamRead {
    /// Nothing read yet from `stream`.
    fn of(stream: EventStream) -> Self {
        Self {
            stream,
            requests: 0,
            added: 0,
            throttled: 0,
        }
    }
}

/// The Events API source of one `[audit.sources.events]`.
pub struct EventsSource {
    client: EventsClient,
    store: Store,
    streams: Vec<EventStream>,
    limit: u32,
    start: StartTime,
    budget: Budget,
}

impl EventsSource {
    /// The source, with the token already read.
    pub fn new(
        settings: &EventsSourceSettings,
        token: SecretString,
        store: Store,
    ) -> Result<Self, AuditError> {
        let client = EventsClient::new(
            settings.url.clone(),
            token,
            settings.api_version,
            settings.timeout,
        )?;
        Ok(Self {
            client,
            store,
            streams: settings.streams.clone(),
            limit: settings.limit,
            start: settings.start_time,
            budget: Budget::new(settings.requests_per_minute, settings.requests_per_hour),
        })
    }

    /// Asks the API what the token may read; an error naming every configured stream it
    /// cannot.
    pub async fn check(&self) -> Result<Introspection, AuditError> {
        self.budget.take().await;
        let token = self.client.introspect().await?;
        let missing: Vec<&str> = self
            .streams
            .iter()
            .map(|s| s.as_str())
            .filter(|s| !token.features.iter().any(|f| f == s))
            .collect();
        if !missing.is_empty() {
            return Err(AuditError::MissingFeatures {
                missing: missing.join(", "),
                features: token.features.join(", "),
            });
        }
        Ok(token)
    }

    /// Reads every stream until the API has nothing more, the streams side by side (each page
    /// of one is parsed and stored while another's request is under way); wakes the sinks after
    /// each page. Stops early (without error) on shutdown.
    pub async fn read(
        &self,
        wake: &watch::Sender<u64>,
        shutdown: &Shutdown,
    ) -> Result<Vec<StreamRead>, AuditError> {
        let drains = self.streams.iter().map(|&stream| {
            let mut shutdown = shutdown.clone();
            async move { self.drain(stream, wake, &mut shutdown).await }
        });
        futures_util::future::join_all(drains)
            .await
            .into_iter()
            .collect()
    }

    /// One stream, from its saved cursor until `has_more` is false.
    async fn drain(
        &self,
        stream: EventStream,
        wake: &watch::Sender<u64>,
        shutdown: &mut Shutdown,
    ) -> Result<StreamRead, AuditError> {
        let mut read = StreamRead::of(stream);
        let name = stream.as_str();
        let mut from = match self.store.audit_stream(name)? {
            Some(mark) => PageFrom::Cursor(mark.cursor),
            None => PageFrom::Window {
                limit: self.limit,
                start: Some(self.start.at(Utc::now())),
                end: None,
            },
        };
        loop {
            let Some(page) = self.fetch(stream, &from, &mut read, shutdown).await? else {
                return Ok(read);
            };
            let records = records_of(stream, &page)?;
            let cursor = page.cursor.clone();
            let added = self
                .store
                .blocking(move |store| store.audit_append_stream(name, &records, &cursor))
                .await?;
            metrics::counter!(names::AUDIT_EVENTS_RECORDS_TOTAL, "stream" => name).increment(added);
            read.added += added;
            if added > 0 {
                wake.send_modify(|n| *n = n.wrapping_add(1));
            }
            if !page.has_more {
                return Ok(read);
            }
            from = PageFrom::Cursor(page.cursor);
        }
    }

    /// Works the open replays, each to its end; returns the records added for them.
    pub async fn replay(
        &self,
        wake: &watch::Sender<u64>,
        shutdown: &mut Shutdown,
    ) -> Result<u64, AuditError> {
        let open = self
            .store
            .blocking(|store| store.audit_replays_open())
            .await?;
        let mut added = 0;
        for replay in open {
            added += self.replay_one(&replay, wake, shutdown).await?;
        }
        Ok(added)
    }

    async fn replay_one(
        &self,
        replay: &Replay,
        wake: &watch::Sender<u64>,
        shutdown: &mut Shutdown,
    ) -> Result<u64, AuditError> {
        let stream = match replay.stream.parse::<EventStream>() {
            Ok(s) if self.streams.contains(&s) => s,
            _ => {
                let reason = format!(
                    "stream {} is not read (audit.sources.events.streams)",
                    replay.stream
                );
                self.store.audit_replay_failed(replay.id, &reason)?;
                tracing::warn!(replay = replay.id, %reason, "audit replay dropped");
                return Ok(0);
            }
        };
        let mut from = match &replay.cursor {
            Some(cursor) => PageFrom::Cursor(cursor.clone()),
            None => PageFrom::Window {
                limit: self.limit,
                start: Some(replay.start_time),
                end: Some(replay.end_time),
            },
        };
        let mut read = StreamRead::of(stream);
        let mut added = 0;
        loop {
            let Some(page) = self.fetch(stream, &from, &mut read, shutdown).await? else {
                return Ok(added);
            };
            let records = records_of(stream, &page)?;
            let (id, sink, cursor, done) = (
                replay.id,
                replay.sink.clone(),
                page.cursor.clone(),
                !page.has_more,
            );
            added += self
                .store
                .blocking(move |store| store.audit_replay_page(id, &sink, &records, &cursor, done))
                .await?;
            wake.send_modify(|n| *n = n.wrapping_add(1));
            if done {
                tracing::info!(replay = replay.id, stream = %stream, sink = %replay.sink,
                    records = added, "audit replay read");
                return Ok(added);
            }
            from = PageFrom::Cursor(page.cursor);
        }
    }

    /// One page, within the budget; a 429 is waited out (its `Retry-After`, else doubling
    /// waits) and asked again. `None` on shutdown.
    async fn fetch(
        &self,
        stream: EventStream,
        from: &PageFrom,
        read: &mut StreamRead,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Page>, AuditError> {
        let mut backoff = Duration::from_secs(1);
        loop {
            if shutdown.is_triggered() {
                return Ok(None);
            }
            self.budget.take().await;
            read.requests += 1;
            match self.client.page(stream, from).await {
                Ok(page) => return Ok(Some(page)),
                Err(e) if e.throttled() => {
                    read.throttled += 1;
                    let wait = e.retry_after().unwrap_or(backoff).min(THROTTLE_MAX);
                    backoff = (backoff * 2).min(THROTTLE_MAX);
                    metrics::counter!(names::AUDIT_EVENTS_WAITS_TOTAL, "reason" => "throttled")
                        .increment(1);
                    tracing::warn!(stream = %stream, wait_ms = wait.as_millis() as u64,
                        "the Events API asked to slow down (429); asking again after the wait");
                    tokio::select! {
                        () = shutdown.wait() => return Ok(None),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The page's items as outbox records.
fn records_of(stream: EventStream, page: &Page) -> Result<Vec<NewRecord>, AuditError> {
    page.items
        .iter()
        .enumerate()
        .map(|(i, raw)| normalize(stream, raw, i + 1).map_err(AuditError::from))
        .collect()
}
