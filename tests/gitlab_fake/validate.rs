//! GitLab's model validations of a CI/CD variable: key, masking, hiding, scope, description, and
//! uniqueness, with the messages `{"message": {"field": [...]}}` carries.

use super::reply::{self, Reply};
use super::variables::Variable;

pub const KEY_FORMAT: &str = "can contain only letters, digits and '_'.";
pub const SCOPE_FORMAT: &str =
    "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*' and spaces";
pub const TOO_LONG: &str = "is too long (maximum is 255 characters)";
pub const BLANK: &str = "can't be blank";
pub const INVALID: &str = "is invalid";
pub const HIDDEN_NOT_MASKED: &str = "should be true when variable is hidden";
pub const HIDDEN_VISIBILITY: &str =
    "The visibility setting cannot be changed for masked and hidden variables.";

/// `Ci::Maskable::REGEX` (masked and expanded): 8 or more characters, all from the Base64
/// alphabets of RFC 4648 (`A-Z a-z 0-9 + / =` and the URL-safe `- _`) plus `@ : . ~`.
pub fn maskable_expanded(value: &str) -> bool {
    value.chars().count() >= 8
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=/@:.~-".contains(c))
}

/// `Ci::Maskable::MASK_AND_RAW_REGEX` (masked and raw): 8 or more characters, none of them
/// whitespace (Ruby's `\s`: space, tab, CR, LF, VT, FF), so one line; anything else goes.
pub fn maskable_raw(value: &str) -> bool {
    value.chars().count() >= 8 && !value.chars().any(|c| " \t\r\n\x0b\x0c".contains(c))
}

pub fn maskable(value: &str, raw: bool) -> bool {
    if raw {
        maskable_raw(value)
    } else {
        maskable_expanded(value)
    }
}

fn key_format(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn scope_format(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/${}. -*".contains(c))
}

/// Validates `candidate` (new when `previous` is `None`) among `siblings`, the variables of
/// the same project or group (the candidate's own stored version included or not).
pub fn check(
    candidate: &Variable,
    siblings: &[Variable],
    previous: Option<&Variable>,
) -> Result<(), Reply> {
    let mut errors: Vec<(&str, String)> = Vec::new();
    let key = &candidate.key;
    if key.is_empty() {
        errors.push(("key", BLANK.into()));
    }
    if key.chars().count() > 255 {
        errors.push(("key", TOO_LONG.into()));
    }
    if !key_format(key) {
        errors.push(("key", KEY_FORMAT.into()));
    }
    if candidate.masked && !maskable(&candidate.value, candidate.raw) {
        errors.push(("value", INVALID.into()));
    }
    match previous {
        None if candidate.hidden && !candidate.masked => {
            errors.push(("masked", HIDDEN_NOT_MASKED.into()));
        }
        Some(previous) if previous.hidden && previous.masked != candidate.masked => {
            errors.push(("base", HIDDEN_VISIBILITY.into()));
        }
        _ => {}
    }
    let scope = &candidate.environment_scope;
    if scope.is_empty() {
        errors.push(("environment_scope", BLANK.into()));
    }
    if !scope_format(scope) {
        errors.push(("environment_scope", SCOPE_FORMAT.into()));
    }
    if candidate
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 255)
    {
        errors.push(("description", TOO_LONG.into()));
    }
    let taken = siblings.iter().any(|v| {
        v.id != candidate.id && v.key == *key && v.environment_scope == candidate.environment_scope
    });
    if taken {
        errors.push(("key", format!("({key}) has already been taken")));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(reply::validation(&errors))
    }
}
