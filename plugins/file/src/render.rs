//! Renders an item's selected fields as dotenv, JSON, a whole-item JSON document, or one raw value
//! (field selection and the item document come from the destination kit).

use opsync_destination_kit::{ItemEvent, PluginError, permanent};
use serde_json::Value;

use crate::settings::{Format, Settings};

/// What one item contributes to a combined file.
pub enum Entry {
    /// `KEY="value"` lines, keys already prefixed with the item's name.
    Dotenv(String),
    Json(Value),
}

/// The whole content of a per-item file.
pub fn item(settings: &Settings, event: &ItemEvent) -> Result<String, PluginError> {
    match settings.format {
        Format::Dotenv => Ok(dotenv(&settings.selection.values(event)?, "")),
        Format::Json | Format::ItemJson => {
            let value = settings.selection.document(event)?;
            let mut text = serde_json::to_string_pretty(&value)
                .map_err(|e| permanent(format!("cannot render JSON: {e}")))?;
            text.push('\n');
            Ok(text)
        }
        Format::Raw => settings.selection.render(event),
    }
}

/// The item's part of a combined file.
pub fn entry(settings: &Settings, event: &ItemEvent) -> Result<Entry, PluginError> {
    match settings.format {
        Format::Dotenv => {
            let prefix = format!("{}_", env_key(&settings.entry_name(event)));
            Ok(Entry::Dotenv(dotenv(
                &settings.selection.values(event)?,
                &prefix,
            )))
        }
        Format::Json | Format::ItemJson => Ok(Entry::Json(settings.selection.document(event)?)),
        Format::Raw => Err(PluginError::Misconfigured(
            "format raw cannot use the combined layout".into(),
        )),
    }
}

/// `KEY="value"` lines. Keys are upper snake case; a repeated key gets `_2`, `_3`...
fn dotenv(fields: &[(String, String)], prefix: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    for (label, value) in fields {
        let base = format!("{prefix}{}", env_key(label));
        let mut key = base.clone();
        let mut n = 1;
        while seen.contains(&key) {
            n += 1;
            key = format!("{base}_{n}");
        }
        out.push_str(&format!("{key}=\"{}\"\n", dotenv_escape(value)));
        seen.push(key);
    }
    out
}

fn env_key(label: &str) -> String {
    let mut key: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        key.insert(0, '_');
    }
    key
}

fn dotenv_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '`' => out.push_str("\\`"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_keys_are_upper_snake_case_and_values_escaped() {
        let fields = vec![
            ("api key".to_string(), "a\"b$c".to_string()),
            ("api-key".to_string(), "x\ny".to_string()),
            ("9lives".to_string(), "z".to_string()),
        ];
        assert_eq!(
            dotenv(&fields, "DB_"),
            "DB_API_KEY=\"a\\\"b\\$c\"\nDB_API_KEY_2=\"x\\ny\"\nDB__9LIVES=\"z\"\n"
        );
    }
}
