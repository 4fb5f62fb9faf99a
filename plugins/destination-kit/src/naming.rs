//! Destination key naming: the plugin's own name template when the operator set one, else the
//! key the route rendered from its `name_template`, which comes with the event (`item-event.key`;
//! `item-ref.key` for `read-back`), so `opsync plan` shows the very key that is written.

use crate::settings::plain;
use crate::template::{Named, Template};
use crate::{PluginError, permanent};

/// How a plugin names its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Naming {
    /// The operator set the plugin's own template (config key `name`, `path`...).
    Own(Template),
    /// The route's key, from the event, with `suffix` appended (a file extension, say);
    /// `fallback` only for an event without a key (a host that sends none).
    Route { fallback: Template, suffix: String },
}

impl Naming {
    /// Reads the template in config key `key`; unset means the route's key, with `fallback` (a
    /// template) for events that come without one.
    pub fn load(key: &str, fallback: &str) -> Result<Self, PluginError> {
        Self::load_with_suffix(key, fallback, "")
    }

    /// [`Naming::load`], with `suffix` appended to the route's key (not to the plugin's own
    /// template, which says all of the name).
    pub fn load_with_suffix(key: &str, fallback: &str, suffix: &str) -> Result<Self, PluginError> {
        match plain(key)? {
            Some(text) => Ok(Self::Own(Template::parse(key, &text)?)),
            None => Ok(Self::Route {
                fallback: Template::parse(key, fallback)?,
                suffix: suffix.to_string(),
            }),
        }
    }

    /// The destination key of `item` (a change, or a `read-back` reference). `None` for the
    /// deletion of a renamed item's old key when the plugin's own template does not use the
    /// title: its name did not change, so nothing must be deleted (deleting would remove the
    /// item's current copy).
    pub fn name(&self, item: &impl Named) -> Result<Option<String>, PluginError> {
        let rename = item.renamed_to().is_some();
        match self {
            Self::Own(template) if rename && !template.uses_title() => Ok(None),
            // The host sends the old title with the deletion of an old key.
            Self::Own(template) => Ok(Some(template.render(item))),
            Self::Route { fallback, suffix } => match item.key() {
                "" if rename => Ok(None),
                "" => Ok(Some(fallback.render(item))),
                key => check_route_key(&format!("{key}{suffix}")).map(Some),
            },
        }
    }
}

/// A route key is used as it is, but never as an absolute name or one that climbs: no leading
/// `/`, no empty, `.` or `..` parts, no control characters.
pub fn check_route_key(key: &str) -> Result<String, PluginError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        || key.chars().any(char::is_control);
    if bad {
        return Err(permanent(format!(
            "the route's destination key `{}` is not a relative name (no leading `/`, no empty, \
             `.` or `..` parts): change the route's name_template, or set this plugin's own name template",
            key.escape_debug()
        )));
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChangeKind;
    use crate::template::tests::{event, item_ref};

    fn own(text: &str) -> Naming {
        Naming::Own(Template::parse("name", text).expect("valid"))
    }

    fn route(suffix: &str) -> Naming {
        Naming::Route {
            fallback: Template::parse("name", "{{title}}.fallback").expect("valid"),
            suffix: suffix.to_string(),
        }
    }

    #[test]
    fn route_keys_are_used_as_they_are_unless_they_climb() {
        assert_eq!(
            check_route_key("Production/Orders database").expect("fine"),
            "Production/Orders database"
        );
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a/", "a\nb"] {
            let bad = bad.replace("\\n", "\n");
            assert!(
                matches!(check_route_key(&bad), Err(PluginError::Permanent(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_own_template_wins_else_the_events_key_with_the_suffix() {
        let e = event("My DB");
        assert_eq!(
            own("x/{{title}}").name(&e).expect("named"),
            Some("x/My_DB".into())
        );
        assert_eq!(
            route(".env").name(&e).expect("named"),
            Some("Prod Vault/My DB.env".into())
        );
        assert_eq!(
            route("").name(&e).expect("named"),
            Some("Prod Vault/My DB".into())
        );
        // No key from the host: the fallback template.
        let mut keyless = event("My DB");
        keyless.key.clear();
        assert_eq!(
            route(".env").name(&keyless).expect("named"),
            Some("My_DB.fallback".into())
        );
        // A route key that climbs is refused.
        let mut climbing = event("x");
        climbing.key = "../etc/passwd".into();
        assert!(matches!(
            route("").name(&climbing),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn deleting_a_renamed_items_old_key() {
        let old_key = || {
            let mut old = event("Old title");
            old.kind = ChangeKind::Deleted;
            old.renamed_to = Some("Prod Vault/New title".into());
            old
        };
        let old = old_key();
        // The route's old key is deleted; so is the old name of an own template by title.
        assert_eq!(
            route(".env").name(&old).expect("named"),
            Some("Prod Vault/Old title.env".into())
        );
        assert_eq!(
            own("{{vault}}/{{title}}").name(&old).expect("named"),
            Some("Prod_Vault/Old_title".into())
        );
        // An own template without the title names the item's current copy: nothing to delete.
        assert_eq!(own("{{vault}}/{{id}}").name(&old).expect("named"), None);
        let mut keyless = old_key();
        keyless.key.clear();
        assert_eq!(route("").name(&keyless).expect("named"), None);
        // `renamed-to` counts on a deletion only.
        let mut update = event("x");
        update.renamed_to = Some("elsewhere".into());
        assert_eq!(
            own("{{id}}").name(&update).expect("named"),
            Some("itm1".into())
        );
    }

    #[test]
    fn read_back_names_the_item_the_way_its_delivery_did() {
        for naming in [
            route(".json"),
            route(""),
            own("a/{{vault}}/{{title}}-{{version}}"),
        ] {
            assert_eq!(
                naming.name(&item_ref("My DB")).expect("named"),
                naming.name(&event("My DB")).expect("named")
            );
        }
    }
}
