//! Where a PostgreSQL state lives and how to reach it: a `postgres://` URL that never holds the
//! password, the password read from an env var or a file, and TLS verified with rustls.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::postgres::PgError;
use crate::tls_trust::TlsTrust;

/// How long a connection attempt may take unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the password comes from. Never the URL: a URL is shown in logs and errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password (peer or certificate authentication, or `trust`).
    #[default]
    None,
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file, without a trailing newline.
    File(PathBuf),
}

impl PasswordSource {
    /// Reads the password; `key` names the setting in errors (`state.password_file`, ...).
    fn read(&self, key: &str) -> Result<Option<String>, PgError> {
        let fail = |reason: String| PgError::Password {
            from: key.to_owned(),
            reason,
        };
        let value = match self {
            PasswordSource::None => return Ok(None),
            PasswordSource::Env(name) => std::env::var(name)
                .map_err(|_| fail(format!("environment variable {name} is not set")))?,
            PasswordSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?,
        };
        let value = value.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(fail("the password is empty".into()));
        }
        Ok(Some(value.to_owned()))
    }
}

/// A PostgreSQL server and database to keep state in, ready to connect to.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    /// The URL as shown: no password, no query.
    shown: String,
    /// The TLS client configuration; `None` with `sslmode=disable` or a Unix socket.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.shown)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Reads a `postgres://user@host:port/database?sslmode=...` URL; `key` names where it came
    /// from in errors (`state.url`, `--to`). Query parameters, with libpq's names: `sslmode`
    /// (`verify-full`, the default, or `disable`), `sslrootcert` (a PEM file of CAs trusted
    /// besides the public roots), `host` (a Unix socket directory), `application_name`,
    /// `connect_timeout` (seconds).
    pub fn parse(key: &str, text: &str, password: &PasswordSource) -> Result<PgTarget, PgError> {
        let bad = |reason: &str| PgError::Url {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("the URL must start with postgres:// or postgresql://"));
        }
        if url.password().is_some() {
            return Err(bad(
                "the URL holds a password: remove it and name an environment variable or a file \
                 that holds it instead (password_env or password_file)",
            ));
        }
        if url.username().is_empty() {
            return Err(bad("the URL names no user (postgres://USER@host/database)"));
        }
        let database = url.path().trim_start_matches('/');
        if database.is_empty() || database.contains('/') {
            return Err(bad(
                "the URL names no database (postgres://user@host/DATABASE)",
            ));
        }
        let mut config = tokio_postgres::Config::new();
        config
            .user(url.username())
            .dbname(database)
            .application_name("opsync")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives_idle(Duration::from_secs(30));
        if let Some(host) = url.host_str() {
            config.host(host.trim_start_matches('[').trim_end_matches(']'));
        }
        config.port(url.port().unwrap_or(5432));

        let mut verify = true;
        let mut roots: Option<PathBuf> = None;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "sslmode" => {
                    verify = match value.as_ref() {
                        "verify-full" => true,
                        "disable" => false,
                        other => {
                            return Err(bad(&format!(
                                "sslmode={other} is not supported: use verify-full (TLS, the \
                                 server's certificate and name checked) or disable"
                            )));
                        }
                    }
                }
                "sslrootcert" => roots = Some(PathBuf::from(value.as_ref())),
                "host" => {
                    config.host_path(value.as_ref());
                }
                "application_name" => {
                    config.application_name(value.as_ref());
                }
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        bad(&format!(
                            "connect_timeout={value} is not a number of seconds"
                        ))
                    })?;
                    config.connect_timeout(Duration::from_secs(secs.max(1)));
                }
                other => {
                    return Err(bad(&format!(
                        "unknown parameter {other:?} (known: sslmode, sslrootcert, host, \
                         application_name, connect_timeout)"
                    )));
                }
            }
        }
        if config.get_hosts().is_empty() {
            return Err(bad("the URL names no host"));
        }
        let socket = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        let tls = if verify && !socket {
            config.ssl_mode(SslMode::Require);
            Some(trust(roots.as_deref())?)
        } else {
            config.ssl_mode(SslMode::Disable);
            None
        };
        if let Some(password) = password.read(key_for_password(key, password).as_str())? {
            config.password(password);
        }
        let shown = format!(
            "{}://{}@{}{}/{}",
            url.scheme(),
            url.username(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            database
        );
        Ok(PgTarget { config, shown, tls })
    }

    /// Names this target's sessions to the server (`application_name`, shown in
    /// `pg_stat_activity` and the server's logs).
    pub fn set_application_name(&mut self, name: &str) {
        self.config.application_name(name);
    }

    /// Has the server end this target's sessions that stay idle inside a transaction longer
    /// than `bound`, releasing their locks (a replica paused mid-transaction by SIGSTOP or a
    /// frozen VM must not hold up the others past that), and fail a statement that waits for a
    /// lock three times as long (a safety net: the operation fails and is retried, where a
    /// wait without end would stall the replica).
    pub fn bound_idle_transactions(&mut self, bound: Duration) {
        let ms = bound.as_millis().max(1);
        self.config.options(format!(
            "-c idle_in_transaction_session_timeout={ms} -c lock_timeout={}",
            ms * 3
        ));
    }

    /// Opens one connection; its I/O runs on a task of its own until the client is dropped.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let failed = |source| PgError::Connect {
            target: self.shown.clone(),
            source,
        };
        match &self.tls {
            None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(failed)?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
            Some(tls) => {
                let connector = MakeRustlsConnect::new(tls.as_ref().clone());
                let (client, connection) = self.config.connect(connector).await.map_err(failed)?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
        }
    }
}

impl PgTarget {
    /// Opens one connection for blocking use (the store's worker threads): its I/O runs on a
    /// runtime of its own. Call it outside any async runtime.
    pub(crate) fn connect_blocking(&self) -> Result<postgres::Client, PgError> {
        let config = postgres::Config::from(self.config.clone());
        let connected = match &self.tls {
            None => config.connect(NoTls),
            Some(tls) => config.connect(MakeRustlsConnect::new(tls.as_ref().clone())),
        };
        connected.map_err(|source| PgError::Connect {
            target: self.shown.clone(),
            source,
        })
    }
}

/// The setting a password comes from, as errors name it.
fn key_for_password(url_key: &str, password: &PasswordSource) -> String {
    let setting = match password {
        PasswordSource::None => return url_key.to_owned(),
        PasswordSource::Env(_) => "password_env",
        PasswordSource::File(_) => "password_file",
    };
    match url_key.rsplit_once('.') {
        Some((section, _)) => format!("{section}.{setting}"),
        None => format!("{url_key} {setting}"),
    }
}

/// The public roots plus the CAs of `sslrootcert`, if any.
fn trust(roots: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, PgError> {
    let paths: Vec<&Path> = roots.into_iter().collect();
    let trust = TlsTrust::load(&paths).map_err(|e| PgError::Ca {
        path: roots.map(Path::to_path_buf).unwrap_or_default(),
        reason: e.to_string(),
    })?;
    Ok(trust.config())
}

/// Runs a connection's I/O; when it ends with an error, the client's next call reports it.
async fn drive<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL connection closed");
    }
}
