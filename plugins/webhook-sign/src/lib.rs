//! Standard Webhooks signing: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed
//! with the base64-decoded secret (written `whsec_...`). The one signer of the `webhook`
//! destination and the `webhook-audit` sink.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use opsync_guest::{PluginError, misconfigured, settings};
use sha2::Sha256;

/// The decoded signing secret. No `Debug`: it must not reach a log line.
pub struct SigningKey(Vec<u8>);

/// Why a secret cannot be used as a signing key (the message never holds the secret).
#[derive(Debug, PartialEq, Eq)]
pub struct BadSecret(pub &'static str);

impl SigningKey {
    /// From `whsec_<base64>` or plain base64, as Standard Webhooks secrets are written.
    pub fn from_secret(secret: &str) -> Result<Self, BadSecret> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(encoded.trim())
            .map_err(|_| BadSecret("write it as whsec_ followed by base64"))?;
        if key.len() < 16 {
            return Err(BadSecret("it must decode to at least 16 bytes"));
        }
        Ok(Self(key))
    }

    /// From the secret in config key `key`; a missing or unusable secret is `misconfigured`.
    pub fn from_config(key: &str) -> Result<Self, PluginError> {
        let secret = settings::secret(key)?;
        Self::from_secret(&secret.reveal())
            .map_err(|e| misconfigured(format!("`{key}` is not a webhook signing secret: {}", e.0)))
    }

    /// The `webhook-signature` header value for message `id` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_example() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_secrets_that_are_not_base64_or_too_short() {
        assert!(SigningKey::from_secret("whsec_not base64!").is_err());
        assert!(SigningKey::from_secret("whsec_AAAA").is_err());
    }
}
