//! The current one-time code of an OTP field (`otpauth://totp/...`), per RFC 6238 with HMAC-SHA1.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac as _};
use sha1::Sha1;

/// The code for `uri` at `now`, or `None` when the URI is not a TOTP URI this server can compute
/// (another algorithm, a bad secret, odd digits or period).
pub fn current_code(uri: &str, now: SystemTime) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if url.scheme() != "otpauth" || url.host_str() != Some("totp") {
        return None;
    }
    let mut secret = None;
    let mut digits = 6u32;
    let mut period = 30u64;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "secret" => secret = base32_decode(&value),
            "digits" => digits = value.parse().ok()?,
            "period" => period = value.parse().ok()?,
            "algorithm" if !value.eq_ignore_ascii_case("SHA1") => return None,
            _ => {}
        }
    }
    let secret = secret?;
    if secret.is_empty() || !(6..=9).contains(&digits) || period == 0 {
        return None;
    }
    let counter = now.duration_since(UNIX_EPOCH).ok()?.as_secs() / period;
    Some(hotp(&secret, counter, digits))
}

fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
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

    /// RFC 6238 appendix B, SHA1: the secret is ASCII "12345678901234567890".
    const URI: &str = "otpauth://totp/demo?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8";

    #[test]
    fn rfc6238_vectors() {
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (2_000_000_000, "69279037"),
        ] {
            let now = UNIX_EPOCH + Duration::from_secs(t);
            assert_eq!(current_code(URI, now).as_deref(), Some(code), "t={t}");
        }
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
            current_code("otpauth://totp/x?secret=JBSWY3DP&algorithm=SHA256", now),
            None
        );
        assert_eq!(current_code("otpauth://totp/x?secret=!!", now), None);
        assert_eq!(current_code("otpauth://totp/x", now), None);
    }
}
