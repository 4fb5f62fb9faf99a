//! What GitHub refuses in a secret write: the name, the body, the sealed value, its key and size,
//! and an organisation secret's visibility.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::reply::{Reply, field_error};

/// The largest secret GitHub stores, in plaintext bytes (48 KB).
pub const MAX_PLAINTEXT: usize = 48 * 1024;

/// What `crypto_box_seal` adds to a plaintext: an ephemeral public key (32) and a MAC (16).
pub const SEAL_OVERHEAD: usize = 48;

const NAME_CHARACTERS: &str = "Secret names can only contain alphanumeric characters ([a-z], [A-Z], \
     [0-9]) or underscores (_). Spaces are not allowed. Must start with a letter ([a-z], [A-Z]) or \
     underscores (_).";

const IMPROPERLY_ENCRYPTED: &str =
    "Bad request - validation failed due to an improperly encrypted secret";

const BASE64_PATTERN: &str =
    "/^(?:[A-Za-z0-9+\\/]{4})*(?:[A-Za-z0-9+\\/]{2}==|[A-Za-z0-9+\\/]{3}=|[A-Za-z0-9+\\/]{4})$/";

const VISIBILITIES: [&str; 3] = ["all", "private", "selected"];

/// A name from a URL, as GitHub stores it (upper-cased), or the 422 for a name it refuses.
pub fn name(name: &str, docs: &str) -> Result<String, Reply> {
    let characters_ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !characters_ok {
        let error = field_error("name", "invalid", NAME_CHARACTERS);
        return Err(Reply::invalid(NAME_CHARACTERS, docs, vec![error]));
    }
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("GITHUB_") {
        let message = "Secret names must not start with GITHUB_.";
        let error = field_error("name", "invalid", message);
        return Err(Reply::invalid(message, docs, vec![error]));
    }
    Ok(upper)
}

/// A create-or-update body that passed validation.
#[derive(Debug)]
pub struct Write {
    pub key_id: String,
    pub encrypted_value: String,
    /// Organisation secrets only.
    pub visibility: Option<String>,
    /// Organisation secrets only; `None` when the body had no list.
    pub selected_repository_ids: Option<Vec<u64>>,
}

fn invalid(detail: &str, field: &str, code: &str, docs: &str) -> Reply {
    let message = format!("Invalid request.\n\n{detail}");
    Reply::invalid(&message, docs, vec![field_error(field, code, detail)])
}

/// A required string field of the body.
fn string_field<'a>(body: &'a Value, field: &str, docs: &str) -> Result<&'a str, Reply> {
    match body.get(field) {
        None | Some(Value::Null) => Err(invalid(
            &format!("\"{field}\" wasn't supplied."),
            field,
            "missing_field",
            docs,
        )),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(
            &format!("For 'properties/{field}', {other} is not a string."),
            field,
            "invalid",
            docs,
        )),
    }
}

/// Checks a PUT body against the scope's current `key_id`; `org` adds visibility rules.
pub fn write(raw: &[u8], current_key_id: &str, org: bool, docs: &str) -> Result<Write, Reply> {
    let body: Value =
        serde_json::from_slice(raw).map_err(|_| Reply::problems_parsing_json(docs))?;
    if !body.is_object() {
        return Err(Reply::problems_parsing_json(docs));
    }
    let encrypted_value = string_field(&body, "encrypted_value", docs)?;
    let key_id = string_field(&body, "key_id", docs)?;
    let sealed = match STANDARD.decode(encrypted_value) {
        Ok(sealed) if !sealed.is_empty() => sealed,
        _ => {
            let detail = format!("{encrypted_value} does not match {BASE64_PATTERN}.");
            return Err(invalid(&detail, "encrypted_value", "invalid", docs));
        }
    };
    let improperly_encrypted = |field: &str| {
        let error = field_error(field, "invalid", IMPROPERLY_ENCRYPTED);
        Reply::invalid(IMPROPERLY_ENCRYPTED, docs, vec![error])
    };
    if key_id != current_key_id {
        return Err(improperly_encrypted("key_id"));
    }
    if sealed.len() < SEAL_OVERHEAD {
        return Err(improperly_encrypted("encrypted_value"));
    }
    if sealed.len() - SEAL_OVERHEAD > MAX_PLAINTEXT {
        let message = "Secret value is too large: secrets are limited to 48 KB.";
        let error = field_error("encrypted_value", "too_large", message);
        return Err(Reply::invalid(message, docs, vec![error]));
    }
    let (visibility, selected_repository_ids) = if org {
        visibility(&body, docs)?
    } else {
        (None, None)
    };
    Ok(Write {
        key_id: key_id.to_owned(),
        encrypted_value: encrypted_value.to_owned(),
        visibility,
        selected_repository_ids,
    })
}

/// An organisation secret's `visibility` (required) and `selected_repository_ids` (only with
/// `selected`; integers, or integers as strings as the Dependabot endpoint takes them).
fn visibility(body: &Value, docs: &str) -> Result<(Option<String>, Option<Vec<u64>>), Reply> {
    let visibility = string_field(body, "visibility", docs)?;
    if !VISIBILITIES.contains(&visibility) {
        let detail = format!(
            "For 'properties/visibility', \"{visibility}\" is not one of [\"all\", \"private\", \"selected\"]."
        );
        return Err(invalid(&detail, "visibility", "invalid", docs));
    }
    let ids = match body.get("selected_repository_ids") {
        None | Some(Value::Null) => None,
        Some(value) => Some(repository_ids(value, docs)?),
    };
    if ids.is_some() && visibility != "selected" {
        return Err(invalid(
            "selected_repository_ids can only be given when visibility is \"selected\".",
            "selected_repository_ids",
            "invalid",
            docs,
        ));
    }
    Ok((Some(visibility.to_owned()), ids))
}

/// A list of repository ids (numbers or numeric strings).
pub fn repository_ids(value: &Value, docs: &str) -> Result<Vec<u64>, Reply> {
    let bad = || {
        invalid(
            &format!(
                "For 'properties/selected_repository_ids', {value} is not an array of integers."
            ),
            "selected_repository_ids",
            "invalid",
            docs,
        )
    };
    let items = value.as_array().ok_or_else(bad)?;
    items
        .iter()
        .map(|item| match item {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(bad)
}
