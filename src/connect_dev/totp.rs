//! The current one-time code of an OTP field (`otpauth://totp/...`), per RFC 6238 with
//! HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512 (the URI's `algorithm`, SHA1 when absent).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// The HMAC hash of a TOTP URI's `algorithm` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `SHA1`, `SHA256` or `SHA512`, in any case; `None` for anything else.
    fn parse(name: &str) -> Option<Self> {
        [
            ("SHA1", Self::Sha1),
            ("SHA256", Self::Sha256),
            ("SHA512", Self::Sha512),
        ]
        .into_iter()
        .find_map(|(n, a)| name.eq_ignore_ascii_case(n).then_some(a))
    }
}

/// The code for `uri` at `now`, or `None` when the URI is not a TOTP URI this server can compute
/// (an algorithm other than SHA1, SHA256 or SHA512, a bad secret, odd digits or period).
pub fn current_code(uri: &str, now: SystemTime) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if url.scheme() != "otpauth" || url.host_str() != Some("totp") {
        return None;
    }
    let mut secret = None;
    let mut digits = 6u32;
    let mut period = 30u64;
    let mut algorithm = Algorithm::Sha1;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "secret" => secret = base32_decode(&value),
            "digits" => digits = value.parse().ok()?,
            "period" => period = value.parse().ok()?,
            "algorithm" => algorithm = Algorithm::parse(&value)?,
            _ => {}
        }
    }
    let secret = secret?;
    if secret.is_empty() || !(6..=9).contains(&digits) || period == 0 {
        return None;
    }
    let counter = now.duration_since(UNIX_EPOCH).ok()?.as_secs() / period;
    hotp(algorithm, &secret, counter, digits)
}

/// RFC 4226 HOTP: the HMAC of the big-endian counter, dynamically truncated to `digits` digits.
/// `None` only if the HMAC cannot be keyed or is shorter than 20 bytes, which none of these is.
fn hotp(algorithm: Algorithm, secret: &[u8], counter: u64, digits: u32) -> Option<String> {
    let message = counter.to_be_bytes();
    let hash = match algorithm {
        Algorithm::Sha1 => hmac::<Hmac<Sha1>>(secret, &message)?,
        Algorithm::Sha256 => hmac::<Hmac<Sha256>>(secret, &message)?,
        Algorithm::Sha512 => hmac::<Hmac<Sha512>>(secret, &message)?,
    };
    let offset = usize::from(hash.last()? & 0x0f);
    let bytes: [u8; 4] = hash.get(offset..offset + 4)?.try_into().ok()?;
    let binary = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    let code = binary % 10u32.pow(digits);
    Some(format!("{code:0width$}", width = digits as usize))
}

/// `message` authenticated with `key` by the HMAC `M` (HMAC takes keys of any length).
fn hmac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().to_vec())
}

/// RFC 4648 base32, case-insensitive, padding and spaces ignored.
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| *c != '=' && *c != ' ') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// RFC 6238 appendix B: the SHA1 secret, ASCII "12345678901234567890" (20 bytes), base32.
    const SHA1_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    /// "12345678901234567890123456789012" (32 bytes), base32 without padding.
    const SHA256_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
    /// "1234567890123456789012345678901234567890123456789012345678901234" (64 bytes), base32
    /// without padding.
    const SHA512_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";

    /// Checks the 8-digit codes of RFC 6238 appendix B for `query` (secret and algorithm).
    fn assert_vectors(query: &str, vectors: [(u64, &str); 6]) {
        let uri = format!("otpauth://totp/demo?{query}&digits=8");
        for (t, code) in vectors {
            let now = UNIX_EPOCH + Duration::from_secs(t);
            assert_eq!(
                current_code(&uri, now).as_deref(),
                Some(code),
                "{query} t={t}"
            );
        }
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        // SHA1 is the default when the URI names no algorithm.
        assert_vectors(&format!("secret={SHA1_SECRET}"), vectors);
        assert_vectors(&format!("secret={SHA1_SECRET}&algorithm=SHA1"), vectors);
    }

    #[test]
    fn rfc6238_sha256_vectors() {
        assert_vectors(
            &format!("secret={SHA256_SECRET}&algorithm=SHA256"),
            [
                (59, "46119246"),
                (1_111_111_109, "68084774"),
                (1_111_111_111, "67062674"),
                (1_234_567_890, "91819424"),
                (2_000_000_000, "90698825"),
                (20_000_000_000, "77737706"),
            ],
        );
    }

    #[test]
    fn rfc6238_sha512_vectors() {
        assert_vectors(
            &format!("secret={SHA512_SECRET}&algorithm=SHA512"),
            [
                (59, "90693936"),
                (1_111_111_109, "25091201"),
                (1_111_111_111, "99943326"),
                (1_234_567_890, "93441116"),
                (2_000_000_000, "38618901"),
                (20_000_000_000, "47863826"),
            ],
        );
    }

    #[test]
    fn algorithm_names_ignore_case() {
        let now = UNIX_EPOCH + Duration::from_secs(59);
        let uri = format!("otpauth://totp/demo?secret={SHA256_SECRET}&digits=8&algorithm=sha256");
        assert_eq!(current_code(&uri, now).as_deref(), Some("46119246"));
    }

    #[test]
    fn six_digits_by_default() {
        let uri = "otpauth://totp/opsync:demo?secret=JBSWY3DPEHPK3PXP&issuer=opsync";
        let code = current_code(uri, SystemTime::now()).expect("computes");
        assert_eq!(code.len(), 6);
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let now = SystemTime::now();
        assert_eq!(current_code("not a uri", now), None);
        assert_eq!(current_code("otpauth://hotp/x?secret=JBSWY3DP", now), None);
        assert_eq!(
            current_code("otpauth://totp/x?secret=JBSWY3DP&algorithm=MD5", now),
            None
        );
        assert_eq!(
            current_code("otpauth://totp/x?secret=JBSWY3DP&algorithm=SHA384", now),
            None
        );
        assert_eq!(current_code("otpauth://totp/x?secret=!!", now), None);
        assert_eq!(current_code("otpauth://totp/x", now), None);
    }
}
