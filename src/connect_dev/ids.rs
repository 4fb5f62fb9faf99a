//! Random identifiers in the shapes Connect uses: 26-character base32 ids, token secrets, request UUIDs.

use rand::Rng as _;

const LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// A vault, item or file id: 26 characters of lowercase base32, like `hfnjvi6aymbsnfc2xeeoheizda`.
pub fn new_id() -> String {
    pick(LOWER, 26)
}

/// An account or user id: 26 characters of uppercase base32, like `GTKV5VRNTREGPELXN5BPRA2GN4`.
pub fn new_upper_id() -> String {
    pick(UPPER, 26)
}

/// The 32-character URL-safe secret carried in a token's `1password.com/token` claim.
pub fn new_token_secret() -> String {
    pick(URL_SAFE, 32)
}

/// The first 24 characters of a random version-4 UUID (`xxxxxxxx-xxxx-4xxx-8xxx-`); appending
/// 12 hex digits of a sequence number makes a UUID-shaped, unique and stable request id.
pub fn new_uuid_prefix() -> String {
    let mut rng = rand::thread_rng();
    let a: u32 = rng.r#gen();
    let b: u16 = rng.r#gen();
    let c: u16 = rng.gen_range(0..0x1000);
    let d: u16 = rng.gen_range(0..0x4000);
    format!("{a:08x}-{b:04x}-4{c:03x}-{:04x}-", 0x8000 | d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::is_connect_id;

    #[test]
    fn shapes() {
        assert!(is_connect_id(&new_id()));
        let upper = new_upper_id();
        assert_eq!(upper.len(), 26);
        assert!(upper.bytes().all(|b| UPPER.contains(&b)));
        assert_eq!(new_token_secret().len(), 32);
        let uuid = format!("{}{:012x}", new_uuid_prefix(), 42);
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');
    }
}
