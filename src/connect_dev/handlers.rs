//! The `/v1` endpoints: vaults, items, files and activity, with Connect's checks in Connect's order.
//!
//! Order of checks: token (401), id shapes (400), vault exists (404), vault in the token (403),
//! write access for writes (401), item or file exists (404), request body (400).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::connect::filter::{self, Attributes, Filter};
use crate::connect::model::{ActivityAction, Item, Vault, is_connect_id};

use super::activity::Resource;
use super::caller::Caller;
use super::error::{ApiError, json_bytes, json_response};
use super::items::{parse_json, prepare};
use super::patch;
use super::server::{App, no_content};
use super::store::{Store, StoreError, StoredItem, VaultRecord};

const DEFAULT_ACTIVITY_LIMIT: usize = 50;

mod files;

pub use files::{file_content, get_file, list_files};

type AppState = State<Arc<App>>;

/// Query parameters, `+` decoded as a space.
fn query(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_filter(
    params: &[(String, String)],
    supported: &[&str],
) -> Result<Option<Filter>, ApiError> {
    let Some(text) = param(params, "filter") else {
        return Ok(None);
    };
    let filter = filter::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    filter
        .check_attributes(supported)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Some(filter))
}

fn check_vault_id(id: &str) -> Result<(), ApiError> {
    if is_connect_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Invalid Vault UUID"))
    }
}

fn check_item_id(id: &str) -> Result<(), ApiError> {
    if is_connect_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Invalid Item UUID"))
    }
}

fn check_file_id(id: &str) -> Result<(), ApiError> {
    if is_connect_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Invalid File UUID"))
    }
}

fn vault_of<'s>(store: &'s Store, id: &str) -> Result<&'s VaultRecord, ApiError> {
    store
        .vault(id)
        .ok_or_else(|| ApiError::not_found(format!("vault {id} not found")))
}

fn item_of<'v>(vault: &'v VaultRecord, id: &str) -> Result<&'v StoredItem, ApiError> {
    vault
        .items
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("item {id} not found")))
}

/// An item before its version is known.
fn item_ref(vault: &str, item: &str) -> Resource {
    Resource::item(vault, item, None)
}

fn item_resource(vault: &str, item: &str, version: u64) -> Resource {
    Resource::item(vault, item, Some(version))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::VaultNotFound(_) | StoreError::ItemNotFound(_) => {
            ApiError::not_found(e.to_string())
        }
        StoreError::ItemExists(_) => ApiError::bad_request(e.to_string()),
    }
}

struct VaultAttributes<'a>(&'a Vault);

impl Attributes for VaultAttributes<'_> {
    fn any_value(&self, attr: &str, test: &mut dyn FnMut(&str) -> bool) -> bool {
        match attr {
            "name" | "title" => test(&self.0.name),
            _ => false,
        }
    }
}

struct ItemAttributes<'a>(&'a Item);

impl Attributes for ItemAttributes<'_> {
    fn any_value(&self, attr: &str, test: &mut dyn FnMut(&str) -> bool) -> bool {
        match attr {
            "title" => test(&self.0.title),
            "tag" | "tags" => self.0.tags.iter().any(|t| test(t)),
            _ => false,
        }
    }
}

/// `GET /v1/vaults`: the vaults the token can see, optionally filtered by `name`/`title`.
pub async fn list_vaults(
    State(app): AppState,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = query(raw.as_deref());
    let filter = parse_filter(&params, &["name", "title"])?;
    let store = app.read();
    let vaults: Vec<&Vault> = store
        .vaults()
        .map(|r| &r.vault)
        .filter(|v| caller.claims().access_to(&v.id).is_some())
        .filter(|v| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&VaultAttributes(v)))
        })
        .collect();
    let response = json_response(StatusCode::OK, &vaults);
    drop(store);
    caller.succeeded(&app, ActivityAction::Read, Resource::None);
    Ok(response)
}

/// `GET /v1/vaults/{vault}`.
pub async fn get_vault(
    State(app): AppState,
    caller: Caller,
    Path(vault_id): Path<String>,
) -> Result<Response, ApiError> {
    check_vault_id(&vault_id)?;
    let store = app.read();
    let vault = vault_of(&store, &vault_id)?;
    let resource = Resource::vault(&vault_id);
    caller.authorize(&app, &vault_id, ActivityAction::Read, &resource)?;
    let response = json_response(StatusCode::OK, &vault.vault);
    drop(store);
    caller.succeeded(&app, ActivityAction::Read, resource);
    Ok(response)
}

/// `GET /v1/vaults/{vault}/items`: summaries, optionally filtered by `title`/`tag`.
pub async fn list_items(
    State(app): AppState,
    caller: Caller,
    Path(vault_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    check_vault_id(&vault_id)?;
    let params = query(raw.as_deref());
    let store = app.read();
    let vault = vault_of(&store, &vault_id)?;
    let resource = Resource::vault(&vault_id);
    caller.authorize(&app, &vault_id, ActivityAction::Read, &resource)?;
    let filter = parse_filter(&params, &["title", "tag", "tags"])?;
    let summaries: Vec<Item> = vault
        .items_in_order()
        .into_iter()
        .filter(|s| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&ItemAttributes(&s.item)))
        })
        .map(StoredItem::summary)
        .collect();
    drop(store);
    caller.succeeded(&app, ActivityAction::Read, resource);
    Ok(json_response(StatusCode::OK, &summaries))
}

/// `GET /v1/vaults/{vault}/items/{item}`: the full item (the hot path).
pub async fn get_item(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_vault_id(&vault_id)?;
    check_item_id(&item_id)?;
    let store = app.read();
    let vault = vault_of(&store, &vault_id)?;
    caller.authorize(
        &app,
        &vault_id,
        ActivityAction::Read,
        &item_ref(&vault_id, &item_id),
    )?;
    let stored = item_of(vault, &item_id)?;
    let version = stored.item.version;
    let bytes = stored.full_json().map_err(|_| ApiError::internal())?;
    drop(store);
    caller.succeeded(
        &app,
        ActivityAction::Read,
        item_resource(&vault_id, &item_id, version),
    );
    Ok(json_bytes(StatusCode::OK, bytes))
}

/// `POST /v1/vaults/{vault}/items`: 200 with the new item at version 1.
pub async fn create_item(
    State(app): AppState,
    caller: Caller,
    Path(vault_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_vault_id(&vault_id)?;
    let mut store = app.write();
    vault_of(&store, &vault_id)?;
    caller.authorize(
        &app,
        &vault_id,
        ActivityAction::Create,
        &Resource::vault(&vault_id),
    )?;
    let item = prepare(parse_json::<Item>(&body, "item")?, None, None)?;
    let editor = caller.claims().sub.clone();
    let stored = store
        .create_item(&vault_id, item, Vec::new(), &editor)
        .map_err(store_error)?;
    let (id, version) = (stored.item.id.clone(), stored.item.version);
    let response = json_response(StatusCode::OK, &*stored.full());
    drop(store);
    app.changed();
    caller.succeeded(
        &app,
        ActivityAction::Create,
        item_resource(&vault_id, &id, version),
    );
    Ok(response)
}

/// `PUT /v1/vaults/{vault}/items/{item}`: replaces the item, `version` + 1.
pub async fn replace_item(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write_item(&app, &caller, &vault_id, &item_id, |existing| {
        let item = parse_json::<Item>(&body, "item")?;
        prepare(item, Some(existing), Some(&item_id)).map(Some)
    })
}

/// `PATCH /v1/vaults/{vault}/items/{item}`: JSON Patch, `version` + 1 unless empty.
pub async fn patch_item(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write_item(
        &app,
        &caller,
        &vault_id,
        &item_id,
        |existing| match patch::apply(existing, &body)? {
            Some(patched) => prepare(patched, Some(existing), Some(&item_id)).map(Some),
            None => Ok(None),
        },
    )
}

/// The shared part of PUT and PATCH: checks, then `change` computes the new item from the
/// stored one (`None`: leave it as it is).
fn write_item(
    app: &App,
    caller: &Caller,
    vault_id: &str,
    item_id: &str,
    change: impl FnOnce(&Item) -> Result<Option<Item>, ApiError>,
) -> Result<Response, ApiError> {
    check_vault_id(vault_id)?;
    check_item_id(item_id)?;
    let mut store = app.write();
    let vault = vault_of(&store, vault_id)?;
    caller.authorize(
        app,
        vault_id,
        ActivityAction::Update,
        &item_ref(vault_id, item_id),
    )?;
    let existing = item_of(vault, item_id)?;
    let stored = match change(&existing.item)? {
        Some(item) => {
            let editor = caller.claims().sub.clone();
            let stored = store
                .update_item(vault_id, item, &editor)
                .map_err(store_error)?;
            app.changed();
            stored
        }
        None => existing,
    };
    let version = stored.item.version;
    let response = json_response(StatusCode::OK, &*stored.full());
    drop(store);
    caller.succeeded(
        app,
        ActivityAction::Update,
        item_resource(vault_id, item_id, version),
    );
    Ok(response)
}

/// `DELETE /v1/vaults/{vault}/items/{item}`: 204, gone for good.
pub async fn delete_item(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_vault_id(&vault_id)?;
    check_item_id(&item_id)?;
    let mut store = app.write();
    let vault = vault_of(&store, &vault_id)?;
    caller.authorize(
        &app,
        &vault_id,
        ActivityAction::Delete,
        &item_ref(&vault_id, &item_id),
    )?;
    item_of(vault, &item_id)?;
    let version = store
        .delete_item(&vault_id, &item_id)
        .map_err(store_error)?;
    drop(store);
    app.changed();
    caller.succeeded(
        &app,
        ActivityAction::Delete,
        item_resource(&vault_id, &item_id, version),
    );
    Ok(no_content())
}

/// `GET /v1/activity?limit=&offset=`: newest first, with `Content-Range` (see `activity`).
pub async fn activity(
    State(app): AppState,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = query(raw.as_deref());
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match param(&params, name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("Invalid {name}: expected a non-negative integer"))
            }),
        }
    };
    let limit = number("limit", DEFAULT_ACTIVITY_LIMIT)?;
    let offset = number("offset", 0)?;
    if limit == 0 {
        return Err(ApiError::bad_request("Invalid limit: must be at least 1"));
    }
    let (records, range) = app.activity.page(offset, limit);
    let mut response = json_response(StatusCode::OK, &records);
    if let Ok(value) = HeaderValue::from_str(&range) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}
