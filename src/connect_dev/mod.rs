//! The embedded Connect-compatible server behind `opsync connect-dev`: start, stop, tokens and faults.
//!
//! A faithful stand-in for a 1Password Connect server, for development and tests: ES256 tokens
//! with the real claim shape, Connect's status codes and messages, versions that move, files,
//! and the activity log. State lives in memory and optionally in a JSON state file. On the same
//! listener it serves a fake of the account-wide Events API (`events`), fed by the Connect
//! requests it answers.

mod activity;
mod auth;
mod caller;
pub mod cli;
mod dev_tokens;
mod error;
mod events;
mod faults;
mod generate;
mod handlers;
mod ids;
mod items;
mod patch;
mod persist;
mod seed;
mod server;
mod store;
mod telemetry;
mod totp;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use crate::connect::token::Access;

pub use dev_tokens::{GrantRequest, TokenRequest, TokenResponse};
pub use events::{
    EVENTS_TOKENS_PATH, EventsOptions, EventsTokenRequest, RateLimit, RateLimitParseError, Stream,
    UnknownFeature, parse_features,
};
pub use faults::{FaultSettings, SETTINGS_PATH as FAULTS_PATH};
pub use seed::{DEMO_OTP, ID_LIKE_TITLE};
pub use server::CONNECT_VERSION;

use auth::{Authority, KeyMaterial};
use events::Events;
use faults::Faults;
use server::App;
use store::Store;

/// How long `shutdown` waits for open requests before closing connections anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a new state starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    /// No vaults at all.
    Empty,
    /// Production, Staging and Shared vaults with items of every common category.
    Demo,
    /// `vaults` vaults of `items_per_vault` LOGIN items (for benchmarks).
    Bulk {
        vaults: usize,
        items_per_vault: usize,
    },
}

impl FromStr for Seed {
    type Err = DevServerError;

    /// `empty`, `demo`, or `bulk:VAULTSxITEMS` such as `bulk:10x1000`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || DevServerError::InvalidSeed(s.chars().take(40).collect());
        match s {
            "empty" => Ok(Seed::Empty),
            "demo" => Ok(Seed::Demo),
            _ => {
                let spec = s.strip_prefix("bulk:").ok_or_else(invalid)?;
                let (v, n) = spec.split_once(['x', 'X']).ok_or_else(invalid)?;
                let vaults: usize = v.parse().map_err(|_| invalid())?;
                let items_per_vault: usize = n.parse().map_err(|_| invalid())?;
                if vaults == 0 || vaults > 1000 || items_per_vault > 1_000_000 {
                    return Err(invalid());
                }
                Ok(Seed::Bulk {
                    vaults,
                    items_per_vault,
                })
            }
        }
    }
}

/// How to run a server.
#[derive(Clone, Debug)]
pub struct DevServerOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Applied only when the state file is absent or empty (or there is none).
    pub seed: Seed,
    /// The state file: read at start, written after changes and at shutdown.
    pub state: Option<PathBuf>,
    /// Added to every `/v1` response.
    pub latency: Duration,
    /// Share (0..=1) of `/v1` requests answered `500 {"status":500,"message":"Something went wrong"}`
    /// (and of Events API requests, with that API's error body).
    pub fail_rate: f64,
    /// The fake Events API: seeded history, capacity and throttling.
    pub events: EventsOptions,
}

impl Default for DevServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: Seed::Demo,
            state: None,
            latency: Duration::ZERO,
            fail_rate: 0.0,
            events: EventsOptions::default(),
        }
    }
}

/// Why the server could not start, mint, or run a command.
#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    State(#[from] persist::PersistError),
    #[error("the token signing key: {0}")]
    Key(#[from] auth::AuthError),
    #[error("seeding failed: {0}")]
    Seed(#[from] seed::SeedError),
    #[error("invalid seed '{0}': expected empty, demo or bulk:VAULTSxITEMS (e.g. bulk:10x1000)")]
    InvalidSeed(String),
    #[error("no vault named or with id '{0}'")]
    UnknownVault(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("the server at {host} refused: {message}")]
    Remote { host: String, message: String },
    #[error(transparent)]
    Feature(#[from] UnknownFeature),
}

/// A running server. Dropping it stops it without saving; call [`DevServer::shutdown`] to save.
pub struct DevServer {
    app: Arc<App>,
    addr: SocketAddr,
    token: String,
    state: Option<PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    serve: Option<JoinHandle<std::io::Result<()>>>,
    autosave: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl DevServer {
    /// Loads or seeds the state, binds, and serves in the background.
    pub async fn start(opts: DevServerOptions) -> Result<DevServer, DevServerError> {
        for (what, rate) in [
            ("fail rate", opts.fail_rate),
            ("Events 429 rate", opts.events.too_many_requests_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(DevServerError::InvalidArgument(format!(
                    "the {what} must be between 0 and 1, got {rate}"
                )));
            }
        }
        let loaded = match &opts.state {
            Some(path) => persist::load(path)?,
            None => None,
        };
        let fresh = loaded.is_none();
        let store = match loaded {
            Some(store) => store,
            None => new_store(opts.seed)?,
        };
        let authority = Authority::new(store.key.clone())?;
        let everything: Vec<(String, Access)> = store
            .vaults()
            .map(|v| (v.vault.id.clone(), Access::ReadWrite))
            .collect();
        let token = authority.mint(&everything, None)?;
        let changes = opts.state.as_ref().map(|_| Arc::new(Notify::new()));
        let events = Events::new(&store.key, &opts.events)?;
        let app = Arc::new(App::new(
            store,
            authority,
            Faults::new(opts.latency, opts.fail_rate),
            events,
            changes.clone(),
        ));
        if let (Some(path), true) = (&opts.state, fresh) {
            // Written at once, so `connect-dev token --state` works while the server runs.
            persist::save(&app, path).await?;
        }
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| DevServerError::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DevServerError::Bind {
                addr: opts.listen,
                source,
            })?;
        let router = server::router(Arc::clone(&app));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
        });
        let autosave = match (&opts.state, changes) {
            (Some(path), Some(changes)) => {
                let (tx, rx) = watch::channel(false);
                let task = tokio::spawn(persist::autosave(
                    Arc::clone(&app),
                    path.clone(),
                    changes,
                    rx,
                ));
                Some((tx, task))
            }
            _ => None,
        };
        tracing::info!(%addr, state = opts.state.as_deref().and_then(Path::to_str), "connect-dev listening");
        Ok(DevServer {
            app,
            addr,
            token,
            state: opts.state,
            stop: Some(stop_tx),
            serve: Some(serve),
            autosave,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (loopback when listening on every address).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// A token with read-write access to every vault, without expiry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A token for `grants` (vault name or id, access), expiring after `ttl` when given.
    pub fn mint_token(
        &self,
        grants: &[(String, Access)],
        ttl: Option<Duration>,
    ) -> Result<String, DevServerError> {
        let resolved = resolve_grants(&self.app.read(), grants)?;
        Ok(self.app.authority.mint(&resolved, ttl)?)
    }

    /// Stores `item` in the vault `vault_id` with `files` (name, content), as the server's own
    /// user: the Connect API cannot attach files or create a Document item, so a test or demo
    /// that needs one makes it here. The item is checked as `POST .../items` checks one, but
    /// for its category, which may be any. Returns its id.
    pub fn create_item_with_files(
        &self,
        vault_id: &str,
        item: crate::connect::model::Item,
        files: &[(&str, &[u8])],
    ) -> Result<String, DevServerError> {
        let item = items::complete(item, None, None)
            .map_err(|e| DevServerError::InvalidArgument(e.message().to_owned()))?;
        let files = files
            .iter()
            .map(|(name, content)| store::NewFile {
                name: (*name).to_owned(),
                section: None,
                content: content.to_vec(),
            })
            .collect();
        let mut store = self.app.write();
        let editor = store.key.server_user.clone();
        let id = store
            .create_item(vault_id, item, files, &editor)
            .map_err(|e| DevServerError::InvalidArgument(e.to_string()))?
            .item
            .id
            .clone();
        drop(store);
        self.app.changed();
        Ok(id)
    }

    /// Appends `n` synthetic activity records, `burst` per millisecond (see `ActivityLog::seed`).
    pub fn seed_activity(&self, n: usize, burst: usize) {
        self.app.activity.seed(n, burst);
    }

    /// Changes the injected latency and failure rate of `/v1` (and the Events API) at run time.
    pub fn set_faults(&self, latency: Duration, fail_rate: f64) {
        self.app.faults.set(latency, fail_rate);
    }

    /// An Events API token for `features` (all three when empty), expiring after `ttl` when given.
    pub fn events_token(
        &self,
        features: &[Stream],
        ttl: Option<Duration>,
    ) -> Result<String, DevServerError> {
        let features = if features.is_empty() {
            &Stream::ALL[..]
        } else {
            features
        };
        Ok(self.app.events.mint(features, ttl)?)
    }

    /// Changes the share of Events API requests answered 429 and their `Retry-After` at run time.
    pub fn set_events_faults(&self, too_many_requests_rate: f64, retry_after: Duration) {
        self.app
            .events
            .throttle
            .set_storm(too_many_requests_rate, retry_after);
    }

    /// Sets or lifts the per-token Events API budget at run time (spent budgets start over).
    pub fn set_events_rate_limit(&self, limit: Option<RateLimit>) {
        self.app.events.throttle.set_limit(limit);
    }

    /// Records an Events API stream holds now.
    pub fn events_len(&self, stream: Stream) -> usize {
        self.app.events.len(stream)
    }

    /// Stops accepting, lets open requests finish (up to a few seconds), then saves the state.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut serve) = self.serve.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut serve).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "connect-dev server error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "connect-dev server task failed"),
                Err(_) => {
                    tracing::warn!("connect-dev: open connections did not finish; closing them");
                    serve.abort();
                    let _ = serve.await;
                }
            }
        }
        if let Some((stop, task)) = self.autosave.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
        if let Some(path) = &self.state
            && let Err(e) = persist::save(&self.app, path).await
        {
            tracing::warn!(error = %e, "could not save the connect-dev state");
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serve) = self.serve.take() {
            serve.abort();
        }
        if let Some((stop, task)) = self.autosave.take() {
            let _ = stop.send(true);
            task.abort();
        }
    }
}

fn new_store(seed: Seed) -> Result<Store, DevServerError> {
    let mut store = Store::new(KeyMaterial::generate()?);
    match seed {
        Seed::Empty => {}
        Seed::Demo => seed::demo(&mut store)?,
        Seed::Bulk {
            vaults,
            items_per_vault,
        } => seed::bulk(&mut store, vaults, items_per_vault)?,
    }
    Ok(store)
}

/// Vault names or ids (or `*` for all) to vault ids.
fn resolve_grants(
    store: &Store,
    grants: &[(String, Access)],
) -> Result<Vec<(String, Access)>, DevServerError> {
    let mut resolved: Vec<(String, Access)> = Vec::new();
    for (name, access) in grants {
        let ids: Vec<String> = if name == "*" {
            store.vaults().map(|v| v.vault.id.clone()).collect()
        } else {
            let vault = store
                .find_vault(name)
                .ok_or_else(|| DevServerError::UnknownVault(name.clone()))?;
            vec![vault.vault.id.clone()]
        };
        for id in ids {
            match resolved.iter_mut().find(|(v, _)| *v == id) {
                Some((_, held)) if *access == Access::ReadWrite => *held = Access::ReadWrite,
                Some(_) => {}
                None => resolved.push((id, *access)),
            }
        }
    }
    Ok(resolved)
}

/// A token signed with the key in the state file at `path`, for its vaults (see `connect-dev token --state`).
pub fn mint_from_state(
    path: &std::path::Path,
    grants: &[(String, Access)],
    ttl: Option<Duration>,
) -> Result<String, DevServerError> {
    let store = persist::load(path)?.ok_or_else(|| {
        DevServerError::InvalidArgument(format!(
            "state file {} does not exist or is empty; start `opsync connect-dev --state {}` first",
            path.display(),
            path.display()
        ))
    })?;
    let resolved = resolve_grants(&store, grants)?;
    let authority = Authority::new(store.key.clone())?;
    Ok(authority.mint(&resolved, ttl)?)
}

/// An Events API token signed with the key in the state file at `path` (see `connect-dev token --events --state`).
pub fn mint_events_from_state(
    path: &std::path::Path,
    features: &[Stream],
    ttl: Option<Duration>,
) -> Result<String, DevServerError> {
    let store = persist::load(path)?.ok_or_else(|| {
        DevServerError::InvalidArgument(format!(
            "state file {} does not exist or is empty; start `opsync connect-dev --state {}` first",
            path.display(),
            path.display()
        ))
    })?;
    Ok(events::mint_with_key(&store.key, features, ttl)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!("demo".parse::<Seed>().ok(), Some(Seed::Demo));
        assert_eq!("empty".parse::<Seed>().ok(), Some(Seed::Empty));
        assert_eq!(
            "bulk:10x1000".parse::<Seed>().ok(),
            Some(Seed::Bulk {
                vaults: 10,
                items_per_vault: 1000
            })
        );
        for bad in ["", "bulk", "bulk:10", "bulk:0x5", "bulk:ax5", "demo2"] {
            assert!(bad.parse::<Seed>().is_err(), "{bad}");
        }
    }
}
