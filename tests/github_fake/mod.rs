//! A fake GitHub REST API (Actions, environment, organisation and Dependabot secrets) for tests.
//!
//! `GitHubFake::start().await` serves plain HTTP on `127.0.0.1` port 0 from a task of the
//! caller's tokio runtime (tests are `#[tokio::test(flavor = "multi_thread")]`); `url()` is the
//! API base URL, every seeding and inspection call is synchronous, and dropping the handle stops
//! the server. It is written from GitHub's public REST reference, and
//! `tests/github_fake_clients.rs` proves it with PyGithub and raw requests:
//!
//! - credentials: personal access tokens (`add_token` with [`Grant`]s, `revoke_token`; unknown
//!   or revoked: 401 `Bad credentials`), `Authorization: Bearer T` or `token T`; GitHub Apps
//!   (`add_app`): `POST /app/installations/{id}/access_tokens` checks an RS256 JWT and mints a
//!   `ghs_` token living one hour (`expire_installation_tokens` ends them early), and
//!   `GET /repos/{o}/{r}/installation`, `GET /orgs/{org}/installation` find the installation;
//! - `GET /repos/{o}/{r}`, `GET /repos/{o}/{r}/environments/{env}`, `GET /orgs/{org}`,
//!   `GET /rate_limit`;
//! - secrets of a repository (`/repos/{o}/{r}/actions/secrets`), an environment
//!   (`/repos/{o}/{r}/environments/{env}/secrets`), an organisation (`/orgs/{org}/actions/secrets`,
//!   with `visibility`, `selected_repository_ids` and `.../{name}/repositories`) and Dependabot
//!   (`/repos/{o}/{r}/dependabot/secrets`): list (paginated, `Link`), public key, get (never the
//!   value), create (201) or update (204), delete (204); GitHub's name rules (422), the 48 KB
//!   limit, and a `key_id` that is not the scope's current key (422);
//! - errors as GitHub's (`message`, `documentation_url`, `status`, and `errors` for a 422): an
//!   unknown thing or a repository the token may not see is 404, secrets the token may not touch
//!   are 403 `Resource not accessible by personal access token` (`... by integration`);
//! - rate limits: `x-ratelimit-*` on every answer, `set_primary_limit`, `set_secondary_limit`;
//!   `requests()` lists every request with its status.
//!
//! Secrets are stored as sealed; key pairs are made, and stored values opened, by PyNaCl through
//! `seal_box.py`/`open_box.py` (the venv of `scripts/setup-peers.sh`), so an independent
//! libsodium binding judges what a client sealed.
//!
//! Not faithful:
//! - one rate-limit budget for the whole fake (GitHub: per user or installation), whose reset
//!   moves to a few seconds ahead once spent (GitHub: fixed hourly windows); 401 answers and
//!   `GET /rate_limit` spend nothing, and a 401 carries the token budget's headers (GitHub: the
//!   unauthenticated 60 an hour);
//! - a written value is not opened (GitHub may refuse a box that does not open with 422; here
//!   only `secret_value` tells);
//! - 422 bodies add an `errors` list (GitHub's secret 422s carry message, documentation_url and
//!   status only); the wording of the 422 for a value above 48 KB, of refused
//!   `selected_repository_ids`, of the 400 for an unsupported `X-GitHub-Api-Version`, and of the
//!   401 for a JWT naming an unknown app is the fake's own;
//! - a JWT's `exp` may be at most 10 minutes ahead (GitHub's rule) and at most 11 minutes after
//!   its `iat` (the fake's: 10 minutes plus the 60 s of backdating GitHub recommends);
//! - installation tokens ignore the body's narrowing (`repositories`, `permissions`);
//! - every repository is private; `private` visibility is not checked against anything;
//! - organisation Dependabot secrets, variables, and every other route or method are 404.

#![allow(dead_code)]

mod api;
mod auth;
mod clock;
#[path = "../fake_server/mod.rs"]
mod fake_server;
mod objects;
mod paging;
mod rate_limit;
mod reply;
mod scope;
mod secrets;
mod server;
mod sodium;
mod validate;
/// The venv whose PyNaCl makes key pairs and opens sealed values (tests/venv).
#[path = "../venv/mod.rs"]
pub mod venv;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jsonwebtoken::DecodingKey;

use api::State;
use auth::{App, Grants, Holder, Installation, Principal};
use scope::ScopeKey;
use sodium::Sodium;

#[allow(unused_imports)]
pub use validate::{MAX_PLAINTEXT, SEAL_OVERHEAD};

/// What a token (or an App installation) may touch. Names are not case-sensitive.
#[derive(Clone, Copy, Debug)]
pub enum Grant<'a> {
    /// Read and write the repository's (`owner/name`) Actions, environment and Dependabot secrets.
    Repo(&'a str),
    /// List and read the repository's secret metadata and public keys; writes are 403.
    RepoRead(&'a str),
    /// See the repository, not its secrets (403).
    RepoMetadata(&'a str),
    /// Read and write the organisation's Actions secrets.
    Org(&'a str),
    /// List and read the organisation's secret metadata and public key; writes are 403.
    OrgRead(&'a str),
}

/// Where a secret lives.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// A repository's Actions secrets (`owner/name`).
    Repo(&'a str),
    /// A repository's environment's secrets.
    Environment(&'a str, &'a str),
    /// An organisation's Actions secrets.
    Org(&'a str),
    /// A repository's Dependabot secrets.
    Dependabot(&'a str),
}

/// A stored secret's metadata, as the fake keeps it (never the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretView {
    /// Upper-cased, as GitHub stores names.
    pub name: String,
    /// `2026-12-07T03:04:05Z`.
    pub created_at: String,
    pub updated_at: String,
    /// The key the value was sealed for.
    pub key_id: String,
    /// Organisation secrets: `all`, `private` or `selected`.
    pub visibility: Option<String>,
    pub selected_repository_ids: Vec<u64>,
}

/// A scope's current public key, as `GET .../secrets/public-key` answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    /// Base64 of the 32-byte Curve25519 public key.
    pub key: String,
}

/// A running fake GitHub API; stopped on drop.
pub struct GitHubFake {
    state: Arc<Mutex<State>>,
    url: String,
    sodium: Sodium,
    server: fake_server::Server,
}

impl GitHubFake {
    /// Serves on a free 127.0.0.1 port from the current tokio runtime. Panics, naming
    /// `scripts/setup-peers.sh`, when the venv or PyNaCl is missing.
    pub async fn start() -> Self {
        let sodium = Sodium::locate();
        // The first batch of key pairs, now, so a missing PyNaCl fails here.
        sodium.warm();
        let state = Arc::new(Mutex::new(State::new()));
        let server = server::start(state.clone()).await;
        let url = format!("http://{}", server.addr);
        let fake = Self {
            state,
            url: url.clone(),
            sodium,
            server,
        };
        fake.state().base_url = url;
        fake
    }

    /// The API base URL, `http://127.0.0.1:PORT` (what `api.github.com` is to a client).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A personal access token that may touch what `grants` say (replaces an earlier one).
    pub fn add_token(&self, token: &str, grants: &[Grant]) {
        let mut state = self.state();
        state.next_id += 1;
        let user_id = state.next_id;
        state.tokens.insert(
            token.to_owned(),
            Principal {
                holder: Holder::Pat { user_id },
                grants: Grants::new(grants),
            },
        );
    }

    /// From now on `token` (a personal access token or a minted installation token) answers 401
    /// `Bad credentials`, as an expired or revoked token does.
    pub fn revoke_token(&self, token: &str) {
        self.state().tokens.remove(token);
    }

    /// Seeds a private repository (`owner/name`); returns its id. Seeding it again returns the
    /// same id. The owner is an organisation when one of that login is seeded, else a user.
    pub fn add_repo(&self, full_name: &str) -> u64 {
        assert!(
            full_name.split('/').count() == 2
                && !full_name.starts_with('/')
                && !full_name.ends_with('/'),
            "add_repo takes owner/name, not {full_name:?}"
        );
        let (actions, dependabot) = (self.sodium.key_pair(), self.sodium.key_pair());
        self.state().add_repo(full_name, actions, dependabot)
    }

    /// Seeds a deployment environment of a seeded repository.
    pub fn add_environment(&self, full_name: &str, environment: &str) {
        let pair = self.sodium.key_pair();
        let added = self.state().add_environment(full_name, environment, pair);
        assert!(
            added,
            "add_environment: seed the repository {full_name} first"
        );
    }

    /// Seeds an organisation; returns its id.
    pub fn add_org(&self, login: &str) -> u64 {
        let pair = self.sodium.key_pair();
        self.state().add_org(login, pair)
    }

    /// A GitHub App (`app_id`, the PEM of its RSA public key) installed as `installation_id`
    /// with `grants`. Call again with another installation id for more installations.
    pub fn add_app(
        &self,
        app_id: u64,
        public_key_pem: &str,
        installation_id: u64,
        grants: &[Grant],
    ) {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .unwrap_or_else(|e| panic!("add_app {app_id}: not an RSA public key PEM: {e}"));
        let mut state = self.state();
        state.apps.insert(app_id, App { app_id, key });
        state.installations.insert(
            installation_id,
            Installation {
                id: installation_id,
                app_id,
                grants: Grants::new(grants),
            },
        );
    }

    /// Every installation token minted so far answers 401 `Bad credentials` from now on (new
    /// ones can be minted).
    pub fn expire_installation_tokens(&self) {
        self.state().expire_installation_tokens();
    }

    /// The scope's current public key; `None` for a scope not seeded.
    pub fn public_key(&self, scope: Scope) -> Option<PublicKey> {
        let key = ScopeKey::new(scope);
        self.state().keys.get(&key).map(|k| PublicKey {
            key_id: k.key_id.clone(),
            key: k.key.clone(),
        })
    }

    /// Gives the scope a new key pair (GitHub rotates them); returns its `key_id`. Values
    /// sealed for the old key still open; writes naming the old `key_id` are 422.
    pub fn rotate_public_key(&self, scope: Scope) -> String {
        let key = ScopeKey::new(scope);
        assert!(
            self.state().scope_exists(&key),
            "rotate_public_key: {scope:?} is not seeded"
        );
        let pair = self.sodium.key_pair();
        self.state().install_key(key, pair)
    }

    /// `plaintext` sealed (PyNaCl `SealedBox`) for `public_key` (base64), as base64: the
    /// `encrypted_value` a client PUTs.
    pub fn seal(&self, public_key: &str, plaintext: &[u8]) -> String {
        self.sodium.seal(public_key, plaintext)
    }

    /// A stored secret's metadata (`name` in any case).
    pub fn secret(&self, scope: Scope, name: &str) -> Option<SecretView> {
        let state = self.state();
        let secret = state.secret(&ScopeKey::new(scope), &name.to_ascii_uppercase())?;
        Some(SecretView {
            name: secret.name.clone(),
            created_at: clock::iso(secret.created_at),
            updated_at: clock::iso(secret.updated_at),
            key_id: secret.key_id.clone(),
            visibility: secret.visibility.clone(),
            selected_repository_ids: secret.selected_repository_ids.clone(),
        })
    }

    /// The stored value, opened with PyNaCl: `Ok(None)` when there is no such secret, `Err`
    /// when the stored box does not open with the key it names or is not UTF-8.
    pub fn secret_value(&self, scope: Scope, name: &str) -> Result<Option<String>, String> {
        let (private_key, sealed) = {
            let state = self.state();
            let Some(secret) = state.secret(&ScopeKey::new(scope), &name.to_ascii_uppercase())
            else {
                return Ok(None);
            };
            let private_key = state
                .private_keys
                .get(&secret.key_id)
                .cloned()
                .ok_or_else(|| format!("no key has key_id {}", secret.key_id))?;
            (private_key, secret.encrypted_value.clone())
        };
        let plaintext = self.sodium.open(&private_key, &sealed)?;
        String::from_utf8(plaintext)
            .map(Some)
            .map_err(|e| format!("the opened value is not UTF-8: {e}"))
    }

    /// Names in the scope (upper-cased), sorted.
    pub fn secret_names(&self, scope: Scope) -> Vec<String> {
        self.state().secret_names(&ScopeKey::new(scope))
    }

    /// Someone sets the secret by hand (created if missing): `new_plaintext` sealed with PyNaCl
    /// for the scope's current key, `updated_at` moved forward by at least a second. An
    /// organisation secret keeps its visibility (`all` when created here).
    pub fn touch_secret(&self, scope: Scope, name: &str, new_plaintext: &str) {
        let key = ScopeKey::new(scope);
        let name = validate::name(name, "").unwrap_or_else(|refused| {
            panic!("touch_secret {scope:?} {name}: {}", refused.message())
        });
        let public = self
            .state()
            .keys
            .get(&key)
            .cloned()
            .unwrap_or_else(|| panic!("touch_secret: {scope:?} is not seeded"));
        let sealed = self.sodium.seal(&public.key, new_plaintext.as_bytes());
        self.state()
            .store_secret(&key, &name, &public.key_id, &sealed, None, None);
    }

    /// Someone deletes the secret by hand; false if there was none.
    pub fn delete_secret(&self, scope: Scope, name: &str) -> bool {
        self.state()
            .remove_secret(&ScopeKey::new(scope), &name.to_ascii_uppercase())
    }

    /// A fresh primary window of `limit` requests: the request that spends the last one answers
    /// `x-ratelimit-remaining: 0` and moves `x-ratelimit-reset` a few seconds ahead; until then,
    /// every request is 403 `API rate limit exceeded ...` (see `set_rate_limit_status`).
    pub fn set_primary_limit(&self, limit: u32) {
        self.state().limits.set_primary(limit);
    }

    /// More than `max_requests` within any `window`: 403 `You have exceeded a secondary rate
    /// limit ...` with `retry-after: retry_after_secs`, and every request for that long too.
    pub fn set_secondary_limit(&self, max_requests: u32, window: Duration, retry_after_secs: u64) {
        self.state()
            .limits
            .set_secondary(max_requests, window, retry_after_secs);
    }

    /// Rate limits answer with `status`: 403 (the default) or 429, both of which GitHub uses.
    pub fn set_rate_limit_status(&self, status: u16) {
        self.state().limits.set_status(status);
    }

    /// Back to 5,000 requests an hour, no secondary limit, 403 answers.
    pub fn clear_rate_limits(&self) {
        self.state().limits.clear();
    }

    /// (method, path without query, status) of every request so far, in order.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.state().requests.clone()
    }

    pub fn reset_requests(&self) {
        self.state().requests.clear();
    }
}
