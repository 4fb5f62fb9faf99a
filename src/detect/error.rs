//! `DetectError`: why a poll could not run.

use crate::connect::error::ConnectError;
use crate::store::StoreError;

/// A poll that failed as a whole: nothing was written, so nothing is lost or deleted.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// `GET /v1/vaults` failed.
    #[error("listing vaults: {0}")]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DetectError {
    /// Whether trying again later may help (Connect unreachable, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(e) => e.is_retryable(),
            Self::Store(_) => true,
        }
    }
}
