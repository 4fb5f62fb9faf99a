//! The config: its keys and defaults, checked against each other and the chosen `target`.

use std::collections::{BTreeMap, BTreeSet};

use opsync_destination_kit::http::Endpoint;
use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::settings::{check_keys, optional_secret, plain};
use opsync_destination_kit::template::Template;
use opsync_destination_kit::{PluginError, misconfigured};

use crate::app::App;
use crate::names::{self, FieldSecret};
use crate::target::{
    self, DEPENDABOT, ENVIRONMENT, ORGANIZATION, REPOSITORY, TARGETS, Target, VISIBILITIES,
    Visibility,
};

/// Keys with plain values.
const PLAIN_KEYS: &[&str] = &[
    "api-url",
    "app-id",
    "installation-id",
    "target",
    "repository",
    "environment",
    "organization",
    "visibility",
    "selected-repository-ids",
    "field",
    "fields",
    "name",
    "on-delete",
];

/// Keys that hold secrets (usually `op://` references).
const SECRET_KEYS: &[&str] = &["token", "private-key"];

/// The GitHub App's keys, all three or none.
const APP_KEYS: &[&str] = &["app-id", "installation-id", "private-key"];

/// The keys that apply to some targets only.
const TARGET_KEYS: &[(&str, &[&str])] = &[
    ("repository", &[REPOSITORY, ENVIRONMENT, DEPENDABOT]),
    ("environment", &[ENVIRONMENT]),
    ("organization", &[ORGANIZATION]),
    ("visibility", &[ORGANIZATION]),
    ("selected-repository-ids", &[ORGANIZATION]),
];

pub(crate) const DEFAULT_API_URL: &str = "https://api.github.com";
pub(crate) const DEFAULT_NAME: &str = "{{title | upper_snake}}";

/// How the plugin authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Config key `token`, sent as it is.
    Token,
    /// An installation token of a GitHub App, fetched once per call.
    App(App),
}

/// Which secrets an item writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// One: the value of `field` (none: the item's first CONCEALED field), named by `name`.
    One {
        field: Option<String>,
        name: Naming,
        /// The `name` template's text, for messages.
        name_text: String,
    },
    /// One per `fields` entry, named literally.
    Fields(Vec<FieldSecret>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnDelete {
    Delete,
    Keep,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) api: Endpoint,
    pub(crate) auth: Auth,
    pub(crate) target: Target,
    pub(crate) written: Written,
    pub(crate) on_delete: OnDelete,
}

/// The config as set: plain values by key, and which secret keys are set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Raw {
    pub(crate) values: BTreeMap<String, String>,
    pub(crate) secrets: BTreeSet<String>,
}

impl Raw {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key) || self.secrets.contains(key)
    }

    fn required(&self, key: &str, why: &str) -> Result<&str, PluginError> {
        self.get(key)
            .ok_or_else(|| misconfigured(format!("`{key}` is required {why}")))
    }

    /// The value of `key`, one of `options`; `default` when unset.
    fn choice(
        &self,
        key: &str,
        options: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, PluginError> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        options
            .iter()
            .find(|o| **o == value.trim())
            .copied()
            .ok_or_else(|| {
                misconfigured(format!(
                    "`{key}` is `{value}`, not one of {}",
                    options.join(", ")
                ))
            })
    }
}

impl Settings {
    /// Reads the config from the host: unknown keys refused, secret keys only checked to be set
    /// and not empty (their values are revealed when used).
    pub(crate) fn load() -> Result<Self, PluginError> {
        let known: Vec<&str> = PLAIN_KEYS.iter().chain(SECRET_KEYS).copied().collect();
        check_keys(&known)?;
        let mut raw = Raw::default();
        for key in PLAIN_KEYS {
            if let Some(value) = plain(key)? {
                raw.values.insert((*key).to_string(), value);
            }
        }
        for key in SECRET_KEYS {
            if optional_secret(key)?.is_some() {
                raw.secrets.insert((*key).to_string());
            }
        }
        Self::from_raw(&raw)
    }

    /// Checks the config as set and makes the settings of it.
    pub(crate) fn from_raw(raw: &Raw) -> Result<Self, PluginError> {
        let api = Endpoint::parse("api-url", raw.get("api-url").unwrap_or(DEFAULT_API_URL))?;
        let auth = auth(raw)?;
        let target = target(raw)?;
        let written = written(raw)?;
        let on_delete = match raw.choice("on-delete", &["delete", "keep"], "delete")? {
            "keep" => OnDelete::Keep,
            _ => OnDelete::Delete,
        };
        Ok(Self {
            api,
            auth,
            target,
            written,
            on_delete,
        })
    }
}

fn auth(raw: &Raw) -> Result<Auth, PluginError> {
    let app_keys: Vec<&str> = APP_KEYS.iter().copied().filter(|k| raw.is_set(k)).collect();
    match (raw.is_set("token"), app_keys.is_empty()) {
        (true, false) => Err(misconfigured(format!(
            "set `token` or the GitHub App's `app-id`, `installation-id` and `private-key`, not \
             both (set: `token`, {})",
            quoted(&app_keys)
        ))),
        (true, true) => Ok(Auth::Token),
        (false, true) => Err(misconfigured(
            "set `token` (a fine-grained personal access token, usually an `op://` reference), \
             or `app-id`, `installation-id` and `private-key` (a GitHub App)",
        )),
        (false, false) => {
            let missing: Vec<&str> = APP_KEYS
                .iter()
                .copied()
                .filter(|k| !raw.is_set(k))
                .collect();
            if !missing.is_empty() {
                return Err(misconfigured(format!(
                    "a GitHub App needs `app-id`, `installation-id` and `private-key`: {} is not \
                     set",
                    quoted(&missing)
                )));
            }
            let app_id = raw.get("app-id").unwrap_or_default().trim();
            if app_id.is_empty()
                || !app_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(misconfigured(format!(
                    "`app-id` is `{app_id}`: write the GitHub App's id (a number) or client id"
                )));
            }
            let installation = raw.get("installation-id").unwrap_or_default().trim();
            let installation_id = installation
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    misconfigured(format!(
                        "`installation-id` is `{installation}`, not a number (the id in the \
                         installation's settings URL)"
                    ))
                })?;
            Ok(Auth::App(App {
                app_id: app_id.to_string(),
                installation_id,
            }))
        }
    }
}

fn target(raw: &Raw) -> Result<Target, PluginError> {
    let chosen = raw.choice("target", TARGETS, REPOSITORY)?;
    for (key, targets) in TARGET_KEYS {
        if raw.is_set(key) && !targets.contains(&chosen) {
            return Err(misconfigured(format!(
                "`{key}` does not apply to target {chosen} (it applies to {})",
                targets.join(", ")
            )));
        }
    }
    let why = format!("for target {chosen}");
    let repository = || target::parse_repository(raw.required("repository", &why)?);
    Ok(match chosen {
        ENVIRONMENT => {
            let (owner, repo) = repository()?;
            Target::Environment {
                owner,
                repo,
                environment: target::parse_environment(raw.required("environment", &why)?)?,
            }
        }
        ORGANIZATION => {
            let org = target::parse_organization(raw.required("organization", &why)?)?;
            let visibility = match raw.choice("visibility", VISIBILITIES, "private")? {
                "selected" => Visibility::Selected(target::parse_repository_ids(
                    raw.required("selected-repository-ids", "for `visibility = selected`")?,
                )?),
                other => {
                    if raw.is_set("selected-repository-ids") {
                        return Err(misconfigured(format!(
                            "`selected-repository-ids` applies to `visibility = selected` only, \
                             and `visibility` is {other}"
                        )));
                    }
                    if other == "all" {
                        Visibility::All
                    } else {
                        Visibility::Private
                    }
                }
            };
            Target::Organization { org, visibility }
        }
        DEPENDABOT => {
            let (owner, repo) = repository()?;
            Target::Dependabot { owner, repo }
        }
        _ => {
            let (owner, repo) = repository()?;
            Target::Repository { owner, repo }
        }
    })
}

fn written(raw: &Raw) -> Result<Written, PluginError> {
    if let Some(fields) = raw.get("fields") {
        let clashing: Vec<&str> = ["name", "field"]
            .into_iter()
            .filter(|k| raw.is_set(k))
            .collect();
        if !clashing.is_empty() {
            return Err(misconfigured(format!(
                "`fields` names each secret itself (FIELD=NAME): {} cannot be set with it",
                quoted(&clashing)
            )));
        }
        let entries: Vec<String> = fields
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect();
        return Ok(Written::Fields(names::parse_fields(&entries)?));
    }
    let field = match raw.get("field").map(str::trim) {
        Some("") => return Err(misconfigured("`field` is empty: write a field id or label")),
        field => field.map(String::from),
    };
    let name_text = raw.get("name").unwrap_or(DEFAULT_NAME).to_string();
    let template = Template::parse("name", &name_text)?;
    names::check_template_literals(&name_text, &template)?;
    Ok(Written::One {
        field,
        name: Naming::Own(template),
        name_text,
    })
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
fn quoted(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(values: &[(&str, &str)], secrets: &[&str]) -> Raw {
        Raw {
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn load(values: &[(&str, &str)], secrets: &[&str]) -> Result<Settings, PluginError> {
        Settings::from_raw(&raw(values, secrets))
    }

    /// The error of a config that must be refused, with the words its message must hold.
    fn refused(values: &[(&str, &str)], secrets: &[&str], words: &[&str]) {
        let err = load(values, secrets).expect_err("refused");
        let PluginError::Misconfigured(msg) = &err else {
            panic!("not misconfigured: {err:?}")
        };
        for word in words {
            assert!(msg.contains(word), "{values:?}: `{word}` not in: {msg}");
        }
    }

    #[test]
    fn defaults() {
        let s = load(&[("repository", "acme/api")], &["token"]).expect("valid");
        assert_eq!(
            s.api,
            Endpoint::parse("api-url", DEFAULT_API_URL).expect("url")
        );
        assert_eq!(s.auth, Auth::Token);
        assert_eq!(
            s.target,
            Target::Repository {
                owner: "acme".into(),
                repo: "api".into()
            }
        );
        assert!(
            matches!(&s.written, Written::One { field: None, name_text, .. } if name_text == DEFAULT_NAME)
        );
        assert_eq!(s.on_delete, OnDelete::Delete);
    }

    #[test]
    fn github_enterprise_server_and_the_github_app() {
        let s = load(
            &[
                ("api-url", "https://ghe.example.com/api/v3"),
                ("repository", "acme/api"),
                ("app-id", "123456"),
                ("installation-id", "42000001"),
                ("on-delete", "keep"),
            ],
            &["private-key"],
        )
        .expect("valid");
        assert_eq!(s.api.authority, "ghe.example.com");
        assert_eq!(s.api.base_path, "/api/v3");
        assert_eq!(
            s.auth,
            Auth::App(App {
                app_id: "123456".into(),
                installation_id: 42_000_001
            })
        );
        assert_eq!(s.on_delete, OnDelete::Keep);
    }

    #[test]
    fn exactly_one_way_to_authenticate() {
        let repo = ("repository", "acme/api");
        refused(&[repo], &[], &["`token`", "`app-id`"]);
        refused(
            &[repo, ("app-id", "1"), ("installation-id", "2")],
            &["token", "private-key"],
            &["not both"],
        );
        refused(
            &[repo, ("app-id", "1")],
            &["token"],
            &["not both", "`app-id`"],
        );
        refused(
            &[repo, ("app-id", "1")],
            &[],
            &["`installation-id`", "`private-key`"],
        );
        refused(
            &[repo, ("installation-id", "2")],
            &["private-key"],
            &["`app-id`"],
        );
        refused(
            &[repo, ("app-id", "1"), ("installation-id", "x")],
            &["private-key"],
            &["`installation-id`"],
        );
        refused(
            &[repo, ("app-id", "a b"), ("installation-id", "2")],
            &["private-key"],
            &["`app-id`"],
        );
        let client_id = load(
            &[
                repo,
                ("app-id", "Iv1.8a61f9b3a7aba766"),
                ("installation-id", "2"),
            ],
            &["private-key"],
        )
        .expect("a client id");
        assert!(
            matches!(client_id.auth, Auth::App(App { app_id, .. }) if app_id == "Iv1.8a61f9b3a7aba766")
        );
    }

    #[test]
    fn each_target_with_its_keys() {
        let env = load(
            &[
                ("target", "environment"),
                ("repository", "acme/api"),
                ("environment", "production"),
            ],
            &["token"],
        )
        .expect("valid");
        assert_eq!(
            env.target.secret_path("X"),
            "/repos/acme/api/environments/production/secrets/X"
        );
        let org = load(
            &[("target", "organization"), ("organization", "acme")],
            &["token"],
        )
        .expect("valid");
        assert_eq!(
            org.target,
            Target::Organization {
                org: "acme".into(),
                visibility: Visibility::Private
            }
        );
        let selected = load(
            &[
                ("target", "organization"),
                ("organization", "acme"),
                ("visibility", "selected"),
                ("selected-repository-ids", "1296269,1296280"),
            ],
            &["token"],
        )
        .expect("valid");
        assert!(matches!(
            selected.target,
            Target::Organization { visibility: Visibility::Selected(ids), .. } if ids == [1296269, 1296280]
        ));
        let all = load(
            &[
                ("target", "organization"),
                ("organization", "acme"),
                ("visibility", "all"),
            ],
            &["token"],
        )
        .expect("valid");
        assert!(matches!(
            all.target,
            Target::Organization {
                visibility: Visibility::All,
                ..
            }
        ));
        let dependabot = load(
            &[("target", "dependabot"), ("repository", "acme/api")],
            &["token"],
        )
        .expect("valid");
        assert_eq!(
            dependabot.target.public_key_path(),
            "/repos/acme/api/dependabot/secrets/public-key"
        );
    }

    #[test]
    fn keys_that_do_not_apply_to_the_target_are_refused() {
        let t = ["token"];
        refused(&[], &t, &["`repository`", "required", "repository"]);
        refused(
            &[("target", "pages"), ("repository", "a/b")],
            &t,
            &["`target`", "pages"],
        );
        refused(
            &[("repository", "a/b"), ("environment", "prod")],
            &t,
            &["`environment`", "target repository"],
        );
        refused(
            &[("repository", "a/b"), ("organization", "acme")],
            &t,
            &["`organization`"],
        );
        refused(
            &[("repository", "a/b"), ("visibility", "all")],
            &t,
            &["`visibility`"],
        );
        refused(
            &[("target", "environment"), ("repository", "a/b")],
            &t,
            &["`environment` is required"],
        );
        refused(
            &[("target", "environment"), ("environment", "prod")],
            &t,
            &["`repository` is required"],
        );
        refused(
            &[
                ("target", "organization"),
                ("organization", "acme"),
                ("repository", "a/b"),
            ],
            &t,
            &["`repository` does not apply to target organization"],
        );
        refused(
            &[("target", "organization")],
            &t,
            &["`organization` is required"],
        );
        refused(
            &[
                ("target", "organization"),
                ("organization", "acme"),
                ("visibility", "selected"),
            ],
            &t,
            &["`selected-repository-ids` is required"],
        );
        refused(
            &[
                ("target", "organization"),
                ("organization", "acme"),
                ("selected-repository-ids", "1"),
            ],
            &t,
            &["`selected-repository-ids`", "`visibility = selected`"],
        );
        refused(
            &[
                ("target", "organization"),
                ("organization", "acme"),
                ("visibility", "public"),
            ],
            &t,
            &["`visibility`", "public"],
        );
        refused(
            &[
                ("target", "dependabot"),
                ("repository", "a/b"),
                ("environment", "x"),
            ],
            &t,
            &["`environment` does not apply to target dependabot"],
        );
        refused(
            &[("repository", "a/b"), ("api-url", "api.github.com")],
            &t,
            &["`api-url`"],
        );
        refused(
            &[("repository", "a/b"), ("on-delete", "destroy")],
            &t,
            &["`on-delete`"],
        );
    }

    #[test]
    fn what_is_written() {
        let repo = ("repository", "acme/api");
        let t = ["token"];
        let fields = load(
            &[repo, ("fields", "username=DB_USER, password=db_password")],
            &t,
        )
        .expect("valid");
        assert_eq!(
            fields.written,
            Written::Fields(vec![
                FieldSecret {
                    field: "username".into(),
                    name: "DB_USER".into()
                },
                FieldSecret {
                    field: "password".into(),
                    name: "DB_PASSWORD".into()
                },
            ])
        );
        let one = load(
            &[
                repo,
                ("field", "credential"),
                ("name", "PROD_{{title|upper_snake}}"),
            ],
            &t,
        )
        .expect("valid");
        assert!(matches!(
            &one.written,
            Written::One { field: Some(f), name_text, .. } if f == "credential" && name_text == "PROD_{{title|upper_snake}}"
        ));
        refused(
            &[repo, ("fields", "password=X"), ("name", "{{title}}")],
            &t,
            &["`fields`", "`name`"],
        );
        refused(
            &[repo, ("fields", "password=X"), ("field", "password")],
            &t,
            &["`fields`", "`field`"],
        );
        refused(
            &[repo, ("fields", "password=GITHUB_X")],
            &t,
            &["`fields`", "GITHUB_"],
        );
        refused(&[repo, ("fields", " , ")], &t, &["`fields` is empty"]);
        refused(&[repo, ("name", "prod-{{title}}")], &t, &["`name`", "`-`"]);
        refused(&[repo, ("name", "{{nope}}")], &t, &["`name`", "nope"]);
        refused(&[repo, ("field", " ")], &t, &["`field` is empty"]);
    }
}
