//! Where secrets live (repository, environment, organisation, Dependabot): each place's current
//! public key, who may see it, and the docs page of each operation on it.

use serde_json::json;

use super::Scope;
use super::api::State;
use super::auth::{Access, Principal};
use super::reply::Reply;
use super::sodium::KeyPair;

/// A place secrets live in, lower-cased (GitHub's names are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKey {
    /// Actions secrets of a repository (`owner/name`).
    Repo(String),
    /// Secrets of a repository's deployment environment.
    Environment(String, String),
    /// Actions secrets of an organisation.
    Org(String),
    /// Dependabot secrets of a repository.
    Dependabot(String),
}

impl ScopeKey {
    pub fn new(scope: Scope) -> Self {
        match scope {
            Scope::Repo(repo) => Self::Repo(repo.to_lowercase()),
            Scope::Environment(repo, env) => {
                Self::Environment(repo.to_lowercase(), env.to_lowercase())
            }
            Scope::Org(org) => Self::Org(org.to_lowercase()),
            Scope::Dependabot(repo) => Self::Dependabot(repo.to_lowercase()),
        }
    }

    /// The repository the scope belongs to (none for an organisation).
    pub fn repo(&self) -> Option<&str> {
        match self {
            Self::Repo(repo) | Self::Environment(repo, _) | Self::Dependabot(repo) => Some(repo),
            Self::Org(_) => None,
        }
    }

    pub fn is_org(&self) -> bool {
        matches!(self, Self::Org(_))
    }

    /// The docs page GitHub's errors for `op` on this scope point at.
    pub fn docs(&self, op: Op) -> String {
        let (area, one, many, key) = match self {
            Self::Repo(_) => (
                "actions",
                "a-repository-secret",
                "repository-secrets",
                "a-repository",
            ),
            Self::Dependabot(_) => (
                "dependabot",
                "a-repository-secret",
                "repository-secrets",
                "a-repository",
            ),
            Self::Environment(..) => (
                "actions",
                "an-environment-secret",
                "environment-secrets",
                "an-environment",
            ),
            Self::Org(_) => (
                "actions",
                "an-organization-secret",
                "organization-secrets",
                "an-organization",
            ),
        };
        let anchor = match op {
            Op::List => format!("list-{many}"),
            Op::Get => format!("get-{one}"),
            Op::Put => format!("create-or-update-{one}"),
            Op::Delete => format!("delete-{one}"),
            Op::PublicKey => format!("get-{key}-public-key"),
            Op::ListRepositories => "list-selected-repositories-for-an-organization-secret".into(),
            Op::SetRepositories => "set-selected-repositories-for-an-organization-secret".into(),
        };
        format!("https://docs.github.com/rest/{area}/secrets#{anchor}")
    }
}

/// An operation on a scope's secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    Get,
    Put,
    Delete,
    PublicKey,
    ListRepositories,
    SetRepositories,
}

impl Op {
    /// What a credential needs for it.
    pub fn needs(self) -> Access {
        match self {
            Op::List | Op::Get | Op::PublicKey | Op::ListRepositories => Access::Read,
            Op::Put | Op::Delete | Op::SetRepositories => Access::Write,
        }
    }
}

/// A scope's current public key, as `GET .../secrets/public-key` answers it.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub key_id: String,
    pub key: String,
}

impl State {
    /// Whether the repository (and environment) or organisation was seeded.
    pub fn scope_exists(&self, scope: &ScopeKey) -> bool {
        match scope {
            ScopeKey::Repo(repo) | ScopeKey::Dependabot(repo) => self.repos.contains_key(repo),
            ScopeKey::Environment(repo, env) => self
                .repos
                .get(repo)
                .is_some_and(|r| r.environments.contains_key(env)),
            ScopeKey::Org(org) => self.orgs.contains_key(org),
        }
    }

    /// Makes `pair` the scope's current key (older keys still open what was sealed for them);
    /// returns its `key_id`.
    pub fn install_key(&mut self, scope: ScopeKey, pair: KeyPair) -> String {
        self.next_key_id += 1;
        let key_id = self.next_key_id.to_string();
        self.private_keys.insert(key_id.clone(), pair.private);
        self.keys.insert(
            scope,
            PublicKey {
                key_id: key_id.clone(),
                key: pair.public,
            },
        );
        key_id
    }

    pub fn public_key_json(&self, scope: &ScopeKey) -> serde_json::Value {
        let key = &self.keys[scope];
        json!({"key_id": key.key_id, "key": key.key})
    }

    /// What `principal` may do in `scope` for `op`, or GitHub's refusal: 404 for a repository
    /// it may not see or anything unknown, 403 for secrets it may not read or write.
    pub fn authorize(&self, principal: &Principal, scope: &ScopeKey, op: Op) -> Result<(), Reply> {
        let not_found = || Reply::not_found(&scope.docs(op));
        let access = match scope {
            ScopeKey::Org(org) => {
                if !self.orgs.contains_key(org) {
                    return Err(not_found());
                }
                principal.grants.org(org)
            }
            _ => {
                let repo = scope.repo().unwrap_or_default();
                let access = principal.grants.repo(repo);
                if !self.repos.contains_key(repo) || access == Access::None {
                    return Err(not_found());
                }
                if !self.scope_exists(scope) {
                    return Err(not_found());
                }
                access
            }
        };
        if access < op.needs() {
            return Err(Reply::error(
                403,
                principal.not_accessible(),
                &scope.docs(op),
            ));
        }
        Ok(())
    }
}
