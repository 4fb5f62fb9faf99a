//! Stored secrets and their endpoints: list, get, create or update, delete, public key, and an
//! organisation secret's selected repositories.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::api::{Request, State};
use super::auth::Principal;
use super::clock::iso;
use super::objects::repo_json;
use super::paging::paginate;
use super::reply::Reply;
use super::scope::{Op, ScopeKey};
use super::validate;

/// A secret as GitHub keeps it: the sealed value and the key it was sealed for, never plaintext.
#[derive(Clone, Debug)]
pub struct StoredSecret {
    /// Upper-cased.
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub key_id: String,
    /// Base64 of the sealed box.
    pub encrypted_value: String,
    /// Organisation secrets: `all`, `private` or `selected`.
    pub visibility: Option<String>,
    /// Organisation secrets with `selected` visibility.
    pub selected_repository_ids: Vec<u64>,
}

/// The part of a secrets URL after `.../secrets`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretPath {
    List,
    PublicKey,
    /// A name as the URL had it (decoded, not yet validated or upper-cased).
    One(String),
    /// `/orgs/{org}/actions/secrets/{name}/repositories`.
    Repositories(String),
}

impl SecretPath {
    pub fn parse(rest: &[&str], org: bool) -> Option<Self> {
        match rest {
            [] => Some(Self::List),
            ["public-key"] => Some(Self::PublicKey),
            [name] => Some(Self::One((*name).to_owned())),
            [name, "repositories"] if org => Some(Self::Repositories((*name).to_owned())),
            _ => None,
        }
    }
}

impl State {
    /// One request under a scope's `.../secrets`, for an authenticated `principal`.
    pub fn secrets_endpoint(
        &mut self,
        request: &Request,
        principal: &Principal,
        scope: ScopeKey,
        path: SecretPath,
    ) -> Reply {
        let op = match (request.method.as_str(), &path) {
            ("GET", SecretPath::List) => Op::List,
            ("GET", SecretPath::PublicKey) => Op::PublicKey,
            ("GET", SecretPath::One(_)) => Op::Get,
            ("PUT", SecretPath::One(_)) => Op::Put,
            ("DELETE", SecretPath::One(_)) => Op::Delete,
            ("GET", SecretPath::Repositories(_)) => Op::ListRepositories,
            ("PUT", SecretPath::Repositories(_)) => Op::SetRepositories,
            _ => return Reply::not_found(super::reply::REST_DOCS),
        };
        if let Err(refused) = self.authorize(principal, &scope, op) {
            return refused;
        }
        let docs = scope.docs(op);
        match path {
            SecretPath::List => self.list(request, &scope),
            SecretPath::PublicKey => Reply::ok(self.public_key_json(&scope)),
            SecretPath::One(name) if op == Op::Put => match validate::name(&name, &docs) {
                Ok(name) => self.put(request, &scope, &name, &docs),
                Err(refused) => refused,
            },
            SecretPath::One(name) => {
                let name = name.to_ascii_uppercase();
                match (op, self.secret(&scope, &name)) {
                    (_, None) => Reply::not_found(&docs),
                    (Op::Get, Some(secret)) => Reply::ok(self.secret_json(&scope, secret)),
                    _ => {
                        self.remove_secret(&scope, &name);
                        Reply::no_content()
                    }
                }
            }
            SecretPath::Repositories(name) => {
                let name = name.to_ascii_uppercase();
                if self.secret(&scope, &name).is_none() {
                    return Reply::not_found(&docs);
                }
                if op == Op::ListRepositories {
                    self.selected_repositories(request, &scope, &name)
                } else {
                    self.set_selected_repositories(request, &scope, &name, &docs)
                }
            }
        }
    }

    pub fn secret(&self, scope: &ScopeKey, name: &str) -> Option<&StoredSecret> {
        self.secrets.get(scope)?.get(name)
    }

    pub fn remove_secret(&mut self, scope: &ScopeKey, name: &str) -> bool {
        self.secrets
            .get_mut(scope)
            .is_some_and(|secrets| secrets.remove(name).is_some())
    }

    /// Names in the scope, sorted.
    pub fn secret_names(&self, scope: &ScopeKey) -> Vec<String> {
        self.secrets
            .get(scope)
            .map(|secrets| secrets.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Creates or updates a secret (stamping `updated_at`, keeping `created_at`); true if created.
    /// `visibility`/`selected` are `None` to keep what an existing secret had.
    pub fn store_secret(
        &mut self,
        scope: &ScopeKey,
        name: &str,
        key_id: &str,
        encrypted_value: &str,
        visibility: Option<String>,
        selected: Option<Vec<u64>>,
    ) -> bool {
        let stamp = self.clock.stamp();
        let org = scope.is_org();
        let secrets: &mut BTreeMap<String, StoredSecret> =
            self.secrets.entry(scope.clone()).or_default();
        let created = !secrets.contains_key(name);
        let secret = secrets
            .entry(name.to_owned())
            .or_insert_with(|| StoredSecret {
                name: name.to_owned(),
                created_at: stamp,
                updated_at: stamp,
                key_id: String::new(),
                encrypted_value: String::new(),
                visibility: org.then(|| "all".to_owned()),
                selected_repository_ids: Vec::new(),
            });
        secret.updated_at = stamp;
        secret.key_id = key_id.to_owned();
        secret.encrypted_value = encrypted_value.to_owned();
        if let Some(visibility) = visibility {
            if visibility != "selected" {
                secret.selected_repository_ids.clear();
            }
            secret.visibility = Some(visibility);
        }
        if let Some(selected) = selected {
            secret.selected_repository_ids = selected;
        }
        created
    }

    /// A secret as GET answers it: never its value.
    fn secret_json(&self, scope: &ScopeKey, secret: &StoredSecret) -> Value {
        let mut body = json!({
            "name": secret.name,
            "created_at": iso(secret.created_at),
            "updated_at": iso(secret.updated_at),
        });
        if let (ScopeKey::Org(org), Some(visibility)) = (scope, &secret.visibility) {
            body["visibility"] = json!(visibility);
            if visibility == "selected" {
                let login = self
                    .orgs
                    .get(org)
                    .map_or(org.as_str(), |o| o.login.as_str());
                body["selected_repositories_url"] = json!(format!(
                    "{}/orgs/{login}/actions/secrets/{}/repositories",
                    self.base_url, secret.name
                ));
            }
        }
        body
    }

    /// The absolute URL of `request`'s path, for `Link` headers.
    fn absolute(&self, request: &Request) -> String {
        format!("{}{}", self.base_url, request.path)
    }

    fn list(&self, request: &Request, scope: &ScopeKey) -> Reply {
        let all: Vec<Value> = self
            .secrets
            .get(scope)
            .map(|secrets| {
                secrets
                    .values()
                    .map(|s| self.secret_json(scope, s))
                    .collect()
            })
            .unwrap_or_default();
        let (page, link) = paginate(&all, request, &self.absolute(request));
        let reply = Reply::ok(json!({"total_count": all.len(), "secrets": page}));
        match link {
            Some(link) => reply.with_header("link", link),
            None => reply,
        }
    }

    fn put(&mut self, request: &Request, scope: &ScopeKey, name: &str, docs: &str) -> Reply {
        let current = self.keys[scope].key_id.clone();
        let write = match validate::write(&request.body, &current, scope.is_org(), docs) {
            Ok(write) => write,
            Err(refused) => return refused,
        };
        if let (ScopeKey::Org(org), Some(ids)) = (scope, &write.selected_repository_ids)
            && let Err(refused) = self.check_org_repositories(org, ids, docs)
        {
            return refused;
        }
        let created = self.store_secret(
            scope,
            name,
            &write.key_id,
            &write.encrypted_value,
            write.visibility,
            write.selected_repository_ids,
        );
        if created {
            Reply::created()
        } else {
            Reply::no_content()
        }
    }

    /// Every id must be a repository of the organisation.
    fn check_org_repositories(&self, org: &str, ids: &[u64], docs: &str) -> Result<(), Reply> {
        let unknown: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| {
                !self
                    .repos
                    .values()
                    .any(|r| r.id == *id && r.owner().eq_ignore_ascii_case(org))
            })
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let message =
            format!("Invalid request.\n\nRepositories {unknown:?} are not in the organization.");
        let error = super::reply::field_error("selected_repository_ids", "invalid", &message);
        Err(Reply::invalid(&message, docs, vec![error]))
    }

    fn selected_repositories(&self, request: &Request, scope: &ScopeKey, name: &str) -> Reply {
        let ids = self
            .secret(scope, name)
            .map(|s| s.selected_repository_ids.clone())
            .unwrap_or_default();
        let repos: Vec<Value> = ids
            .iter()
            .filter_map(|id| self.repos.values().find(|r| r.id == *id))
            .map(|repo| {
                let org = self.orgs.get(&repo.owner().to_lowercase());
                repo_json(&self.base_url, repo, org, false)
            })
            .collect();
        let (page, link) = paginate(&repos, request, &self.absolute(request));
        let reply = Reply::ok(json!({"total_count": repos.len(), "repositories": page}));
        match link {
            Some(link) => reply.with_header("link", link),
            None => reply,
        }
    }

    fn set_selected_repositories(
        &mut self,
        request: &Request,
        scope: &ScopeKey,
        name: &str,
        docs: &str,
    ) -> Reply {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return Reply::problems_parsing_json(docs);
        };
        let ids = match validate::repository_ids(&body["selected_repository_ids"], docs) {
            Ok(ids) => ids,
            Err(refused) => return refused,
        };
        let ScopeKey::Org(org) = scope else {
            return Reply::not_found(docs);
        };
        if let Err(refused) = self.check_org_repositories(org, &ids, docs) {
            return refused;
        }
        let stamp = self.clock.stamp();
        let Some(secret) = self.secrets.get_mut(scope).and_then(|s| s.get_mut(name)) else {
            return Reply::not_found(docs);
        };
        if secret.visibility.as_deref() != Some("selected") {
            return Reply::error(
                409,
                "Conflict when visibility type is not set to selected",
                docs,
            );
        }
        secret.selected_repository_ids = ids;
        secret.updated_at = stamp;
        Reply::no_content()
    }
}
