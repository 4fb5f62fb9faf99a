//! Where the secrets live (repository, environment, organization, Dependabot): paths, bodies.

use opsync_destination_kit::http::encode;
use opsync_destination_kit::{PluginError, misconfigured};
use serde_json::{Value, json};

pub(crate) const REPOSITORY: &str = "repository";
pub(crate) const ENVIRONMENT: &str = "environment";
pub(crate) const ORGANIZATION: &str = "organization";
pub(crate) const DEPENDABOT: &str = "dependabot";
/// The `target`s; the first is the default.
pub(crate) const TARGETS: &[&str] = &[REPOSITORY, ENVIRONMENT, ORGANIZATION, DEPENDABOT];

/// Which repositories of an organization may use its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Visibility {
    All,
    Private,
    /// The repositories of these ids.
    Selected(Vec<u64>),
}

/// The `visibility` values; the default is `private`.
pub(crate) const VISIBILITIES: &[&str] = &["all", "private", "selected"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Repository {
        owner: String,
        repo: String,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Organization {
        org: String,
        visibility: Visibility,
    },
    Dependabot {
        owner: String,
        repo: String,
    },
}

impl Target {
    /// The path of the target's secrets (`.../secrets`), parts percent-encoded.
    pub(crate) fn secrets_path(&self) -> String {
        match self {
            Self::Repository { owner, repo } => {
                format!("/repos/{}/{}/actions/secrets", encode(owner), encode(repo))
            }
            Self::Environment {
                owner,
                repo,
                environment,
            } => format!(
                "/repos/{}/{}/environments/{}/secrets",
                encode(owner),
                encode(repo),
                encode(environment)
            ),
            Self::Organization { org, .. } => format!("/orgs/{}/actions/secrets", encode(org)),
            Self::Dependabot { owner, repo } => {
                format!(
                    "/repos/{}/{}/dependabot/secrets",
                    encode(owner),
                    encode(repo)
                )
            }
        }
    }

    pub(crate) fn public_key_path(&self) -> String {
        format!("{}/public-key", self.secrets_path())
    }

    /// The path of the secret `name` (already checked against GitHub's rules: nothing to encode).
    pub(crate) fn secret_path(&self, name: &str) -> String {
        format!("{}/{}", self.secrets_path(), encode(name))
    }

    /// What the target is, for messages: `repository acme/api`, `environment `prod` of
    /// repository acme/api`, `organization acme`, `Dependabot secrets of repository acme/api`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Repository { owner, repo } => format!("repository {owner}/{repo}"),
            Self::Environment {
                owner,
                repo,
                environment,
            } => format!("environment `{environment}` of repository {owner}/{repo}"),
            Self::Organization { org, .. } => format!("organization {org}"),
            Self::Dependabot { owner, repo } => {
                format!("Dependabot secrets of repository {owner}/{repo}")
            }
        }
    }

    /// The config keys that say which target this is, for messages.
    pub(crate) fn keys(&self) -> &'static str {
        match self {
            Self::Repository { .. } | Self::Dependabot { .. } => "`repository`",
            Self::Environment { .. } => "`repository` and `environment`",
            Self::Organization { .. } => "`organization`",
        }
    }

    /// Where an item's secrets landed, for receipts: the secrets path without its leading `/`
    /// and the names, comma-separated (`repos/acme/api/actions/secrets/DB_USER,DB_PASSWORD`).
    pub(crate) fn location(&self, names: &[String]) -> String {
        let path = self.secrets_path();
        format!("{}/{}", path.trim_start_matches('/'), names.join(","))
    }

    /// The body of a write: the sealed value and the id of the key it was sealed to, and for an
    /// organization secret which repositories may use it.
    pub(crate) fn put_body(&self, encrypted_value: &str, key_id: &str) -> Value {
        let mut body = json!({ "encrypted_value": encrypted_value, "key_id": key_id });
        if let Self::Organization { visibility, .. } = self {
            let (name, ids) = match visibility {
                Visibility::All => ("all", None),
                Visibility::Private => ("private", None),
                Visibility::Selected(ids) => ("selected", Some(ids)),
            };
            body["visibility"] = json!(name);
            if let Some(ids) = ids {
                body["selected_repository_ids"] = json!(ids);
            }
        }
        body
    }
}

/// `OWNER/REPO` of config key `repository`.
pub(crate) fn parse_repository(text: &str) -> Result<(String, String), PluginError> {
    let bad = || {
        misconfigured(format!(
            "`repository` is `{text}`: write it as OWNER/REPO (letters, digits, `-`, `_`, `.`)"
        ))
    };
    let (owner, repo) = text.trim().split_once('/').ok_or_else(bad)?;
    let ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !ok(owner) || !ok(repo) {
        return Err(bad());
    }
    Ok((owner.to_string(), repo.to_string()))
}

/// The login of config key `organization`.
pub(crate) fn parse_organization(text: &str) -> Result<String, PluginError> {
    let org = text.trim();
    if org.is_empty()
        || !org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(misconfigured(format!(
            "`organization` is `{text}`: write the organization's login (letters, digits, `-`)"
        )));
    }
    Ok(org.to_string())
}

/// The name of config key `environment`: any text but an empty one or one with control
/// characters (it is percent-encoded in paths, `/` included).
pub(crate) fn parse_environment(text: &str) -> Result<String, PluginError> {
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(misconfigured(format!(
            "`environment` is `{}`: write the environment's name",
            text.escape_debug()
        )));
    }
    Ok(text.to_string())
}

/// The comma-separated numeric ids of config key `selected-repository-ids`.
pub(crate) fn parse_repository_ids(text: &str) -> Result<Vec<u64>, PluginError> {
    let mut ids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = part
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                misconfigured(format!(
                    "`selected-repository-ids`: `{part}` is not a repository id (a number, as \
                 `GET /repos/OWNER/REPO` answers in `id`)"
                ))
            })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(misconfigured(
            "`selected-repository-ids` is empty: list the ids of the repositories that may use \
             the secrets",
        ));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Target {
        Target::Repository {
            owner: "acme".into(),
            repo: "api.v2".into(),
        }
    }

    #[test]
    fn paths_of_each_target() {
        assert_eq!(
            repo().public_key_path(),
            "/repos/acme/api.v2/actions/secrets/public-key"
        );
        assert_eq!(
            repo().secret_path("DB_PASSWORD"),
            "/repos/acme/api.v2/actions/secrets/DB_PASSWORD"
        );
        let env = Target::Environment {
            owner: "acme".into(),
            repo: "api".into(),
            environment: "prod/eu west".into(),
        };
        assert_eq!(
            env.secret_path("X"),
            "/repos/acme/api/environments/prod%2Feu%20west/secrets/X"
        );
        assert_eq!(
            env.describe(),
            "environment `prod/eu west` of repository acme/api"
        );
        let org = Target::Organization {
            org: "acme".into(),
            visibility: Visibility::Private,
        };
        assert_eq!(
            org.public_key_path(),
            "/orgs/acme/actions/secrets/public-key"
        );
        let dependabot = Target::Dependabot {
            owner: "acme".into(),
            repo: "api".into(),
        };
        assert_eq!(
            dependabot.secret_path("NPM_TOKEN"),
            "/repos/acme/api/dependabot/secrets/NPM_TOKEN"
        );
        assert_eq!(
            repo().location(&["DB_USER".into(), "DB_PASSWORD".into()]),
            "repos/acme/api.v2/actions/secrets/DB_USER,DB_PASSWORD"
        );
    }

    #[test]
    fn write_bodies_carry_the_visibility_of_organization_secrets() {
        assert_eq!(
            repo().put_body("c2VhbGVk", "568250167242549743"),
            json!({"encrypted_value": "c2VhbGVk", "key_id": "568250167242549743"})
        );
        let org = |visibility| Target::Organization {
            org: "acme".into(),
            visibility,
        };
        assert_eq!(
            org(Visibility::Private).put_body("v", "k"),
            json!({"encrypted_value": "v", "key_id": "k", "visibility": "private"})
        );
        assert_eq!(org(Visibility::All).put_body("v", "k")["visibility"], "all");
        assert_eq!(
            org(Visibility::Selected(vec![1296269, 1296280])).put_body("v", "k"),
            json!({
                "encrypted_value": "v",
                "key_id": "k",
                "visibility": "selected",
                "selected_repository_ids": [1296269, 1296280],
            })
        );
    }

    #[test]
    fn config_values_of_targets() {
        assert_eq!(
            parse_repository(" acme/api.v2 ").expect("valid"),
            ("acme".to_string(), "api.v2".to_string())
        );
        for bad in [
            "acme",
            "acme/",
            "/api",
            "acme/api/x",
            "acme/a b",
            "acme/..",
            "a/b?c",
        ] {
            assert!(
                matches!(parse_repository(bad), Err(PluginError::Misconfigured(m)) if m.contains("`repository`")),
                "{bad}"
            );
        }
        assert_eq!(parse_organization("acme-corp").expect("valid"), "acme-corp");
        for bad in ["", "acme/api", "acme corp"] {
            assert!(parse_organization(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_environment("prod/eu").expect("valid"), "prod/eu");
        assert!(parse_environment(" ").is_err());
        assert!(parse_environment("a\nb").is_err());
        assert_eq!(
            parse_repository_ids("1296269, 1296280,,1296269").expect("valid"),
            vec![1296269, 1296280]
        );
        for bad in ["", " , ", "12,abc", "-1", "0"] {
            assert!(
                matches!(parse_repository_ids(bad), Err(PluginError::Misconfigured(m)) if m.contains("`selected-repository-ids`")),
                "{bad}"
            );
        }
    }
}
