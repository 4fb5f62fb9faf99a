//! The fake's state, and one request's answer: API version, authentication, rate limits, routing.

use std::collections::BTreeMap;

use serde_json::json;

use super::auth::{Access, App, Installation, Principal};
use super::clock::Clock;
use super::objects::{Org, Repo, decode_segment, environment_json, org_json, repo_json};
use super::rate_limit::Limits;
use super::reply::{REST_DOCS, Reply};
use super::scope::{PublicKey, ScopeKey};
use super::secrets::{SecretPath, StoredSecret};

/// The `X-GitHub-Api-Version` values the fake takes (absent: the default, 2022-11-28).
const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];

const REPO_DOCS: &str = "https://docs.github.com/rest/repos/repos#get-a-repository";
const ENVIRONMENT_DOCS: &str =
    "https://docs.github.com/rest/deployments/environments#get-an-environment";
const ORG_DOCS: &str = "https://docs.github.com/rest/orgs/orgs#get-an-organization";

/// One HTTP request as the handlers see it.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// Without the query, still percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorization: String,
    pub api_version: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything the fake knows.
pub struct State {
    /// `http://127.0.0.1:PORT`, for the URLs inside answers.
    pub base_url: String,
    pub clock: Clock,
    /// The last repository, organisation, environment or user id handed out.
    pub next_id: u64,
    /// Lower-cased `owner/name` -> repository.
    pub repos: BTreeMap<String, Repo>,
    /// Lower-cased login -> organisation.
    pub orgs: BTreeMap<String, Org>,
    /// Each scope's current public key.
    pub keys: BTreeMap<ScopeKey, PublicKey>,
    /// key_id -> private key (base64), for every key ever installed.
    pub private_keys: BTreeMap<String, String>,
    pub next_key_id: u64,
    /// Scope -> upper-cased name -> secret.
    pub secrets: BTreeMap<ScopeKey, BTreeMap<String, StoredSecret>>,
    /// Token -> who it is (personal access tokens and minted installation tokens).
    pub tokens: BTreeMap<String, Principal>,
    /// App id -> app.
    pub apps: BTreeMap<u64, App>,
    /// Installation id -> installation.
    pub installations: BTreeMap<u64, Installation>,
    pub limits: Limits,
    /// (method, path without query, status) of every request, in arrival order.
    pub requests: Vec<(String, String, u16)>,
    pub next_request: u64,
}

/// What a path names.
enum Route {
    RateLimit,
    AccessTokens(u64),
    RepoInstallation(String),
    OrgInstallation(String),
    Repo(String),
    Environment(String, String),
    Org(String),
    Secrets(ScopeKey, SecretPath),
    Unknown,
}

impl Route {
    fn parse(segments: &[String]) -> Self {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let repo = |owner: &str, name: &str| format!("{owner}/{name}").to_lowercase();
        let secrets = |scope: ScopeKey, rest: &[&str]| match SecretPath::parse(rest, scope.is_org())
        {
            Some(path) => Route::Secrets(scope, path),
            None => Route::Unknown,
        };
        match s.as_slice() {
            ["rate_limit"] => Route::RateLimit,
            ["app", "installations", id, "access_tokens"] => {
                id.parse().map_or(Route::Unknown, Route::AccessTokens)
            }
            ["repos", o, r, "installation"] => Route::RepoInstallation(repo(o, r)),
            ["orgs", org, "installation"] => Route::OrgInstallation(org.to_lowercase()),
            ["repos", o, r] => Route::Repo(repo(o, r)),
            ["repos", o, r, "environments", env] => {
                Route::Environment(repo(o, r), env.to_lowercase())
            }
            ["repos", o, r, "actions", "secrets", rest @ ..] => {
                secrets(ScopeKey::Repo(repo(o, r)), rest)
            }
            ["repos", o, r, "dependabot", "secrets", rest @ ..] => {
                secrets(ScopeKey::Dependabot(repo(o, r)), rest)
            }
            ["repos", o, r, "environments", env, "secrets", rest @ ..] => {
                secrets(ScopeKey::Environment(repo(o, r), env.to_lowercase()), rest)
            }
            ["orgs", org] => Route::Org(org.to_lowercase()),
            ["orgs", org, "actions", "secrets", rest @ ..] => {
                secrets(ScopeKey::Org(org.to_lowercase()), rest)
            }
            _ => Route::Unknown,
        }
    }
}

/// The decoded segments of a path (`None` for a malformed escape).
fn segments(path: &str) -> Option<Vec<String>> {
    path.trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(decode_segment)
        .collect()
}

impl State {
    pub fn new() -> Self {
        Self {
            base_url: String::new(),
            clock: Clock::default(),
            next_id: 700_000_000,
            repos: BTreeMap::new(),
            orgs: BTreeMap::new(),
            keys: BTreeMap::new(),
            private_keys: BTreeMap::new(),
            next_key_id: 568_250_167_242_549_000,
            secrets: BTreeMap::new(),
            tokens: BTreeMap::new(),
            apps: BTreeMap::new(),
            installations: BTreeMap::new(),
            limits: Limits::new(),
            requests: Vec::new(),
            next_request: 0,
        }
    }

    /// Answers one request, with the headers every answer carries, and records it.
    pub fn handle(&mut self, request: &Request) -> Reply {
        self.next_request += 1;
        let request_id = format!(
            "C0DE:{:04X}:{:06X}",
            std::process::id() & 0xFFFF,
            self.next_request
        );
        let mut reply = self.answer(request, &request_id);
        reply.headers.extend(self.limits.headers());
        let version = request.api_version.as_deref().unwrap_or(API_VERSIONS[0]);
        reply.headers.extend([
            ("x-github-request-id".to_owned(), request_id),
            (
                "x-github-api-version-selected".to_owned(),
                version.to_owned(),
            ),
            (
                "x-github-media-type".to_owned(),
                "github.v3; format=json".to_owned(),
            ),
        ]);
        self.requests
            .push((request.method.clone(), request.path.clone(), reply.code));
        reply
    }

    fn answer(&mut self, request: &Request, request_id: &str) -> Reply {
        if let Some(version) = &request.api_version
            && !API_VERSIONS.contains(&version.as_str())
        {
            let message = format!("API version '{version}' is not supported.");
            return Reply::error(
                400,
                &message,
                "https://docs.github.com/rest/about-the-rest-api/api-versions",
            );
        }
        let Some(segments) = segments(&request.path) else {
            return Reply::not_found(REST_DOCS);
        };
        let route = Route::parse(&segments);

        // Endpoints a GitHub App calls with its JWT.
        if let Route::AccessTokens(_) | Route::RepoInstallation(_) | Route::OrgInstallation(_) =
            &route
        {
            let app_id = match self.authenticate_app(request) {
                Ok(app_id) => app_id,
                Err(refused) => return refused,
            };
            if let Err(limited) = self.limits.admit(&format!("app ID {app_id}"), request_id) {
                return limited;
            }
            return match (request.method.as_str(), route) {
                ("POST", Route::AccessTokens(installation)) => {
                    self.mint_installation_token(app_id, installation)
                }
                ("GET", Route::RepoInstallation(repo)) => match self.repos.get(&repo) {
                    Some(found) => self.find_installation(app_id, Some(found), ""),
                    None => Reply::not_found(REPO_DOCS),
                },
                ("GET", Route::OrgInstallation(org)) if self.orgs.contains_key(&org) => {
                    self.find_installation(app_id, None, &self.orgs[&org].login)
                }
                _ => Reply::not_found(REST_DOCS),
            };
        }

        let principal = match self.authenticate(request) {
            Ok(principal) => principal,
            Err(refused) => return refused,
        };
        if let Route::RateLimit = route {
            // Does not count against the primary limit, as GitHub's.
            let core = self.limits.core();
            return Reply::ok(json!({"resources": {"core": core}, "rate": core}));
        }
        if let Err(limited) = self.limits.admit(&principal.subject(), request_id) {
            return limited;
        }
        let get = request.method == "GET";
        match route {
            Route::Repo(repo) if get => {
                let access = principal.grants.repo(&repo);
                match self.repos.get(&repo) {
                    Some(found) if access > Access::None => {
                        let org = self.orgs.get(&found.owner().to_lowercase());
                        Reply::ok(repo_json(
                            &self.base_url,
                            found,
                            org,
                            access == Access::Write,
                        ))
                    }
                    _ => Reply::not_found(REPO_DOCS),
                }
            }
            Route::Environment(repo, env) if get => {
                let visible = principal.grants.repo(&repo) > Access::None;
                let found = self
                    .repos
                    .get(&repo)
                    .filter(|_| visible)
                    .and_then(|r| Some((r, r.environments.get(&env)?)));
                match found {
                    Some((repo, env)) => Reply::ok(environment_json(&self.base_url, repo, env)),
                    None => Reply::not_found(ENVIRONMENT_DOCS),
                }
            }
            Route::Org(org) if get => match self.orgs.get(&org) {
                Some(found) => Reply::ok(org_json(&self.base_url, found)),
                None => Reply::not_found(ORG_DOCS),
            },
            Route::Secrets(scope, path) => self.secrets_endpoint(request, &principal, scope, path),
            _ => Reply::not_found(REST_DOCS),
        }
    }
}
