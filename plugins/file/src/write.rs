//! Atomic file writes (temp file + rename, skipped when the content is already there), removal,
//! and read-modify-write of combined files.

use crate::dir::{Dirs, Parent};
use crate::render::Entry;
use crate::settings::{Format, Settings};
use opsync_destination_kit::{ItemEvent, PluginError, canonical};
use serde_json::{Map, Value};

const MARKER: &str = "# opsync item ";

/// Writes `content` to `path` atomically unless the file already holds exactly that; returns
/// whether it wrote. With `durable`, the file is flushed to disk before it replaces the old one.
pub fn replace_if_different(
    dirs: &Dirs,
    path: &str,
    content: &[u8],
    durable: bool,
) -> Result<bool, PluginError> {
    let parent = dirs.parent(path)?;
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
pub fn remove(dirs: &Dirs, path: &str) -> Result<bool, PluginError> {
    match dirs.existing(path)? {
        Some(parent) => parent.remove(),
        None => Ok(false),
    }
}

/// Puts the item's entry into the combined file at `path` (or takes it out when `entry` is none);
/// returns whether the file changed, and its content now (empty when there is no file).
pub fn update_combined(
    settings: &Settings,
    dirs: &Dirs,
    path: &str,
    event: &ItemEvent,
    entry: Option<Entry>,
) -> Result<(bool, String), PluginError> {
    // Taking an entry out of a file that is not there changes nothing, and makes no directory.
    let parent = match entry {
        Some(_) => dirs.parent(path)?,
        None => match dirs.existing(path)? {
            Some(parent) => parent,
            None => return Ok((false, String::new())),
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
        return Ok((false, updated));
    }
    if updated.is_empty() {
        return Ok((parent.remove()?, updated));
    }
    let changed = write_in(&parent, updated.as_bytes(), settings.fsync)?;
    Ok((changed, updated))
}

/// What an item's fingerprint covers in the combined file at `path` whose content is `content`:
/// its dotenv block (from its `# opsync item <id>` line to the next block), or its JSON entry
/// (`name`) serialized canonically. `None` when the item has no entry there. Used alike on the
/// content a delivery wrote and on what `read-back` finds.
pub fn combined_entry(
    settings: &Settings,
    path: &str,
    content: &[u8],
    item_id: &str,
    name: &str,
) -> Result<Option<Vec<u8>>, PluginError> {
    let text = std::str::from_utf8(content)
        .map_err(|_| PluginError::Permanent(format!("{path} is not UTF-8")))?;
    match settings.format {
        Format::Dotenv => Ok(dotenv_block(text, item_id).map(String::into_bytes)),
        Format::Json | Format::ItemJson => {
            if text.trim().is_empty() {
                return Ok(None);
            }
            let map: Map<String, Value> = serde_json::from_str(text).map_err(|e| {
                PluginError::Permanent(format!("{path} is not a JSON object ({e})"))
            })?;
            Ok(map.get(name).map(canonical::json))
        }
        Format::Raw => Err(PluginError::Misconfigured(
            "format raw cannot use the combined layout".into(),
        )),
    }
}

/// The first block of `item_id` in a combined dotenv file, as [`combined_dotenv`] delimits it:
/// its marker line and every line up to the next marker, each ending in a newline.
fn dotenv_block(existing: &str, item_id: &str) -> Option<String> {
    let marker = format!("{MARKER}{item_id}");
    let mut lines = existing.lines().skip_while(|line| *line != marker);
    let mut block = format!("{}\n", lines.next()?);
    for line in lines.take_while(|line| !line.starts_with(MARKER)) {
        block.push_str(line);
        block.push('\n');
    }
    Some(block)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotenv_block_reads_back_as_it_was_written() {
        let existing = "# header\nX=1\n# opsync item a\nA_K=\"1\"\n# opsync item b\nB_K=\"2\"\n";
        let lines = "A_K=\"9\"\nA_L=\"8\"\n";
        let updated = combined_dotenv(existing, "a", Some(lines));
        assert_eq!(
            updated,
            "# header\nX=1\n# opsync item a\nA_K=\"9\"\nA_L=\"8\"\n# opsync item b\nB_K=\"2\"\n"
        );
        assert_eq!(
            dotenv_block(&updated, "a").as_deref(),
            Some("# opsync item a\nA_K=\"9\"\nA_L=\"8\"\n")
        );
        assert_eq!(
            dotenv_block(&updated, "b").as_deref(),
            Some("# opsync item b\nB_K=\"2\"\n")
        );
        // Another item's entry does not change this one's block; a missing item has none.
        let other = combined_dotenv(&updated, "b", Some("B_K=\"3\"\n"));
        assert_eq!(dotenv_block(&other, "a"), dotenv_block(&updated, "a"));
        assert_eq!(dotenv_block(&updated, "c"), None);
        assert_eq!(
            dotenv_block(&combined_dotenv(&updated, "a", None), "a"),
            None
        );
        // A prefix of another id is not that item.
        assert_eq!(dotenv_block("# opsync item ab\nX=1\n", "a"), None);
    }
}
