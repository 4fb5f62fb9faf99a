//! A target's secrets endpoints: its public key; write, read and delete one secret.

use opsync_destination_kit::http::Response;
use opsync_destination_kit::{PluginError, misconfigured, retryable};

use crate::github::{self, GitHub};
use crate::seal::TargetKey;
use crate::target::Target;

/// A target's secrets, reached with one bearer token.
pub(crate) struct Secrets<'a> {
    pub(crate) github: &'a GitHub,
    pub(crate) target: &'a Target,
    /// Never logged, never in a message.
    pub(crate) token: &'a str,
}

impl Secrets<'_> {
    /// The target's public key, which values are sealed to.
    pub(crate) fn public_key(&self) -> Result<TargetKey, PluginError> {
        let path = self.target.public_key_path();
        let response = self.github.send("GET", &path, self.token, None)?;
        let what = format!("cannot read the public key of {}", self.target.describe());
        if response.status == 404 {
            return Err(not_found(self.target, "GET", &path, &response));
        }
        let body = github::success("GET", &path, &what, response)?;
        TargetKey::from_json(&format!("{what}: GET {path}"), &body)
    }

    /// Creates or updates the secret `name` with `sealed` (sealed to `key`).
    pub(crate) fn put(&self, name: &str, sealed: &str, key: &TargetKey) -> Result<(), PluginError> {
        let path = self.target.secret_path(name);
        let body = self.target.put_body(sealed, &key.key_id);
        let response = self.github.send("PUT", &path, self.token, Some(&body))?;
        let what = format!("cannot write secret {name} of {}", self.target.describe());
        match response.status {
            404 => Err(not_found(self.target, "PUT", &path, &response)),
            _ => github::success("PUT", &path, &what, response).map(|_| ()),
        }
    }

    /// When the secret `name` was last updated (GitHub's `updated_at`; it never returns values);
    /// none when there is no such secret.
    pub(crate) fn updated_at(&self, name: &str) -> Result<Option<String>, PluginError> {
        let path = self.target.secret_path(name);
        let response = self.github.send("GET", &path, self.token, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let what = format!("cannot read secret {name} of {}", self.target.describe());
        let body = github::success("GET", &path, &what, response)?;
        match body["updated_at"].as_str().or(body["created_at"].as_str()) {
            Some(at) if !at.is_empty() => Ok(Some(at.to_string())),
            _ => Err(misconfigured(format!(
                "{what}: GET {path}: the answer has no `updated_at`; is `api-url` GitHub's REST \
                 API?"
            ))),
        }
    }

    /// `updated_at` of a secret just written: a 404 now means it went away in between, which
    /// a retry writes again.
    pub(crate) fn written_at(&self, name: &str) -> Result<String, PluginError> {
        self.updated_at(name)?.ok_or_else(|| {
            retryable(format!(
                "secret {name} of {} was written, but a read right after found none",
                self.target.describe()
            ))
        })
    }

    /// Deletes the secret `name`. False when there was none (already gone).
    pub(crate) fn delete(&self, name: &str) -> Result<bool, PluginError> {
        let path = self.target.secret_path(name);
        let response = self.github.send("DELETE", &path, self.token, None)?;
        let what = format!("cannot delete secret {name} of {}", self.target.describe());
        match response.status {
            404 => Ok(false),
            _ => github::success("DELETE", &path, &what, response).map(|_| true),
        }
    }
}

/// A 404 on the public key or a write: the target does not exist, or the token cannot see it.
/// `misconfigured`: the route pauses until the config or the token's access is fixed.
pub(crate) fn not_found(
    target: &Target,
    method: &str,
    path: &str,
    response: &Response,
) -> PluginError {
    let message = github::message(response);
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    misconfigured(format!(
        "{} not found at GitHub ({method} {path}: status 404{detail}): check {} (or the token \
         cannot see it)",
        target.describe(),
        target.keys()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_target_names_itself_and_its_keys() {
        let target = Target::Environment {
            owner: "acme".into(),
            repo: "api".into(),
            environment: "prod".into(),
        };
        let response = Response {
            status: 404,
            headers: Vec::new(),
            body: br#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#
                .to_vec(),
        };
        let path = target.public_key_path();
        let err = not_found(&target, "GET", &path, &response);
        assert!(
            matches!(&err, PluginError::Misconfigured(m) if m == &format!(
                "environment `prod` of repository acme/api not found at GitHub (GET {path}: \
                 status 404: Not Found): check `repository` and `environment` (or the token \
                 cannot see it)"
            )),
            "{err:?}"
        );
    }
}
