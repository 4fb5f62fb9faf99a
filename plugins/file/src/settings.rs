//! The `file` plugin's config: keys, defaults, validation, and the name of each item's file.

use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::select::{self, Selection};
use opsync_destination_kit::settings::{check_keys, choice, flag, list, plain};
use opsync_destination_kit::template::{Template, sanitize};
use opsync_destination_kit::{Named, PluginError, misconfigured};

const KNOWN_KEYS: &[&str] = &[
    "dir",
    "format",
    "layout",
    "name",
    "fields",
    "field",
    "on-delete",
    "fsync",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `KEY="value"` lines.
    Dotenv,
    /// A JSON object of field label to value.
    Json,
    /// The whole item as one JSON document (ids, title, tags, urls, updated_at, fields).
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
    /// Per-item files: the `name` template, else the route's key plus the extension.
    naming: Naming,
    /// The combined file's name.
    combined: String,
    /// Which fields are written (for dotenv, only `fields` is used).
    pub selection: Selection,
    pub on_delete: OnDelete,
    /// Flush each file to disk before it replaces the old one. Off by default: the host flushes
    /// the granted directory's filesystem once per group of deliveries before recording them
    /// (`grants.dirs[].flush`), which covers the data and the rename at a fraction of the cost.
    pub fsync: bool,
}

impl Settings {
    pub fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let format = match choice("format", &["dotenv", "json", "item-json", "raw"], "dotenv")? {
            "json" => Format::Json,
            "item-json" => Format::ItemJson,
            "raw" => Format::Raw,
            _ => Format::Dotenv,
        };
        let layout = match choice("layout", &["per-item", "combined"], "per-item")? {
            "combined" => Layout::Combined,
            _ => Layout::PerItem,
        };
        let on_delete = match choice("on-delete", &["keep", "delete"], "keep")? {
            "delete" => OnDelete::Delete,
            _ => OnDelete::Keep,
        };
        let field = plain("field")?;
        if format == Format::Raw && field.is_none() {
            return Err(misconfigured("format raw needs the `field` key"));
        }
        if format == Format::Raw && layout == Layout::Combined {
            return Err(misconfigured("format raw cannot use the combined layout"));
        }
        let selection = Selection {
            format: match format {
                Format::ItemJson => select::Format::ItemJson,
                Format::Raw => select::Format::Raw,
                Format::Dotenv | Format::Json => select::Format::Json,
            },
            fields: list("fields")?,
            field,
        };
        let extension = match format {
            Format::Dotenv => "env",
            Format::Json | Format::ItemJson => "json",
            Format::Raw => "txt",
        };
        let naming = Naming::load_with_suffix(
            "name",
            &format!("{{{{title}}}}.{extension}"),
            &format!(".{extension}"),
        )?;
        let combined = plain("name")?.unwrap_or_else(|| format!("secrets.{extension}"));
        if layout == Layout::Combined {
            // Checked like a template; used as written.
            Template::parse("name", &combined)?;
        }
        let dir = plain("dir")?.unwrap_or_else(|| "/".to_string());
        if !dir.starts_with('/') || dir.split('/').any(|part| part == "..") {
            return Err(misconfigured(format!(
                "dir `{dir}` must be an absolute path without `..`"
            )));
        }
        Ok(Self {
            dir,
            format,
            layout,
            naming,
            combined,
            selection,
            on_delete,
            fsync: flag("fsync", false)?,
        })
    }

    /// The file name for this item (a change, or a `read-back` reference): the item's name for
    /// per-item files (none for the deletion of a renamed item's old name that did not change),
    /// the fixed name for the combined file.
    pub fn file_name(&self, item: &impl Named) -> Result<Option<String>, PluginError> {
        match self.layout {
            Layout::PerItem => self.naming.name(item),
            Layout::Combined => Ok(Some(self.combined.clone())),
        }
    }

    pub fn path_of(&self, name: &str) -> String {
        format!("{}/{name}", self.dir.trim_end_matches('/'))
    }

    /// The name of an item's entry inside a combined JSON file.
    pub fn entry_name(&self, item: &impl Named) -> String {
        sanitize(item.title())
    }
}
