//! The 1Password Events API as a second audit source: the account-wide audit events, item
//! usages and sign-in attempts, read by cursor into the same outbox as Connect's activity
//! records, so every sink ships them with the same acknowledged cursors.

mod budget;
mod client;
mod normalize;
mod service;
mod source;

pub use crate::config::{ApiVersion, EventStream, UnknownStream};
pub use budget::Budget;
pub use client::{EventsClient, EventsError, Introspection, Page, PageFrom};
pub use normalize::{BadRecord, normalize};
pub use service::{Prepared, prepare};
pub use source::{EventsSource, StreamRead};
