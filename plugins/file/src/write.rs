//! Atomic file writes (temp file + rename, skipped when the content is already there), removal,
//! and read-modify-write of combined files.

use crate::dir::Parent;
use crate::render::Entry;
use crate::settings::{Format, Settings};
use opsync_destination_kit::{ItemEvent, PluginError};
use serde_json::{Map, Value};

const MARKER: &str = "# opsync item ";

/// Writes `content` to `path` atomically unless the file already holds exactly that; returns
/// whether it wrote. With `durable`, the file is flushed to disk before it replaces the old one.
pub fn replace_if_different(
    path: &str,
    content: &[u8],
    durable: bool,
) -> Result<bool, PluginError> {
    let parent = Parent::open(path)?;
    write_in(&parent, content, durable)
}

/// [`replace_if_different`] in an opened directory.
fn write_in(parent: &Parent, content: &[u8], durable: bool) -> Result<bool, PluginError> {
    if parent.read()?.as_deref() == Some(content) {
        return Ok(false);
    }
    parent.replace(content, durable)?;
    Ok(true)
}

/// Removes `path`; returns whether it existed.
pub fn remove(path: &str) -> Result<bool, PluginError> {
    match Parent::existing(path)? {
        Some(parent) => parent.remove(),
        None => Ok(false),
    }
}

/// Puts the item's entry into the combined file at `path` (or takes it out when `entry` is none);
/// returns whether the file changed.
pub fn update_combined(
    settings: &Settings,
    path: &str,
    event: &ItemEvent,
    entry: Option<Entry>,
) -> Result<bool, PluginError> {
    // Taking an entry out of a file that is not there changes nothing, and makes no directory.
    let parent = match entry {
        Some(_) => Parent::open(path)?,
        None => match Parent::existing(path)? {
            Some(parent) => parent,
            None => return Ok(false),
        },
    };
    let existing = parent.read()?.unwrap_or_default();
    let existing = String::from_utf8(existing)
        .map_err(|_| PluginError::Permanent(format!("{path} is not UTF-8; not touching it")))?;
    let updated = match settings.format {
        Format::Dotenv => {
            let lines = match entry {
                Some(Entry::Dotenv(lines)) => Some(lines),
                Some(Entry::Json(_)) => None,
                None => None,
            };
            combined_dotenv(&existing, &event.item.id, lines.as_deref())
        }
        Format::Json | Format::ItemJson => {
            let value = match entry {
                Some(Entry::Json(value)) => Some(value),
                _ => None,
            };
            combined_json(&existing, path, &settings.entry_name(event), value)?
        }
        Format::Raw => {
            return Err(PluginError::Misconfigured(
                "format raw cannot use the combined layout".into(),
            ));
        }
    };
    if updated == existing {
        return Ok(false);
    }
    if updated.is_empty() {
        return parent.remove();
    }
    write_in(&parent, updated.as_bytes(), settings.fsync)
}

/// Replaces the block that starts with `# opsync item <id>`; other blocks and any header stay.
fn combined_dotenv(existing: &str, item_id: &str, lines: Option<&str>) -> String {
    let marker = format!("{MARKER}{item_id}");
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in existing.lines() {
        if line.starts_with(MARKER) {
            skipping = line == marker;
            if skipping && !replaced {
                replaced = true;
                if let Some(lines) = lines {
                    out.push_str(&marker);
                    out.push('\n');
                    out.push_str(lines);
                }
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced && let Some(lines) = lines {
        out.push_str(&marker);
        out.push('\n');
        out.push_str(lines);
    }
    out
}

fn combined_json(
    existing: &str,
    path: &str,
    name: &str,
    value: Option<Value>,
) -> Result<String, PluginError> {
    let mut map: Map<String, Value> = if existing.trim().is_empty() {
        Map::new()
    } else {
        serde_json::from_str(existing).map_err(|e| {
            PluginError::Permanent(format!(
                "{path} is not a JSON object ({e}); not touching it"
            ))
        })?
    };
    match value {
        Some(value) => {
            map.insert(name.to_string(), value);
        }
        None => {
            map.remove(name);
        }
    }
    if map.is_empty() {
        return Ok(String::new());
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(map))
        .map_err(|e| PluginError::Permanent(format!("cannot render JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}
