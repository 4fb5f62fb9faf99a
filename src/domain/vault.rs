//! `VaultRef`: a vault as routes select it and plugins see it, by id and name.

/// A vault by id and name (no counts, no versions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultRef {
    pub id: String,
    pub name: String,
}
