//! The `file` plugin's config: keys, defaults, validation, and the file-name template.

use crate::opsync::plugin::config;
use crate::opsync::plugin::types::{ItemEvent, PluginError};

const KNOWN_KEYS: &[&str] = &[
    "dir",
    "format",
    "layout",
    "name",
    "fields",
    "field",
    "on-delete",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `KEY="value"` lines.
    Dotenv,
    /// A JSON object of field label to value.
    Json,
    /// The whole item as one JSON document (ids, title, tags, urls, fields).
    ItemJson,
    /// One field's value, as is.
    Raw,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    PerItem,
    Combined,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    Keep,
    Delete,
}

pub struct Settings {
    pub dir: String,
    pub format: Format,
    pub layout: Layout,
    pub name: String,
    /// Field ids or labels to write; empty means every field that has a value.
    pub fields: Vec<String>,
    /// The field written by the `raw` format.
    pub field: Option<String>,
    pub on_delete: OnDelete,
}

fn misconfigured(msg: impl Into<String>) -> PluginError {
    PluginError::Misconfigured(msg.into())
}

impl Settings {
    pub fn load() -> Result<Self, PluginError> {
        for key in config::keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                return Err(misconfigured(format!(
                    "unknown config key `{key}` (known: {})",
                    KNOWN_KEYS.join(", ")
                )));
            }
        }
        let format = match config::get("format").as_deref() {
            None | Some("dotenv") => Format::Dotenv,
            Some("json") => Format::Json,
            Some("item-json") => Format::ItemJson,
            Some("raw") => Format::Raw,
            Some(other) => {
                return Err(misconfigured(format!(
                    "format `{other}` is not one of dotenv, json, item-json, raw"
                )));
            }
        };
        let layout = match config::get("layout").as_deref() {
            None | Some("per-item") => Layout::PerItem,
            Some("combined") => Layout::Combined,
            Some(other) => {
                return Err(misconfigured(format!(
                    "layout `{other}` is not one of per-item, combined"
                )));
            }
        };
        let on_delete = match config::get("on-delete").as_deref() {
            None | Some("keep") => OnDelete::Keep,
            Some("delete") => OnDelete::Delete,
            Some(other) => {
                return Err(misconfigured(format!(
                    "on-delete `{other}` is not one of keep, delete"
                )));
            }
        };
        let field = config::get("field");
        if format == Format::Raw && field.is_none() {
            return Err(misconfigured("format raw needs the `field` key"));
        }
        if format == Format::Raw && layout == Layout::Combined {
            return Err(misconfigured("format raw cannot use the combined layout"));
        }
        let extension = match format {
            Format::Dotenv => "env",
            Format::Json | Format::ItemJson => "json",
            Format::Raw => "txt",
        };
        let name = config::get("name").unwrap_or_else(|| match layout {
            Layout::PerItem => format!("{{{{title}}}}.{extension}"),
            Layout::Combined => format!("secrets.{extension}"),
        });
        check_template(&name)?;
        let fields = config::get("fields")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let dir = config::get("dir").unwrap_or_else(|| "/".to_string());
        if !dir.starts_with('/') || dir.split('/').any(|part| part == "..") {
            return Err(misconfigured(format!(
                "dir `{dir}` must be an absolute path without `..`"
            )));
        }
        Ok(Self {
            dir,
            format,
            layout,
            name,
            fields,
            field,
            on_delete,
        })
    }

    /// The file name for this event: the `name` template for per-item files, the fixed name for
    /// the combined file.
    pub fn file_name(&self, event: &ItemEvent) -> Result<String, PluginError> {
        match self.layout {
            Layout::PerItem => expand(&self.name, event),
            Layout::Combined => Ok(self.name.clone()),
        }
    }

    pub fn path_of(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.trim_end_matches('/'))
    }

    /// The name of an item's entry inside a combined file.
    pub fn entry_name(&self, event: &ItemEvent) -> String {
        sanitize(&event.item.title)
    }
}

const PLACEHOLDERS: &[&str] = &["vault", "vault_id", "title", "id", "category", "version"];

fn check_template(template: &str) -> Result<(), PluginError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| misconfigured(format!("name `{template}` has an unclosed `{{{{`")))?;
        let key = after[..end].trim();
        if !PLACEHOLDERS.contains(&key) {
            return Err(misconfigured(format!(
                "name `{template}` uses unknown placeholder `{key}` (known: {})",
                PLACEHOLDERS.join(", ")
            )));
        }
        rest = &after[end + 2..];
    }
    if template.starts_with('/') || template.split('/').any(|p| p == ".." || p.is_empty()) {
        return Err(misconfigured(format!(
            "name `{template}` must be a relative path without `..` or empty parts"
        )));
    }
    Ok(())
}

/// Expands `{{placeholder}}`s; every value is sanitized so it cannot add path components.
pub fn expand(template: &str, event: &ItemEvent) -> Result<String, PluginError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| misconfigured(format!("name `{template}` has an unclosed `{{{{`")))?;
        let value = match after[..end].trim() {
            "vault" => event.vault.name.clone(),
            "vault_id" => event.vault.id.clone(),
            "title" => event.item.title.clone(),
            "id" => event.item.id.clone(),
            "category" => event.item.category.to_lowercase(),
            "version" => event.item.version.to_string(),
            other => return Err(misconfigured(format!("unknown placeholder `{other}`"))),
        };
        out.push_str(&sanitize(&value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Keeps letters, digits, `.`, `-` and `_`; anything else becomes `_`, and a name made only of dots
/// becomes `_`, so a value can never climb out of the directory.
pub fn sanitize(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "_".to_string()
    } else {
        cleaned
    }
}
