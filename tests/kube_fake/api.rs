//! The fake's state and request handling: fault injection, authentication, RBAC, routing.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::discovery;
use super::secret::Secret;
use super::status::{self, Reply, Target};
use super::workload;

/// One HTTP request as the handlers see it.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub accept: String,
    pub authorization: String,
    pub user_agent: String,
    /// `127.0.0.1:PORT`, for `/api`'s server address.
    pub host: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }

    /// `?dryRun=All`: validate and answer, store nothing.
    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// `?fieldManager=`, else the User-Agent's product as the API server defaults it.
    pub fn manager(&self) -> String {
        match self.param("fieldManager") {
            Some(manager) if !manager.is_empty() => manager.to_owned(),
            _ => match self.user_agent.split('/').next() {
                Some(product) if !product.is_empty() => product.to_owned(),
                _ => "unknown".to_owned(),
            },
        }
    }

    /// The media type of the body, without parameters.
    pub fn media_type(&self) -> &str {
        self.content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
    }

    pub fn json_body(&self) -> Result<Value, Reply> {
        serde_json::from_slice(&self.body).map_err(|e| {
            status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
        })
    }
}

/// One RBAC grant: `user` may do `verbs` on `resource` in `namespace` (`*`: any verb, namespace).
#[derive(Debug)]
pub struct Rule {
    pub user: String,
    pub verbs: Vec<String>,
    pub resource: String,
    pub namespace: String,
}

/// Everything the fake knows.
#[derive(Debug)]
pub struct State {
    /// The last resourceVersion handed out (one counter for all objects, as etcd's).
    pub revision: u64,
    /// Bearer token -> user name.
    pub tokens: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    /// (namespace, name) -> Secret.
    pub secrets: BTreeMap<(String, String), Secret>,
    /// (resource, namespace, name) -> workload object as GET returns it.
    pub workloads: BTreeMap<(String, String, String), Value>,
    /// (method, path) of every request, in arrival order.
    pub requests: Vec<(String, String)>,
    /// How many of the next requests to fail, and with which HTTP status.
    pub fail_next: (u32, u16),
}

impl State {
    pub fn new() -> Self {
        Self {
            revision: 1000,
            tokens: BTreeMap::new(),
            rules: Vec::new(),
            secrets: BTreeMap::new(),
            workloads: BTreeMap::new(),
            requests: Vec::new(),
            fail_next: (0, 0),
        }
    }

    pub fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// Answers one request: recorded, maybe failed on purpose, authenticated, authorized, served.
    pub fn handle(&mut self, request: &Request) -> Reply {
        self.requests
            .push((request.method.clone(), request.path.clone()));
        if self.fail_next.0 > 0 {
            self.fail_next.0 -= 1;
            return status::injected(self.fail_next.1);
        }
        let Some(user) = self.authenticate(request) else {
            return status::unauthorized();
        };
        self.route(request, &user)
    }

    fn authenticate(&self, request: &Request) -> Option<String> {
        let (scheme, token) = request.authorization.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.tokens.get(token.trim()).cloned()
    }

    fn route(&mut self, request: &Request, user: &str) -> Reply {
        let path = request.path.trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match segments.as_slice() {
            ["version"] => discovery_get(request, discovery::version()),
            ["api"] => discovery_get(request, discovery::api_versions(&request.host)),
            ["api", "v1"] => discovery_get(request, discovery::core_v1()),
            ["apis"] => discovery_get(request, discovery::api_groups()),
            ["apis", "apps"] => discovery_get(request, discovery::apps()),
            ["apis", "apps", "v1"] => discovery_get(request, discovery::apps_v1()),
            ["api", "v1", "namespaces", namespace, "secrets", rest @ ..] if rest.len() <= 1 => {
                let name = rest.first().copied();
                let target = Target::new("", "secrets", name.unwrap_or_default());
                match self.authorize(request, user, &target, namespace) {
                    Ok(verb) => self.secret_endpoint(request, namespace, name, verb),
                    Err(forbidden) => forbidden,
                }
            }
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                namespace,
                resource,
                rest @ ..,
            ] if workload::KINDS.contains(resource) && rest.len() <= 1 => {
                let name = rest.first().copied();
                let target = Target::new("apps", resource, name.unwrap_or_default());
                match self.authorize(request, user, &target, namespace) {
                    Ok(verb) => self.workload_endpoint(request, resource, namespace, name, verb),
                    Err(forbidden) => forbidden,
                }
            }
            _ => status::no_such_path(),
        }
    }

    /// The request's verb, if `user` may do it here; the 403 otherwise.
    fn authorize(
        &self,
        request: &Request,
        user: &str,
        target: &Target,
        namespace: &str,
    ) -> Result<&'static str, Reply> {
        let verb = verb(request, !target.name.is_empty());
        let allowed = self.rules.iter().any(|rule| {
            rule.user == user
                && rule.resource == target.resource
                && (rule.namespace == "*" || rule.namespace == namespace)
                && rule.verbs.iter().any(|v| v == "*" || v == verb)
        });
        if allowed {
            Ok(verb)
        } else {
            Err(status::forbidden(target, user, verb, namespace))
        }
    }
}

/// The Kubernetes verb of a request on a collection or (`named`) one object.
fn verb(request: &Request, named: bool) -> &'static str {
    match (request.method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) if request.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// Discovery documents answer GET only.
fn discovery_get(request: &Request, document: Value) -> Reply {
    if request.method == "GET" {
        Reply::ok(document)
    } else {
        status::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )
    }
}

/// A verb this fake does not serve on this resource.
pub fn unsupported(verb: &str, resource: &str) -> Reply {
    status::method_not_allowed(&format!(
        "the fake Kubernetes API server does not support {verb} on {resource}"
    ))
}

/// Now, as API timestamps are written (RFC 3339, seconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A fresh object UID (a random UUID).
pub fn new_uid() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The patch flavours the fake applies, from the request's Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn of(request: &Request) -> Result<Self, Reply> {
        match request.media_type() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" => Ok(Self::Apply),
            "application/json-patch+json" => Err(status::unsupported_media_type(
                "the fake Kubernetes API server does not implement JSON patch (application/json-patch+json); use a merge, strategic merge or apply patch",
            )),
            _ => Err(status::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            )),
        }
    }

    /// The PatchOptions checks: `fieldManager` is required for apply, `force` is only for apply.
    pub fn check_options(self, request: &Request) -> Result<(), Reply> {
        let (field, reason, detail) = match self {
            Self::Apply if request.param("fieldManager").is_none_or(str::is_empty) => (
                "fieldManager",
                "FieldValueRequired",
                "Required value: is required for apply patch",
            ),
            Self::Merge | Self::Strategic if request.param("force").is_some() => (
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
            ),
            _ => return Ok(()),
        };
        let message = format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {detail}");
        let cause = json!({"reason": reason, "message": detail, "field": field});
        let details = json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]});
        Err(status::failure(422, "Invalid", &message, Some(details)))
    }

    /// The body of a patch: JSON, which for apply is the JSON subset of YAML.
    pub fn body(self, request: &Request) -> Result<Value, Reply> {
        serde_json::from_slice(&request.body).map_err(|e| match self {
            Self::Apply => status::bad_request(&format!(
                "error decoding YAML: the fake Kubernetes API server reads apply configurations written as JSON (YAML's JSON subset) only: {e}"
            )),
            Self::Merge | Self::Strategic => {
                status::bad_request(&format!("error decoding patch: {e}"))
            }
        })
    }
}
