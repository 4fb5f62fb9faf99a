//! Destination key naming: the plugin's own name template when the operator set one, else the
//! key the route rendered from its `name_template`, which the host hands over per call as the
//! reserved config key `opsync.key` (so `opsync plan` shows the very key that is written).

use crate::settings::plain;
use crate::template::Template;
use crate::{ChangeKind, ItemEvent, PluginError, config, permanent};

/// Reserved config key: the route-rendered destination key of this call's item.
pub const KEY: &str = "opsync.key";
/// Reserved config key, set only on the deletion of a renamed item's old key: its new key.
pub const RENAMED_TO: &str = "opsync.renamed-to";

/// How a plugin names its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Naming {
    /// The operator set the plugin's own template (config key `name`, `path`...).
    Own(Template),
    /// The route's key, from `opsync.key`, with `suffix` appended (a file extension, say);
    /// `fallback` only for a host that does not send it.
    Route { fallback: Template, suffix: String },
}

impl Naming {
    /// Reads the template in config key `key`; unset means the route's key, with `fallback` (a
    /// template) for hosts that do not send `opsync.key`.
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

    /// The destination key of `event`. `None` for the deletion of a renamed item's old key when
    /// the plugin's own template does not use the title: its name did not change, so nothing
    /// must be deleted (deleting would remove the item's current copy).
    pub fn name(&self, event: &ItemEvent) -> Result<Option<String>, PluginError> {
        let rename = event.kind == ChangeKind::Deleted && config::get(RENAMED_TO).is_some();
        match self {
            Self::Own(template) if rename && !template.uses_title() => Ok(None),
            // The host sends the old title with the deletion of an old key.
            Self::Own(template) => Ok(Some(template.render(event))),
            Self::Route { fallback, suffix } => match config::get(KEY) {
                Some(key) => check_route_key(&format!("{key}{suffix}")).map(Some),
                None if rename => Ok(None),
                None => Ok(Some(fallback.render(event))),
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
}
