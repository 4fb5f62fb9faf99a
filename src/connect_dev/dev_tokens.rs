//! `POST /opsync-dev/tokens`: a running server mints narrower tokens for a caller (outside `/v1`, dev only).
//!
//! The caller's own token authorises the request and bounds it: every grant asked must already
//! be held (read-write covers read), and the new token may not outlive the caller's.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::connect::token::Access;

use super::caller::Caller;
use super::error::{ApiError, json_response};
use super::items::parse_json;
use super::server::App;

/// The path of the endpoint.
pub const PATH: &str = "/opsync-dev/tokens";

/// Body of `POST /opsync-dev/tokens`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub vaults: Vec<GrantRequest>,
    /// Lifetime of the new token; none means it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// One grant: a vault name or id (`*` for every vault) and the access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub vault: String,
    pub access: Access,
}

/// Answer of `POST /opsync-dev/tokens`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
}

pub async fn mint(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: TokenRequest = parse_json(&body, "token request")?;
    if request.vaults.is_empty() {
        return Err(ApiError::bad_request("Give at least one vault to grant"));
    }
    let mut grants: Vec<(String, Access)> = Vec::new();
    {
        let store = app.read();
        for asked in &request.vaults {
            let ids: Vec<String> = if asked.vault == "*" {
                store.vaults().map(|v| v.vault.id.clone()).collect()
            } else {
                let found = store.find_vault(&asked.vault).ok_or_else(|| {
                    ApiError::not_found(format!(
                        "vault {} not found",
                        asked.vault.chars().take(64).collect::<String>()
                    ))
                })?;
                vec![found.vault.id.clone()]
            };
            for id in ids {
                let held = caller.claims().access_to(&id);
                let covered = matches!(
                    (held, asked.access),
                    (Some(Access::ReadWrite), _) | (Some(Access::Read), Access::Read)
                );
                if !covered {
                    return Err(ApiError::forbidden(format!(
                        "the token does not hold {} access to vault {id}, so it cannot grant it",
                        asked.access
                    )));
                }
                match grants.iter_mut().find(|(v, _)| *v == id) {
                    Some((_, access)) if asked.access == Access::ReadWrite => {
                        *access = Access::ReadWrite;
                    }
                    Some(_) => {}
                    None => grants.push((id, asked.access)),
                }
            }
        }
    }
    let ttl = request.expires_in_seconds.map(Duration::from_secs);
    if let Some(limit) = caller.claims().exp {
        let asked_end = ttl.map(|t| {
            chrono::Utc::now()
                .timestamp()
                .saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
        });
        if asked_end.is_none_or(|end| end > limit) {
            return Err(ApiError::forbidden(
                "a minted token cannot outlive the token that asks for it",
            ));
        }
    }
    let token = app
        .authority
        .mint(&grants, ttl)
        .map_err(|_| ApiError::internal())?;
    Ok(json_response(StatusCode::OK, &TokenResponse { token }))
}
