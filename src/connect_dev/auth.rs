//! Connect tokens: the ES256 signing key, minting tokens with the real claim shape, and verifying them.
//!
//! Verification checks the ES256 signature, `aud` (`com.1password.secretservice`), `iss`
//! (`com.1password.b5`) and `exp` when present. A P-256 signature check costs far more than
//! serving an item, so verified tokens are cached (keyed by the whole token string; `exp` is
//! re-checked on every use).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};

use crate::connect::model::SecretString;
use crate::connect::token::{Access, ConnectClaims, VaultGrant, decode_unverified};

use super::ids;

pub const AUDIENCE: &str = "com.1password.secretservice";
pub const ISSUER: &str = "com.1password.b5";
/// Cached verified tokens; the cache is emptied when it grows past this.
const CACHE_LIMIT: usize = 10_000;

/// The private key and the identities a server signs tokens as; persisted in the state file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMaterial {
    /// PKCS#8 PEM of the P-256 private key.
    pub signing_key: SecretString,
    /// The `kid` header of minted tokens.
    pub key_id: String,
    /// `1password.com/auuid`: the account.
    pub account: String,
    /// `sub`: the Connect server's service user.
    pub server_user: String,
}

impl KeyMaterial {
    /// A fresh P-256 key and fresh identities.
    pub fn generate() -> Result<Self, AuthError> {
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| AuthError::Key(e.to_string()))?;
        Ok(Self {
            signing_key: SecretString::new(pem.as_str()),
            key_id: ids::new_id(),
            account: ids::new_upper_id(),
            server_user: ids::new_upper_id(),
        })
    }
}

/// Why a key could not be used or a token minted. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the signing key is unusable: {0}")]
    Key(String),
    #[error("could not sign the token: {0}")]
    Sign(String),
}

/// Why a presented token was refused; each maps to a 401.
#[derive(Debug)]
pub enum Rejection {
    /// No `Authorization: Bearer ...` header, or not a JWT at all.
    Missing,
    /// A JWT whose claims cannot be read.
    Malformed,
    /// Wrong algorithm, a bad signature, or no signature.
    BadSignature,
    /// Signed by this server but past its `exp`; the claims are kept for the activity log.
    Expired(Arc<ConnectClaims>),
    /// Signed by this server for another audience or issuer.
    WrongAudience,
}

impl Rejection {
    /// The message Connect answers with.
    pub fn message(&self) -> &'static str {
        match self {
            Rejection::Missing | Rejection::Malformed => "Invalid bearer token",
            Rejection::BadSignature => "Invalid token signature",
            Rejection::Expired(_) => "Invalid bearer token: token is expired",
            Rejection::WrongAudience => "Invalid bearer token: wrong audience or issuer",
        }
    }
}

/// Signs and verifies tokens with one key.
pub struct Authority {
    material: KeyMaterial,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Verified tokens by signature (short to hash), with the whole token to compare.
    verified: RwLock<HashMap<String, (String, Arc<ConnectClaims>)>>,
}

impl Authority {
    pub fn new(material: KeyMaterial) -> Result<Self, AuthError> {
        let (encoding, decoding) = signing_keys(&material)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["aud", "iss"]);
        validation.leeway = 0;
        Ok(Self {
            material,
            encoding,
            decoding,
            validation,
            verified: RwLock::new(HashMap::new()),
        })
    }

    /// A token granting `grants` (vault id, access), expiring after `ttl` when given.
    pub fn mint(
        &self,
        grants: &[(String, Access)],
        ttl: Option<Duration>,
    ) -> Result<String, AuthError> {
        let now = unix_now();
        let claims = ConnectClaims {
            auuid: self.material.account.clone(),
            fts: vec!["vaultaccess".to_owned()],
            token: Some(SecretString::new(ids::new_token_secret())),
            vts: grants
                .iter()
                .map(|(vault, access)| VaultGrant {
                    a: access.acl(),
                    u: vault.clone(),
                })
                .collect(),
            aud: vec![AUDIENCE.to_owned()],
            iat: now,
            iss: ISSUER.to_owned(),
            jti: ids::new_id(),
            sub: self.material.server_user.clone(),
            exp: ttl.map(|t| now.saturating_add(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.material.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }

    /// The claims of `token` when this server signed it and it is still valid.
    pub fn verify(&self, token: &str) -> Result<Arc<ConnectClaims>, Rejection> {
        let cached = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(signature_of(token))
            .filter(|(full, _)| full == token)
            .map(|(_, claims)| Arc::clone(claims));
        let claims = match cached {
            Some(claims) => claims,
            None => self.verify_signature(token)?,
        };
        match claims.exp {
            // An `exp` equal to now is already past, as `iat + 0` should be.
            Some(exp) if exp <= unix_now() => Err(Rejection::Expired(claims)),
            _ => Ok(claims),
        }
    }

    fn verify_signature(&self, token: &str) -> Result<Arc<ConnectClaims>, Rejection> {
        if token.split('.').count() != 3 {
            return Err(Rejection::Missing);
        }
        match jsonwebtoken::decode::<ConnectClaims>(token, &self.decoding, &self.validation) {
            Ok(data) => {
                let claims = Arc::new(data.claims);
                let mut cache = self
                    .verified
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(
                    signature_of(token).to_owned(),
                    (token.to_owned(), Arc::clone(&claims)),
                );
                Ok(claims)
            }
            Err(e) => Err(match e.kind() {
                // The signature was checked before the claims, so these claims are authentic.
                ErrorKind::ExpiredSignature => match decode_unverified(token) {
                    Ok(claims) => Rejection::Expired(Arc::new(claims)),
                    Err(_) => Rejection::Malformed,
                },
                ErrorKind::InvalidAudience
                | ErrorKind::InvalidIssuer
                | ErrorKind::MissingRequiredClaim(_) => Rejection::WrongAudience,
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::MissingAlgorithm
                | ErrorKind::InvalidEcdsaKey => Rejection::BadSignature,
                _ => Rejection::Malformed,
            }),
        }
    }
}

/// The ES256 keys of `material`: the private key to sign with, its public key to verify with.
pub fn signing_keys(material: &KeyMaterial) -> Result<(EncodingKey, DecodingKey), AuthError> {
    let pem = material.signing_key.expose();
    let secret = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| AuthError::Key(e.to_string()))?;
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| AuthError::Key(e.to_string()))?;
    let encoding =
        EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| AuthError::Key(e.to_string()))?;
    let decoding = DecodingKey::from_ec_pem(public_pem.as_bytes())
        .map_err(|e| AuthError::Key(e.to_string()))?;
    Ok((encoding, decoding))
}

/// The signature part of a JWT (after the last dot).
pub fn signature_of(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> Authority {
        Authority::new(KeyMaterial::generate().expect("key")).expect("authority")
    }

    #[test]
    fn mints_and_verifies_real_claim_shape() {
        let auth = authority();
        let token = auth
            .mint(&[("abcdefghijklmnopqrstuvwxyz".into(), Access::Read)], None)
            .expect("mint");
        let claims = auth.verify(&token).expect("verifies");
        assert_eq!(claims.vts[0].a, Access::Read.acl());
        assert_eq!(claims.aud, vec![AUDIENCE]);
        assert_eq!(claims.iss, ISSUER);
        assert!(claims.exp.is_none());
        assert!(crate::connect::model::is_connect_id(&claims.jti));
        // The cached path gives the same answer.
        assert_eq!(auth.verify(&token).expect("cached").jti, claims.jti);
    }

    #[test]
    fn refuses_foreign_and_broken_tokens() {
        let (a, b) = (authority(), authority());
        let token = a.mint(&[], None).expect("mint");
        assert!(matches!(b.verify(&token), Err(Rejection::BadSignature)));
        assert!(matches!(a.verify("nope"), Err(Rejection::Missing)));
        assert!(matches!(a.verify("a.b.c"), Err(Rejection::Malformed)));
    }

    #[test]
    fn expired_tokens_keep_their_claims() {
        let auth = authority();
        let token = auth.mint(&[], Some(Duration::ZERO)).expect("mint");
        match auth.verify(&token) {
            Err(Rejection::Expired(claims)) => assert!(claims.exp.is_some()),
            other => panic!("expected expiry, got {other:?}"),
        }
    }
}
