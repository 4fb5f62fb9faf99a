//! `DeliveryError`: why delivery as a whole could not go on (the store failed). A failing
//! destination or Connect is not an error here: it is an outcome recorded in the ledger.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no route named `{0}`")]
    UnknownRoute(String),
}
