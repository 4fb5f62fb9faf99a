//! Renders an item's selected fields as dotenv, JSON, a whole-item JSON document, or one raw value.

use crate::opsync::plugin::types::{Field, ItemEvent, PluginError};
use crate::settings::{Format, Settings};
use serde_json::{Map, Value, json};

/// What one item contributes to a combined file.
pub enum Entry {
    /// `KEY="value"` lines, keys already prefixed with the item's name.
    Dotenv(String),
    Json(Value),
}

/// The whole content of a per-item file.
pub fn item(settings: &Settings, event: &ItemEvent) -> Result<String, PluginError> {
    match settings.format {
        Format::Dotenv => Ok(dotenv(&selected(settings, event)?, "")),
        Format::Json | Format::ItemJson => {
            let value = json_of(settings, event)?;
            let mut text = serde_json::to_string_pretty(&value)
                .map_err(|e| PluginError::Permanent(format!("cannot render JSON: {e}")))?;
            text.push('\n');
            Ok(text)
        }
        Format::Raw => {
            let wanted = settings.field.as_deref().unwrap_or_default();
            let field = find(event, wanted).ok_or_else(|| {
                PluginError::Permanent(format!(
                    "item `{}` has no field `{wanted}`",
                    event.item.title
                ))
            })?;
            Ok(field.value.as_ref().map(|v| v.reveal()).unwrap_or_default())
        }
    }
}

/// The item's part of a combined file.
pub fn entry(settings: &Settings, event: &ItemEvent) -> Result<Entry, PluginError> {
    match settings.format {
        Format::Dotenv => {
            let prefix = format!("{}_", env_key(&settings.entry_name(event)));
            Ok(Entry::Dotenv(dotenv(&selected(settings, event)?, &prefix)))
        }
        Format::Json | Format::ItemJson => Ok(Entry::Json(json_of(settings, event)?)),
        Format::Raw => Err(PluginError::Misconfigured(
            "format raw cannot use the combined layout".into(),
        )),
    }
}

fn find<'a>(event: &'a ItemEvent, wanted: &str) -> Option<&'a Field> {
    let fields = &event.item.fields;
    fields
        .iter()
        .find(|f| f.id == wanted)
        .or_else(|| fields.iter().find(|f| f.label == wanted))
}

/// The fields to write, revealed, in item order: the listed ones, or every field with a value.
fn selected(settings: &Settings, event: &ItemEvent) -> Result<Vec<(String, String)>, PluginError> {
    if settings.fields.is_empty() {
        return Ok(event
            .item
            .fields
            .iter()
            .filter_map(|f| f.value.as_ref().map(|v| (f.label.clone(), v.reveal())))
            .collect());
    }
    settings
        .fields
        .iter()
        .map(|wanted| {
            let field = find(event, wanted).ok_or_else(|| {
                PluginError::Permanent(format!(
                    "item `{}` has no field `{wanted}`",
                    event.item.title
                ))
            })?;
            let value = field.value.as_ref().map(|v| v.reveal()).unwrap_or_default();
            Ok((field.label.clone(), value))
        })
        .collect()
}

fn json_of(settings: &Settings, event: &ItemEvent) -> Result<Value, PluginError> {
    let mut fields = Map::new();
    for (label, value) in selected(settings, event)? {
        fields.entry(label).or_insert(Value::String(value));
    }
    if settings.format != Format::ItemJson {
        return Ok(Value::Object(fields));
    }
    let item = &event.item;
    let urls: Vec<Value> = item
        .urls
        .iter()
        .map(|u| json!({ "href": u.href, "label": u.label, "primary": u.primary }))
        .collect();
    Ok(json!({
        "id": item.id,
        "title": item.title,
        "vault": { "id": event.vault.id, "name": event.vault.name },
        "category": item.category,
        "tags": item.tags,
        "version": item.version,
        "urls": urls,
        "fields": fields,
    }))
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
