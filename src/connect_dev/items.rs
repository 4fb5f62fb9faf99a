//! Item bodies from clients: parsing them with precise messages, and the checks and fills Connect applies on write.
//!
//! Connect refuses CUSTOM and DOCUMENT creation, unknown categories and purposes, a second
//! USERNAME or PASSWORD field, and malformed DATE / MONTH_YEAR values. It ignores what the
//! server owns (`version`, timestamps, `lastEditedBy`, `entropy`, `totp`, files), assigns ids
//! to new fields and sections, and generates values for `generate: true` fields.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use crate::connect::model::{
    Category, Field, FieldPurpose, FieldType, Item, Section, is_connect_id,
};

use super::error::{ApiError, describe_serde_error};
use super::generate;
use super::ids;

/// Parses a JSON body into `T`, naming the offending attribute on failure (`fields[2].type`).
/// `what` names the document in messages ("item", "patch document").
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        describe_json_error(&inner, what, &path)
    })?;
    de.end().map_err(|e| describe_json_error(&e, what, "."))?;
    Ok(value)
}

fn describe_json_error(e: &serde_json::Error, what: &str, path: &str) -> ApiError {
    let detail = describe_serde_error(&e.to_string());
    if e.is_syntax() || e.is_eof() {
        ApiError::bad_request(format!("Invalid JSON in the request body: {detail}"))
    } else if path == "." || path.is_empty() {
        ApiError::bad_request(format!("Invalid {what}: {detail}"))
    } else {
        ApiError::bad_request(format!("Invalid {what}: {path}: {detail}"))
    }
}

/// Checks and completes `item` for storage. `existing` is the stored item on PUT and PATCH,
/// `None` on create; `path_item_id` is the item id of the URL on PUT and PATCH.
pub fn prepare(
    item: Item,
    existing: Option<&Item>,
    path_item_id: Option<&str>,
) -> Result<Item, ApiError> {
    check_category(&item.category, existing.map(|e| &e.category))?;
    complete(item, existing, path_item_id)
}

/// [`prepare`] without the category check: everything but which categories Connect lets a
/// client create or change (the server itself may store any, as a Document item).
pub fn complete(
    mut item: Item,
    existing: Option<&Item>,
    path_item_id: Option<&str>,
) -> Result<Item, ApiError> {
    match (existing, path_item_id) {
        (Some(_), Some(path_id)) => {
            if !item.id.is_empty() && item.id != path_id {
                return Err(ApiError::bad_request(
                    "The item id in the body does not match the item UUID in the path",
                ));
            }
            item.id = path_id.to_owned();
        }
        _ => {
            if !item.id.is_empty() && !is_connect_id(&item.id) {
                return Err(ApiError::bad_request("Invalid Item UUID"));
            }
        }
    }
    // Read-only attributes: the store sets them, clients' copies are ignored.
    item.state = None;
    item.files = None;

    let mut sections = item.sections.take().unwrap_or_default();
    let mut section_ids = HashSet::new();
    for section in &mut sections {
        if section.id.is_empty() {
            section.id = format!("Section_{}", ids::new_id());
        }
        if !section_ids.insert(section.id.clone()) {
            return Err(ApiError::bad_request(format!(
                "Duplicate section id '{}'",
                clip(&section.id)
            )));
        }
    }

    let mut fields = item.fields.take().unwrap_or_default();
    check_purposes(&fields)?;
    let mut field_ids: HashSet<String> = fields
        .iter()
        .filter(|f| !f.id.is_empty())
        .map(|f| f.id.clone())
        .collect();
    let given = fields.iter().filter(|f| !f.id.is_empty()).count();
    if given != field_ids.len() {
        return Err(ApiError::bad_request(
            "Two fields of the item have the same id",
        ));
    }
    for field in &mut fields {
        if field.id.is_empty() {
            field.id = new_field_id(field, &field_ids);
            field_ids.insert(field.id.clone());
        }
        complete_field(field)?;
        if let Some(section) = &field.section
            && !section.id.is_empty()
            && section_ids.insert(section.id.clone())
        {
            sections.push(Section {
                id: section.id.clone(),
                label: None,
            });
        }
    }
    item.sections = (!sections.is_empty()).then_some(sections);
    item.fields = (!fields.is_empty()).then_some(fields);
    Ok(item)
}

fn check_category(category: &Category, existing: Option<&Category>) -> Result<(), ApiError> {
    match category {
        Category::Other(_) => Err(ApiError::bad_request("Invalid item category")),
        Category::Custom | Category::Document if existing != Some(category) => {
            Err(ApiError::bad_request(format!(
                "Invalid item category: items of category {category} cannot be created through Connect"
            )))
        }
        _ => Ok(()),
    }
}

fn check_purposes(fields: &[Field]) -> Result<(), ApiError> {
    let mut usernames = 0;
    let mut passwords = 0;
    for field in fields {
        match &field.purpose {
            Some(FieldPurpose::Username) => usernames += 1,
            Some(FieldPurpose::Password) => passwords += 1,
            Some(FieldPurpose::Other(_)) => {
                return Err(ApiError::bad_request(
                    "Invalid field purpose: use USERNAME, PASSWORD, NOTES or leave it empty",
                ));
            }
            _ => {}
        }
    }
    for (count, name) in [(passwords, "password"), (usernames, "username")] {
        if count > 1 {
            return Err(ApiError::bad_request(format!(
                "Logic: (Unable to parse Item), Validation: (too many \"{name}\" fields in Apply()), \
                 You can only use one \"{name}\" field."
            )));
        }
    }
    Ok(())
}

/// Built-in ids for purpose fields (`username`, `password`, `notesPlain`), `TOTP_...` for OTP
/// fields, otherwise a fresh 26-character id.
fn new_field_id(field: &Field, taken: &HashSet<String>) -> String {
    let builtin = match field.purpose {
        Some(FieldPurpose::Username) => Some("username"),
        Some(FieldPurpose::Password) => Some("password"),
        Some(FieldPurpose::Notes) => Some("notesPlain"),
        _ => None,
    };
    match builtin {
        Some(id) if !taken.contains(id) => id.to_owned(),
        _ if matches!(field.field_type, FieldType::Otp | FieldType::Totp) => {
            format!("TOTP_{}", ids::new_id())
        }
        _ => ids::new_id(),
    }
}

/// Labels, generated values, entropy and value formats of one field.
fn complete_field(field: &mut Field) -> Result<(), ApiError> {
    field.totp = None;
    field.entropy = None;
    if field.purpose == Some(FieldPurpose::None) {
        field.purpose = None;
    }
    if field.label.as_deref().is_none_or(str::is_empty) {
        field.label = match field.purpose {
            Some(FieldPurpose::Username) => Some("username".to_owned()),
            Some(FieldPurpose::Password) => Some("password".to_owned()),
            Some(FieldPurpose::Notes) => Some("notesPlain".to_owned()),
            _ => field.label.take(),
        };
    }
    if field.generate {
        let value = generate::generate(field.recipe.as_ref())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        field.value = Some(value.into());
        field.generate = false;
    }
    if field.value.as_ref().is_some_and(|v| v.is_empty()) {
        field.value = None;
    }
    if let Some(value) = &field.value {
        let value = value.expose();
        let ok = match field.field_type {
            FieldType::Date => is_date(value),
            FieldType::MonthYear => is_month_year(value),
            _ => true,
        };
        if !ok {
            let format = if field.field_type == FieldType::Date {
                "YYYY-MM-DD"
            } else {
                "YYYYMM or YYYY/MM"
            };
            return Err(ApiError::bad_request(format!(
                "Invalid value for the {} field '{}': expected {format}",
                field.field_type,
                clip(field.label.as_deref().unwrap_or(&field.id))
            )));
        }
        if field.field_type == FieldType::Concealed || field.purpose == Some(FieldPurpose::Password)
        {
            field.entropy = Some(generate::entropy(value));
        }
    }
    Ok(())
}

fn is_date(value: &str) -> bool {
    value.len() == 10 && chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

fn is_month_year(value: &str) -> bool {
    let (year, month) = match value.len() {
        6 => (&value[..4], &value[4..]),
        7 if value.as_bytes()[4] == b'/' => (&value[..4], &value[5..]),
        _ => return false,
    };
    year.bytes().all(|b| b.is_ascii_digit())
        && month.bytes().all(|b| b.is_ascii_digit())
        && month.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
}

/// Client-chosen names shown in messages are cut short.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> Result<Item, ApiError> {
        prepare(parse_json(json.as_bytes(), "item")?, None, None)
    }

    #[test]
    fn assigns_builtin_ids_labels_and_generates() {
        let it = item(
            r#"{"title":"t","category":"LOGIN","fields":[
                {"purpose":"USERNAME","value":"me"},
                {"type":"CONCEALED","purpose":"PASSWORD","generate":true,"recipe":{"length":12}},
                {"type":"OTP","value":"otpauth://totp/x?secret=JBSWY3DP"},
                {"label":"extra","section":{"id":"s1"}}]}"#,
        )
        .expect("valid");
        let fields = it.fields.as_deref().expect("fields");
        assert_eq!(fields[0].id, "username");
        assert_eq!(fields[0].label.as_deref(), Some("username"));
        assert_eq!(fields[1].id, "password");
        assert_eq!(fields[1].value.as_ref().map(|v| v.expose().len()), Some(12));
        assert!(!fields[1].generate);
        assert!(fields[1].entropy.is_some_and(|e| e > 0.0));
        assert!(fields[2].id.starts_with("TOTP_"));
        assert!(is_connect_id(&fields[3].id));
        assert_eq!(it.sections.as_deref().map(|s| s[0].id.as_str()), Some("s1"));
    }

    #[test]
    fn refuses_what_connect_refuses() {
        let status = |json: &str| item(json).map(|_| ()).map_err(|e| e.message().to_owned());
        assert!(status(r#"{"category":"CUSTOM"}"#).is_err());
        assert!(status(r#"{"category":"DOCUMENT"}"#).is_err());
        assert_eq!(
            status(r#"{"category":"NOPE"}"#),
            Err("Invalid item category".into())
        );
        let two =
            r#"{"category":"LOGIN","fields":[{"purpose":"PASSWORD"},{"purpose":"PASSWORD"}]}"#;
        assert!(status(two).is_err_and(|m| m.contains("too many \"password\" fields")));
        assert!(
            status(r#"{"category":"LOGIN","fields":[{"type":"DATE","value":"2024-13-01"}]}"#)
                .is_err()
        );
        assert!(
            status(r#"{"category":"LOGIN","fields":[{"type":"DATE","value":"2024-02-29"}]}"#)
                .is_ok()
        );
        assert!(
            status(r#"{"category":"LOGIN","fields":[{"type":"MONTH_YEAR","value":"2024/12"}]}"#)
                .is_ok()
        );
        assert!(
            status(r#"{"category":"LOGIN","fields":[{"type":"MONTH_YEAR","value":"202400"}]}"#)
                .is_err()
        );
        assert!(status(r#"{"category":"LOGIN","id":"NOT-AN-ID"}"#).is_err());
        assert!(status(r#"{"category":"LOGIN","fields":[{"id":"a"},{"id":"a"}]}"#).is_err());
    }

    #[test]
    fn parse_errors_name_the_attribute_without_the_value() {
        let err = parse_json::<Item>(
            br#"{"category":"LOGIN","fields":[{"value":12345}]}"#,
            "item",
        )
        .expect_err("wrong type");
        assert!(
            err.message().contains("fields[0].value"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("12345"), "{}", err.message());
        let err = parse_json::<Item>(b"{not json", "item").expect_err("syntax");
        assert!(
            err.message().starts_with("Invalid JSON"),
            "{}",
            err.message()
        );
        let err =
            parse_json::<Item>(b"{\"category\":\"LOGIN\"} trailing", "item").expect_err("trailing");
        assert!(
            err.message().starts_with("Invalid JSON"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn put_keeps_document_category_and_path_id() {
        let existing = Item::new("d", Category::Document);
        let body: Item =
            parse_json(br#"{"category":"DOCUMENT","title":"d2"}"#, "item").expect("parses");
        let prepared =
            prepare(body, Some(&existing), Some("abcdefghijklmnopqrstuvwxyz")).expect("ok");
        assert_eq!(prepared.id, "abcdefghijklmnopqrstuvwxyz");
        let body: Item =
            parse_json(br#"{"category":"LOGIN","id":"other"}"#, "item").expect("parses");
        assert!(prepare(body, Some(&existing), Some("abcdefghijklmnopqrstuvwxyz")).is_err());
    }
}
