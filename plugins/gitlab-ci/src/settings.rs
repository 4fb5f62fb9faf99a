//! The config: its keys and defaults, loaded and checked once per call.

use std::fmt;

use opsync_destination_kit::http::Endpoint;
use opsync_destination_kit::settings::{self, check_keys, choice, flag, list, plain};
use opsync_destination_kit::{PluginError, misconfigured};

use crate::keys::{self, Entry};
use crate::ownership::MARKER;

const KNOWN_KEYS: &[&str] = &[
    "api-url",
    "token",
    "project",
    "group",
    "field",
    "fields",
    "key",
    "masked",
    "protected",
    "raw",
    "environment-scope",
    "variable-type",
    "description",
    "adopt",
    "on-delete",
];

pub(crate) const DEFAULT_API_URL: &str = "https://gitlab.com";
/// The REST API's root under the base URL.
pub(crate) const API_ROOT: &str = "/api/v4";
pub(crate) const DEFAULT_SCOPE: &str = "*";
/// The `variable-type`s GitLab knows; the first is the default.
pub(crate) const VARIABLE_TYPES: &[&str] = &["env_var", "file"];
/// The longest `description` text: GitLab keeps 255 characters, and the marker (with a
/// 1Password item id) takes the rest.
pub(crate) const DESCRIPTION_MAX: usize = 200;
/// The longest environment scope GitLab keeps.
const SCOPE_MAX: usize = 255;

/// Whose variables these are: a project's or a group's, by numeric id or full path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Project(String),
    Group(String),
}

impl Target {
    /// Exactly one of `project` and `group`.
    pub(crate) fn parse(
        project: Option<String>,
        group: Option<String>,
    ) -> Result<Self, PluginError> {
        match (project, group) {
            (Some(_), Some(_)) => Err(misconfigured(
                "set `project` or `group`, not both: a destination writes the variables of one",
            )),
            (None, None) => Err(misconfigured(
                "`project` or `group` is required (a numeric id or a full path such as \
                 `group/subgroup/project`)",
            )),
            (Some(project), None) => Ok(Self::Project(check_target("project", &project)?)),
            (None, Some(group)) => Ok(Self::Group(check_target("group", &group)?)),
        }
    }

    /// The id or path, as configured.
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Project(id) | Self::Group(id) => id,
        }
    }

    /// The API's collection: `projects` or `groups`.
    pub(crate) fn collection(&self) -> &'static str {
        match self {
            Self::Project(_) => "projects",
            Self::Group(_) => "groups",
        }
    }

    /// `project` or `group`: the config key, and the word in messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Project(_) => "project",
            Self::Group(_) => "group",
        }
    }
}

impl fmt::Display for Target {
    /// `project group/app`, `group 42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.id())
    }
}

/// A numeric id, or a full path: `/`-separated names of letters, digits, `_`, `-` and `.`.
fn check_target(key: &str, text: &str) -> Result<String, PluginError> {
    let text = text.trim();
    let name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !text.split('/').all(name) {
        return Err(misconfigured(format!(
            "`{key}` is `{}`: give its numeric id or its full path (`group/subgroup/project`), \
             without the GitLab URL and without a leading or trailing `/`",
            text.escape_debug()
        )));
    }
    Ok(text.to_string())
}

/// The base URL: the plugin appends `/api/v4` itself.
pub(crate) fn parse_api_url(text: &str) -> Result<Endpoint, PluginError> {
    let endpoint = Endpoint::parse("api-url", text)?;
    if endpoint.base_path.ends_with(API_ROOT) {
        return Err(misconfigured(format!(
            "`api-url` is `{text}`: give GitLab's base URL (`https://gitlab.example.com`), \
             without `{API_ROOT}`, which opsync appends"
        )));
    }
    Ok(endpoint)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnDelete {
    /// Delete opsync's own variables of the item.
    Delete,
    /// Leave them.
    Keep,
}

/// What every variable is written with, besides its key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub(crate) variable_type: &'static str,
    pub(crate) masked: bool,
    pub(crate) protected: bool,
    pub(crate) raw: bool,
    pub(crate) environment_scope: String,
    /// The operator's text, written before the marker; none for the marker alone.
    pub(crate) description: Option<String>,
}

pub(crate) struct Settings {
    pub(crate) api_url: Endpoint,
    pub(crate) target: Target,
    /// The variables each item writes.
    pub(crate) entries: Vec<Entry>,
    pub(crate) attributes: Attributes,
    pub(crate) adopt: bool,
    pub(crate) on_delete: OnDelete,
}

impl Settings {
    pub(crate) fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let api_url = plain("api-url")?.unwrap_or_else(|| DEFAULT_API_URL.into());
        let api_url = parse_api_url(&api_url)?;
        // Required and not empty; revealed once per call by the caller.
        settings::secret("token")?;
        let target = Target::parse(plain("project")?, plain("group")?)?;
        let entries = keys::entries(
            &list("fields")?,
            plain("key")?.as_deref(),
            plain("field")?.as_deref(),
        )?;
        let on_delete = match choice("on-delete", &["delete", "keep"], "delete")? {
            "keep" => OnDelete::Keep,
            _ => OnDelete::Delete,
        };
        Ok(Self {
            api_url,
            target,
            entries,
            attributes: Attributes {
                variable_type: choice("variable-type", VARIABLE_TYPES, VARIABLE_TYPES[0])?,
                masked: flag("masked", false)?,
                protected: flag("protected", false)?,
                raw: flag("raw", true)?,
                environment_scope: check_scope(plain("environment-scope")?)?,
                description: check_description(plain("description")?)?,
            },
            adopt: flag("adopt", false)?,
            on_delete,
        })
    }
}

/// The environment scope: `*` when unset; one line, at most 255 characters (GitLab checks the
/// rest of its syntax).
pub(crate) fn check_scope(scope: Option<String>) -> Result<String, PluginError> {
    let Some(scope) = scope else {
        return Ok(DEFAULT_SCOPE.into());
    };
    let scope = scope.trim();
    if scope.is_empty() || scope.chars().any(char::is_control) || scope.chars().count() > SCOPE_MAX
    {
        return Err(misconfigured(format!(
            "`environment-scope` is `{}`: give an environment name or pattern (`*`, \
             `production`, `review/*`), one line of at most {SCOPE_MAX} characters",
            scope.escape_debug()
        )));
    }
    Ok(scope.to_string())
}

/// The operator's description text: one line of at most [`DESCRIPTION_MAX`] characters, without
/// the marker (which opsync appends, and which says whose a variable is).
pub(crate) fn check_description(text: Option<String>) -> Result<Option<String>, PluginError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let text = text.trim();
    let bad = |why: &str| misconfigured(format!("`description` `{}`: {why}", text.escape_debug()));
    if text.is_empty() {
        return Err(bad("it is empty (leave it unset for the marker alone)"));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("write it on one line"));
    }
    if text.chars().count() > DESCRIPTION_MAX {
        return Err(bad(&format!(
            "it is longer than {DESCRIPTION_MAX} characters (GitLab keeps 255, and opsync's \
             marker takes the rest)"
        )));
    }
    if text.contains(MARKER.trim_end()) {
        return Err(bad(&format!(
            "it holds `{}`, which opsync appends itself to mark its variables",
            MARKER.trim_end()
        )));
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    fn misconfigured_with(result: Result<impl Sized, PluginError>, words: &[&str]) -> bool {
        matches!(&result, Err(PluginError::Misconfigured(m)) if words.iter().all(|w| m.contains(w)))
    }

    #[test]
    fn exactly_one_of_project_and_group() {
        assert_eq!(
            Target::parse(some("group/sub/app"), None).expect("project"),
            Target::Project("group/sub/app".into())
        );
        assert_eq!(
            Target::parse(None, some(" 42 ")).expect("group"),
            Target::Group("42".into())
        );
        assert!(misconfigured_with(
            Target::parse(some("1"), some("2")),
            &["`project`", "`group`", "not both"]
        ));
        assert!(misconfigured_with(
            Target::parse(None, None),
            &["`project` or `group` is required"]
        ));
        for bad in [
            "",
            "/group/app",
            "group/app/",
            "group//app",
            "https://gitlab.com/group/app",
            "group/my app",
            "group%2Fapp",
        ] {
            assert!(
                misconfigured_with(Target::parse(some(bad), None), &["`project`"]),
                "{bad}"
            );
            assert!(
                misconfigured_with(Target::parse(None, some(bad)), &["`group`"]),
                "{bad}"
            );
        }
        let target = Target::Project("group/app".into());
        assert_eq!(target.to_string(), "project group/app");
        assert_eq!(target.collection(), "projects");
        assert_eq!(Target::Group("7".into()).to_string(), "group 7");
    }

    #[test]
    fn the_api_url_is_the_base_url() {
        let e = parse_api_url(DEFAULT_API_URL).expect("default");
        assert_eq!(e.origin(), "https://gitlab.com");
        assert_eq!(e.base_path, "");
        let e = parse_api_url("http://127.0.0.1:8080/gitlab/").expect("relative root");
        assert_eq!(e.base_path, "/gitlab");
        assert!(misconfigured_with(
            parse_api_url("https://gitlab.example.com/api/v4"),
            &["`api-url`", "without `/api/v4`"]
        ));
        assert!(misconfigured_with(
            parse_api_url("gitlab.example.com"),
            &["`api-url`"]
        ));
    }

    #[test]
    fn scopes_and_descriptions() {
        assert_eq!(check_scope(None).expect("default"), "*");
        assert_eq!(
            check_scope(some(" review/* ")).expect("pattern"),
            "review/*"
        );
        for bad in ["", "  ", "a\nb"] {
            assert!(
                misconfigured_with(check_scope(some(bad)), &["`environment-scope`"]),
                "{bad:?}"
            );
        }
        assert!(check_scope(some(&"e".repeat(256))).is_err());
        assert_eq!(check_description(None).expect("unset"), None);
        assert_eq!(
            check_description(some(" orders DB ")).expect("text"),
            some("orders DB")
        );
        assert!(misconfigured_with(
            check_description(some("")),
            &["`description`", "empty"]
        ));
        assert!(misconfigured_with(
            check_description(some("a\nb")),
            &["one line"]
        ));
        assert!(check_description(some(&"d".repeat(DESCRIPTION_MAX))).is_ok());
        assert!(misconfigured_with(
            check_description(some(&"d".repeat(DESCRIPTION_MAX + 1))),
            &["longer than 200"]
        ));
        assert!(misconfigured_with(
            check_description(some("db (managed by opsync: item x)")),
            &["appends itself"]
        ));
    }
}
