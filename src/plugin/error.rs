//! Errors of the plugin host. Every variant names the plugin; none carries a secret value (plugin
//! messages are redacted and cut before they get here).

use std::path::PathBuf;
use std::time::Duration;

/// How a plugin said its call failed (the ABI's `plugin-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Transient: retry with backoff.
    Retryable,
    /// This call can never succeed: dead-letter it.
    Permanent,
    /// The plugin's config or grants are wrong: stop the route until an operator fixes them.
    Misconfigured,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retryable => "retryable",
            Self::Permanent => "permanent",
            Self::Misconfigured => "misconfigured",
        }
    }
}

/// A failure reported by the plugin itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    /// For a retryable failure: when the plugin says to try again (ABI 0.2.0's `retry.after-ms`,
    /// from a `Retry-After` header or a throttling error), before the host bounds it.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A retryable failure with the plugin's hint of when to try again.
    pub fn retry_after(message: impl Into<String>, after: Option<Duration>) -> Self {
        Self {
            retry_after: after,
            ..Self::new(FailureKind::Retryable, message)
        }
    }
}

/// Everything that can go wrong loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}`: cannot read {path}: {source}")]
    Read {
        plugin: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin `{plugin}`: {path} is not a regular file")]
    NotAFile { plugin: String, path: PathBuf },
    #[error(
        "plugin `{plugin}`: {path} is {size} bytes, over the limit of {limit} bytes for a component"
    )]
    TooLarge {
        plugin: String,
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("plugin `{plugin}`: sha256 mismatch: config pins {expected}, {path} has {actual}")]
    HashMismatch {
        plugin: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("plugin `{plugin}`: no built-in plugin has that name (built-ins: {known})")]
    UnknownBuiltin { plugin: String, known: String },
    #[error("plugin `{plugin}`: not a usable component: {reason}")]
    Invalid { plugin: String, reason: String },
    #[error("plugin `{plugin}`: is a {found} plugin; config expects {expected}")]
    WrongWorld {
        plugin: String,
        expected: String,
        found: String,
    },
    #[error("plugin `{plugin}`: {reason}")]
    Config { plugin: String, reason: String },
    #[error("plugin `{plugin}`: cannot start an instance: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin `{plugin}`: stopped after the wall-clock limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error("plugin `{plugin}`: stopped after its CPU limit of {limit:?}")]
    CpuLimit { plugin: String, limit: Duration },
    #[error("plugin `{plugin}`: stopped at its memory limit of {limit} bytes")]
    MemoryLimit { plugin: String, limit: usize },
    #[error("plugin `{plugin}`: stopped: call stack exhausted")]
    StackOverflow { plugin: String },
    #[error(
        "plugin `{plugin}`: stopped: it kept logging past its budget of {limit} bytes per call"
    )]
    LogFlood { plugin: String, limit: usize },
    #[error(
        "plugin `{plugin}`: stopped: it made more secrets in one call than its limit of \
         {max_count} secrets or {max_bytes} bytes"
    )]
    SecretLimit {
        plugin: String,
        max_count: usize,
        max_bytes: usize,
    },
    #[error(
        "plugin `{plugin}`: stopped: it wrote more than its quota of {limit} bytes into its \
         granted directories in one call"
    )]
    WriteQuota { plugin: String, limit: u64 },
    #[error("plugin `{plugin}`: trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin `{plugin}` failed ({}): {}", failure.kind.as_str(), failure.message)]
    Failed { plugin: String, failure: Failure },
    #[error("plugin `{plugin}`: cannot flush its granted directory {path} to disk: {source}")]
    Flush {
        plugin: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin engine: {0}")]
    Engine(String),
}

impl PluginError {
    /// How the delivery layer should treat this error.
    /// The plugin's own hint of when to retry, for a retryable failure it reported.
    pub fn retry_hint(&self) -> Option<Duration> {
        match self {
            Self::Failed { failure, .. } if failure.kind == FailureKind::Retryable => {
                failure.retry_after
            }
            _ => None,
        }
    }

    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Failed { failure, .. } => failure.kind,
            Self::Timeout { .. }
            | Self::CpuLimit { .. }
            | Self::MemoryLimit { .. }
            | Self::StackOverflow { .. }
            | Self::LogFlood { .. }
            | Self::Trap { .. }
            | Self::Flush { .. }
            | Self::Instantiate { .. } => FailureKind::Retryable,
            // The plugin asked for more than its bounds allow; the same event would do it again.
            Self::SecretLimit { .. } | Self::WriteQuota { .. } => FailureKind::Permanent,
            Self::Read { .. }
            | Self::NotAFile { .. }
            | Self::TooLarge { .. }
            | Self::HashMismatch { .. }
            | Self::UnknownBuiltin { .. }
            | Self::Invalid { .. }
            | Self::WrongWorld { .. }
            | Self::Config { .. }
            | Self::Cache { .. }
            | Self::Engine(_) => FailureKind::Misconfigured,
        }
    }

    /// The plugin this error is about, when it is about one.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            Self::Read { plugin, .. }
            | Self::NotAFile { plugin, .. }
            | Self::TooLarge { plugin, .. }
            | Self::HashMismatch { plugin, .. }
            | Self::UnknownBuiltin { plugin, .. }
            | Self::Invalid { plugin, .. }
            | Self::WrongWorld { plugin, .. }
            | Self::Config { plugin, .. }
            | Self::Instantiate { plugin, .. }
            | Self::Timeout { plugin, .. }
            | Self::CpuLimit { plugin, .. }
            | Self::MemoryLimit { plugin, .. }
            | Self::StackOverflow { plugin }
            | Self::LogFlood { plugin, .. }
            | Self::SecretLimit { plugin, .. }
            | Self::WriteQuota { plugin, .. }
            | Self::Trap { plugin, .. }
            | Self::Flush { plugin, .. }
            | Self::Failed { plugin, .. } => Some(plugin),
            Self::Cache { .. } | Self::Engine(_) => None,
        }
    }
}
