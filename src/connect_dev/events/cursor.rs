//! Opaque cursors: stream, position, time window and page size, sealed with a per-run key so a garbled or foreign cursor is refused.
//!
//! Layout before sealing: format byte, stream index, position (u64), window start and end
//! (i64 Unix nanoseconds), limit (u16), all big-endian; then the first 12 bytes of an
//! HMAC-SHA256 over them. The whole is URL-safe base64 without padding. A cursor from an
//! earlier run of the server fails the check like a garbled one (the records are gone too).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use super::Stream;
use super::records::Window;

const FORMAT: u8 = 1;
const BODY_LEN: usize = 1 + 1 + 8 + 8 + 8 + 2;
const TAG_LEN: usize = 12;

/// Where a client is in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub stream: Stream,
    pub window: Window,
    pub limit: u16,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not valid")]
    Garbled,
    #[error("the cursor belongs to the {0} stream")]
    OtherStream(Stream),
}

/// The per-run sealing key, as a keyed HMAC ready to clone.
pub struct CursorKey(Hmac<Sha256>);

impl CursorKey {
    pub fn random() -> Self {
        let mut key = Key::<Hmac<Sha256>>::default();
        rand::thread_rng().fill_bytes(&mut key);
        Self(<Hmac<Sha256> as KeyInit>::new(&key))
    }

    pub fn seal(&self, cursor: &Cursor) -> String {
        let mut bytes = Vec::with_capacity(BODY_LEN + TAG_LEN);
        bytes.push(FORMAT);
        bytes.push(cursor.stream.index() as u8);
        bytes.extend_from_slice(&cursor.window.position.to_be_bytes());
        bytes.extend_from_slice(&cursor.window.start.to_be_bytes());
        bytes.extend_from_slice(&cursor.window.end.to_be_bytes());
        bytes.extend_from_slice(&cursor.limit.to_be_bytes());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor in `text`, when this run sealed it for `stream`.
    pub fn open(&self, text: &str, stream: Stream) -> Result<Cursor, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| CursorError::Garbled)?;
        if bytes.len() != BODY_LEN + TAG_LEN || bytes[0] != FORMAT {
            return Err(CursorError::Garbled);
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        if !self.verify(body, tag) {
            return Err(CursorError::Garbled);
        }
        let found = Stream::from_index(body[1]).ok_or(CursorError::Garbled)?;
        if found != stream {
            return Err(CursorError::OtherStream(found));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[at..at + 8]);
            b
        };
        Ok(Cursor {
            stream: found,
            window: Window {
                position: u64::from_be_bytes(u64_at(2)),
                start: i64::from_be_bytes(u64_at(10)),
                end: i64::from_be_bytes(u64_at(18)),
            },
            limit: u16::from_be_bytes([body[26], body[27]]),
        })
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    fn verify(&self, body: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(body);
        mac.verify_truncated_left(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(stream: Stream) -> Cursor {
        Cursor {
            stream,
            window: Window {
                position: 1234,
                start: -5,
                end: i64::MAX,
            },
            limit: 1000,
        }
    }

    #[test]
    fn round_trips_and_is_opaque() {
        let key = CursorKey::random();
        let sealed = key.seal(&cursor(Stream::ItemUsages));
        assert!(
            sealed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            key.open(&sealed, Stream::ItemUsages),
            Ok(cursor(Stream::ItemUsages))
        );
        // Deterministic: the same position gives the same cursor.
        assert_eq!(sealed, key.seal(&cursor(Stream::ItemUsages)));
    }

    #[test]
    fn refuses_garbled_foreign_and_other_stream_cursors() {
        let key = CursorKey::random();
        let sealed = key.seal(&cursor(Stream::AuditEvents));
        assert_eq!(
            key.open(&sealed, Stream::SignInAttempts),
            Err(CursorError::OtherStream(Stream::AuditEvents))
        );
        assert_eq!(
            CursorKey::random().open(&sealed, Stream::AuditEvents),
            Err(CursorError::Garbled)
        );
        let mut flipped = sealed.into_bytes();
        flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            key.open(&flipped, Stream::AuditEvents),
            Err(CursorError::Garbled)
        );
        for junk in [
            "",
            "not a cursor",
            "aGVsbG8hIGlzIGl0IG1lIHlvdSBhcmUgbG9va2luZyBmb3IK",
        ] {
            assert_eq!(
                key.open(junk, Stream::AuditEvents),
                Err(CursorError::Garbled)
            );
        }
    }
}
