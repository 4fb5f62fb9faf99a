//! The userpass calls this rotator makes: read a user, set its password, log in as it, and revoke
//! the token that login made; each error names the method, URL and status.

use opsync_rotator_kit::http::{self, Endpoint, Request, Response, encode, encode_path};
use opsync_rotator_kit::{PluginError, Secret, permanent, with_retry_hint};
use serde_json::{Value, json};

/// One userpass auth mount and the admin token that manages it.
pub struct Userpass {
    pub address: Endpoint,
    /// Revealed once per call; never logged (the struct has no `Debug`).
    pub token: String,
    pub namespace: Option<String>,
    pub mount: String,
}

impl Userpass {
    /// `/v1/auth/<mount>/users/<user>`.
    pub fn user_path(&self, user: &str) -> String {
        format!(
            "/v1/auth/{}/users/{}",
            encode_path(&self.mount),
            encode(user)
        )
    }

    /// `/v1/auth/<mount>/users/<user>/password`.
    pub fn password_path(&self, user: &str) -> String {
        format!("{}/password", self.user_path(user))
    }

    /// `/v1/auth/<mount>/login/<user>`.
    pub fn login_path(&self, user: &str) -> String {
        format!(
            "/v1/auth/{}/login/{}",
            encode_path(&self.mount),
            encode(user)
        )
    }

    /// Whether `user` exists in the mount (which also proves the admin token may read it).
    pub fn user_exists(&self, user: &str) -> Result<bool, PluginError> {
        let path = self.user_path(user);
        let response = self.call("GET", &path, None, true)?;
        match response.status {
            404 => Ok(false),
            _ => self.ok("GET", &path, &response).map(|()| true),
        }
    }

    /// Sets `user`'s password. Setting the same password again changes nothing, so replays are
    /// harmless.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), PluginError> {
        let path = self.password_path(user);
        let response = self.call("POST", &path, Some(password_body(password)), true)?;
        self.ok("POST", &path, &response)
    }

    /// Logs in as `user` with `password`; the token it gets back, as a secret. A refused login
    /// is `permanent`: the password does not work.
    pub fn login(&self, user: &str, password: &str) -> Result<Secret, PluginError> {
        let path = self.login_path(user);
        let response = self.call("POST", &path, Some(password_body(password)), false)?;
        if !response.is_success() {
            let error = login_error(
                &format!(
                    "logging in as `{user}` with the pending password failed: POST {}{path}",
                    self.address.origin()
                ),
                response.status,
                &detail(&response),
            );
            return Err(with_retry_hint(error, response.retry_after()));
        }
        let token = response
            .json()
            .and_then(|v| v["auth"]["client_token"].as_str().map(String::from))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                permanent(format!(
                    "POST {}{path}: the login answered no client token",
                    self.address.origin()
                ))
            })?;
        Ok(Secret::new("userpass login token", &token))
    }

    /// Revokes a token with itself (`POST /v1/auth/token/revoke-self`).
    pub fn revoke_self(&self, token: &str) -> Result<(), PluginError> {
        let path = "/v1/auth/token/revoke-self";
        let mut headers = self.headers(None);
        headers.push(("x-vault-token".into(), token.to_string()));
        let response = http::send(Request {
            method: "POST",
            endpoint: &self.address,
            path: path.to_string(),
            headers,
            body: None,
        })?;
        self.ok("POST", path, &response)
    }

    fn headers(&self, admin_token: Option<&str>) -> Vec<(String, String)> {
        let mut headers = vec![("x-vault-request".to_string(), "true".to_string())];
        if let Some(token) = admin_token {
            headers.push(("x-vault-token".into(), token.to_string()));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("x-vault-namespace".into(), ns.clone()));
        }
        headers
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        as_admin: bool,
    ) -> Result<Response, PluginError> {
        let mut headers = self.headers(as_admin.then_some(self.token.as_str()));
        let body = body.map(|b| {
            headers.push(("content-type".into(), "application/json".into()));
            b.to_string().into_bytes()
        });
        http::send(Request {
            method,
            endpoint: &self.address,
            path: path.to_string(),
            headers,
            body,
        })
    }

    /// Ok for a 2xx status, else the error for it, naming method, URL and status.
    fn ok(&self, method: &str, path: &str, response: &Response) -> Result<(), PluginError> {
        if response.is_success() {
            return Ok(());
        }
        Err(response.error(
            &format!("{method} {}{path}", self.address.origin()),
            &detail(response),
        ))
    }
}

fn password_body(password: &str) -> Value {
    json!({ "password": password })
}

/// The error for a refused login: throttling and server errors are worth retrying, anything else
/// means the password does not work (`permanent`).
pub fn login_error(what: &str, status: u16, detail: &str) -> PluginError {
    match http::status_error(what, status, detail) {
        PluginError::Misconfigured(msg) => permanent(msg),
        other => other,
    }
}

/// OpenBao's `{"errors": [...]}` joined; these name paths and reasons, never values.
fn detail(response: &Response) -> String {
    response.json().map_or_else(String::new, |v| errors_of(&v))
}

pub fn errors_of(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn userpass(mount: &str) -> Userpass {
        Userpass {
            address: Endpoint::parse("address", "http://127.0.0.1:8200").expect("valid"),
            token: "root".into(),
            namespace: None,
            mount: mount.into(),
        }
    }

    #[test]
    fn paths_encode_mount_and_user() {
        let up = userpass("userpass");
        assert_eq!(up.user_path("alice"), "/v1/auth/userpass/users/alice");
        assert_eq!(
            up.password_path("alice"),
            "/v1/auth/userpass/users/alice/password"
        );
        assert_eq!(up.login_path("alice"), "/v1/auth/userpass/login/alice");
        let nested = userpass("team/up");
        assert_eq!(
            nested.login_path("a b/c"),
            "/v1/auth/team/up/login/a%20b%2Fc"
        );
    }

    #[test]
    fn bodies_and_error_details() {
        assert_eq!(password_body("p\"w").to_string(), r#"{"password":"p\"w"}"#);
        assert_eq!(
            errors_of(
                &json!({ "errors": ["1 error occurred:\n\t* username does not exist\n\n", "x"] })
            ),
            "1 error occurred:\n\t* username does not exist; x"
        );
        assert_eq!(errors_of(&json!({ "data": {} })), "");
    }

    #[test]
    fn refused_logins_are_permanent_unless_transient() {
        assert!(matches!(
            login_error("login", 400, "invalid username or password"),
            PluginError::Permanent(m) if m == "login: status 400: invalid username or password"
        ));
        assert!(matches!(
            login_error("login", 403, ""),
            PluginError::Permanent(_)
        ));
        assert!(matches!(
            login_error("login", 429, ""),
            PluginError::Retryable(_)
        ));
        assert!(matches!(
            login_error("login", 503, ""),
            PluginError::Retryable(_)
        ));
    }
}
