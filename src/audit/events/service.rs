//! The Events API source inside `opsync run` and `opsync once`: the token read (from Connect
//! for an `op://` reference), its features checked at start, then the read loop (replays
//! first, then every stream, every `poll_interval`, backing off after failures).

use std::time::Duration;

use tokio::sync::watch;

use crate::audit::error::AuditError;
use crate::audit::events::client::EventsError;
use crate::audit::events::source::{EventsSource, StreamRead};
use crate::config::{EventsSourceSettings, EventsToken};
use crate::connect::client::ConnectClient;
use crate::connect::model::SecretString;
use crate::connect::reference::{ConnectResolver, ReferenceResolver as _};
use crate::delivery::RetryPolicy;
use crate::poll_loop::{PollFailure, PollLoop};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The source as `[audit.sources.events]` configures it, its token read and checked. A token
/// the API refuses, or one without a configured stream's feature, is an error; an API that
/// cannot be reached is not (the loop checks again before its first read).
pub async fn prepare(
    settings: &EventsSourceSettings,
    client: &ConnectClient,
    store: &Store,
) -> Result<Prepared, AuditError> {
    for above in settings.above_published_limits() {
        tracing::warn!(
            "audit.sources.events.{above}: the real Events API answers 429 past its limits"
        );
    }
    let token = token(settings, client).await?;
    let source = EventsSource::new(settings, token, store.clone())?;
    let checked = match source.check().await {
        Ok(token) => {
            tracing::info!(streams = ?settings.streams.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                features = ?token.features, url = %settings.url, "Events API token checked");
            true
        }
        Err(e) if definitive(&e) => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "the Events API token could not be checked yet; trying again before the first read");
            false
        }
    };
    Ok(Prepared {
        source,
        checked,
        poll_interval: settings.poll_interval,
    })
}

/// A source, whether its token was checked, and how often it reads.
pub struct Prepared {
    source: EventsSource,
    checked: bool,
    poll_interval: Duration,
}

impl Prepared {
    /// Reads until shutdown: open replays, then every stream, every `poll_interval`, backing
    /// off after failures by `retry`.
    pub async fn run(
        mut self,
        retry: RetryPolicy,
        wake: watch::Sender<u64>,
        mut shutdown: Shutdown,
    ) {
        let mut reading = PollLoop::new("reading the Events API", self.poll_interval, retry);
        while reading.due(&mut shutdown).await {
            let read = self.once(&wake, &mut shutdown).await;
            let result = match read {
                Ok(reads) => {
                    log(&reads);
                    Ok(())
                }
                Err(e) if definitive(&e) => {
                    tracing::error!(error = %e, "the Events API refuses the token; its streams are not read until it is fixed");
                    Err(PollFailure::new(&e, None))
                }
                Err(e) => {
                    let retry_after = match &e {
                        AuditError::Events(e) => e.retry_after(),
                        _ => None,
                    };
                    Err(PollFailure::new(&e, retry_after))
                }
            };
            reading.done(result);
        }
    }

    /// One read: the token check if it is still due, open replays, then every stream.
    pub async fn once(
        &mut self,
        wake: &watch::Sender<u64>,
        shutdown: &mut Shutdown,
    ) -> Result<Vec<StreamRead>, AuditError> {
        if !self.checked {
            self.source.check().await?;
            self.checked = true;
        }
        self.source.replay(wake, shutdown).await?;
        self.source.read(wake, shutdown).await
    }
}

/// The bearer token: from Connect for an `op://` reference, else as configured.
async fn token(
    settings: &EventsSourceSettings,
    client: &ConnectClient,
) -> Result<SecretString, AuditError> {
    match &settings.token {
        EventsToken::Reference(r) => ConnectResolver { client }
            .resolve(r)
            .await
            .map_err(|why| AuditError::EventsToken(format!("{r}: {why}"))),
        EventsToken::Env { value, .. } | EventsToken::Inline(value) => Ok(value.clone()),
    }
}

/// A failure that waiting will not mend: a missing feature, or the token refused (401/403).
fn definitive(e: &AuditError) -> bool {
    match e {
        AuditError::MissingFeatures { .. } | AuditError::EventsToken(_) => true,
        AuditError::Events(EventsError::Status { status, .. }) => matches!(status, 401 | 403),
        _ => false,
    }
}

/// One line per stream that read something or was throttled.
fn log(reads: &[StreamRead]) {
    for r in reads {
        let stream = r.stream.as_str();
        if r.added > 0 || r.throttled > 0 {
            tracing::info!(
                stream,
                added = r.added,
                requests = r.requests,
                throttled = r.throttled,
                "Events API read"
            );
        } else {
            tracing::debug!(stream, requests = r.requests, "Events API: nothing new");
        }
    }
}
