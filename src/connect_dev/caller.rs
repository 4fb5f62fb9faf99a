//! Who is calling: the bearer-token extractor, and the per-vault authorization that records refusals.

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
        app.activity
            .record(&self.actor, action, ActivityResult::Deny, *resource);
        Err(refusal)
    }

    /// Records a request that succeeded.
    pub fn succeeded(&self, app: &App, action: ActivityAction, resource: Resource) {
        app.activity
            .record(&self.actor, action, ActivityResult::Success, resource);
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
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
            }),
            Err(rejection) => {
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
    }
}
