//! Credentials: tokens and their grants, GitHub Apps, RS256 JWTs, installation access tokens.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};

use super::Grant;
use super::api::{Request, State};
use super::clock;
use super::objects::Repo;
use super::reply::{REST_DOCS, Reply};

/// How long an installation access token lives.
const INSTALLATION_TOKEN_TTL: i64 = 3600;

/// The furthest a JWT's `exp` may be ahead of the fake's clock (GitHub: 10 minutes).
const JWT_MAX_AHEAD: i64 = 600;

/// How far `iat` may be before `exp`: 10 minutes, plus the 60 s of backdating GitHub's docs
/// recommend against clock drift.
const JWT_MAX_LIFETIME: i64 = 600 + 60;

/// How far in the future `iat` may be (clock drift between client and fake; both are local).
const JWT_IAT_SKEW: i64 = 30;

const UNDECODABLE_JWT: &str = "A JSON web token could not be decoded";

const ACCESS_TOKENS_DOCS: &str =
    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";

/// What a credential may do with one repository or organisation, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Nothing: the repository is invisible (404), the organisation's secrets are 403.
    None,
    /// Sees the repository (GET), not its secrets (403).
    Metadata,
    /// Lists and reads secret metadata and public keys; writes are 403.
    Read,
    /// Everything.
    Write,
}

/// Lower-cased repository full names and organisation logins -> access.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    pub repos: BTreeMap<String, Access>,
    pub orgs: BTreeMap<String, Access>,
}

impl Grants {
    pub fn new(grants: &[Grant]) -> Self {
        let mut out = Self::default();
        for grant in grants {
            let (map, key, access) = match *grant {
                Grant::Repo(r) => (&mut out.repos, r, Access::Write),
                Grant::RepoRead(r) => (&mut out.repos, r, Access::Read),
                Grant::RepoMetadata(r) => (&mut out.repos, r, Access::Metadata),
                Grant::Org(o) => (&mut out.orgs, o, Access::Write),
                Grant::OrgRead(o) => (&mut out.orgs, o, Access::Read),
            };
            let entry = map.entry(key.to_lowercase()).or_insert(access);
            *entry = (*entry).max(access);
        }
        out
    }

    pub fn repo(&self, full_name_lower: &str) -> Access {
        self.repos
            .get(full_name_lower)
            .copied()
            .unwrap_or(Access::None)
    }

    pub fn org(&self, login_lower: &str) -> Access {
        self.orgs.get(login_lower).copied().unwrap_or(Access::None)
    }

    /// The `permissions` of an installation (token) holding these grants.
    fn permissions(&self) -> Value {
        let level = |access: Option<Access>| match access {
            Some(Access::Write) => Some("write"),
            Some(Access::Read) => Some("read"),
            _ => None,
        };
        let mut permissions = json!({"metadata": "read"});
        if let Some(level) = level(self.repos.values().copied().max()) {
            permissions["secrets"] = json!(level);
            permissions["dependabot_secrets"] = json!(level);
            permissions["environments"] = json!(level);
        }
        if let Some(level) = level(self.orgs.values().copied().max()) {
            permissions["organization_secrets"] = json!(level);
        }
        permissions
    }
}

/// Who a token is.
#[derive(Clone, Debug)]
pub enum Holder {
    /// A personal access token of user `user_id`.
    Pat { user_id: u64 },
    /// An installation access token (`ghs_...`), valid until `expires_at` (Unix seconds) or
    /// until [`State::expire_installation_tokens`].
    Installation {
        installation_id: u64,
        expires_at: i64,
        expired: bool,
    },
}

/// A token GitHub knows.
#[derive(Clone, Debug)]
pub struct Principal {
    pub holder: Holder,
    pub grants: Grants,
}

impl Principal {
    fn valid(&self) -> bool {
        match self.holder {
            Holder::Pat { .. } => true,
            Holder::Installation {
                expires_at,
                expired,
                ..
            } => !expired && clock::now() < expires_at,
        }
    }

    /// Whose budget a request spends, as rate-limit messages name it.
    pub fn subject(&self) -> String {
        match self.holder {
            Holder::Pat { user_id } => format!("user ID {user_id}"),
            Holder::Installation {
                installation_id, ..
            } => format!("installation ID {installation_id}"),
        }
    }

    /// The 403 message for a resource this kind of token may not touch.
    pub fn not_accessible(&self) -> &'static str {
        match self.holder {
            Holder::Pat { .. } => "Resource not accessible by personal access token",
            Holder::Installation { .. } => "Resource not accessible by integration",
        }
    }
}

/// A GitHub App: its id and the public half of its RS256 key.
pub struct App {
    pub app_id: u64,
    pub key: DecodingKey,
}

/// An installation of an App, with the repositories and organisations it was granted.
#[derive(Clone, Debug)]
pub struct Installation {
    pub id: u64,
    pub app_id: u64,
    pub grants: Grants,
}

/// The credential of `Authorization: Bearer X` or `Authorization: token X`.
pub fn credential(authorization: &str) -> Option<&str> {
    let (scheme, value) = authorization.trim().split_once(' ')?;
    let scheme_ok = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    let value = value.trim();
    (scheme_ok && !value.is_empty()).then_some(value)
}

/// A fresh `ghs_` token.
fn installation_token() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(36)
        .map(char::from)
        .collect();
    format!("ghs_{random}")
}

/// The app id a JWT's `iss` names (a number, or the number as a string), read before checking
/// the signature, as GitHub does to pick the key.
fn claimed_app_id(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    match &claims["iss"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Checks a JWT as GitHub does: RS256, signed by the app's key, `iat` not in the future, `exp`
/// in the future but at most 10 minutes ahead (and at most 11 minutes after `iat`).
fn verify_jwt(app: &App, jwt: &str) -> Result<(), &'static str> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| UNDECODABLE_JWT)?;
    if header.alg != Algorithm::RS256 {
        return Err(UNDECODABLE_JWT);
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(jwt, &app.key, &validation)
        .map_err(|_| UNDECODABLE_JWT)?
        .claims;
    let Some(iat) = claims["iat"].as_i64() else {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        );
    };
    let Some(exp) = claims["exp"].as_i64() else {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        );
    };
    let now = clock::now();
    if iat > now + JWT_IAT_SKEW {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        );
    }
    if exp <= now || exp <= iat {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        );
    }
    if exp > now + JWT_MAX_AHEAD || exp - iat > JWT_MAX_LIFETIME {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    Ok(())
}

impl State {
    /// The token of a request to a token-authenticated endpoint, or the 401.
    pub fn authenticate(&self, request: &Request) -> Result<Principal, Reply> {
        if request.authorization.trim().is_empty() {
            return Err(Reply::requires_authentication());
        }
        let principal = credential(&request.authorization)
            .and_then(|token| self.tokens.get(token))
            .filter(|p| p.valid());
        principal.cloned().ok_or_else(Reply::bad_credentials)
    }

    /// The app a JWT-authenticated request (`Authorization: Bearer <JWT>`) comes from, or the 401.
    pub fn authenticate_app(&self, request: &Request) -> Result<u64, Reply> {
        if request.authorization.trim().is_empty() {
            return Err(Reply::requires_authentication());
        }
        let undecodable = || Reply::error(401, UNDECODABLE_JWT, REST_DOCS);
        let jwt = credential(&request.authorization).ok_or_else(undecodable)?;
        let app_id = claimed_app_id(jwt).ok_or_else(undecodable)?;
        let app = self.apps.get(&app_id).ok_or_else(undecodable)?;
        verify_jwt(app, jwt).map_err(|message| Reply::error(401, message, REST_DOCS))?;
        Ok(app_id)
    }

    /// `POST /app/installations/{installation_id}/access_tokens` by app `app_id`: a fresh
    /// installation token with the installation's grants (the body's narrowing is ignored).
    pub fn mint_installation_token(&mut self, app_id: u64, installation_id: u64) -> Reply {
        let Some(installation) = self
            .installations
            .get(&installation_id)
            .filter(|i| i.app_id == app_id)
            .cloned()
        else {
            return Reply::not_found(ACCESS_TOKENS_DOCS);
        };
        let token = installation_token();
        let expires_at = clock::now() + INSTALLATION_TOKEN_TTL;
        let permissions = installation.grants.permissions();
        self.tokens.insert(
            token.clone(),
            Principal {
                holder: Holder::Installation {
                    installation_id,
                    expires_at,
                    expired: false,
                },
                grants: installation.grants,
            },
        );
        Reply::json(
            201,
            json!({
                "token": token,
                "expires_at": clock::iso(expires_at),
                "permissions": permissions,
                "repository_selection": "selected",
            }),
        )
    }

    /// `GET /repos/{owner}/{repo}/installation` or `GET /orgs/{org}/installation` by app
    /// `app_id`: its installation that was granted the repository or organisation.
    pub fn find_installation(&self, app_id: u64, repo: Option<&Repo>, org: &str) -> Reply {
        let found = self.installations.values().find(|i| {
            i.app_id == app_id
                && match repo {
                    Some(repo) => i.grants.repo(&repo.full_name.to_lowercase()) > Access::None,
                    None => i.grants.org(&org.to_lowercase()) > Access::None,
                }
        });
        let Some(installation) = found else {
            return Reply::not_found(if repo.is_some() {
                "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"
            } else {
                "https://docs.github.com/rest/apps/apps#get-an-organization-installation-for-the-authenticated-app"
            });
        };
        let login = repo.map(Repo::owner).unwrap_or(org);
        let account_type = if self.orgs.contains_key(&login.to_lowercase()) {
            "Organization"
        } else {
            "User"
        };
        Reply::ok(json!({
            "id": installation.id,
            "app_id": installation.app_id,
            "account": {"login": login, "type": account_type},
            "target_type": account_type,
            "repository_selection": "selected",
            "access_tokens_url": format!(
                "{}/app/installations/{}/access_tokens",
                self.base_url, installation.id
            ),
            "permissions": installation.grants.permissions(),
        }))
    }

    /// Every installation token minted so far answers 401 from now on.
    pub fn expire_installation_tokens(&mut self) {
        for principal in self.tokens.values_mut() {
            if let Holder::Installation { expired, .. } = &mut principal.holder {
                *expired = true;
            }
        }
    }
}
