//! Events API tokens: ES256 JWTs signed with the Connect signing key for the Events audience, and `POST /opsync-dev/events-tokens` that mints them.
//!
//! Claims follow real Events tokens: `1password.com/auuid` (the account), `1password.com/fts`
//! (the features: stream names), `aud` (`com.1password.streamingservice`, the audience real
//! tokens carried before they named their Events host, so no client derives a real host from
//! it), `iss`, `iat`, `jti` (the integration's UUID, as introspection shows it), `sub`, optional
//! `exp`. Connect refuses these tokens (wrong audience) and the Events routes refuse Connect's.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::connect::model::SecretString;
use crate::connect::token::ConnectClaims;

use super::super::auth::{self, AuthError, ISSUER, KeyMaterial};
use super::super::caller::Caller;
use super::super::dev_tokens::TokenResponse;
use super::super::error::{ApiError, json_response};
use super::super::ids;
use super::super::items::parse_json;
use super::super::server::App;
use super::Stream;

/// The `aud` of Events tokens.
pub const AUDIENCE: &str = "com.1password.streamingservice";
/// The path of the minting endpoint.
pub const MINT_PATH: &str = "/opsync-dev/events-tokens";
/// Cached verified tokens; the cache is emptied when it grows past this.
const CACHE_LIMIT: usize = 10_000;

/// Signs and verifies Events tokens.
pub struct EventsTokens {
    account: String,
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Verified tokens by signature, with the whole token to compare.
    verified: RwLock<HashMap<String, (String, Arc<ConnectClaims>)>>,
}

impl EventsTokens {
    pub fn new(material: &KeyMaterial) -> Result<Self, AuthError> {
        let (encoding, decoding) = auth::signing_keys(material)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["aud", "iss"]);
        validation.leeway = 0;
        Ok(Self {
            account: material.account.clone(),
            key_id: material.key_id.clone(),
            encoding,
            decoding,
            validation,
            verified: RwLock::new(HashMap::new()),
        })
    }

    /// A token for `features`, expiring after `ttl` when given.
    pub fn mint(&self, features: &[Stream], ttl: Option<Duration>) -> Result<String, AuthError> {
        let now = auth::unix_now();
        let claims = ConnectClaims {
            auuid: self.account.clone(),
            fts: features.iter().map(|f| f.name().to_owned()).collect(),
            token: Some(SecretString::new(ids::new_token_secret())),
            vts: Vec::new(),
            aud: vec![AUDIENCE.to_owned()],
            iat: now,
            iss: ISSUER.to_owned(),
            jti: ids::new_upper_id(),
            sub: ids::new_upper_id(),
            exp: ttl.map(|t| now.saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }

    /// The claims of `token` when this server signed it for Events and it has not expired.
    pub fn verify(&self, token: &str) -> Option<Arc<ConnectClaims>> {
        let cached = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(auth::signature_of(token))
            .filter(|(full, _)| full == token)
            .map(|(_, claims)| Arc::clone(claims));
        let claims = match cached {
            Some(claims) => claims,
            None => self.verify_signature(token)?,
        };
        match claims.exp {
            Some(exp) if exp <= auth::unix_now() => None,
            _ => Some(claims),
        }
    }

    fn verify_signature(&self, token: &str) -> Option<Arc<ConnectClaims>> {
        if token.split('.').count() != 3 {
            return None;
        }
        let data =
            jsonwebtoken::decode::<ConnectClaims>(token, &self.decoding, &self.validation).ok()?;
        let claims = Arc::new(data.claims);
        let mut cache = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            auth::signature_of(token).to_owned(),
            (token.to_owned(), Arc::clone(&claims)),
        );
        Some(claims)
    }
}

/// Body of `POST /opsync-dev/events-tokens`; an empty body asks for every feature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsTokenRequest {
    /// Stream names; none or empty means all three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Lifetime of the new token; none means it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// `POST /opsync-dev/events-tokens`: any Connect token this server signed may ask; the new
/// token may not outlive it.
pub async fn mint(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: EventsTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        EventsTokenRequest::default()
    } else {
        parse_json(&body, "Events token request")?
    };
    let features = super::parse_features(&request.features.join(","))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ttl = request.expires_in_seconds.map(Duration::from_secs);
    if let Some(limit) = caller.claims().exp {
        let asked_end = ttl.map(|t| {
            auth::unix_now().saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
        });
        if asked_end.is_none_or(|end| end > limit) {
            return Err(ApiError::forbidden(
                "a minted token cannot outlive the token that asks for it",
            ));
        }
    }
    let token = app
        .events
        .mint(&features, ttl)
        .map_err(|_| ApiError::internal())?;
    Ok(json_response(StatusCode::OK, &TokenResponse { token }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::token::decode_unverified;

    fn tokens() -> (KeyMaterial, EventsTokens) {
        let key = KeyMaterial::generate().expect("key");
        let tokens = EventsTokens::new(&key).expect("signer");
        (key, tokens)
    }

    #[test]
    fn mints_feature_scoped_tokens_that_connect_refuses() {
        let (key, tokens) = tokens();
        let token = tokens
            .mint(&[Stream::AuditEvents, Stream::SignInAttempts], None)
            .expect("mint");
        let claims = tokens.verify(&token).expect("verifies");
        assert_eq!(claims.fts, ["auditevents", "signinattempts"]);
        assert_eq!(claims.aud, [AUDIENCE]);
        assert_eq!(claims.auuid, key.account);
        assert_eq!(decode_unverified(&token).expect("claims").jti, claims.jti);
        // Cached path.
        assert!(tokens.verify(&token).is_some());
        let connect = auth::Authority::new(key).expect("authority");
        assert!(connect.verify(&token).is_err());
        let connect_token = connect.mint(&[], None).expect("connect token");
        assert!(tokens.verify(&connect_token).is_none());
    }

    #[test]
    fn refuses_expired_foreign_and_broken_tokens() {
        let (_, tokens) = tokens();
        let expired = tokens
            .mint(&Stream::ALL, Some(Duration::ZERO))
            .expect("mint");
        assert!(tokens.verify(&expired).is_none());
        let (_, other) = self::tokens();
        let foreign = other.mint(&Stream::ALL, None).expect("mint");
        assert!(tokens.verify(&foreign).is_none());
        assert!(tokens.verify("garbage").is_none());
        assert!(tokens.verify("a.b.c").is_none());
    }
}
