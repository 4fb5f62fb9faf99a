//! Access tokens and roles: who a request is, and what its role lets it do where.

use std::collections::BTreeMap;

use super::reply::{self, Reply};
use super::resources::Scope;

/// A member's role in a project or group, GitLab's access levels in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Not a member: the project or group answers 404, as a private one does.
    NoAccess,
    Guest,
    Reporter,
    Developer,
    /// Manages project variables (`admin_cicd_variables` on a project).
    Maintainer,
    /// Also manages group variables (`admin_cicd_variables` on a group is the Owner's).
    Owner,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Revoked,
    Expired,
}

/// A personal access token: one role everywhere, with per-project/group overrides.
#[derive(Clone, Debug)]
pub struct Token {
    pub role: Role,
    pub grants: BTreeMap<Scope, Role>,
    pub state: TokenState,
}

impl Token {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            grants: BTreeMap::new(),
            state: TokenState::Active,
        }
    }

    pub fn role_on(&self, scope: Scope) -> Role {
        self.grants.get(&scope).copied().unwrap_or(self.role)
    }
}

/// The token a request authenticates with: `Ok(None)` for none at all, 401 for one GitLab does
/// not know (`{"message":"401 Unauthorized"}`), has revoked or saw expire (rack-oauth2's
/// `invalid_token` bodies, as `lib/api/api_guard.rb` answers them).
pub fn authenticate(
    tokens: &BTreeMap<String, Token>,
    credential: Option<String>,
) -> Result<Option<Token>, Reply> {
    let Some(credential) = credential else {
        return Ok(None);
    };
    match tokens.get(&credential) {
        None => Err(reply::unauthorized()),
        Some(token) => match token.state {
            TokenState::Active => Ok(Some(token.clone())),
            TokenState::Revoked => Err(reply::invalid_token(
                "Token was revoked. You have to re-authorize from the user.",
            )),
            TokenState::Expired => Err(reply::invalid_token(
                "Token is expired. You can either do re-authorization or token refresh.",
            )),
        },
    }
}

/// The role of `token` (anonymous: none) on `scope`.
pub fn role(token: Option<&Token>, scope: Scope) -> Role {
    token.map_or(Role::NoAccess, |t| t.role_on(scope))
}

/// The least role that manages the variables of `scope`.
pub fn variables_role(scope: Scope) -> Role {
    match scope {
        Scope::Project(_) => Role::Maintainer,
        Scope::Group(_) => Role::Owner,
    }
}
