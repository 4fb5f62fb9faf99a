//! `op://vault/item/[section/]field` secret references: their syntax, and how they are read
//! through the Connect client (vault and item by id or by exact name, the field by id or label).

use std::fmt;
use std::str::FromStr;

use crate::connect::client::ConnectClient;
use crate::connect::model::{SecretString, is_connect_id};

/// A parsed `op://vault/item/[section/]field` reference (vault and item by name or id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretReference {
    pub vault: String,
    pub item: String,
    pub section: Option<String>,
    pub field: String,
}

/// Why a config value that starts with `op://` is not a usable reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{reference}` is not a secret reference: write op://vault/item/field or op://vault/item/section/field"
)]
pub struct ReferenceError {
    reference: String,
}

impl FromStr for SecretReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ReferenceError {
            reference: s.to_string(),
        };
        let rest = s.strip_prefix("op://").ok_or_else(err)?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        match parts.as_slice() {
            [vault, item, field] => Ok(Self {
                vault: vault.to_string(),
                item: item.to_string(),
                section: None,
                field: field.to_string(),
            }),
            [vault, item, section, field] => Ok(Self {
                vault: vault.to_string(),
                item: item.to_string(),
                section: Some(section.to_string()),
                field: field.to_string(),
            }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for SecretReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op://{}/{}/", self.vault, self.item)?;
        if let Some(section) = &self.section {
            write!(f, "{section}/")?;
        }
        f.write_str(&self.field)
    }
}

/// Reads the value behind a reference; [`ConnectResolver`] reads it from Connect.
pub trait ReferenceResolver {
    /// The value, or a message (without the value) saying why it could not be read.
    fn resolve(
        &self,
        reference: &SecretReference,
    ) -> impl Future<Output = Result<SecretString, String>> + Send;
}

/// A [`ReferenceResolver`] over Connect: vault and item by id or by exact name/title, the field
/// by id or label (case-insensitive), within the section when one is named.
pub struct ConnectResolver<'a> {
    pub client: &'a ConnectClient,
}

impl ReferenceResolver for ConnectResolver<'_> {
    async fn resolve(&self, r: &SecretReference) -> Result<SecretString, String> {
        let vault_id = if is_connect_id(&r.vault) {
            r.vault.clone()
        } else {
            self.client
                .find_vault_by_name(&r.vault)
                .await
                .map_err(|e| e.to_string())?
                .id
        };
        let item = if is_connect_id(&r.item) {
            self.client.get_item(&vault_id, &r.item).await
        } else {
            self.client.find_item_by_title(&vault_id, &r.item).await
        }
        .map_err(|e| e.to_string())?;
        let section_id = match &r.section {
            None => None,
            Some(name) => Some(
                item.sections
                    .iter()
                    .flatten()
                    .find(|s| {
                        s.id == *name
                            || s.label
                                .as_deref()
                                .is_some_and(|l| l.eq_ignore_ascii_case(name))
                    })
                    .map(|s| s.id.clone())
                    .ok_or_else(|| format!("the item has no section `{name}`"))?,
            ),
        };
        let field = item
            .fields
            .iter()
            .flatten()
            .filter(|f| {
                section_id
                    .as_ref()
                    .is_none_or(|sid| f.section.as_ref().is_some_and(|s| s.id == *sid))
            })
            .find(|f| {
                f.id == r.field
                    || f.label
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(&r.field))
            })
            .ok_or_else(|| format!("the item has no field `{}`", r.field))?;
        field
            .value
            .clone()
            .ok_or_else(|| format!("field `{}` has no value", r.field))
    }
}
