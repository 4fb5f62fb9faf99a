//! What an Events API audit event's action does to its object: create, read, update, delete.
//!
//! The OCSF activity and the ECS event type of an audit event are written in these terms.

/// An action as create, read, update or delete; anything else (`suspend`, `grant`, `join`, ...)
/// is `Other` and keeps its own name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Read,
    Update,
    Delete,
    Other,
}

impl Verb {
    /// The verb of `action` (case-insensitive): `create`; `read`, `view`; `update`, `edit`;
    /// `delete`, `purge`.
    pub fn of(action: &str) -> Self {
        let is = |names: &[&str]| names.iter().any(|n| action.eq_ignore_ascii_case(n));
        if is(&["create"]) {
            Self::Create
        } else if is(&["read", "view"]) {
            Self::Read
        } else if is(&["update", "edit"]) {
            Self::Update
        } else if is(&["delete", "purge"]) {
            Self::Delete
        } else {
            Self::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_by_verb() {
        for (action, verb) in [
            ("create", Verb::Create),
            ("view", Verb::Read),
            ("read", Verb::Read),
            ("edit", Verb::Update),
            ("UPDATE", Verb::Update),
            ("delete", Verb::Delete),
            ("purge", Verb::Delete),
            ("suspend", Verb::Other),
            ("trash", Verb::Other),
            ("", Verb::Other),
        ] {
            assert_eq!(Verb::of(action), verb, "{action}");
        }
    }
}
