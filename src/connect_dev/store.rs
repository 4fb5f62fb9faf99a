//! The server's data: vaults, items and file contents in memory, their versions, and the state file format.
//!
//! The store keeps items already validated (see `items`); it owns what Connect computes itself:
//! ids of new items, `version` (1 on create, +1 per change), timestamps, the vault's
//! `contentVersion`, `items` count and `updatedAt`, and each file's `content_path`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};

use crate::connect::model::{FieldType, File, IdRef, Item, Vault, VaultType};

use super::auth::KeyMaterial;
use super::error::describe_serde_error;
use super::{ids, totp};

/// Bumped when the state file format changes incompatibly.
const STATE_FORMAT: u32 = 1;

/// A file to attach when an item is stored (seeding only: Connect has no upload endpoint).
pub struct NewFile {
    pub name: String,
    pub section: Option<String>,
    pub content: Vec<u8>,
}

/// An item as stored: the full item (with `files` metadata) and the bytes of its files.
#[derive(Clone)]
pub struct StoredItem {
    pub item: Item,
    contents: HashMap<String, Arc<[u8]>>,
    has_otp: bool,
    /// The full item's JSON, serialised once per version (not for OTP items, whose code moves).
    json: Option<Bytes>,
}

impl StoredItem {
    fn new(item: Item, contents: HashMap<String, Arc<[u8]>>) -> Self {
        let has_otp = item
            .fields
            .iter()
            .flatten()
            .any(|f| matches!(f.field_type, FieldType::Otp | FieldType::Totp));
        let json = if has_otp {
            None
        } else {
            serde_json::to_vec(&item).ok().map(Bytes::from)
        };
        Self {
            item,
            contents,
            has_otp,
            json,
        }
    }

    /// The full item's JSON, as `GET` answers it.
    pub fn full_json(&self) -> Result<Bytes, serde_json::Error> {
        match &self.json {
            Some(json) => Ok(json.clone()),
            None => serde_json::to_vec(&*self.full()).map(Bytes::from),
        }
    }

    /// The full item as `GET` returns it: OTP fields get their current `totp` code.
    pub fn full(&self) -> std::borrow::Cow<'_, Item> {
        if !self.has_otp {
            return std::borrow::Cow::Borrowed(&self.item);
        }
        let mut item = self.item.clone();
        let now = SystemTime::now();
        for field in item.fields.iter_mut().flatten() {
            if matches!(field.field_type, FieldType::Otp | FieldType::Totp)
                && let Some(uri) = &field.value
            {
                field.totp = totp::current_code(uri.expose(), now).map(Into::into);
            }
        }
        std::borrow::Cow::Owned(item)
    }

    /// The summary list calls return: no sections, fields or files.
    pub fn summary(&self) -> Item {
        let i = &self.item;
        Item {
            id: i.id.clone(),
            title: i.title.clone(),
            vault: i.vault.clone(),
            category: i.category.clone(),
            urls: i.urls.clone(),
            favorite: i.favorite,
            tags: i.tags.clone(),
            version: i.version,
            state: i.state.clone(),
            created_at: i.created_at,
            updated_at: i.updated_at,
            last_edited_by: i.last_edited_by.clone(),
            sections: None,
            fields: None,
            files: None,
        }
    }

    pub fn files(&self) -> &[File] {
        self.item.files.as_deref().unwrap_or_default()
    }

    pub fn file(&self, id: &str) -> Option<&File> {
        self.files().iter().find(|f| f.id == id)
    }

    pub fn content(&self, file_id: &str) -> Option<&Arc<[u8]>> {
        self.contents.get(file_id)
    }
}

/// A vault and its items.
pub struct VaultRecord {
    pub vault: Vault,
    pub items: HashMap<String, StoredItem>,
}

impl VaultRecord {
    /// Items in a stable order: oldest first, then by id.
    pub fn items_in_order(&self) -> Vec<&StoredItem> {
        let mut items: Vec<&StoredItem> = self.items.values().collect();
        items.sort_by(|a, b| (a.item.created_at, &a.item.id).cmp(&(b.item.created_at, &b.item.id)));
        items
    }

    /// Stores `item` (new or replacing its old self) and moves the vault's versions.
    fn put(
        &mut self,
        item: Item,
        contents: HashMap<String, Arc<[u8]>>,
        now: DateTime<Utc>,
    ) -> &StoredItem {
        let id = item.id.clone();
        self.items
            .insert(id.clone(), StoredItem::new(item, contents));
        self.touch(now);
        &self.items[&id]
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.vault.content_version += 1;
        self.vault.items = self.items.len() as u64;
        self.vault.updated_at = Some(now);
    }
}

/// Why the store refused a change.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("vault {0} not found")]
    VaultNotFound(String),
    #[error("item {0} not found")]
    ItemNotFound(String),
    #[error("an item with id {0} already exists")]
    ItemExists(String),
}

/// Everything the server knows.
pub struct Store {
    pub key: KeyMaterial,
    vaults: HashMap<String, VaultRecord>,
    order: Vec<String>,
}

impl Store {
    pub fn new(key: KeyMaterial) -> Self {
        Self {
            key,
            vaults: HashMap::new(),
            order: Vec::new(),
        }
    }

    pub fn vault(&self, id: &str) -> Option<&VaultRecord> {
        self.vaults.get(id)
    }

    fn vault_mut(&mut self, id: &str) -> Result<&mut VaultRecord, StoreError> {
        self.vaults
            .get_mut(id)
            .ok_or_else(|| StoreError::VaultNotFound(id.to_owned()))
    }

    /// Vaults in creation order.
    pub fn vaults(&self) -> impl Iterator<Item = &VaultRecord> {
        self.order.iter().filter_map(|id| self.vaults.get(id))
    }

    /// A vault by id, by exact name, or by name ignoring case when that is unambiguous.
    pub fn find_vault(&self, id_or_name: &str) -> Option<&VaultRecord> {
        if let Some(v) = self.vaults.get(id_or_name) {
            return Some(v);
        }
        if let Some(v) = self.vaults().find(|v| v.vault.name == id_or_name) {
            return Some(v);
        }
        let mut folded = self
            .vaults()
            .filter(|v| v.vault.name.to_lowercase() == id_or_name.to_lowercase());
        match (folded.next(), folded.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }

    /// Adds an empty vault and returns its id.
    pub fn add_vault(&mut self, name: &str, description: &str, vault_type: VaultType) -> String {
        let id = ids::new_id();
        let now = now();
        let vault = Vault {
            id: id.clone(),
            name: name.to_owned(),
            description: (!description.is_empty()).then(|| description.to_owned()),
            attribute_version: 1,
            content_version: 1,
            items: 0,
            vault_type: Some(vault_type),
            created_at: Some(now),
            updated_at: Some(now),
        };
        self.vaults.insert(
            id.clone(),
            VaultRecord {
                vault,
                items: HashMap::new(),
            },
        );
        self.order.push(id.clone());
        id
    }

    /// Stores a new item at version 1. An empty `item.id` gets a fresh id.
    pub fn create_item(
        &mut self,
        vault_id: &str,
        mut item: Item,
        files: Vec<NewFile>,
        editor: &str,
    ) -> Result<&StoredItem, StoreError> {
        let record = self.vault_mut(vault_id)?;
        if item.id.is_empty() {
            item.id = ids::new_id();
        }
        if record.items.contains_key(&item.id) {
            return Err(StoreError::ItemExists(item.id));
        }
        let now = now();
        item.vault = IdRef {
            id: vault_id.to_owned(),
        };
        item.version = 1;
        item.created_at = Some(now);
        item.updated_at = Some(now);
        item.last_edited_by = Some(editor.to_owned());
        let mut contents = HashMap::new();
        let mut metas = Vec::new();
        for file in files {
            let id = ids::new_id();
            metas.push(File {
                content_path: Some(content_path(vault_id, &item.id, &id)),
                id: id.clone(),
                name: file.name,
                size: file.content.len() as u64,
                section: file.section.map(|id| IdRef { id }),
                content: None,
            });
            contents.insert(id, Arc::from(file.content));
        }
        item.files = (!metas.is_empty()).then_some(metas);
        Ok(record.put(item, contents, now))
    }

    /// Replaces an item's content: `version` + 1; id, vault, `createdAt` and files are kept.
    pub fn update_item(
        &mut self,
        vault_id: &str,
        mut item: Item,
        editor: &str,
    ) -> Result<&StoredItem, StoreError> {
        let record = self.vault_mut(vault_id)?;
        let old = record
            .items
            .get(&item.id)
            .ok_or_else(|| StoreError::ItemNotFound(item.id.clone()))?;
        let now = now();
        item.vault = old.item.vault.clone();
        item.version = old.item.version + 1;
        item.created_at = old.item.created_at;
        item.updated_at = Some(now);
        item.last_edited_by = Some(editor.to_owned());
        item.files = old.item.files.clone();
        let contents = old.contents.clone();
        Ok(record.put(item, contents, now))
    }

    /// Deletes an item for good (Connect has no trash), returning its last version.
    pub fn delete_item(&mut self, vault_id: &str, item_id: &str) -> Result<u64, StoreError> {
        let record = self.vault_mut(vault_id)?;
        let old = record
            .items
            .remove(item_id)
            .ok_or_else(|| StoreError::ItemNotFound(item_id.to_owned()))?;
        record.touch(now());
        Ok(old.item.version)
    }

    /// The state file's bytes (pretty JSON; it holds the signing key and every secret).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let state = StateFile {
            format: STATE_FORMAT,
            key: self.key.clone(),
            vaults: self
                .vaults()
                .map(|record| PersistedVault {
                    vault: record.vault.clone(),
                    items: record
                        .items_in_order()
                        .into_iter()
                        .map(|stored| PersistedItem {
                            item: stored.item.clone(),
                            file_contents: stored
                                .contents
                                .iter()
                                .map(|(id, bytes)| (id.clone(), BASE64.encode(bytes)))
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&state)
    }

    /// A store read back from a state file. The message of an error never quotes the file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let state: StateFile =
            serde_json::from_slice(bytes).map_err(|e| describe_serde_error(&e.to_string()))?;
        if state.format != STATE_FORMAT {
            return Err(format!(
                "format {} is not supported (this opsync writes format {STATE_FORMAT})",
                state.format
            ));
        }
        let mut store = Store::new(state.key);
        for persisted in state.vaults {
            let id = persisted.vault.id.clone();
            let mut items = HashMap::new();
            for p in persisted.items {
                let mut contents = HashMap::new();
                for (file_id, b64) in p.file_contents {
                    let bytes = BASE64
                        .decode(b64.as_bytes())
                        .map_err(|_| format!("file {file_id} has invalid base64 content"))?;
                    contents.insert(file_id, Arc::from(bytes));
                }
                items.insert(p.item.id.clone(), StoredItem::new(p.item, contents));
            }
            store.vaults.insert(
                id.clone(),
                VaultRecord {
                    vault: persisted.vault,
                    items,
                },
            );
            store.order.push(id);
        }
        Ok(store)
    }
}

/// `/v1/vaults/{v}/items/{i}/files/{f}/content`, with the leading slash the Go SDK needs.
pub fn content_path(vault_id: &str, item_id: &str, file_id: &str) -> String {
    format!("/v1/vaults/{vault_id}/items/{item_id}/files/{file_id}/content")
}

/// Now, to the millisecond, as real servers report times.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    format: u32,
    key: KeyMaterial,
    vaults: Vec<PersistedVault>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedVault {
    vault: Vault,
    items: Vec<PersistedItem>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedItem {
    item: Item,
    #[serde(default)]
    file_contents: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::Category;

    fn store_with_vault() -> (Store, String) {
        let mut store = Store::new(KeyMaterial::generate().expect("key"));
        let id = store.add_vault("Demo", "", VaultType::UserCreated);
        (store, id)
    }

    #[test]
    fn versions_and_content_versions_move() {
        let (mut store, v) = store_with_vault();
        let created = store
            .create_item(&v, Item::new("a", Category::Login), Vec::new(), "EDITOR")
            .expect("create")
            .item
            .clone();
        assert_eq!(created.version, 1);
        assert_eq!(store.vault(&v).expect("vault").vault.content_version, 2);
        let mut changed = created.clone();
        changed.title = "b".into();
        let updated = store.update_item(&v, changed, "EDITOR").expect("update");
        assert_eq!(updated.item.version, 2);
        assert_eq!(updated.item.created_at, created.created_at);
        assert_eq!(store.delete_item(&v, &created.id), Ok(2));
        let vault = &store.vault(&v).expect("vault").vault;
        assert_eq!((vault.content_version, vault.items), (4, 0));
        assert_eq!(
            store.delete_item(&v, &created.id),
            Err(StoreError::ItemNotFound(created.id.clone()))
        );
    }

    #[test]
    fn round_trips_through_json() {
        let (mut store, v) = store_with_vault();
        let file = NewFile {
            name: "a.txt".into(),
            section: None,
            content: b"hello".to_vec(),
        };
        let id = store
            .create_item(&v, Item::new("a", Category::Login), vec![file], "EDITOR")
            .expect("create")
            .item
            .id
            .clone();
        let bytes = store.to_json().expect("serialises");
        let back = Store::from_json(&bytes).expect("parses");
        let item = &back.vault(&v).expect("vault").items[&id];
        let file_id = item.files()[0].id.clone();
        assert_eq!(item.content(&file_id).map(|b| &b[..]), Some(&b"hello"[..]));
        assert_eq!(back.key.key_id, store.key.key_id);
        assert!(Store::from_json(b"{\"format\":99}").is_err());
    }

    #[test]
    fn finds_vaults_by_name_ignoring_case() {
        let (store, v) = store_with_vault();
        assert_eq!(
            store.find_vault("demo").map(|r| r.vault.id.clone()),
            Some(v.clone())
        );
        assert_eq!(store.find_vault(&v).map(|r| r.vault.id.clone()), Some(v));
        assert!(store.find_vault("nope").is_none());
    }
}
