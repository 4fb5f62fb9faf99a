//! Whose a variable is: the marker in its description, and what it allows.
//!
//! opsync writes the marker in the description of its variables; it decides what may be written
//! over (its own, or an adopted one) and deleted (only its own).

use opsync_destination_kit::{PluginError, permanent};

use crate::variable::Variable;

/// The marker: the description of every variable opsync writes holds it, followed by the item's
/// id (`managed by opsync: item 2fcbqwe9ndg175zg2dzwftvkpa`).
pub(crate) const MARKER: &str = "managed by opsync: item ";

/// The description written for `item_id`: the marker alone, or after the operator's text
/// (`orders DB (managed by opsync: item ID)`).
pub(crate) fn description(text: Option<&str>, item_id: &str) -> String {
    match text {
        Some(text) => format!("{text} ({MARKER}{item_id})"),
        None => format!("{MARKER}{item_id}"),
    }
}

/// Whose a variable is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// No marker (or one without an item id).
    Unmanaged,
    /// opsync's, for another item (its id).
    Other(String),
    /// opsync's, for this item.
    Ours,
}

/// Whose the variable with this description is, seen from item `item_id`.
pub(crate) fn owner(description: Option<&str>, item_id: &str) -> Owner {
    let Some((_, rest)) = description.and_then(|d| d.split_once(MARKER)) else {
        return Owner::Unmanaged;
    };
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    match id.as_str() {
        "" => Owner::Unmanaged,
        id if id == item_id => Owner::Ours,
        _ => Owner::Other(id),
    }
}

/// Whether opsync may write over `found` (at `location`) for item `item_id` (`item` in
/// messages): its own, or one without a marker when `adopt` is set; never another item's.
pub(crate) fn check_write(
    adopt: bool,
    location: &str,
    found: &Variable,
    item: &str,
    item_id: &str,
) -> Result<(), PluginError> {
    match owner(found.description.as_deref(), item_id) {
        Owner::Ours => Ok(()),
        Owner::Unmanaged if adopt => Ok(()),
        Owner::Unmanaged => Err(permanent(format!(
            "variable {location} exists and is not managed by opsync (its description has no \
             `{}` marker); set `adopt = true` to take it over",
            MARKER.trim_end()
        ))),
        Owner::Other(id) => Err(permanent(other_item(location, &id, item))),
    }
}

/// Whether opsync may delete `found` (at `location`) for item `item_id`: only its own.
pub(crate) fn check_delete(
    location: &str,
    found: &Variable,
    item: &str,
    item_id: &str,
) -> Result<(), PluginError> {
    match owner(found.description.as_deref(), item_id) {
        Owner::Ours => Ok(()),
        Owner::Unmanaged => Err(permanent(format!(
            "not deleting variable {location}: it is not managed by opsync (its description \
             has no `{}` marker)",
            MARKER.trim_end()
        ))),
        Owner::Other(id) => Err(permanent(format!(
            "not deleting variable {location}: it is managed by opsync for item {id}, not for \
             {item}"
        ))),
    }
}

fn other_item(location: &str, id: &str, item: &str) -> String {
    format!(
        "variable {location} is managed by opsync for item {id}, not for {item}: two items \
         give the same key; change `key` (or `fields`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::variable;

    const ITEM: &str = "item `Orders DB` (itm1)";
    const WHERE: &str = "`DB_PASSWORD` (scope *) of project group/app";

    fn with_description(description: Option<&str>) -> Variable {
        let mut v = variable("DB_PASSWORD", "hunter22");
        v.description = description.map(String::from);
        v
    }

    #[test]
    fn the_marker_carries_the_item_id() {
        assert_eq!(description(None, "itm1"), "managed by opsync: item itm1");
        assert_eq!(
            description(Some("orders DB"), "itm1"),
            "orders DB (managed by opsync: item itm1)"
        );
        for text in [None, Some("orders DB")] {
            assert_eq!(owner(Some(&description(text, "itm1")), "itm1"), Owner::Ours);
            assert_eq!(
                owner(Some(&description(text, "itm2")), "itm1"),
                Owner::Other("itm2".into())
            );
        }
        assert_eq!(owner(None, "itm1"), Owner::Unmanaged);
        assert_eq!(owner(Some("set by hand"), "itm1"), Owner::Unmanaged);
        assert_eq!(
            owner(Some("managed by opsync: item "), "itm1"),
            Owner::Unmanaged
        );
        // An id is whole: a longer one is another item.
        assert_eq!(
            owner(Some("managed by opsync: item itm10"), "itm1"),
            Owner::Other("itm10".into())
        );
    }

    #[test]
    fn only_our_variable_or_an_adopted_one_is_written() {
        let ours = with_description(Some("managed by opsync: item itm1"));
        assert!(check_write(false, WHERE, &ours, ITEM, "itm1").is_ok());
        let manual = with_description(Some("set by hand"));
        let err = check_write(false, WHERE, &manual, ITEM, "itm1").expect_err("unmanaged");
        assert!(
            matches!(&err, PluginError::Permanent(m)
                if m.contains(WHERE) && m.contains("`adopt = true`") && !m.contains("hunter22")),
            "{err:?}"
        );
        assert!(check_write(true, WHERE, &manual, ITEM, "itm1").is_ok());
        assert!(check_write(true, WHERE, &with_description(None), ITEM, "itm1").is_ok());
        // Another item's, even with adopt: both named.
        let other = with_description(Some("managed by opsync: item itm2"));
        let err = check_write(true, WHERE, &other, ITEM, "itm1").expect_err("another item's");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("itm2") && m.contains(ITEM) && m.contains(WHERE)),
            "{err:?}"
        );
    }

    #[test]
    fn only_our_variable_is_deleted() {
        let ours = with_description(Some("x (managed by opsync: item itm1)"));
        assert!(check_delete(WHERE, &ours, ITEM, "itm1").is_ok());
        let err = check_delete(WHERE, &with_description(None), ITEM, "itm1").expect_err("manual");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.starts_with("not deleting") && m.contains(WHERE))
        );
        let other = with_description(Some("managed by opsync: item itm2"));
        let err = check_delete(WHERE, &other, ITEM, "itm1").expect_err("other");
        assert!(
            matches!(&err, PluginError::Permanent(m) if m.contains("itm2") && m.contains(ITEM))
        );
    }
}
