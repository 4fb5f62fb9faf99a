//! Keyed fingerprints of what destinations hold: HMAC-SHA-256 under a key only the host has,
//! so a fingerprint kept in the state database cannot be tested against a guessed value by
//! anyone holding the database without the key.

use std::io::Write as _;
use std::path::Path;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

/// Bytes of a fingerprint key: SHA-256's block size, so HMAC takes it as it is.
pub const KEY_LEN: usize = 64;

/// Most digests one call may ask for (a batch of the largest size, each with room to spare).
pub const MAX_DIGESTS_PER_CALL: usize = 4096;

/// The key fingerprints are made under.
#[derive(Clone)]
pub struct FingerprintKey([u8; KEY_LEN]);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("fingerprint key {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fingerprint key {path}: {len} bytes, expected {KEY_LEN}")]
    Length { path: String, len: usize },
}

impl FingerprintKey {
    /// A fresh random key (fingerprints made under it mean nothing after the process ends).
    pub fn random() -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// The key kept at `path`, made (0600, written whole) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyFileError> {
        let shown = path.display().to_string();
        let io = |source| KeyFileError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| KeyFileError::Length {
                            path: shown.clone(),
                            len: bytes.len(),
                        })?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::random();
                // A temp file of this process's own: replicas sharing the directory may make
                // the key at the same moment.
                let tmp = path.with_extension(format!(
                    "tmp.{}.{:016x}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode_private()
                    .open(&tmp)
                    .map_err(io)?;
                file.write_all(&key.0).map_err(io)?;
                file.sync_all().map_err(io)?;
                // Another process may have made one meanwhile: keep whichever landed first.
                match std::fs::hard_link(&tmp, path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io(e)),
                }
                let _ = std::fs::remove_file(&tmp);
                Self::load_or_create(path)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The fingerprint of `data`, hex.
    pub fn digest(&self, data: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.0.into());
        mac.update(data);
        hex(&mac.finalize().into_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `mode(0o600)` on Unix, where the daemon runs.
trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_stable() {
        let a = FingerprintKey::random();
        let b = FingerprintKey::random();
        assert_eq!(a.digest(b"value"), a.digest(b"value"));
        assert_ne!(a.digest(b"value"), a.digest(b"other"));
        assert_ne!(a.digest(b"value"), b.digest(b"value"));
        assert_eq!(a.digest(b"value").len(), 64);
        assert!(!format!("{a:?}").contains(&hex(&a.0)));
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fingerprint.key");
        let first = FingerprintKey::load_or_create(&path).unwrap();
        let again = FingerprintKey::load_or_create(&path).unwrap();
        assert_eq!(first.digest(b"x"), again.digest(b"x"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        let err = FingerprintKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("5 bytes"), "{err}");
    }

    #[test]
    fn processes_making_the_key_at_once_all_get_the_one_that_landed() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("opsync-fingerprint.key");
            let keys: Vec<[u8; KEY_LEN]> = std::thread::scope(|s| {
                let makers: Vec<_> = (0..6)
                    .map(|_| s.spawn(|| FingerprintKey::load_or_create(&path).unwrap().0))
                    .collect();
                makers.into_iter().map(|m| m.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]));
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                1,
                "no temp file left"
            );
        }
    }
}
