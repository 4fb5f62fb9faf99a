//! Field selection: every field with a value, the listed fields, or the whole item as one JSON
//! document; rendered as a JSON object, that document, or one raw field value.

use serde_json::{Map, Value, json};

use crate::settings::{choice, list, plain};
use crate::{Field, ItemEvent, PluginError, misconfigured, permanent};

/// How the selected fields are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A JSON object of field label to value.
    Json,
    /// The whole item as one JSON document: ids, title, vault, category, tags, version, URLs and
    /// the selected fields.
    ItemJson,
    /// One field's value, as is (config key `field`).
    Raw,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::ItemJson => "item-json",
            Self::Raw => "raw",
        }
    }
}

/// The config keys [`Selection::load`] reads.
pub const KEYS: &[&str] = &["format", "fields", "field"];

/// Which fields go to the destination, and in what shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub format: Format,
    /// Field ids or labels; empty means every field that has a value.
    pub fields: Vec<String>,
    /// The field of the `raw` format.
    pub field: Option<String>,
}

impl Selection {
    /// Reads `format` (one of `formats`, the first being the default), `fields` and `field`.
    pub fn load(formats: &[Format]) -> Result<Self, PluginError> {
        let names: Vec<&'static str> = formats.iter().map(|f| f.name()).collect();
        let default = names.first().copied().unwrap_or("json");
        let chosen = choice("format", &names, default)?;
        let format = formats
            .iter()
            .copied()
            .find(|f| f.name() == chosen)
            .unwrap_or(Format::Json);
        let fields = list("fields")?;
        let field = plain("field")?;
        match (format, &field) {
            (Format::Raw, None) => return Err(misconfigured("format raw needs the `field` key")),
            (Format::Raw, Some(_)) if !fields.is_empty() => {
                return Err(misconfigured(
                    "format raw writes one `field`; `fields` does not apply",
                ));
            }
            (Format::Json | Format::ItemJson, Some(_)) => {
                return Err(misconfigured(
                    "`field` is for format raw; use `fields` to pick fields",
                ));
            }
            _ => {}
        }
        Ok(Self {
            format,
            fields,
            field,
        })
    }

    /// The selected fields as (label, value) pairs, in item order for "every field", in config
    /// order otherwise. Values are revealed here: keep them out of logs and messages.
    pub fn values(&self, event: &ItemEvent) -> Result<Vec<(String, String)>, PluginError> {
        if self.fields.is_empty() {
            return Ok(event
                .item
                .fields
                .iter()
                .filter_map(|f| f.value.as_ref().map(|v| (f.label.clone(), v.reveal())))
                .collect());
        }
        self.fields
            .iter()
            .map(|wanted| {
                let field = find(event, wanted)?;
                let value = field.value.as_ref().map(|v| v.reveal()).unwrap_or_default();
                Ok((field.label.clone(), value))
            })
            .collect()
    }

    /// The JSON the destination stores: the field object, or the item document.
    pub fn document(&self, event: &ItemEvent) -> Result<Value, PluginError> {
        let mut fields = Map::new();
        for (label, value) in self.values(event)? {
            fields.entry(label).or_insert(Value::String(value));
        }
        match self.format {
            Format::ItemJson => Ok(item_document(event, Value::Object(fields))),
            Format::Json | Format::Raw => Ok(Value::Object(fields)),
        }
    }

    /// The text the destination stores: the raw field value, or the JSON document.
    pub fn render(&self, event: &ItemEvent) -> Result<String, PluginError> {
        if self.format == Format::Raw {
            let wanted = self.field.as_deref().unwrap_or_default();
            let field = find(event, wanted)?;
            return Ok(field.value.as_ref().map(|v| v.reveal()).unwrap_or_default());
        }
        serde_json::to_string(&self.document(event)?)
            .map_err(|e| permanent(format!("cannot render JSON: {e}")))
    }
}

/// The field with id `wanted`, else the first with that label.
pub fn find<'a>(event: &'a ItemEvent, wanted: &str) -> Result<&'a Field, PluginError> {
    let fields = &event.item.fields;
    fields
        .iter()
        .find(|f| f.id == wanted)
        .or_else(|| fields.iter().find(|f| f.label == wanted))
        .ok_or_else(|| {
            permanent(format!(
                "item `{}` ({}) has no field `{wanted}`",
                event.item.title, event.item.id
            ))
        })
}

/// The item's description without values: what a receiver needs to know which item this is.
pub fn item_summary(event: &ItemEvent) -> Value {
    let item = &event.item;
    json!({
        "id": item.id,
        "title": item.title,
        "vault": { "id": event.vault.id, "name": event.vault.name },
        "category": item.category,
        "tags": item.tags,
        "version": item.version,
        "updated_at": item.updated_at,
    })
}

/// The whole item as one JSON document, with `fields` as given.
pub fn item_document(event: &ItemEvent, fields: Value) -> Value {
    let item = &event.item;
    let urls: Vec<Value> = item
        .urls
        .iter()
        .map(|u| json!({ "href": u.href, "label": u.label, "primary": u.primary }))
        .collect();
    let mut doc = item_summary(event);
    if let Value::Object(map) = &mut doc {
        map.insert("urls".into(), Value::Array(urls));
        map.insert("fields".into(), fields);
    }
    doc
}
