//! Repositories, environments and organisations: what is seeded, and their JSON objects.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::api::State;
use super::clock::iso;
use super::scope::ScopeKey;
use super::sodium::KeyPair;

/// A (private) repository.
#[derive(Debug)]
pub struct Repo {
    pub id: u64,
    /// As seeded: `owner/name`.
    pub full_name: String,
    /// The owner's id when the owner is a user (no organisation of that name was seeded).
    pub user_owner_id: u64,
    pub created_at: i64,
    /// Lower-cased name -> environment.
    pub environments: BTreeMap<String, Environment>,
}

impl Repo {
    pub fn owner(&self) -> &str {
        self.full_name.split('/').next().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.full_name.split('/').nth(1).unwrap_or_default()
    }
}

/// A deployment environment of a repository.
#[derive(Debug)]
pub struct Environment {
    pub id: u64,
    pub name: String,
    pub created_at: i64,
}

/// An organisation.
#[derive(Debug)]
pub struct Org {
    pub id: u64,
    pub login: String,
}

/// A path segment percent-encoded as GitHub's URLs carry it (environment names may have spaces).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A path segment percent-decoded; `None` when it is not valid UTF-8 once decoded.
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The owner object of a repository: the organisation when one of that login was seeded.
fn owner_json(base: &str, repo: &Repo, org: Option<&Org>) -> Value {
    let login = repo.owner();
    match org {
        Some(org) => json!({
            "login": org.login,
            "id": org.id,
            "node_id": format!("O_kgDO{:08}", org.id),
            "url": format!("{base}/orgs/{}", org.login),
            "html_url": format!("https://github.com/{}", org.login),
            "type": "Organization",
            "site_admin": false,
        }),
        None => json!({
            "login": login,
            "id": repo.user_owner_id,
            "node_id": format!("U_kgDO{:08}", repo.user_owner_id),
            "url": format!("{base}/users/{login}"),
            "html_url": format!("https://github.com/{login}"),
            "type": "User",
            "site_admin": false,
        }),
    }
}

/// `GET /repos/{owner}/{repo}`: enough of a repository for PyGithub and a plugin (`id`, `url`).
pub fn repo_json(base: &str, repo: &Repo, org: Option<&Org>, push: bool) -> Value {
    let full = &repo.full_name;
    json!({
        "id": repo.id,
        "node_id": format!("R_kgDO{:08}", repo.id),
        "name": repo.name(),
        "full_name": full,
        "private": true,
        "visibility": "private",
        "owner": owner_json(base, repo, org),
        "html_url": format!("https://github.com/{full}"),
        "description": null,
        "fork": false,
        "url": format!("{base}/repos/{full}"),
        "default_branch": "main",
        "archived": false,
        "disabled": false,
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "pushed_at": iso(repo.created_at),
        "permissions": {
            "admin": push,
            "maintain": push,
            "push": push,
            "triage": push,
            "pull": true,
        },
    })
}

/// `GET /repos/{owner}/{repo}/environments/{name}`.
pub fn environment_json(base: &str, repo: &Repo, environment: &Environment) -> Value {
    let name = encode_segment(&environment.name);
    json!({
        "id": environment.id,
        "node_id": format!("EN_kwDO{:08}", environment.id),
        "name": environment.name,
        "url": format!("{base}/repos/{}/environments/{name}", repo.full_name),
        "html_url": format!("https://github.com/{}/deployments/activity_log?environments_filter={name}", repo.full_name),
        "created_at": iso(environment.created_at),
        "updated_at": iso(environment.created_at),
        "protection_rules": [],
        "deployment_branch_policy": null,
    })
}

/// `GET /orgs/{org}`.
pub fn org_json(base: &str, org: &Org) -> Value {
    let login = &org.login;
    json!({
        "login": login,
        "id": org.id,
        "node_id": format!("O_kgDO{:08}", org.id),
        "url": format!("{base}/orgs/{login}"),
        "repos_url": format!("{base}/orgs/{login}/repos"),
        "events_url": format!("{base}/orgs/{login}/events"),
        "hooks_url": format!("{base}/orgs/{login}/hooks"),
        "issues_url": format!("{base}/orgs/{login}/issues"),
        "members_url": format!("{base}/orgs/{login}/members{{/member}}"),
        "public_members_url": format!("{base}/orgs/{login}/public_members{{/member}}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", org.id),
        "description": null,
        "html_url": format!("https://github.com/{login}"),
        "type": "Organization",
    })
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Seeds a private repository `owner/name` with its Actions and Dependabot keys; returns its
    /// id (the existing one, keys untouched, when it was seeded before).
    pub fn add_repo(&mut self, full_name: &str, actions: KeyPair, dependabot: KeyPair) -> u64 {
        let key = full_name.to_lowercase();
        if let Some(repo) = self.repos.get(&key) {
            return repo.id;
        }
        let id = self.next_id();
        let user_owner_id = self.next_id();
        let created_at = self.clock.stamp();
        self.repos.insert(
            key.clone(),
            Repo {
                id,
                full_name: full_name.to_owned(),
                user_owner_id,
                created_at,
                environments: BTreeMap::new(),
            },
        );
        self.install_key(ScopeKey::Repo(key.clone()), actions);
        self.install_key(ScopeKey::Dependabot(key), dependabot);
        id
    }

    /// Seeds an environment of a seeded repository, with its key; false if the repository is
    /// unknown. An environment seeded before keeps its key.
    pub fn add_environment(&mut self, full_name: &str, name: &str, pair: KeyPair) -> bool {
        let (repo_key, env_key) = (full_name.to_lowercase(), name.to_lowercase());
        if !self.repos.contains_key(&repo_key) {
            return false;
        }
        if self.repos[&repo_key].environments.contains_key(&env_key) {
            return true;
        }
        let id = self.next_id();
        let created_at = self.clock.stamp();
        let environment = Environment {
            id,
            name: name.to_owned(),
            created_at,
        };
        if let Some(repo) = self.repos.get_mut(&repo_key) {
            repo.environments.insert(env_key.clone(), environment);
        }
        self.install_key(ScopeKey::Environment(repo_key, env_key), pair);
        true
    }

    /// Seeds an organisation with its key; returns its id (the existing one when seeded before).
    pub fn add_org(&mut self, login: &str, pair: KeyPair) -> u64 {
        let key = login.to_lowercase();
        if let Some(org) = self.orgs.get(&key) {
            return org.id;
        }
        let id = self.next_id();
        self.orgs.insert(
            key.clone(),
            Org {
                id,
                login: login.to_owned(),
            },
        );
        self.install_key(ScopeKey::Org(key), pair);
        id
    }
}
