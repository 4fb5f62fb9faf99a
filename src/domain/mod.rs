//! The words every layer speaks: what happened to an item, which vault, the steps of a rotation. Layers
//! depend on this module; it depends on none of them.

mod change;
mod step;
mod vault;

pub use change::{ChangeKind, UnknownChangeKind, idempotency_key};
pub use step::Step;
pub use vault::VaultRef;
