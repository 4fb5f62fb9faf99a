//! GitHub App authentication: the private key, the RS256 JWT, and its installation token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crypto_box::aead::OsRng;
use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::http::encode;
use opsync_destination_kit::{PluginError, Secret, misconfigured, permanent, settings};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde_json::{Value, json};

use crate::github::{self, GitHub};

/// How far back `iat` is set, against clock drift between the host and GitHub.
pub(crate) const BACKDATE_SECS: i64 = 60;
/// How long the JWT is valid from now (GitHub allows at most ten minutes).
pub(crate) const LIFETIME_SECS: i64 = 9 * 60;

/// The GitHub App of `app-id` and `installation-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct App {
    /// The app's id (digits) or client id (`Iv1.…`): the JWT's issuer.
    pub(crate) app_id: String,
    pub(crate) installation_id: u64,
}

/// Parses the PEM of `private-key`: PKCS#1 (`BEGIN RSA PRIVATE KEY`, as GitHub issues it) or
/// PKCS#8 (`BEGIN PRIVATE KEY`). A key stored on one line with `\n` escapes is accepted too.
/// The error never holds the key.
pub(crate) fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, PluginError> {
    let text = if !pem.contains('\n') && pem.contains("\\n") {
        pem.replace("\\n", "\n")
    } else {
        pem.to_string()
    };
    let text = text.trim();
    let parsed = if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| e.to_string())
    } else if text.contains("-----BEGIN PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| e.to_string())
    } else {
        Err("no `-----BEGIN RSA PRIVATE KEY-----` (or PKCS#8 `BEGIN PRIVATE KEY`) block".into())
    };
    parsed.map_err(|why| {
        misconfigured(format!(
            "`private-key` is not the GitHub App's RSA private key in PEM ({why}): set it to the \
             `.pem` file GitHub generated for the app"
        ))
    })
}

/// The JWT's claims at `now` (Unix seconds). A numeric app id is a JSON number, a client id a
/// string.
pub(crate) fn claims(app_id: &str, now: i64) -> Value {
    let iss = match app_id.parse::<u64>() {
        Ok(id) => json!(id),
        Err(_) => json!(app_id),
    };
    json!({ "iat": now - BACKDATE_SECS, "exp": now + LIFETIME_SECS, "iss": iss })
}

/// The RS256 JWT of `app_id` at `now`: base64url header and claims, signed with RSASSA-PKCS1-v1_5
/// over SHA-256 (blinded with a random factor).
pub(crate) fn jwt(key: &RsaPrivateKey, app_id: &str, now: i64) -> Result<String, PluginError> {
    let header = json!({ "alg": "RS256", "typ": "JWT" });
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let input = format!("{}.{}", part(&header), part(&claims(app_id, now)));
    let signature = SigningKey::<Sha256>::new(key.clone())
        .try_sign_with_rng(&mut OsRng, input.as_bytes())
        .map_err(|_| misconfigured("cannot sign the GitHub App JWT with `private-key`"))?;
    Ok(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// The path of the installation token exchange.
pub(crate) fn access_tokens_path(installation_id: u64) -> String {
    format!(
        "/app/installations/{}/access_tokens",
        encode(&installation_id.to_string())
    )
}

/// A fresh installation access token of `app`: the private key is revealed, a JWT signed for
/// now (the guest's clock) and exchanged. The JWT and the token are handed to the host as
/// secrets, so it redacts them from whatever the plugin logs.
pub(crate) fn installation_token(github: &GitHub, app: &App) -> Result<String, PluginError> {
    let key = parse_private_key(&settings::secret("private-key")?.reveal())?;
    let jwt = jwt(&key, &app.app_id, Instant::now().unix())?;
    drop(Secret::new("GitHub App JWT", &jwt));
    let path = access_tokens_path(app.installation_id);
    let what = format!(
        "cannot get an installation token of GitHub App `{}` (installation {})",
        app.app_id, app.installation_id
    );
    let response = github.send("POST", &path, &jwt, None)?;
    match response.status {
        401 => {
            return Err(misconfigured(format!(
                "{what}: POST {path}: status 401: {}: GitHub refused the app's JWT; check \
                 `app-id` and `private-key` (and the host's clock)",
                github::message(&response)
            )));
        }
        404 => {
            return Err(misconfigured(format!(
                "{what}: POST {path}: status 404: {}: no such installation of this app; check \
                 `installation-id` (the app must be installed on the target's account)",
                github::message(&response)
            )));
        }
        _ => {}
    }
    let body = github::success("POST", &path, &what, response)?;
    let token = body["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| permanent(format!("{what}: POST {path}: the answer has no `token`")))?;
    drop(Secret::new("GitHub App installation token", token));
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::signature::Verifier;

    const PEM: &str = include_str!("../testdata/app-test-key.pem");
    const NOW: i64 = 1_700_000_000;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    }

    #[test]
    fn claims_are_backdated_and_short_lived() {
        assert_eq!(
            claims("123456", NOW),
            json!({"iat": NOW - 60, "exp": NOW + 540, "iss": 123456})
        );
        assert_eq!(
            claims("Iv1.8a61f9b3a7aba766", NOW)["iss"],
            "Iv1.8a61f9b3a7aba766"
        );
    }

    #[test]
    fn the_jwt_is_rs256_over_header_and_claims() {
        let key = parse_private_key(PEM).expect("PKCS#1");
        let token = jwt(&key, "123456", NOW).expect("signed");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(decode(parts[1]), claims("123456", NOW));
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
        assert_eq!(signature.len(), 256);
        let verifier = VerifyingKey::<Sha256>::new(key.to_public_key());
        let signature = Signature::try_from(signature.as_slice()).expect("signature");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(verifier.verify(input.as_bytes(), &signature).is_ok());
        // PKCS#1 v1.5 is deterministic: blinding does not change the signature.
        assert_eq!(jwt(&key, "123456", NOW).expect("again"), token);
        assert!(verifier.verify(b"other", &signature).is_err());
    }

    #[test]
    fn private_keys_in_pkcs1_pkcs8_or_escaped_on_one_line() {
        let key = parse_private_key(PEM).expect("PKCS#1");
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
        assert_eq!(parse_private_key(&pkcs8).expect("PKCS#8"), key);
        let one_line = PEM.trim().replace('\n', "\\n");
        assert_eq!(parse_private_key(&one_line).expect("escaped"), key);
        let body: String = PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        for bad in [
            "",
            "hunter2",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
        ] {
            let err = parse_private_key(bad).expect_err("not a key");
            assert!(
                matches!(&err, PluginError::Misconfigured(m) if m.contains("`private-key`") && !m.contains("hunter2")),
                "{err:?}"
            );
        }
        let err = parse_private_key(&body).expect_err("no PEM armour");
        assert!(matches!(&err, PluginError::Misconfigured(m) if !m.contains(&body[..40])));
    }

    #[test]
    fn the_exchange_path() {
        assert_eq!(
            access_tokens_path(42_000_001),
            "/app/installations/42000001/access_tokens"
        );
    }
}
