//! `RotationError`: why a rotation step failed, naming the job, the step and the part (Connect,
//! the plugin, the state database) — never a value.

use crate::connect::error::ConnectError;
use crate::plugin::{FailureKind, PluginError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The job names a field the item does not have.
    #[error("rotation job {job}: the item has no {field}")]
    NoField { job: String, field: String },
    /// A Connect request failed.
    #[error("rotation job {job}: Connect: {source}")]
    Connect {
        job: String,
        #[source]
        source: Box<ConnectError>,
    },
    /// The rotator plugin failed a step.
    #[error("rotation job {job}: step {step}: {source}")]
    Plugin {
        job: String,
        step: &'static str,
        #[source]
        source: Box<PluginError>,
    },
    /// The plugin's output does not fit the job (a value for a field the job does not rotate).
    #[error("rotation job {job}: plugin {plugin}: {message}")]
    BadOutput {
        job: String,
        plugin: String,
        message: String,
    },
    /// 1Password does not hold what the persisted step expects (someone edited the item).
    #[error("rotation job {job}: {message}")]
    Inconsistent { job: String, message: String },
    #[error("rotation job {job}: {source}")]
    Store {
        job: String,
        #[source]
        source: StoreError,
    },
    /// The job is not configured, or its plugin could not be loaded.
    #[error("rotation job {job}: {message}")]
    Unusable { job: String, message: String },
}

impl RotationError {
    /// Whether trying the same step again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RotationError::Connect { source, .. } => source.is_retryable(),
            RotationError::Plugin { source, .. } => match &**source {
                PluginError::Failed { failure, .. } => failure.kind == FailureKind::Retryable,
                PluginError::Timeout { .. } => true,
                _ => false,
            },
            RotationError::Store { .. } => true,
            _ => false,
        }
    }

    /// When the plugin said to try again (ABI 0.2.0 `retry.after-ms`), for a retryable failure.
    pub fn retry_hint(&self) -> Option<std::time::Duration> {
        match self {
            RotationError::Plugin { source, .. } => source.retry_hint(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::plugin::Failure;

    #[test]
    fn a_plugins_retry_hint_is_the_steps() {
        let hinted = RotationError::Plugin {
            job: "db".into(),
            step: "set",
            source: Box::new(PluginError::Failed {
                plugin: "rot".into(),
                failure: Failure::retry_after("throttled", Some(Duration::from_secs(30))),
            }),
        };
        assert!(hinted.is_retryable());
        assert_eq!(hinted.retry_hint(), Some(Duration::from_secs(30)));
        let plain = RotationError::Plugin {
            job: "db".into(),
            step: "set",
            source: Box::new(PluginError::Failed {
                plugin: "rot".into(),
                failure: Failure::new(FailureKind::Permanent, "refused"),
            }),
        };
        assert_eq!(plain.retry_hint(), None);
    }
}
