//! A fake GitLab REST API (project and group CI/CD variables) for tests.
//!
//! `GitLabFake::start().await` serves plain HTTP on `127.0.0.1` port 0 from a task of the
//! caller's tokio runtime (tests are `#[tokio::test(flavor = "multi_thread")]`); `url()` is the
//! instance's base URL, the API is under `/api/v4`, the seeding and inspection methods are
//! synchronous, and dropping the handle stops the server. It was written from GitLab's REST API
//! documentation (project-level and group-level CI/CD variables, REST API pagination and
//! authentication, user and IP rate limits, CI/CD variables) and, where the docs are silent, from
//! what GitLab's source answers; `tests/gitlab_fake_clients.rs` proves it against python-gitlab.
//!
//! - Access tokens (`add_token(token, role)`: that role on every project and group; `grant` for
//!   one) sent as `PRIVATE-TOKEN`, `Authorization: Bearer` or `?private_token=`. No token: 401
//!   `{"message":"401 Unauthorized"}` from the variables endpoints (a private project or group
//!   is a 404 to anonymous reads); an unknown token: the same 401; a revoked or expired one
//!   (`revoke_token`, `expire_token`): 401 `{"error":"invalid_token","error_description":...}`
//!   with `WWW-Authenticate`, as GitLab's API guard answers (the docs only say 401).
//! - Roles: a project's variables need Maintainer, a group's Owner (`admin_cicd_variables`);
//!   less is 403 `{"message":"403 Forbidden"}`; `Role::NoAccess` makes the project or group a
//!   404 (`{"message":"404 Project Not Found"}`, `... Group Not Found`).
//! - `GET /projects/:id`, `GET /groups/:id` (numeric id, or the URL-encoded path `team%2Fapp`).
//! - `GET|POST /projects/:id/variables`, `GET|PUT|DELETE /projects/:id/variables/:key`, and the
//!   same under `/groups/:id` (with `environment_scope`, a Premium feature there). Parameters
//!   come from the query and a JSON, form or multipart body. Lists are ordered by creation and
//!   paginated (`page`, `per_page` default 20 at most 100; `X-Page`, `X-Per-Page`, `X-Next-Page`,
//!   `X-Prev-Page`, `X-Total`, `X-Total-Pages`, `Link` with `prev`/`next`/`first`/`last`).
//!   `filter[environment_scope]` picks one of several variables sharing a key; without it,
//!   several matches are 409 `{"message":"There are multiple variables with provided
//!   parameters. Please use 'filter[environment_scope]'"}`. A missing variable is 404
//!   `{"message":"404 Variable Not Found"}`; DELETE answers 204.
//! - Variables show `{variable_type, key, value, hidden, protected, masked, raw,
//!   environment_scope, description}`; a hidden one (`masked_and_hidden` on create) shows
//!   `"value": null`.
//! - Validation, 400 `{"message":{"field":["..."]}}`: a key is 1 to 255 of `[A-Za-z0-9_]`
//!   ("can contain only letters, digits and '_'.", "is too long (maximum is 255 characters)"),
//!   unique per environment scope ("(KEY) has already been taken"); the environment scope is made
//!   of letters, digits, `-_/${}.*` and spaces; a description is at most 255 characters; a
//!   hidden variable must be masked and its masking cannot change. Parameter errors are Grape's
//!   400 `{"error":"key is missing, masked is invalid"}`.
//! - Masking (value "is invalid" otherwise), per GitLab's docs ("Mask a CI/CD variable" in
//!   `doc/ci/variables/_index.md`: one line, no spaces, 8 characters or more; with variable
//!   expansion on, only the Base64 alphabet of RFC 4648 and `@`, `:`, `.`, `~`) and the
//!   regexes they describe (`Ci::Maskable::REGEX` and `MASK_AND_RAW_REGEX`):
//!   - expanded (`raw: false`, the default): 8+ characters, each of `A-Z a-z 0-9 + / = - _`
//!     (RFC 4648's standard and URL-safe Base64 alphabets) or `@ : . ~`; so no `$`;
//!   - raw (`raw: true`): 8+ characters, none of them whitespace (space, tab, CR, LF, VT, FF).
//!
//!   Values have no size limit: the docs give 10,000 characters for instance variables only.
//! - Rate limit (`set_rate_limit(max, window)`): every answer carries `RateLimit-Name`,
//!   `RateLimit-Limit` (per minute, rounded up as GitLab rounds it), `RateLimit-Observed`,
//!   `RateLimit-Remaining` and `RateLimit-Reset` (Unix time); past `max` requests in the window,
//!   429 with GitLab's default plain-text body `Retry later` and `Retry-After` (seconds) and
//!   `RateLimit-ResetTime` (HTTP date).
//! - Unknown paths and methods: 404 `{"error":"404 Not Found"}`.
//!
//! Not faithful: no users, namespaces of users, instance variables, `GET /user` or `/version`;
//! every project and group is private; the rate limit window starts at the first request after
//! `set_rate_limit` or after the previous window (GitLab's windows are aligned to the epoch) and
//! counts every request from anyone in one bucket; the per-project (8000) and per-group (30000)
//! variable limits and the "must not match a variable's name" masking rule are not enforced;
//! `per_page=0` is the default 20 (Kaminari would give an empty page); Grape's exact wording of
//! a malformed JSON body is not reproduced.

#![allow(dead_code)]

mod auth;
#[path = "../fake_server/mod.rs"]
mod fake_server;
mod pagination;
mod rate_limit;
mod reply;
mod request;
mod resources;
mod server;
mod state;
mod validate;
mod variables;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

pub use auth::Role;
pub use resources::Scope;
pub use state::Seen;

use auth::{Token, TokenState};
use rate_limit::RateLimit;
use request::Params;
use resources::{Group, Project};
use state::State;
use variables::Changes;

/// A running fake GitLab; stopped on drop.
pub struct GitLabFake {
    state: Arc<Mutex<State>>,
    url: String,
    server: fake_server::Server,
}

impl GitLabFake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let server = server::spawn(state.clone()).await;
        Self {
            state,
            url: format!("http://{}", server.addr),
            server,
        }
    }

    /// The instance's base URL, `http://127.0.0.1:PORT` (what python-gitlab takes).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// `http://127.0.0.1:PORT/api/v4`
    pub fn api_url(&self) -> String {
        format!("{}/api/v4", self.url)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A private project, addressed by `id` or by its URL-encoded path (`team%2Fapp`).
    pub fn add_project(&self, id: u64, path_with_namespace: &str) {
        self.state().directory.projects.insert(
            id,
            Project {
                id,
                path_with_namespace: path_with_namespace.to_owned(),
            },
        );
    }

    /// A private group, addressed by `id` or by its URL-encoded full path.
    pub fn add_group(&self, id: u64, full_path: &str) {
        self.state().directory.groups.insert(
            id,
            Group {
                id,
                full_path: full_path.to_owned(),
            },
        );
    }

    /// An active access token with `role` on every project and group (replaces an earlier one).
    pub fn add_token(&self, token: &str, role: Role) {
        self.state()
            .tokens
            .insert(token.to_owned(), Token::new(role));
    }

    /// `token`'s role on one project or group, over the role it has everywhere.
    pub fn grant(&self, token: &str, scope: Scope, role: Role) {
        self.token(token, |t| {
            t.grants.insert(scope, role);
        });
    }

    /// From now on `token` gets 401 `Token was revoked`.
    pub fn revoke_token(&self, token: &str) {
        self.token(token, |t| t.state = TokenState::Revoked);
    }

    /// From now on `token` gets 401 `Token is expired`.
    pub fn expire_token(&self, token: &str) {
        self.token(token, |t| t.state = TokenState::Expired);
    }

    fn token(&self, token: &str, change: impl FnOnce(&mut Token)) {
        let mut state = self.state();
        let found = state.tokens.get_mut(token);
        change(found.unwrap_or_else(|| panic!("no token {token:?}: add_token it first")));
    }

    /// At most `max_requests` requests per `window` (whole seconds, at least one); more are 429.
    pub fn set_rate_limit(&self, max_requests: u64, window: Duration) {
        self.state().rate_limit = Some(RateLimit::new(max_requests, window));
    }

    /// No rate limit (the default), and no `RateLimit-*` headers.
    pub fn clear_rate_limit(&self) {
        self.state().rate_limit = None;
    }

    /// Every request so far, in order, with the status it got.
    pub fn requests(&self) -> Vec<Seen> {
        self.state().requests.clone()
    }

    pub fn reset_requests(&self) {
        self.state().requests.clear();
    }

    /// The variable `key` of `environment_scope`, everything included (a hidden one's value too).
    pub fn variable(&self, scope: Scope, key: &str, environment_scope: &str) -> Option<Value> {
        let state = self.state();
        state
            .variables
            .list(scope)
            .iter()
            .find(|v| v.key == key && v.environment_scope == environment_scope)
            .map(|v| v.to_full())
    }

    /// All variables of a project or group in creation order, everything included.
    pub fn variables(&self, scope: Scope) -> Vec<Value> {
        let state = self.state();
        state
            .variables
            .list(scope)
            .iter()
            .map(|v| v.to_full())
            .collect()
    }

    /// Someone edits a variable in the UI: sets the value of `key` in `environment_scope`, or
    /// adds it (`env_var`, unprotected, unmasked). Validated as the API validates; panics if
    /// GitLab would refuse it (a masked variable's value that cannot be masked, ...).
    pub fn set_variable(&self, scope: Scope, key: &str, environment_scope: &str, value: &str) {
        let changes = Changes {
            value: Some(value.to_owned()),
            ..Changes::default()
        };
        let mut state = self.state();
        assert!(state.directory.exists(scope), "no such {scope:?}");
        let result = match state.variables.find(scope, key, Some(environment_scope)) {
            Ok(index) => state.variables.update(scope, index, &changes),
            Err(_) => state.variables.create(
                scope,
                &Changes {
                    key: Some(key.to_owned()),
                    environment_scope: Some(environment_scope.to_owned()),
                    ..changes
                },
            ),
        };
        if let Err(reply) = result {
            panic!(
                "set_variable {key} ({environment_scope}): {}",
                reply.json_body()
            );
        }
    }

    /// Adds a variable as `POST .../variables` would with the JSON body `attributes`; returns it
    /// as the API shows it, and panics if GitLab would refuse it.
    pub fn insert_variable(&self, scope: Scope, attributes: Value) -> Value {
        let mut state = self.state();
        assert!(state.directory.exists(scope), "no such {scope:?}");
        let params = Params::from_json(attributes.clone());
        let created = Changes::from_params(&params, true)
            .and_then(|changes| state.variables.create(scope, &changes));
        match created {
            Ok(variable) => variable.to_api(),
            Err(reply) => panic!("insert_variable {attributes}: {}", reply.json_body()),
        }
    }

    /// Removes the variable `key` of `environment_scope`; false if there was none.
    pub fn delete_variable(&self, scope: Scope, key: &str, environment_scope: &str) -> bool {
        let mut state = self.state();
        match state.variables.find(scope, key, Some(environment_scope)) {
            Ok(index) => {
                state.variables.remove(scope, index);
                true
            }
            Err(_) => false,
        }
    }
}
