//! The status routes the admin listener serves: `/` (the page), `/status` (the JSON
//! document) and `/dead-letters/{id}` (one dead letter's page).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use crate::config::Settings;
use crate::status::collect::{collect, dead_letter};
use crate::status::document::StatusDocument;
use crate::status::html;
use crate::store::{Store, StoreError};

#[derive(Clone)]
struct StatusState {
    settings: Arc<Settings>,
    store: Store,
}

/// The routes, reading `store` at each request.
pub fn router(settings: Arc<Settings>, store: Store) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status", get(json))
        .route("/dead-letters/{id}", get(detail))
        .with_state(StatusState { settings, store })
}

async fn document(state: &StatusState) -> Result<StatusDocument, StoreError> {
    let settings = state.settings.clone();
    state
        .store
        .blocking(move |store| collect(&settings, Some(store), Utc::now()))
        .await
}

async fn page(State(state): State<StatusState>) -> Response {
    match document(&state).await {
        Ok(doc) => html_response(StatusCode::OK, html::page(&doc)),
        Err(e) => unavailable(&e),
    }
}

async fn json(State(state): State<StatusState>) -> Response {
    match document(&state).await {
        Ok(doc) => match serde_json::to_string_pretty(&doc) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("status: cannot render the document: {e}\n"),
            )
                .into_response(),
        },
        Err(e) => unavailable(&e),
    }
}

async fn detail(State(state): State<StatusState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, "no such dead letter\n").into_response();
    };
    let found = state
        .store
        .blocking(move |store| store.find_dead_letter(id))
        .await;
    match found {
        Ok(Some(d)) => html_response(
            StatusCode::OK,
            html::dead_letter_page(&dead_letter(d), Utc::now()),
        ),
        Ok(None) => html_response(StatusCode::NOT_FOUND, html::not_found_page(id)),
        Err(e) => unavailable(&e),
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The state database could not be read (its errors name tables and operations, no value).
fn unavailable(e: &StoreError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("status: the state database cannot be read: {e}\n"),
    )
        .into_response()
}
