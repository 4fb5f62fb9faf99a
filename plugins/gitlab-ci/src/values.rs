//! The value each variable takes: its entry's field, or the item's first concealed field.
//!
//! Values are revealed here: keep them out of logs and messages.

use opsync_destination_kit::{Field, ItemEvent, PluginError, permanent, select};

use crate::describe;
use crate::keys::{Entry, Source};

/// The Connect field type of secrets (passwords, credentials, API keys).
pub(crate) const CONCEALED: &str = "CONCEALED";

/// A value selected for a variable: the label of its field (for messages) and the value.
pub(crate) struct Selected {
    pub(crate) label: String,
    pub(crate) value: String,
}

/// The item's first concealed field that has a value.
pub(crate) fn first_concealed(fields: &[Field]) -> Option<&Field> {
    fields
        .iter()
        .find(|f| f.field_type == CONCEALED && f.value.is_some())
}

/// The value of `entry`'s field in `event`'s item, revealed.
pub(crate) fn select(event: &ItemEvent, entry: &Entry) -> Result<Selected, PluginError> {
    let item = describe(event);
    let fix = match entry.config_key {
        "fields" => "change its `fields` entry",
        _ => "set `field` to the field to write",
    };
    let field = match &entry.source {
        Source::FirstConcealed => first_concealed(&event.item.fields).ok_or_else(|| {
            permanent(format!(
                "{item} has no concealed field with a value (what is written when `field` is \
                 unset); {fix}"
            ))
        })?,
        Source::Field(wanted) => select::find(event, wanted)
            .map_err(|_| permanent(format!("{item} has no field `{wanted}`; {fix}")))?,
    };
    let value = field.value.as_ref().map(|v| v.reveal()).ok_or_else(|| {
        permanent(format!(
            "{item}: the field `{}` has no value; {fix}",
            field.label
        ))
    })?;
    Ok(Selected {
        label: field.label.clone(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(id: &str, field_type: &str) -> Field {
        Field {
            id: id.into(),
            label: id.into(),
            field_type: field_type.into(),
            purpose: None,
            section: None,
            value: None,
        }
    }

    #[test]
    fn a_concealed_field_without_a_value_is_not_the_default() {
        // Values are host handles, which a native test cannot make: only fields without one.
        let fields = vec![field("username", "STRING"), field("password", CONCEALED)];
        assert!(first_concealed(&fields).is_none());
        assert!(first_concealed(&[]).is_none());
    }
}
