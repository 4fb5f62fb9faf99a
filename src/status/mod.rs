//! The status of a running opsync, as one versioned document (`/status`, `opsync status
//! --json`) and as the page the admin listener serves on `/`.

mod collect;
pub mod document;
mod html;
mod http;

pub use collect::{DEAD_LETTERS_SHOWN, REPLICAS_SEEN_WITHIN, collect, replicas_state};
pub use document::{SCHEMA, StatusDocument};
pub use http::router;
