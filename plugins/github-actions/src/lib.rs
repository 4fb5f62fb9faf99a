//! The built-in `github-actions` destination: writes item field values as GitHub Actions secrets
//! through GitHub's REST API (`X-GitHub-Api-Version: 2022-11-28`), each value sealed to the
//! target's public key (a libsodium sealed box: X25519 + XSalsa20-Poly1305, in base64) as
//! GitHub requires, so no value leaves the plugin in the clear.
//!
//! Config:
//! - `api-url`: default `https://api.github.com`; GitHub Enterprise Server is
//!   `https://HOST/api/v3`. Grant its host in the plugin's http allow-list.
//! - Authentication, exactly one of:
//!   - `token`: a fine-grained personal access token (a secret, usually an `op://` reference),
//!     sent as `Authorization: Bearer`;
//!   - `app-id` (the app's id, or its client id), `installation-id` and `private-key` (the
//!     app's PEM, PKCS#1 as GitHub issues it or PKCS#8; a secret, usually an `op://`
//!     reference): a GitHub App. Each call signs an RS256 JWT (`iat` a minute ago, `exp` in
//!     nine minutes, `iss` the app; by the guest's clock) and exchanges it at
//!     `POST /app/installations/{installation-id}/access_tokens` for an installation token,
//!     used for the rest of the call. A call is a fresh instance, so the token is always fresh
//!     (it lives an hour; a call lasts seconds).
//! - `target`: `repository` (the default), `environment`, `organization` or `dependabot`.
//!   `repository` (`OWNER/REPO`) is required for the repository, environment and dependabot
//!   targets; `environment` (the environment's name) for the environment target;
//!   `organization` (its login) for the organization target, with `visibility` (`all`,
//!   `private` (the default) or `selected`) and, for `selected` only and then required,
//!   `selected-repository-ids` (comma-separated numeric repository ids). A key that does not
//!   apply to the chosen target is a config error naming it.
//! - What is written, either:
//!   - one secret per item (the default): the value of `field` (a field id or label; default
//!     the item's first CONCEALED field), named by the template `name` (default
//!     `{{title | upper_snake}}`);
//!   - or several: `fields` = `FIELD=NAME,FIELD=NAME` (names literal, so every item of the
//!     route writes the same secrets: give such a route one item); `fields` with `name` or
//!     `field` is a config error.
//! - `on-delete`: `delete` (the default: a deleted item's secrets are deleted; one already gone
//!   is fine) or `keep` (left as they are).
//!
//! Unknown keys are refused, naming the key.
//!
//! Names follow GitHub's rules: only `A-Z a-z 0-9 _`, not starting with a digit nor with
//! `GITHUB_` (in any case). GitHub stores them upper-cased, so the plugin upper-cases. The names
//! of `fields` and the literal text of `name` are checked when the config loads
//! (`misconfigured`, naming the key); a rendered name that breaks a rule (`{{title}}` of
//! `api.key`, a title starting with a digit) fails its item (`permanent`, naming the item, the
//! name and the rule). GitHub secrets carry no owner mark, so two items that render the same
//! name write the same secret. The deletion of a renamed item's old key deletes nothing when the
//! names do not follow the title (a `name` without `{{title}}`, or `fields`).
//!
//! A value above GitHub's 48 KB (49152 bytes) is refused before any request (`permanent`,
//! naming the item and the field, never the value).
//!
//! Requests: the public key (`GET .../secrets/public-key`) once per call, however many events
//! the batch has, and with a GitHub App the token exchange once per call (both only when an
//! event needs GitHub). Then per secret of a written event (`created`, `updated`, `rotated`,
//! `repaired`): `PUT .../secrets/NAME` with `{encrypted_value, key_id}` (and `visibility`,
//! `selected_repository_ids` for an organization; 201 created, 204 updated), then
//! `GET .../secrets/NAME` for its `updated_at`. Per secret of a deleted event: one
//! `DELETE .../secrets/NAME` (204; 404 is already gone); none with `on-delete = keep`. Per
//! secret of a `read-back`: one `GET`. So an item of N secrets takes 2N requests (+ 1, + 1 for
//! an app) of the call's budget, which the host sums over a batch (16 per event by default): an
//! item with more than 6 `fields` needs a larger `limits.http_requests_per_call`, as a retried
//! change goes alone. Paths: `/repos/{o}/{r}/actions/secrets`,
//! `/repos/{o}/{r}/environments/{env}/secrets`, `/orgs/{org}/actions/secrets`,
//! `/repos/{o}/{r}/dependabot/secrets`, under `api-url`.
//!
//! Drift: GitHub never returns a secret's value, only its `created_at` and `updated_at`. The
//! fingerprint (receipts, `read-back`) is the kit's digest of the canonical JSON of
//! `{NAME: updated_at, ...}` of the item's secrets, as read right after writing them and as
//! `read-back` reads them: all present gives that fingerprint, any absent (404) gives `absent`.
//! Drift therefore means "changed or deleted at GitHub since opsync wrote it", not a comparison of
//! values; a `repaired` change writes the values again. A replay re-writes too (GitHub cannot
//! say whether a value is already there), so `unchanged` is never set on a write.
//!
//! Errors (never with a token or a value; messages name the method, the path and GitHub's
//! `message`):
//! - Rate limits never become a storm. A 403 or 429 with `retry-after` waits that long; with
//!   `x-ratelimit-remaining: 0` until `x-ratelimit-reset` (epoch seconds, against the guest's
//!   clock); a 429, or a 403 whose message speaks of a secondary rate limit, without either
//!   header, a minute (as GitHub asks); never less than 1 s. The event fails `retryable` with
//!   that wait as its retry hint, and the call makes no more requests: every event of the batch
//!   not yet done fails with the same hint, so the host backs off the whole route instead of
//!   sending the rest at once.
//! - 401 (`Bad credentials`: an expired or revoked token, or a refused app JWT) and any other
//!   403 (a missing permission) are `misconfigured`: the route pauses, nothing is dead-lettered,
//!   and a rotated token or a granted permission lets it go on.
//! - 404 on the public key or a write is `misconfigured`, naming the target: a wrong
//!   repository, environment or organization, or one the token cannot see.
//! - 422 is `permanent`, with GitHub's message. 5xx (and 408) are `retryable`, with their
//!   `Retry-After` as the hint when they send one.
//!
//! Permissions (fine-grained token or app installation): repository `Secrets` (read and write)
//! for repository secrets, `Environments` for environment secrets, `Dependabot secrets` for
//! Dependabot secrets, organization `Secrets` for organization secrets.

mod api;
mod app;
mod github;
mod names;
mod ratelimit;
mod seal;
mod secrets;
mod settings;
mod target;

use std::cell::OnceCell;

use api::Secrets;
use github::GitHub;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::{
    ChangeKind, Destination, Found, ItemEvent, ItemRef, PluginError, Receipt, deliver_each,
    fingerprint, permanent, receipt, receipt_with_fingerprint,
};
use seal::TargetKey;
use secrets::Names;
use settings::{Auth, OnDelete, Settings};

/// `item `TITLE` (ID)`, for messages.
pub(crate) fn describe(event: &ItemEvent) -> String {
    format!("item `{}` ({})", event.item.title, event.item.id)
}

/// The fingerprint of an item's secrets' update times, on write and on read-back alike.
fn fingerprint_of(stamps: &[(String, String)]) -> String {
    fingerprint::digest(&secrets::fingerprint_input(stamps))
}

/// One call: the config, GitHub, and what is fetched at most once per call (the token and the
/// target's public key, or the error that fetching them gave).
struct Context {
    settings: Settings,
    github: GitHub,
    token: OnceCell<Result<String, PluginError>>,
    key: OnceCell<Result<TargetKey, PluginError>>,
}

impl Context {
    fn load() -> Result<Self, PluginError> {
        let settings = Settings::load()?;
        Ok(Self {
            github: GitHub::new(settings.api.clone()),
            settings,
            token: OnceCell::new(),
            key: OnceCell::new(),
        })
    }

    /// The bearer token: `token` revealed, or an installation token of the app.
    fn token(&self) -> Result<&str, PluginError> {
        self.token
            .get_or_init(|| match &self.settings.auth {
                Auth::Token => {
                    opsync_destination_kit::settings::secret("token").map(|s| s.reveal())
                }
                Auth::App(app) => app::installation_token(&self.github, app),
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    fn secrets(&self) -> Result<Secrets<'_>, PluginError> {
        Ok(Secrets {
            github: &self.github,
            target: &self.settings.target,
            token: self.token()?,
        })
    }

    /// The target's public key, fetched by the first event that needs it.
    fn public_key(&self) -> Result<&TargetKey, PluginError> {
        self.key
            .get_or_init(|| self.secrets()?.public_key())
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn write(ctx: &Context, event: &ItemEvent) -> Result<Receipt, PluginError> {
    let planned = secrets::plan(&ctx.settings.written, event)?;
    let key = ctx.public_key()?;
    let api = ctx.secrets()?;
    let mut stamps = Vec::with_capacity(planned.len());
    for secret in &planned {
        let sealed = key.seal(secret.value.reveal().as_bytes())?;
        api.put(&secret.name, &sealed, key)?;
        stamps.push((secret.name.clone(), api.written_at(&secret.name)?));
    }
    let names: Vec<String> = planned.into_iter().map(|p| p.name).collect();
    let latest = stamps.iter().map(|(_, at)| at.clone()).max();
    Ok(receipt_with_fingerprint(
        ctx.settings.target.location(&names),
        latest,
        false,
        fingerprint_of(&stamps),
    ))
}

fn delete(ctx: &Context, event: &ItemEvent) -> Result<Receipt, PluginError> {
    let target = &ctx.settings.target;
    let names = match secrets::names(&ctx.settings.written, event)? {
        Names::Secrets(names) => names,
        Names::Current => {
            log(
                Level::Info,
                &format!(
                    "not deleting anything for {}: its secrets' names do not follow its title",
                    describe(event)
                ),
            );
            return Ok(receipt(String::new(), None, true));
        }
        // No secret can have that name: nothing to delete.
        Names::Invalid { rendered, .. } => {
            return Ok(receipt(target.location(&[rendered]), None, true));
        }
    };
    let location = target.location(&names);
    if ctx.settings.on_delete == OnDelete::Keep {
        log(
            Level::Info,
            &format!("kept {location} of {}: on-delete is keep", describe(event)),
        );
        return Ok(receipt(location, None, true));
    }
    let api = ctx.secrets()?;
    let mut deleted = false;
    for name in &names {
        deleted |= api.delete(name)?;
    }
    Ok(receipt(location, None, !deleted))
}

fn deliver(ctx: &Context, event: &ItemEvent) -> Result<Receipt, PluginError> {
    if let Some(halt) = ctx.github.halted() {
        return Err(halt.not_attempted());
    }
    match event.kind {
        ChangeKind::Deleted => delete(ctx, event),
        ChangeKind::Created | ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired => {
            write(ctx, event)
        }
    }
}

struct GitHubActions;

impl Destination for GitHubActions {
    /// Checks the config, and that a GitHub App's private key is an RSA key; sends nothing.
    fn validate() -> Result<(), PluginError> {
        let settings = Settings::load()?;
        if let Auth::App(_) = settings.auth {
            app::parse_private_key(
                &opsync_destination_kit::settings::secret("private-key")?.reveal(),
            )?;
        }
        Ok(())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let mut results = Self::deliver_batch(vec![event]);
        results
            .pop()
            .unwrap_or_else(|| Err(permanent("the event was not delivered")))
    }

    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        let total = events.len();
        let (mut halted, mut waiting) = (None, 0);
        let results = deliver_each(events, Context::load, |ctx, event| {
            let result = deliver(ctx, &event);
            halted = ctx.github.halted();
            if halted.is_some() && result.is_err() {
                waiting += 1;
            }
            result
        });
        if let Some(halt) = halted {
            log(
                Level::Warn,
                &format!(
                    "GitHub rate-limited this call: {waiting} of {total} changes wait {} s \
                     ({})",
                    halt.after.as_secs(),
                    halt.message
                ),
            );
        }
        results
    }

    /// The fingerprint of the update times of the item's secrets; absent when any is missing.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let ctx = Context::load()?;
        let Names::Secrets(names) = secrets::names(&ctx.settings.written, &item)? else {
            return Ok(Found::Absent);
        };
        let api = ctx.secrets()?;
        let mut stamps = Vec::with_capacity(names.len());
        for name in names {
            match api.updated_at(&name)? {
                Some(at) => stamps.push((name, at)),
                None => return Ok(Found::Absent),
            }
        }
        Ok(Found::Present(fingerprint_of(&stamps)))
    }
}

opsync_destination_kit::export_destination!(GitHubActions);

#[cfg(test)]
pub(crate) mod test_support {
    use opsync_destination_kit::Field;

    pub(crate) use opsync_destination_kit::testing::event;

    /// A field without a value (a value is a host handle, which host tests cannot make).
    pub(crate) fn field(id: &str, label: &str, field_type: &str) -> Field {
        Field {
            id: id.into(),
            label: label.into(),
            field_type: field_type.into(),
            purpose: None,
            section: None,
            value: None,
        }
    }
}
