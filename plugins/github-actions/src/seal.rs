//! Values sealed as GitHub wants them: a libsodium sealed box to the target's key, base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_box::aead::OsRng;
use crypto_box::aead::rand_core::CryptoRngCore;
use crypto_box::{KEY_SIZE, PublicKey};
use opsync_destination_kit::{PluginError, misconfigured, permanent};
use serde_json::Value;

/// A target's public key, as `GET .../secrets/public-key` answers it.
#[derive(Clone)]
pub(crate) struct TargetKey {
    pub(crate) key_id: String,
    pub(crate) key: PublicKey,
}

impl TargetKey {
    /// Reads `{"key_id": "...", "key": "BASE64"}`; `source` names the request, for messages.
    pub(crate) fn from_json(source: &str, body: &Value) -> Result<Self, PluginError> {
        let bad =
            |why: &str| misconfigured(format!("{source}: {why}; is `api-url` GitHub's REST API?"));
        let key_id = match &body["key_id"] {
            Value::String(id) if !id.is_empty() => id.clone(),
            Value::Number(id) => id.to_string(),
            _ => return Err(bad("the answer has no `key_id`")),
        };
        let key = body["key"]
            .as_str()
            .ok_or_else(|| bad("the answer has no `key`"))?;
        let bytes: [u8; KEY_SIZE] = STANDARD
            .decode(key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("`key` is not a base64 Curve25519 public key (32 bytes)"))?;
        Ok(Self {
            key_id,
            key: PublicKey::from(bytes),
        })
    }

    /// `value` sealed to this key, base64: what a write sends as `encrypted_value`. A fresh
    /// ephemeral key from the system's random source every time.
    pub(crate) fn seal(&self, value: &[u8]) -> Result<String, PluginError> {
        self.seal_with(&mut OsRng, value)
    }

    fn seal_with(&self, rng: &mut impl CryptoRngCore, value: &[u8]) -> Result<String, PluginError> {
        let sealed = self
            .key
            .seal(rng, value)
            .map_err(|_| permanent("cannot seal the value to the target's public key"))?;
        Ok(STANDARD.encode(sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_box::SecretKey;
    use serde_json::json;

    fn target_key(secret: &SecretKey) -> TargetKey {
        let body = json!({
            "key_id": "568250167242549743",
            "key": STANDARD.encode(secret.public_key().as_bytes()),
        });
        TargetKey::from_json("GET /x", &body).expect("valid")
    }

    #[test]
    fn a_sealed_value_opens_with_the_targets_secret_key() {
        let secret = SecretKey::generate(&mut OsRng);
        let key = target_key(&secret);
        assert_eq!(key.key_id, "568250167242549743");
        for value in ["hunter2", "", "ünïcödé\n-----BEGIN KEY-----"] {
            let sealed = key.seal(value.as_bytes()).expect("sealed");
            let bytes = STANDARD.decode(&sealed).expect("base64");
            // libsodium's layout: the ephemeral public key, then the box with its 16-byte tag.
            assert_eq!(bytes.len(), crypto_box::SEALBYTES + value.len());
            assert_eq!(secret.unseal(&bytes).expect("opens"), value.as_bytes());
            // Another key cannot open it.
            let other = SecretKey::generate(&mut OsRng);
            assert!(other.unseal(&bytes).is_err());
        }
        // A fresh ephemeral key each time.
        assert_ne!(key.seal(b"x").expect("a"), key.seal(b"x").expect("b"));
    }

    #[test]
    fn a_sealed_box_made_by_libsodium_opens_and_ours_is_its_format() {
        // Made by libsodium (PyNaCl's `SealedBox`) for the recipient secret key 0x01 * 32.
        let secret = SecretKey::from([1u8; KEY_SIZE]);
        assert_eq!(
            STANDARD.encode(secret.public_key().as_bytes()),
            "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk="
        );
        let libsodium = STANDARD
            .decode(
                "kmri0QECiSD99xhYgTfN+wQxycV2ZBJK2PSy/jZZOxhxcnn9M2PIm/0C8oPWd3oNg2bGqfYUXX4KsNuWhD\
                 zjBONgzG/P8le9",
            )
            .expect("base64");
        assert_eq!(
            secret.unseal(&libsodium).expect("opens"),
            b"opsync sealed-box vector"
        );
        // Ours has libsodium's layout and opens the same way.
        let sealed = target_key(&secret)
            .seal(b"opsync sealed-box vector")
            .expect("sealed");
        let ours = STANDARD.decode(sealed).expect("base64");
        assert_eq!(ours.len(), libsodium.len());
        assert_eq!(
            secret.unseal(&ours).expect("opens"),
            b"opsync sealed-box vector"
        );
    }

    #[test]
    fn public_keys_must_be_curve25519_keys() {
        let good = STANDARD.encode([7u8; 32]);
        assert!(TargetKey::from_json("GET /x", &json!({"key_id": 12, "key": good})).is_ok());
        for body in [
            json!({"key": good}),
            json!({"key_id": "", "key": good}),
            json!({"key_id": "1"}),
            json!({"key_id": "1", "key": "not base64!"}),
            json!({"key_id": "1", "key": STANDARD.encode([7u8; 31])}),
        ] {
            let err = TargetKey::from_json("GET /x", &body)
                .map(|_| ())
                .expect_err("bad");
            assert!(
                matches!(&err, PluginError::Misconfigured(m) if m.starts_with("GET /x:") && m.contains("`api-url`")),
                "{body}: {err:?}"
            );
        }
    }
}
