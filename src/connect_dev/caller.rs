//! Who is calling: the bearer-token extractor, and the per-vault authorization that records refusals.
//!
//! Every record of the activity log is made here, and each also feeds the fake Events API
//! (`events::Events::connect_request`, `refused_token`), so a request counts once in both.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};

use crate::connect::model::{ActivityAction, ActivityResult};
use crate::connect::token::{Access, ConnectClaims};

use super::activity::{Actor, Resource};
use super::auth::Rejection;
use super::error::ApiError;
use super::server::App;

/// The message Connect answers a write with a read-only grant with.
pub const NO_WRITE_ACCESS: &str =
    "Unauthorized Request, token does not have write access to the Vault";

/// The verified caller of a request.
pub struct Caller {
    pub actor: Actor,
    /// The request is a `GET` of one item (an item usage, for the Events API).
    reveals_item: bool,
}

impl Caller {
    pub fn claims(&self) -> &ConnectClaims {
        &self.actor.claims
    }

    /// Refuses (and records as DENY) a vault outside the token (403) or a write with a
    /// read-only grant (401).
    pub fn authorize(
        &self,
        app: &App,
        vault_id: &str,
        action: ActivityAction,
        resource: &Resource,
    ) -> Result<(), ApiError> {
        let refusal = match self.claims().access_to(vault_id) {
            None => ApiError::forbidden(format!("vault {vault_id} is not in scope")),
            Some(Access::Read) if action != ActivityAction::Read => {
                ApiError::unauthorized(NO_WRITE_ACCESS)
            }
            Some(_) => return Ok(()),
        };
        self.record(app, action, ActivityResult::Deny, *resource);
        Err(refusal)
    }

    /// Records a request that succeeded.
    pub fn succeeded(&self, app: &App, action: ActivityAction, resource: Resource) {
        self.record(app, action, ActivityResult::Success, resource);
    }

    fn record(
        &self,
        app: &App,
        action: ActivityAction,
        result: ActivityResult,
        resource: Resource,
    ) {
        app.events
            .connect_request(&self.actor, self.reveals_item, &action, &result, &resource);
        app.activity.record(&self.actor, action, result, resource);
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::unauthorized(Rejection::Missing.message()))?;
        let actor = |claims| Actor {
            claims,
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .map(|v| app.activity.user_agent(v)),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        };
        match app.authority.verify(token) {
            Ok(claims) => Ok(Caller {
                actor: actor(claims),
                reveals_item: parts.method == Method::GET && is_one_item(parts.uri.path()),
            }),
            Err(rejection) => {
                app.events.refused_token(
                    token,
                    parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()),
                    parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|ConnectInfo(addr)| addr.ip()),
                );
                if let Rejection::Expired(claims) = &rejection {
                    app.activity.record(
                        &actor(Arc::clone(claims)),
                        action_of(&parts.method),
                        ActivityResult::Deny,
                        resource_of(parts.uri.path()),
                    );
                }
                Err(ApiError::new(StatusCode::UNAUTHORIZED, rejection.message()))
            }
        }
    }
}

/// READ for GET, CREATE for POST, UPDATE for PUT and PATCH, DELETE for DELETE.
pub fn action_of(method: &Method) -> ActivityAction {
    match *method {
        Method::POST => ActivityAction::Create,
        Method::PUT | Method::PATCH => ActivityAction::Update,
        Method::DELETE => ActivityAction::Delete,
        _ => ActivityAction::Read,
    }
}

/// `/v1/vaults/{vault}/items/{item}` (with or without a trailing slash), nothing below it.
fn is_one_item(path: &str) -> bool {
    let mut parts = path
        .trim_end_matches('/')
        .trim_start_matches('/')
        .split('/');
    matches!(
        (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next()
        ),
        (
            Some("v1"),
            Some("vaults"),
            Some(_),
            Some("items"),
            Some(_),
            None
        )
    )
}

/// The vault and item a `/v1/vaults/...` path names, for records made before routing.
fn resource_of(path: &str) -> Resource {
    let mut parts = path.trim_matches('/').split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("v1"), Some("vaults"), Some(vault), Some("items"), Some(item)) => {
            Resource::item(vault, item, None)
        }
        (Some("v1"), Some("vaults"), Some(vault), _, _) => Resource::vault(vault),
        _ => Resource::None,
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case), if any.
pub(super) fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_from_paths() {
        let v = "abcdefghijklmnopqrstuvwxyz";
        let i = "zyxwvutsrqponmlkjihgfedcba";
        assert_eq!(resource_of("/v1/vaults"), Resource::None);
        assert_eq!(resource_of(&format!("/v1/vaults/{v}/")), Resource::vault(v));
        assert_eq!(
            resource_of(&format!("/v1/vaults/{v}/items/{i}/files")),
            Resource::item(v, i, None)
        );
        assert!(matches!(
            resource_of(&format!("/v1/vaults/{v}/items/{i}")),
            Resource::Item { .. }
        ));
        assert_eq!(resource_of("/v1/vaults/bad/items/bad"), Resource::None);
        assert!(is_one_item(&format!("/v1/vaults/{v}/items/{i}")));
        assert!(is_one_item(&format!("/v1/vaults/{v}/items/{i}/")));
        assert!(!is_one_item(&format!("/v1/vaults/{v}/items/{i}/files")));
        assert!(!is_one_item(&format!("/v1/vaults/{v}/items")));
    }
}
