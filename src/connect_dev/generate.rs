//! Password generation for `generate: true` fields, honouring a Connect generator recipe, and entropy.

use rand::Rng as _;

use crate::connect::model::{CharacterSet, GeneratorRecipe};

const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
/// ASCII symbols, without quotes and the backslash so values survive shells and configs.
const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// Connect's default and maximum lengths.
pub const DEFAULT_LENGTH: u32 = 32;
const MAX_LENGTH: u32 = 64;

/// Why a recipe cannot be honoured; the message is safe to show.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("Invalid recipe: length must be between 1 and {MAX_LENGTH}, got {0}")]
    Length(u32),
    #[error("Invalid recipe: unknown character set '{0}' (use LETTERS, DIGITS or SYMBOLS)")]
    UnknownSet(String),
    #[error("Invalid recipe: excludeCharacters removes every character of the chosen sets")]
    NothingLeft,
}

/// A fresh value for `recipe` (or the default: 32 letters, digits and symbols). Every chosen set
/// with a character left after exclusions contributes at least one character when the length allows.
pub fn generate(recipe: Option<&GeneratorRecipe>) -> Result<String, RecipeError> {
    let length = recipe.and_then(|r| r.length).unwrap_or(DEFAULT_LENGTH);
    if !(1..=MAX_LENGTH).contains(&length) {
        return Err(RecipeError::Length(length));
    }
    let excluded = recipe
        .and_then(|r| r.exclude_characters.as_deref())
        .unwrap_or("");
    let chosen = match recipe.and_then(|r| r.character_sets.as_deref()) {
        Some(sets) if !sets.is_empty() => sets.to_vec(),
        _ => vec![
            CharacterSet::Letters,
            CharacterSet::Digits,
            CharacterSet::Symbols,
        ],
    };
    let mut groups: Vec<Vec<char>> = Vec::new();
    for set in &chosen {
        let chars = match set {
            CharacterSet::Letters => LETTERS,
            CharacterSet::Digits => DIGITS,
            CharacterSet::Symbols => SYMBOLS,
            CharacterSet::Other(name) => {
                return Err(RecipeError::UnknownSet(name.chars().take(32).collect()));
            }
        };
        let group: Vec<char> = chars.chars().filter(|c| !excluded.contains(*c)).collect();
        if !group.is_empty() && !groups.contains(&group) {
            groups.push(group);
        }
    }
    let pool: Vec<char> = groups.iter().flatten().copied().collect();
    if pool.is_empty() {
        return Err(RecipeError::NothingLeft);
    }
    let mut rng = rand::thread_rng();
    let length = length as usize;
    let mut out: Vec<char> = (0..length)
        .map(|_| pool[rng.gen_range(0..pool.len())])
        .collect();
    if length >= groups.len() {
        // Put one character of each set at distinct random positions.
        let mut positions: Vec<usize> = (0..length).collect();
        for group in &groups {
            let slot = positions.swap_remove(rng.gen_range(0..positions.len()));
            out[slot] = group[rng.gen_range(0..group.len())];
        }
    }
    Ok(out.into_iter().collect())
}

/// Entropy in bits of `value` as a password: its length times log2 of the size of the
/// character classes it uses (lowercase, uppercase, digits, other ASCII, non-ASCII).
pub fn entropy(value: &str) -> f64 {
    let (mut lower, mut upper, mut digit, mut symbol, mut other) =
        (false, false, false, false, false);
    let mut length = 0usize;
    for c in value.chars() {
        length += 1;
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            c if c.is_ascii() => symbol = true,
            _ => other = true,
        }
    }
    let pool = 26 * usize::from(lower)
        + 26 * usize::from(upper)
        + 10 * usize::from(digit)
        + 32 * usize::from(symbol)
        + 100 * usize::from(other);
    if pool < 2 {
        return 0.0;
    }
    let bits = length as f64 * (pool as f64).log2();
    (bits * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(length: u32, sets: &[&str], exclude: &str) -> GeneratorRecipe {
        GeneratorRecipe {
            length: Some(length),
            character_sets: Some(sets.iter().map(|s| CharacterSet::from(*s)).collect()),
            exclude_characters: Some(exclude.to_owned()),
        }
    }

    #[test]
    fn default_is_32_mixed() {
        let v = generate(None).expect("default recipe");
        assert_eq!(v.chars().count(), 32);
        assert!(v.chars().any(|c| c.is_ascii_alphabetic()));
        assert!(v.chars().any(|c| c.is_ascii_digit()));
        assert!(v.chars().any(|c| SYMBOLS.contains(c)));
    }

    #[test]
    fn honours_sets_and_exclusions() {
        for _ in 0..50 {
            let v = generate(Some(&recipe(24, &["LETTERS", "DIGITS"], "0O1lI"))).expect("ok");
            assert_eq!(v.len(), 24);
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
            );
            assert!(v.chars().any(|c| c.is_ascii_digit()));
        }
        let digits = generate(Some(&recipe(6, &["DIGITS"], ""))).expect("ok");
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn refuses_bad_recipes() {
        assert_eq!(
            generate(Some(&recipe(0, &[], ""))),
            Err(RecipeError::Length(0))
        );
        assert_eq!(
            generate(Some(&recipe(65, &[], ""))),
            Err(RecipeError::Length(65))
        );
        assert!(matches!(
            generate(Some(&recipe(8, &["EMOJI"], ""))),
            Err(RecipeError::UnknownSet(_))
        ));
        assert_eq!(
            generate(Some(&recipe(8, &["DIGITS"], "0123456789"))),
            Err(RecipeError::NothingLeft)
        );
    }

    #[test]
    fn entropy_grows_with_length_and_classes() {
        assert_eq!(entropy(""), 0.0);
        assert!(entropy("abcdefgh") < entropy("abcdefghij"));
        assert!(entropy("abcdefgh") < entropy("abcDEF12"));
    }
}
