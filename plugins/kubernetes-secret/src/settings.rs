//! The config: its keys and defaults, loaded and checked, and the values each `type` writes.

use opsync_destination_kit::http::Endpoint;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::select::{self, Format, Selection};
use opsync_destination_kit::settings::{self, check_keys, choice, flag, list, plain, required};
use opsync_destination_kit::template::Template;
use opsync_destination_kit::{ItemEvent, PluginError, Secret, misconfigured, permanent};

use crate::describe;
use crate::names::{SUBDOMAIN_RULE, Workload, is_dns_label, parse_restart};
use crate::render::{self, DOCKER_CONFIG_JSON, FieldMap, OPAQUE, Selected, TLS, TYPES, Values};
use crate::tls;

const KNOWN_KEYS: &[&str] = &[
    "server",
    "token",
    "token-file",
    "namespace",
    "name",
    "type",
    "fields",
    "registry",
    "username-field",
    "password-field",
    "cert-field",
    "key-field",
    "cert-file",
    "key-file",
    "adopt",
    "force",
    "on-delete",
    "restart",
];

/// The keys that apply to one `type` only.
const TYPE_KEYS: &[(&str, &str)] = &[
    ("fields", OPAQUE),
    ("registry", DOCKER_CONFIG_JSON),
    ("username-field", DOCKER_CONFIG_JSON),
    ("password-field", DOCKER_CONFIG_JSON),
    ("cert-field", TLS),
    ("key-field", TLS),
    ("cert-file", TLS),
    ("key-file", TLS),
];

pub(crate) const DEFAULT_SERVER: &str = "https://kubernetes.default.svc";
const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub(crate) const DEFAULT_NAME: &str = "{{title | slug}}";

/// Where the bearer token comes from.
pub(crate) enum Token {
    /// Config key `token`.
    Config,
    /// A file in a granted directory, read on every call.
    File(String),
}

/// What the Secret holds, by `type`.
pub(crate) enum Shape {
    Opaque(FieldMap),
    DockerConfigJson {
        registry: String,
        username_field: String,
        password_field: String,
    },
    Tls {
        cert: tls::Source,
        key: tls::Source,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDelete {
    Delete,
    /// Leave the Secret, annotated as orphaned.
    Keep,
}

pub(crate) struct Settings {
    pub(crate) server: Endpoint,
    pub(crate) token: Token,
    pub(crate) namespace: String,
    pub(crate) name: Naming,
    /// The `name` template's text, for messages.
    pub(crate) name_text: String,
    pub(crate) shape: Shape,
    pub(crate) adopt: bool,
    pub(crate) force: bool,
    pub(crate) on_delete: OnDelete,
    pub(crate) restart: Vec<Workload>,
}

impl Settings {
    pub(crate) fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let server = plain("server")?.unwrap_or_else(|| DEFAULT_SERVER.into());
        let server = Endpoint::parse("server", &server)?;
        let token = match (settings::optional_secret("token")?, plain("token-file")?) {
            (Some(_), Some(_)) => {
                return Err(misconfigured(
                    "set `token` or `token-file`, not both".to_string(),
                ));
            }
            (Some(_), None) => Token::Config,
            (None, file) => {
                let path = file.unwrap_or_else(|| DEFAULT_TOKEN_FILE.into());
                if !path.starts_with('/') {
                    return Err(misconfigured(format!(
                        "`token-file` `{path}` is not an absolute guest path"
                    )));
                }
                Token::File(path)
            }
        };
        let namespace = required("namespace")?;
        if !is_dns_label(&namespace) {
            return Err(misconfigured(format!(
                "`namespace` `{namespace}` is not a namespace name (lower-case letters, digits \
                 and `-`, starting and ending with a letter or digit, at most 63 characters)"
            )));
        }
        let name_text = plain("name")?.unwrap_or_else(|| DEFAULT_NAME.into());
        let template = Template::parse("name", &name_text)?;
        check_name_literals(&name_text, &template)?;
        let secret_type = choice("type", TYPES, OPAQUE)?;
        for (key, only) in TYPE_KEYS {
            if *only != secret_type && plain(key)?.is_some() {
                return Err(misconfigured(format!(
                    "`{key}` applies to type {only} only, and `type` is {secret_type}"
                )));
            }
        }
        let field = |key: &str, default: &str| -> Result<String, PluginError> {
            Ok(plain(key)?.unwrap_or_else(|| default.into()))
        };
        let shape = match secret_type {
            DOCKER_CONFIG_JSON => {
                let registry = required("registry")?.trim().to_string();
                if registry.is_empty() || registry.chars().any(char::is_control) {
                    return Err(misconfigured(format!(
                        "`registry` `{}` is not a registry (`ghcr.io`, \
                         `https://index.docker.io/v1/`)",
                        registry.escape_debug()
                    )));
                }
                Shape::DockerConfigJson {
                    registry,
                    username_field: field("username-field", "username")?,
                    password_field: field("password-field", "password")?,
                }
            }
            TLS => Shape::Tls {
                cert: tls::source(tls::Part::Certificate)?,
                key: tls::source(tls::Part::Key)?,
            },
            _ => Shape::Opaque(render::parse_fields(&list("fields")?)?),
        };
        let on_delete = match choice("on-delete", &["delete", "keep"], "delete")? {
            "keep" => OnDelete::Keep,
            _ => OnDelete::Delete,
        };
        Ok(Self {
            server,
            token,
            namespace,
            name: Naming::Own(template),
            name_text,
            shape,
            adopt: flag("adopt", false)?,
            force: flag("force", false)?,
            on_delete,
            restart: parse_restart(&list("restart")?)?,
        })
    }

    /// The bearer token: revealed from `token`, or read from the token file.
    pub(crate) fn token(&self) -> Result<String, PluginError> {
        match &self.token {
            Token::Config => Ok(settings::secret("token")?.reveal()),
            Token::File(path) => read_token_file(path),
        }
    }
}

/// Refuses literal text in the `name` template that no Secret name may hold (placeholders are
/// checked once rendered).
fn check_name_literals(text: &str, template: &Template) -> Result<(), PluginError> {
    match template
        .literal_text()
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        Some(c) => Err(misconfigured(format!(
            "`name` template `{text}`: `{c}` cannot be in a Secret name ({SUBDOMAIN_RULE})"
        ))),
        None => Ok(()),
    }
}

/// Reads the token file. Its text is handed to the host as a secret, so the host redacts it
/// from whatever the plugin logs, like a revealed value.
pub(crate) fn read_token_file(path: &str) -> Result<String, PluginError> {
    let dir = match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    };
    let grant = format!(
        "grant its directory to the plugin read-only (grants.dirs = [{{ host = \"{dir}\", \
         guest = \"{dir}\", read_only = true }}]), or set `token`"
    );
    let text = std::fs::read_to_string(path).map_err(|e| {
        misconfigured(format!(
            "cannot read the token file `{path}` ({e}): {grant}"
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(misconfigured(format!(
            "the token file `{path}` is empty: {grant}"
        )));
    }
    drop(Secret::new("token-file", token));
    Ok(token.to_string())
}

impl Shape {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Opaque(_) => OPAQUE,
            Self::DockerConfigJson { .. } => DOCKER_CONFIG_JSON,
            Self::Tls { .. } => TLS,
        }
    }

    /// The Secret's values for `event`'s item. Values are revealed here: keep them out of logs
    /// and messages.
    pub(crate) fn values(&self, event: &ItemEvent) -> Result<Values, PluginError> {
        let item = describe(event);
        match self {
            Self::Opaque(map) => {
                let selection = Selection {
                    format: Format::Json,
                    fields: map.fields.clone(),
                    field: None,
                };
                let pairs = selection.values(event)?;
                let keys = map.keys.iter().cloned().chain(std::iter::repeat(None));
                let selected = pairs
                    .into_iter()
                    .zip(keys)
                    .map(|((label, value), key)| Selected { label, key, value })
                    .collect();
                let (values, repeated) = render::opaque(&item, selected)?;
                for key in repeated {
                    log(
                        Level::Warn,
                        &format!(
                            "{item}: more than one field gives the key `{key}`; the first is \
                             written (list them in `fields` as FIELD=KEY to keep both)"
                        ),
                    );
                }
                Ok(values)
            }
            Self::DockerConfigJson {
                registry,
                username_field,
                password_field,
            } => {
                let username = field_value(event, "username-field", username_field)?;
                let password = field_value(event, "password-field", password_field)?;
                Ok(render::docker_values(registry, &username, &password))
            }
            Self::Tls { cert, key } => tls::values(event, cert, key),
        }
    }
}

/// The revealed value of the field `wanted` (an id or a label), which config key `key` names.
pub(crate) fn field_value(
    event: &ItemEvent,
    key: &str,
    wanted: &str,
) -> Result<String, PluginError> {
    let field = select::find(event, wanted).map_err(|_| {
        permanent(format!(
            "{} has no field `{wanted}`; set `{key}` to the field to use",
            describe(event)
        ))
    })?;
    field.value.as_ref().map(|v| v.reveal()).ok_or_else(|| {
        permanent(format!(
            "{}: the field `{wanted}` has no value",
            describe(event)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::is_dns_subdomain;
    use opsync_destination_kit::ChangeKind;
    use opsync_destination_kit::testing::event;

    fn parsed(text: &str) -> Template {
        Template::parse("name", text).expect("a template")
    }

    #[test]
    fn name_templates_may_only_hold_name_characters() {
        for good in [
            DEFAULT_NAME,
            "db-{{id}}",
            "{{vault|slug}}.{{title|slug}}-v1",
        ] {
            assert!(check_name_literals(good, &parsed(good)).is_ok(), "{good}");
        }
        for bad in ["App-{{title|slug}}", "a_{{id}}", "x/{{id}}", "{{id}}@x"] {
            assert!(
                matches!(check_name_literals(bad, &parsed(bad)), Err(PluginError::Misconfigured(m)) if m.contains("`name`")),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_name_is_a_dns_name_of_the_title() {
        let naming = Naming::Own(Template::parse("name", DEFAULT_NAME).expect("valid"));
        let name = naming
            .name(&event(ChangeKind::Created))
            .expect("named")
            .expect("some");
        assert_eq!(name, "orders-db");
        assert!(is_dns_subdomain(&name));
        // The old name of a renamed item is still deleted: the name follows the title.
        let mut old = event(ChangeKind::Deleted);
        old.renamed_to = Some("Prod/New title".into());
        assert_eq!(
            naming.name(&old).expect("named").as_deref(),
            Some("orders-db")
        );
        // A template without the title names the current Secret: nothing to delete.
        let by_id = Naming::Own(Template::parse("name", "db-{{id}}").expect("valid"));
        assert_eq!(by_id.name(&old).expect("named"), None);
    }

    #[test]
    fn a_missing_or_empty_token_file_says_to_grant_its_directory() {
        let dir = std::env::temp_dir().join(format!("opsync-k8s-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let missing = dir.join("token");
        let missing = missing.to_str().expect("utf-8");
        let err = read_token_file(missing).expect_err("missing");
        let PluginError::Misconfigured(msg) = err else {
            panic!("not misconfigured: {err:?}")
        };
        assert!(
            msg.contains(missing) && msg.contains("read_only = true"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("guest = \"{}\"", dir.display())),
            "{msg}"
        );
        std::fs::write(missing, " \n").expect("write");
        let err = read_token_file(missing).expect_err("empty");
        assert!(
            matches!(&err, PluginError::Misconfigured(m) if m.contains("is empty") && m.contains(missing)),
            "{err:?}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
