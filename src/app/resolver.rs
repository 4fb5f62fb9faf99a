//! Resolves `op://vault/item/[section/]field` plugin config values through the Connect client.

use crate::connect::client::ConnectClient;
use crate::connect::model::{SecretString, is_connect_id};
use crate::plugin::{ReferenceResolver, SecretReference};

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
