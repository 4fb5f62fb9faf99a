//! The fake's state and its request handling: rate limit, routing, authentication, endpoints.

use std::collections::BTreeMap;

use serde_json::Value;

use super::auth::{self, Role, Token};
use super::pagination::Paging;
use super::rate_limit::RateLimit;
use super::reply::{self, Reply};
use super::request::{Params, Request};
use super::resources::{Directory, Scope};
use super::variables::{Changes, Store};

/// One request the fake answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// As sent, percent-encoded, without the query.
    pub path: String,
    /// The raw query string (`filter%5Benvironment_scope%5D=production`).
    pub query: String,
    pub status: u16,
}

/// Everything the fake knows.
#[derive(Debug, Default)]
pub struct State {
    pub directory: Directory,
    pub tokens: BTreeMap<String, Token>,
    pub variables: Store,
    pub rate_limit: Option<RateLimit>,
    pub requests: Vec<Seen>,
}

/// Which endpoint a request is for.
enum Endpoint {
    Project(String),
    Group(String),
    List(Kind, String),
    Create(Kind, String),
    Get(Kind, String, String),
    Update(Kind, String, String),
    Delete(Kind, String, String),
}

#[derive(Clone, Copy)]
enum Kind {
    Project,
    Group,
}

fn route(method: &str, segments: &[String]) -> Option<Endpoint> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ["api", "v4", rest @ ..] = segments.as_slice() else {
        return None;
    };
    let (kind, rest) = match rest {
        ["projects", rest @ ..] => (Kind::Project, rest),
        ["groups", rest @ ..] => (Kind::Group, rest),
        _ => return None,
    };
    let endpoint = match (method, rest) {
        ("GET", [id]) => match kind {
            Kind::Project => Endpoint::Project(id.to_string()),
            Kind::Group => Endpoint::Group(id.to_string()),
        },
        ("GET", [id, "variables"]) => Endpoint::List(kind, id.to_string()),
        ("POST", [id, "variables"]) => Endpoint::Create(kind, id.to_string()),
        ("GET", [id, "variables", key]) => Endpoint::Get(kind, id.to_string(), key.to_string()),
        ("PUT", [id, "variables", key]) => Endpoint::Update(kind, id.to_string(), key.to_string()),
        ("DELETE", [id, "variables", key]) => {
            Endpoint::Delete(kind, id.to_string(), key.to_string())
        }
        _ => return None,
    };
    Some(endpoint)
}

impl State {
    /// Answers one request: counted by the rate limit, routed, authenticated, served, recorded.
    pub fn handle(&mut self, request: &Request) -> Reply {
        let credential = request.credential();
        let verdict = self
            .rate_limit
            .as_mut()
            .map(|limit| limit.observe(credential.is_some()));
        let mut reply = match &verdict {
            Some(v) if v.throttled => reply::throttled(),
            _ => self.serve(request, credential),
        };
        if let Some(verdict) = verdict {
            reply.headers.extend(verdict.headers);
        }
        self.requests.push(Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            status: reply.code,
        });
        reply
    }

    fn serve(&mut self, request: &Request, credential: Option<String>) -> Reply {
        let Some(endpoint) = route(&request.method, &request.segments()) else {
            return reply::route_not_found();
        };
        let token = match auth::authenticate(&self.tokens, credential) {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        let base_url = format!("http://{}", request.host);
        match endpoint {
            Endpoint::Project(id) => match self.find(Kind::Project, &id, token.as_ref()) {
                Ok(Scope::Project(n)) => {
                    let project = &self.directory.projects[&n];
                    Reply::ok(self.directory.project_json(project, &base_url))
                }
                Ok(_) => unreachable!("a project id"),
                Err(reply) => reply,
            },
            Endpoint::Group(id) => match self.find(Kind::Group, &id, token.as_ref()) {
                Ok(Scope::Group(n)) => {
                    let group = &self.directory.groups[&n];
                    Reply::ok(self.directory.group_json(group, &base_url))
                }
                Ok(_) => unreachable!("a group id"),
                Err(reply) => reply,
            },
            Endpoint::List(kind, id) => {
                self.with_variables(kind, &id, token, request, |state, scope, params| {
                    let paging = Paging::from_params(params)?;
                    let url = format!("{base_url}{}", request.path);
                    let mut link_params = params.texts();
                    link_params.insert("id".into(), id.clone());
                    let (page, headers) =
                        paging.apply(state.variables.list(scope), &url, link_params);
                    let mut reply =
                        Reply::ok(Value::Array(page.iter().map(|v| v.to_api()).collect()));
                    reply.headers.extend(headers);
                    Ok(reply)
                })
            }
            Endpoint::Create(kind, id) => {
                self.with_variables(kind, &id, token, request, |state, scope, params| {
                    let changes = Changes::from_params(params, true)?;
                    let variable = state.variables.create(scope, &changes)?;
                    Ok(Reply::created(variable.to_api()))
                })
            }
            Endpoint::Get(kind, id, key) => {
                self.with_variables(kind, &id, token, request, |state, scope, params| {
                    let index = state.find_variable(scope, &key, params)?;
                    Ok(Reply::ok(state.variables.get(scope, index).to_api()))
                })
            }
            Endpoint::Update(kind, id, key) => {
                self.with_variables(kind, &id, token, request, |state, scope, params| {
                    let changes = Changes::from_params(params, false)?;
                    let index = state.find_variable(scope, &key, params)?;
                    let variable = state.variables.update(scope, index, &changes)?;
                    Ok(Reply::ok(variable.to_api()))
                })
            }
            Endpoint::Delete(kind, id, key) => {
                self.with_variables(kind, &id, token, request, |state, scope, params| {
                    let index = state.find_variable(scope, &key, params)?;
                    state.variables.remove(scope, index);
                    Ok(Reply::no_content())
                })
            }
        }
    }

    /// The project or group `id` names, if `token` may see it (404 otherwise, as a private one).
    fn find(&self, kind: Kind, id: &str, token: Option<&Token>) -> Result<Scope, Reply> {
        let (scope, resource) = match kind {
            Kind::Project => (
                self.directory.project(id).map(|p| Scope::Project(p.id)),
                "Project",
            ),
            Kind::Group => (
                self.directory.group(id).map(|g| Scope::Group(g.id)),
                "Group",
            ),
        };
        match scope {
            Some(scope) if auth::role(token, scope) > Role::NoAccess => Ok(scope),
            _ => Err(reply::not_found(resource)),
        }
    }

    /// A variables endpoint: authenticated (401), its project or group found (404), the role
    /// checked (403), the parameters read, then `serve`.
    fn with_variables(
        &mut self,
        kind: Kind,
        id: &str,
        token: Option<Token>,
        request: &Request,
        serve: impl FnOnce(&mut Self, Scope, &Params) -> Result<Reply, Reply>,
    ) -> Reply {
        let Some(token) = token else {
            return reply::unauthorized();
        };
        let scope = match self.find(kind, id, Some(&token)) {
            Ok(scope) => scope,
            Err(reply) => return reply,
        };
        if token.role_on(scope) < auth::variables_role(scope) {
            return reply::forbidden();
        }
        let params = match Params::parse(request) {
            Ok(params) => params,
            Err(reply) => return reply,
        };
        serve(self, scope, &params).unwrap_or_else(|reply| reply)
    }

    fn find_variable(&self, scope: Scope, key: &str, params: &Params) -> Result<usize, Reply> {
        let mut errors = Vec::new();
        let filter = params.environment_scope_filter(&mut errors);
        if !errors.is_empty() {
            return Err(reply::bad_params(&errors));
        }
        self.variables.find(scope, key, filter.as_deref())
    }
}
