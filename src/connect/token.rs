//! The Connect token: its JWT claims, vault grants and access bits, and unverified decoding.
//!
//! Only 1Password can verify a real Connect token's signature; opsync decodes the claims
//! to show the operator what a token grants and when it expires.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// ACL bits of a read-only grant (the value seen on read-only tokens).
pub const ACL_READ: u32 = 0x0000_C000;
/// ACL bits of a read-write grant (the value in the official SDKs' test token).
pub const ACL_READ_WRITE: u32 = 0x00F0_07F0 | ACL_READ;
/// Bits that mean write access. 1Password does not publish the ACL layout; opsync treats any
/// of these as write.
pub const ACL_WRITE_MASK: u32 = 0x00F0_0000;

/// What a grant lets the token do with a vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    ReadWrite,
}

impl Access {
    pub fn acl(self) -> u32 {
        match self {
            Access::Read => ACL_READ,
            Access::ReadWrite => ACL_READ_WRITE,
        }
    }

    pub fn from_acl(a: u32) -> Self {
        if a & ACL_WRITE_MASK != 0 {
            Access::ReadWrite
        } else {
            Access::Read
        }
    }

    pub fn can_write(self) -> bool {
        self == Access::ReadWrite
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "r",
            Access::ReadWrite => "rw",
        })
    }
}

/// One entry of `1password.com/vts`: a vault id and its ACL bitmask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultGrant {
    /// ACL bitmask.
    pub a: u32,
    /// Vault id.
    pub u: String,
}

impl VaultGrant {
    pub fn access(&self) -> Access {
        Access::from_acl(self.a)
    }
}

/// The claims of a Connect token, with the real claim names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectClaims {
    #[serde(rename = "1password.com/auuid", default)]
    pub auuid: String,
    #[serde(rename = "1password.com/fts", default)]
    pub fts: Vec<String>,
    /// The per-token secret part; never printed.
    #[serde(
        rename = "1password.com/token",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<crate::connect::model::SecretString>,
    #[serde(rename = "1password.com/vts", default)]
    pub vts: Vec<VaultGrant>,
    #[serde(default)]
    pub aud: Vec<String>,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl ConnectClaims {
    /// The access this token has to `vault_id`, if any.
    pub fn access_to(&self, vault_id: &str) -> Option<Access> {
        self.vts
            .iter()
            .find(|g| g.u == vault_id)
            .map(VaultGrant::access)
    }

    pub fn issued_at(&self) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(self.iat, 0).single()
    }

    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.exp.and_then(|e| Utc.timestamp_opt(e, 0).single())
    }
}

/// Why a token could not be decoded. Never carries the token itself.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the Connect token is not a JWT (expected three dot-separated parts)")]
    NotAJwt,
    #[error("the Connect token's claims could not be read: {0}")]
    Claims(String),
}

/// Reads the claims of a Connect token without verifying its signature.
pub fn decode_unverified(token: &str) -> Result<ConnectClaims, TokenError> {
    let token = token.trim();
    if token.split('.').count() != 3 {
        return Err(TokenError::NotAJwt);
    }
    let data = jsonwebtoken::dangerous::insecure_decode::<ConnectClaims>(token)
        .map_err(|e| TokenError::Claims(e.to_string()))?;
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token with the claims of the official Go SDK's test token (signature irrelevant).
    const SDK_TEST_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6Imo2dG5zMmFwN2F1bG5ycXR4NnhqY3J6dmZ5IiwidHlwIjoiSldUIn0.eyIxcGFzc3dvcmQuY29tL2F1dWlkIjoiR1RLVjVWUk5UUkVHUEVMWE41QlBSQTJHTjQiLCIxcGFzc3dvcmQuY29tL2Z0cyI6WyJ2YXVsdGFjY2VzcyJdLCIxcGFzc3dvcmQuY29tL3Z0cyI6W3siYSI6MTU3MzA2NzIsInUiOiJvdGw2cjZudWdqNXdyNjNybmt3M3Y0cGJuYSJ9XSwiYXVkIjpbImNvbS4xcGFzc3dvcmQuc2VjcmV0c2VydmljZSJdLCJpYXQiOjE2MDMxMjg2NDIsImlzcyI6ImNvbS4xcGFzc3dvcmQuYjUiLCJqdGkiOiI2bjYyZHhyanBxZW00aGJ4d3dxdGJtNmpsZSIsInN1YiI6IkFWNFFORUM3UEZSRkRGRUUySURKTTNDUklDSSJ9.c2lnbmF0dXJl";

    #[test]
    fn decodes_claim_shape() {
        let c = decode_unverified(SDK_TEST_TOKEN).expect("decodes");
        assert_eq!(c.vts.len(), 1);
        assert_eq!(c.vts[0].u, "otl6r6nugj5wr63rnkw3v4pbna");
        assert_eq!(
            c.access_to("otl6r6nugj5wr63rnkw3v4pbna"),
            Some(Access::ReadWrite)
        );
        assert_eq!(c.iss, "com.1password.b5");
        assert!(c.exp.is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            decode_unverified("nope"),
            Err(TokenError::NotAJwt)
        ));
        assert!(matches!(
            decode_unverified("a.b.c"),
            Err(TokenError::Claims(_))
        ));
    }

    #[test]
    fn acl_bits() {
        assert_eq!(Access::from_acl(ACL_READ), Access::Read);
        assert_eq!(Access::from_acl(ACL_READ_WRITE), Access::ReadWrite);
        assert_eq!(Access::from_acl(15_730_672), Access::ReadWrite);
        assert_eq!(Access::from_acl(49_152), Access::Read);
    }
}
