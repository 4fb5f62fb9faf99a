//! What an item writes: its secrets' names and fields, the size limit, the fingerprint shape.

use opsync_destination_kit::template::Named;
use opsync_destination_kit::{Field, ItemEvent, PluginError, Secret, canonical, permanent, select};
use serde_json::{Map, Value};

use crate::describe;
use crate::names::{NAME_RULES, secret_name};
use crate::settings::{DEFAULT_NAME, Written};

/// GitHub's limit on a secret's value, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 48 * 1024;

/// The field type of the default field.
const CONCEALED: &str = "CONCEALED";

/// The names of an item's secrets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Names {
    /// Upper case, as GitHub stores them, each following its rules.
    Secrets(Vec<String>),
    /// The deletion of a renamed item's old key, and the names do not follow the title: they
    /// are the item's current secrets, so nothing is deleted.
    Current,
    /// `name` rendered a name that breaks GitHub's rules: no such secret can exist.
    Invalid {
        rendered: String,
        rule: &'static str,
    },
}

/// The names of `item`'s secrets (a change, or a `read-back` reference).
pub(crate) fn names(written: &Written, item: &impl Named) -> Result<Names, PluginError> {
    match written {
        Written::Fields(_) if item.renamed_to().is_some() => Ok(Names::Current),
        Written::Fields(entries) => Ok(Names::Secrets(
            entries.iter().map(|e| e.name.clone()).collect(),
        )),
        Written::One { name, .. } => match name.name(item)? {
            None => Ok(Names::Current),
            Some(rendered) => Ok(match secret_name(&rendered) {
                Ok(name) => Names::Secrets(vec![name]),
                Err(rule) => Names::Invalid { rendered, rule },
            }),
        },
    }
}

/// The error of an item whose rendered name breaks GitHub's rules.
pub(crate) fn invalid_name(
    event: &ItemEvent,
    name_text: &str,
    rendered: &str,
    rule: &str,
) -> PluginError {
    permanent(format!(
        "{}: the secret name `{rendered}` rendered from `name` (`{name_text}`) {rule} \
         ({NAME_RULES}); change `name` (`{DEFAULT_NAME}` makes one from the title)",
        describe(event)
    ))
}

/// One secret to write: its name and the handle of its value, revealed only when it is sealed.
pub(crate) struct Planned<'a> {
    pub(crate) name: String,
    pub(crate) value: &'a Secret,
}

/// The secrets `event`'s item writes, every value within GitHub's limit (checked on the handles,
/// without revealing anything).
pub(crate) fn plan<'a>(
    written: &Written,
    event: &'a ItemEvent,
) -> Result<Vec<Planned<'a>>, PluginError> {
    let names = match names(written, event)? {
        Names::Secrets(names) => names,
        Names::Invalid { rendered, rule } => {
            let text = match written {
                Written::One { name_text, .. } => name_text.as_str(),
                Written::Fields(_) => "",
            };
            return Err(invalid_name(event, text, &rendered, rule));
        }
        Names::Current => {
            return Err(permanent(format!(
                "{}: no secret name for a write",
                describe(event)
            )));
        }
    };
    let fields: Vec<&Field> = match written {
        Written::One { field: Some(w), .. } => vec![find(event, "field", w)?],
        Written::One { field: None, .. } => {
            vec![first_concealed(&event.item.fields).ok_or_else(|| {
                permanent(format!(
                    "{} has no CONCEALED field; set `field` to the field to write",
                    describe(event)
                ))
            })?]
        }
        Written::Fields(entries) => entries
            .iter()
            .map(|e| find(event, "fields", &e.field))
            .collect::<Result<_, _>>()?,
    };
    let mut handles = Vec::with_capacity(fields.len());
    for field in &fields {
        let value = field.value.as_ref().ok_or_else(|| {
            permanent(format!(
                "{}: the field `{}` has no value",
                describe(event),
                field.label
            ))
        })?;
        check_size(
            event,
            &field.label,
            usize::try_from(value.len()).unwrap_or(usize::MAX),
        )?;
        handles.push(value);
    }
    Ok(names
        .into_iter()
        .zip(handles)
        .map(|(name, value)| Planned { name, value })
        .collect())
}

/// The field `wanted` (an id or a label), which config key `key` names.
fn find<'a>(event: &'a ItemEvent, key: &str, wanted: &str) -> Result<&'a Field, PluginError> {
    select::find(event, wanted).map_err(|_| {
        permanent(format!(
            "{} has no field `{wanted}` (an id or a label); change `{key}`",
            describe(event)
        ))
    })
}

/// The item's first CONCEALED field (a password, a credential): the default field.
pub(crate) fn first_concealed(fields: &[Field]) -> Option<&Field> {
    fields.iter().find(|f| f.field_type == CONCEALED)
}

/// Refuses a value above GitHub's limit, naming the item and the field, never the value.
pub(crate) fn check_size(event: &ItemEvent, field: &str, bytes: usize) -> Result<(), PluginError> {
    if bytes > MAX_VALUE_BYTES {
        return Err(permanent(format!(
            "{}: the field `{field}` holds {bytes} bytes, above GitHub's limit of \
             {MAX_VALUE_BYTES} bytes (48 KB) for a secret",
            describe(event)
        )));
    }
    Ok(())
}

/// What the fingerprint is taken over: the canonical JSON of `{NAME: updated_at, ...}` of the
/// item's secrets, as GitHub answers a read of each (it never returns values).
pub(crate) fn fingerprint_input(stamps: &[(String, String)]) -> Vec<u8> {
    let map: Map<String, Value> = stamps
        .iter()
        .map(|(name, at)| (name.clone(), Value::String(at.clone())))
        .collect();
    canonical::json(&Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::FieldSecret;
    use crate::test_support::{event, field};
    use opsync_destination_kit::ChangeKind;
    use opsync_destination_kit::naming::Naming;
    use opsync_destination_kit::template::Template;

    fn one(text: &str) -> Written {
        Written::One {
            field: None,
            name: Naming::Own(Template::parse("name", text).expect("valid")),
            name_text: text.into(),
        }
    }

    fn fields() -> Written {
        Written::Fields(vec![
            FieldSecret {
                field: "username".into(),
                name: "DB_USER".into(),
            },
            FieldSecret {
                field: "password".into(),
                name: "DB_PASSWORD".into(),
            },
        ])
    }

    #[test]
    fn the_default_name_is_the_title_in_upper_snake_case() {
        let e = event(ChangeKind::Created);
        assert_eq!(
            names(&one(DEFAULT_NAME), &e).expect("named"),
            Names::Secrets(vec!["ORDERS_DB".into()])
        );
        // Rendered names are upper-cased.
        assert_eq!(
            names(&one("prod_{{title}}"), &e).expect("named"),
            Names::Secrets(vec!["PROD_ORDERS_DB".into()])
        );
        assert_eq!(
            names(&fields(), &e).expect("named"),
            Names::Secrets(vec!["DB_USER".into(), "DB_PASSWORD".into()])
        );
    }

    #[test]
    fn a_rendered_name_that_breaks_the_rules_fails_the_item() {
        let mut e = event(ChangeKind::Created);
        e.item.title = "2fa codes".into();
        let Names::Invalid { rendered, rule } = names(&one(DEFAULT_NAME), &e).expect("named")
        else {
            panic!("valid")
        };
        assert_eq!(rendered, "2FA_CODES");
        let err = invalid_name(&e, DEFAULT_NAME, &rendered, rule);
        assert!(
            matches!(&err, PluginError::Permanent(m)
                if m.contains("item `2fa codes` (itm1)") && m.contains("`2FA_CODES`") && m.contains("digit")),
            "{err:?}"
        );
        e.item.title = "Token".into();
        assert!(matches!(
            names(&one("GITHUB{{title}}"), &e).expect("named"),
            Names::Secrets(_)
        ));
        e.item.title = "_x".into();
        assert!(matches!(
            names(&one("GITHUB{{title}}"), &e).expect("named"),
            Names::Invalid { rule, .. } if rule.contains("GITHUB_")
        ));
        e.item.title = "api.key".into();
        assert!(matches!(
            names(&one("{{title}}"), &e).expect("named"),
            Names::Invalid { rendered, .. } if rendered == "api.key"
        ));
        assert!(matches!(
            plan(&one("{{title}}"), &e),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn a_renamed_items_old_key_deletes_only_names_that_follow_the_title() {
        let mut old = event(ChangeKind::Deleted);
        old.renamed_to = Some("Prod/New title".into());
        assert_eq!(
            names(&one(DEFAULT_NAME), &old).expect("named"),
            Names::Secrets(vec!["ORDERS_DB".into()])
        );
        assert_eq!(
            names(&one("DB_{{id}}"), &old).expect("named"),
            Names::Current
        );
        assert_eq!(names(&fields(), &old).expect("named"), Names::Current);
        // Not a deletion: `renamed-to` does not matter.
        let mut updated = event(ChangeKind::Updated);
        updated.renamed_to = Some("Prod/New title".into());
        assert!(matches!(
            names(&fields(), &updated).expect("named"),
            Names::Secrets(_)
        ));
    }

    #[test]
    fn the_default_field_is_the_first_concealed_one() {
        let fields = vec![
            field("f1", "username", "STRING"),
            field("f2", "password", "CONCEALED"),
            field("f3", "token", "CONCEALED"),
        ];
        assert_eq!(first_concealed(&fields).map(|f| f.id.as_str()), Some("f2"));
        assert!(first_concealed(&fields[..1]).is_none());
        let mut e = event(ChangeKind::Created);
        let err = plan(&one(DEFAULT_NAME), &e).map(|_| ()).expect_err("none");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("no CONCEALED field") && m.contains("`field`")),
            "{err:?}"
        );
        // Found, but without a value.
        e.item.fields = fields;
        let err = plan(&one(DEFAULT_NAME), &e)
            .map(|_| ())
            .expect_err("no value");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("`password` has no value")),
            "{err:?}"
        );
        let written = Written::One {
            field: Some("api key".into()),
            name: Naming::Own(Template::parse("name", DEFAULT_NAME).expect("valid")),
            name_text: DEFAULT_NAME.into(),
        };
        let err = plan(&written, &e).map(|_| ()).expect_err("missing");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("no field `api key`") && m.contains("`field`")),
            "{err:?}"
        );
    }

    #[test]
    fn values_above_48_kb_are_refused_naming_item_and_field() {
        let e = event(ChangeKind::Created);
        assert!(check_size(&e, "password", MAX_VALUE_BYTES).is_ok());
        let err = check_size(&e, "password", MAX_VALUE_BYTES + 1).expect_err("too big");
        assert!(
            matches!(&err, PluginError::Permanent(m)
                if m.contains("item `Orders DB` (itm1)") && m.contains("`password`") && m.contains("49153 bytes") && m.contains("49152")),
            "{err:?}"
        );
    }

    #[test]
    fn the_fingerprint_is_over_names_and_update_times() {
        let stamps = vec![
            ("DB_USER".to_string(), "2024-05-01T12:00:00Z".to_string()),
            (
                "DB_PASSWORD".to_string(),
                "2024-05-01T12:00:01Z".to_string(),
            ),
        ];
        assert_eq!(
            String::from_utf8(fingerprint_input(&stamps)).expect("utf-8"),
            r#"{"DB_PASSWORD":"2024-05-01T12:00:01Z","DB_USER":"2024-05-01T12:00:00Z"}"#
        );
        // Read back in another order: the same bytes. Another time: others.
        let mut reversed = stamps.clone();
        reversed.reverse();
        assert_eq!(fingerprint_input(&reversed), fingerprint_input(&stamps));
        reversed[0].1 = "2024-06-01T00:00:00Z".into();
        assert_ne!(fingerprint_input(&reversed), fingerprint_input(&stamps));
    }
}
