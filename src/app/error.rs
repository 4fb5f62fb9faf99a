//! `AppError`: why a sync command could not run, naming the part that failed.

use crate::config::ConfigError;
use crate::connect::error::ConnectError;
use crate::connect_dev::DevServerError;
use crate::delivery::DeliveryError;
use crate::detect::DetectError;
use crate::store::StoreError;
use crate::telemetry::TelemetryError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `once` was asked to run a config with nothing for it to do.
    #[error(
        "nothing to do: the config has no [[route]] and no [[audit.sink]], so `once` would \
         neither deliver nor ship anything (docs/configuration.md shows both)"
    )]
    NothingToDo,
    /// Another replica leads the PostgreSQL state, so a one-off cycle would race it.
    #[error(
        "replica {leader} leads this PostgreSQL state (epoch {epoch}): `opsync once` would race \
         it; the running replicas already poll and deliver (stop them to run a cycle by hand)"
    )]
    AnotherLeader { leader: String, epoch: i64 },
    /// The leader lease could not be claimed in time.
    #[error("cannot claim the leader lease of the PostgreSQL state within {0:?}")]
    NoLease(std::time::Duration),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Connect: {0}")]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("detection: {0}")]
    Detect(#[from] DetectError),
    #[error("delivery: {0}")]
    Delivery(#[from] DeliveryError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error("demo Connect server: {0}")]
    DevServer(#[from] DevServerError),
    #[error("plugin host: {0}")]
    Plugins(String),
    #[error(
        "{0}. A component that changed under its pin is a supply-chain alarm, so opsync does not \
         start: check the file, then pin its sha256 (`opsync plugin inspect FILE`), or start \
         with --allow-unusable-plugins to run without that plugin"
    )]
    PinMismatch(String),
    #[error("{0}")]
    Rotation(String),
    #[error("status document: {0}")]
    Status(String),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl AppError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
