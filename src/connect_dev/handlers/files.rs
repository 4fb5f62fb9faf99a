//! The file endpoints of `/v1`: an item's files, one file, and its content, inlined as base64
//! when asked and small enough.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::connect::model::{ActivityAction, File};
use crate::connect_dev::caller::Caller;
use crate::connect_dev::error::{ApiError, json_response};
use crate::connect_dev::handlers::{
    AppState, check_file_id, check_item_id, check_vault_id, item_of, item_ref, item_resource,
    param, query, vault_of,
};
use crate::connect_dev::server::App;
use crate::connect_dev::store::StoredItem;

/// Files larger than this are not inlined (Connect's `OP_MAX_INLINE_FILE_SIZE_KB` default).
const MAX_INLINE_FILE: u64 = 100 * 1024;

/// Whether `inline_files=true` (or the docs' `inline_content=true`) was asked.
fn wants_inline(params: &[(String, String)]) -> bool {
    ["inline_files", "inline_content"]
        .iter()
        .any(|name| param(params, name).is_some_and(|v| v.eq_ignore_ascii_case("true")))
}

fn with_content(stored: &StoredItem, file: &File, inline: bool) -> Result<File, ApiError> {
    let mut file = file.clone();
    if inline {
        if file.size > MAX_INLINE_FILE {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "File is too large to inline in request. Use the \
                 /v1/vaults/{vaultUUID}/items/{itemUUID}/files/{fileUUID}/content endpoint instead.",
            ));
        }
        let bytes = stored.content(&file.id).ok_or_else(ApiError::internal)?;
        file.content = Some(BASE64.encode(bytes).into());
    }
    Ok(file)
}

/// Checks shared by the three file endpoints; calls `then` with the item under a read lock.
fn with_item<T>(
    app: &App,
    caller: &Caller,
    vault_id: &str,
    item_id: &str,
    then: impl FnOnce(&StoredItem) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    check_vault_id(vault_id)?;
    check_item_id(item_id)?;
    let store = app.read();
    let vault = vault_of(&store, vault_id)?;
    let resource = item_ref(vault_id, item_id);
    caller.authorize(app, vault_id, ActivityAction::Read, &resource)?;
    let stored = item_of(vault, item_id)?;
    let out = then(stored)?;
    let version = stored.item.version;
    drop(store);
    caller.succeeded(
        app,
        ActivityAction::Read,
        item_resource(vault_id, item_id, version),
    );
    Ok(out)
}

/// `GET .../items/{item}/files`.
pub async fn list_files(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let inline = wants_inline(&query(raw.as_deref()));
    with_item(&app, &caller, &vault_id, &item_id, |stored| {
        let files = stored
            .files()
            .iter()
            .map(|f| with_content(stored, f, inline))
            .collect::<Result<Vec<File>, ApiError>>()?;
        Ok(json_response(StatusCode::OK, &files))
    })
}

/// `GET .../items/{item}/files/{file}`.
pub async fn get_file(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id, file_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let inline = wants_inline(&query(raw.as_deref()));
    check_file_id(&file_id)?;
    with_item(&app, &caller, &vault_id, &item_id, |stored| {
        let file = stored
            .file(&file_id)
            .ok_or_else(|| ApiError::not_found(format!("file {file_id} not found")))?;
        Ok(json_response(
            StatusCode::OK,
            &with_content(stored, file, inline)?,
        ))
    })
}

/// `GET .../items/{item}/files/{file}/content`: the bytes, as an attachment.
pub async fn file_content(
    State(app): AppState,
    caller: Caller,
    Path((vault_id, item_id, file_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check_file_id(&file_id)?;
    with_item(&app, &caller, &vault_id, &item_id, |stored| {
        let not_found = || ApiError::not_found(format!("file {file_id} not found"));
        let file = stored.file(&file_id).ok_or_else(not_found)?;
        let bytes = stored.content(&file_id).ok_or_else(not_found)?;
        let name: String = file
            .name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
        Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            Bytes::copy_from_slice(bytes),
        )
            .into_response())
    })
}
