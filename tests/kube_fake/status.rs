//! Replies and the `Status` error bodies shaped as the Kubernetes API server sends them.

use serde_json::{Map, Value, json};

/// One HTTP answer of the fake: a status code, a JSON body, and extra headers.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self::with_code(200, body)
    }

    pub fn created(body: Value) -> Self {
        Self::with_code(201, body)
    }

    pub fn with_code(code: u16, body: Value) -> Self {
        Self {
            code,
            body,
            headers: Vec::new(),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The Status message of a failure, for panics of the seeding API.
    pub fn message(&self) -> String {
        self.body["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// What a Status names: the resource (plural, with its API group) and the object's name.
#[derive(Clone, Debug)]
pub struct Target {
    pub group: &'static str,
    pub resource: String,
    pub name: String,
}

impl Target {
    pub fn new(group: &'static str, resource: &str, name: &str) -> Self {
        Self {
            group,
            resource: resource.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `secrets`, `deployments.apps`: how messages name the resource.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `secrets "NAME"`, or just `secrets` for a collection.
    fn subject(&self) -> String {
        if self.name.is_empty() {
            self.qualified()
        } else {
            format!("{} {}", self.qualified(), quote(&self.name))
        }
    }

    fn details(&self) -> Value {
        let mut details = Map::new();
        if !self.name.is_empty() {
            details.insert("name".into(), json!(self.name));
        }
        if !self.group.is_empty() {
            details.insert("group".into(), json!(self.group));
        }
        details.insert("kind".into(), json!(self.resource));
        Value::Object(details)
    }
}

/// One `details.causes` entry of a 422 `Invalid` (or a 409 apply conflict).
#[derive(Clone, Debug)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    /// The text after `FIELD: `, e.g. `Invalid value: "x": must be ...`.
    pub message: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: &str, why: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}: {why}", quote(value)),
        }
    }

    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message,
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: must have at most {max} bytes"),
        }
    }

    pub fn forbidden(field: impl Into<String>, why: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {why}"),
        }
    }

    fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }
}

/// A string quoted as Go's `%q` does for the printable strings these messages hold.
pub fn quote(value: &str) -> String {
    serde_json::to_string(value).expect("a string serializes")
}

pub fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Reply {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    body["code"] = json!(code);
    Reply::with_code(code, body)
}

pub fn unauthorized() -> Reply {
    failure(401, "Unauthorized", "Unauthorized", None)
}

pub fn forbidden(target: &Target, user: &str, verb: &str, namespace: &str) -> Reply {
    let message = format!(
        "{} is forbidden: User {} cannot {verb} resource {} in API group {} in the namespace {}",
        target.subject(),
        quote(user),
        quote(&target.resource),
        quote(target.group),
        quote(namespace),
    );
    failure(403, "Forbidden", &message, Some(target.details()))
}

pub fn not_found(target: &Target) -> Reply {
    let message = format!("{} not found", target.subject());
    failure(404, "NotFound", &message, Some(target.details()))
}

/// A path the fake does not serve, answered as the API server answers an unknown one.
pub fn no_such_path() -> Reply {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

pub fn already_exists(target: &Target) -> Reply {
    let message = format!("{} already exists", target.subject());
    failure(409, "AlreadyExists", &message, Some(target.details()))
}

/// What a stale `metadata.resourceVersion` gets.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

pub fn conflict(target: &Target, why: &str) -> Reply {
    let message = format!(
        "Operation cannot be fulfilled on {}: {why}",
        target.subject()
    );
    failure(409, "Conflict", &message, Some(target.details()))
}

/// A failed server-side apply: one cause per conflicting field. Like the API server's, its
/// `details` hold only the causes.
pub fn apply_conflict(message: &str, causes: &[Cause]) -> Reply {
    let causes: Vec<Value> = causes.iter().map(Cause::to_json).collect();
    failure(409, "Conflict", message, Some(json!({ "causes": causes })))
}

/// 422: `KIND "NAME" is invalid: FIELD: MESSAGE`, or `[..., ...]` for several causes.
pub fn invalid(kind: &str, group: &'static str, name: &str, causes: &[Cause]) -> Reply {
    let each: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let listed = if each.len() == 1 {
        each[0].clone()
    } else {
        format!("[{}]", each.join(", "))
    };
    let qualified_kind = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let message = format!("{qualified_kind} {} is invalid: {listed}", quote(name));
    let mut details = Target::new(group, kind, name).details();
    details["causes"] = causes.iter().map(Cause::to_json).collect();
    failure(422, "Invalid", &message, Some(details))
}

pub fn bad_request(message: &str) -> Reply {
    failure(400, "BadRequest", message, None)
}

pub fn unsupported_media_type(message: &str) -> Reply {
    failure(415, "UnsupportedMediaType", message, None)
}

pub fn method_not_allowed(message: &str) -> Reply {
    failure(405, "MethodNotAllowed", message, Some(json!({})))
}

pub fn too_large(limit: usize) -> Reply {
    let message = format!("Request entity too large: limit is {limit}");
    failure(413, "RequestEntityTooLarge", &message, None)
}

/// What `set_fail_next` makes the next requests get: 429 comes with `Retry-After: 1`.
pub fn injected(code: u16) -> Reply {
    match code {
        429 => {
            let mut reply = failure(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                Some(json!({"retryAfterSeconds": 1})),
            );
            reply.headers.push(("Retry-After", "1".into()));
            reply
        }
        500 => failure(
            500,
            "InternalError",
            "Internal error occurred: injected by the fake",
            Some(json!({"causes": [{"message": "injected by the fake"}]})),
        ),
        503 => failure(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            Some(json!({})),
        ),
        504 => failure(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
            Some(json!({})),
        ),
        _ => failure(code, "Unknown", "injected by the fake", Some(json!({}))),
    }
}

/// The answer to a DELETE that removed the object at once.
pub fn deleted(target: &Target, uid: &str) -> Reply {
    let mut details = target.details();
    details["uid"] = json!(uid);
    Reply::ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }))
}
