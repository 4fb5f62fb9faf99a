//! Everything that speaks the 1Password Connect API: models, token claims, filters, the client.

pub mod client;
pub mod error;
pub mod filter;
pub mod model;
pub mod reference;
pub mod token;
