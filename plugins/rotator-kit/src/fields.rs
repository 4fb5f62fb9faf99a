//! Finding what a rotator works on: an item's field by id, label or purpose, and the pending value
//! meant for it, whichever of the field's id or label the host named it by.

use crate::{Field, Item, Rotation, Secret};

/// The field whose id is `name`, else the first whose label is `name` (ignoring ASCII case).
pub fn find<'a>(item: &'a Item, name: &str) -> Option<&'a Field> {
    item.fields.iter().find(|f| f.id == name).or_else(|| {
        item.fields
            .iter()
            .find(|f| f.label.eq_ignore_ascii_case(name))
    })
}

/// The first field with `purpose` (`USERNAME`, `PASSWORD`).
pub fn by_purpose<'a>(item: &'a Item, purpose: &str) -> Option<&'a Field> {
    item.fields
        .iter()
        .find(|f| f.purpose.as_deref() == Some(purpose))
}

/// The name to return a new value under: the field's id when the item has the field (labels may
/// repeat across sections), else `name` itself.
pub fn key_for(item: &Item, name: &str) -> String {
    find(item, name).map_or_else(|| name.to_string(), |f| f.id.clone())
}

/// The pending value for the field called `name` (or for `field`, the item's field it resolved
/// to, under its id or label).
pub fn pending<'a>(
    rotation: &'a Rotation,
    name: &str,
    field: Option<&Field>,
) -> Option<&'a Secret> {
    rotation
        .pending
        .iter()
        .find(|v| names_field(&v.field, name, field))
        .map(|v| &v.value)
}

/// Whether a new value addressed to `target` is meant for the field called `name`, which the
/// item may hold as `field`.
pub fn names_field(target: &str, name: &str, field: Option<&Field>) -> bool {
    target == name
        || target.eq_ignore_ascii_case(name)
        || field.is_some_and(|f| target == f.id || target.eq_ignore_ascii_case(&f.label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(id: &str, label: &str, purpose: Option<&str>) -> Field {
        Field {
            id: id.into(),
            label: label.into(),
            field_type: "CONCEALED".into(),
            purpose: purpose.map(String::from),
            section: None,
            value: None,
        }
    }

    fn item(fields: Vec<Field>) -> Item {
        Item {
            id: "itm".into(),
            title: "app".into(),
            category: "API_CREDENTIAL".into(),
            tags: Vec::new(),
            version: 1,
            urls: Vec::new(),
            updated_at: None,
            fields,
            files: Vec::new(),
        }
    }

    #[test]
    fn fields_are_found_by_id_then_label_then_purpose() {
        let it = item(vec![
            field("abc123", "Access Key ID", None),
            field("password", "secret", Some("PASSWORD")),
            field("user", "username", Some("USERNAME")),
        ]);
        assert_eq!(
            find(&it, "access key id").map(|f| f.id.as_str()),
            Some("abc123")
        );
        assert_eq!(find(&it, "abc123").map(|f| f.id.as_str()), Some("abc123"));
        // An id wins over a label.
        assert_eq!(
            find(&it, "password").map(|f| f.label.as_str()),
            Some("secret")
        );
        assert!(find(&it, "missing").is_none());
        assert_eq!(
            by_purpose(&it, "USERNAME").map(|f| f.id.as_str()),
            Some("user")
        );
        assert!(by_purpose(&it, "NOTES").is_none());
        assert_eq!(key_for(&it, "Access key ID"), "abc123");
        assert_eq!(key_for(&it, "secret access key"), "secret access key");
    }

    #[test]
    fn pending_values_match_by_name_id_or_label() {
        let f = field("abc123", "Access Key ID", None);
        assert!(names_field("access key id", "access key id", Some(&f)));
        assert!(names_field("ACCESS KEY ID", "access key id", None));
        assert!(names_field("abc123", "access key id", Some(&f)));
        assert!(names_field("Access Key ID", "abc123", Some(&f)));
        assert!(!names_field("secret access key", "access key id", Some(&f)));
        assert!(!names_field("abc123", "access key id", None));
    }
}
