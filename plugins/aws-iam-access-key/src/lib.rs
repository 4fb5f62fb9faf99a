//! The built-in `aws-iam-access-key` rotator: alternating access keys for one IAM user. `create`
//! makes a new key (first deleting, when the user already holds IAM's two, the one that is not
//! the item's current key), `set` makes sure the pending key is active, `test` signs STS
//! GetCallerIdentity with it, `finish` deactivates the previous key (deleted by the next
//! rotation's `create`), and the host's rollback (`set` with the item's current key) deletes
//! the key `create` made.
//!
//! Config: `user-name` (required), `access-key-id`, `secret-access-key` (required: the admin
//! credential allowed iam:ListAccessKeys, CreateAccessKey, UpdateAccessKey and DeleteAccessKey on
//! the user; usually `op://` references), `session-token`, `endpoint` (IAM, default
//! `https://iam.amazonaws.com`), `iam-region` (signing region for IAM, default `us-east-1`),
//! `region` (STS's, default `us-east-1`), `sts-endpoint` (default `endpoint` when that is set,
//! else `https://sts.<region>.amazonaws.com`), `key-id-field` (default `access key id`),
//! `secret-field` (default `secret access key`), `propagation-seconds` (default 30: how long a
//! new key refused by STS as unknown counts as not yet propagated, and so `retryable`).

mod api;
mod plan;

use api::{Client, KeyInfo, Service};
use opsync_aws_sigv4::{self as aws, Credentials};
use opsync_rotator_kit::clock::Instant;
use opsync_rotator_kit::http::Endpoint;
use opsync_rotator_kit::log::{Level, log};
use opsync_rotator_kit::settings::{self, check_keys, number, required};
use opsync_rotator_kit::{
    Guest, NewValue, PluginError, Rotation, Secret, export_rotator, fields, is_rollback,
    misconfigured, permanent, retryable,
};
use plan::short;

const KNOWN_KEYS: &[&str] = &[
    "user-name",
    "access-key-id",
    "secret-access-key",
    "session-token",
    "endpoint",
    "iam-region",
    "region",
    "sts-endpoint",
    "key-id-field",
    "secret-field",
    "propagation-seconds",
];

struct Settings {
    user: String,
    iam: Endpoint,
    iam_region: String,
    sts: Endpoint,
    sts_region: String,
    key_id_field: String,
    secret_field: String,
    propagation_seconds: u32,
}

fn region(key: &str) -> Result<String, PluginError> {
    aws::settings::region(
        key,
        settings::plain(key)?.unwrap_or_else(|| "us-east-1".into()),
    )
}

fn field_name(key: &str, default: &str) -> Result<String, PluginError> {
    let name = settings::plain(key)?.unwrap_or_else(|| default.into());
    if name.trim().is_empty() {
        return Err(misconfigured(format!("`{key}` is empty")));
    }
    Ok(name)
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let user = required("user-name")?;
        if user.is_empty()
            || user.len() > 64
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        {
            return Err(misconfigured(format!(
                "`user-name` `{user}` is not an IAM user name (1-64 of A-Z a-z 0-9 +=,.@_-)"
            )));
        }
        aws::settings::check_credentials()?;
        let iam_region = region("iam-region")?;
        let sts_region = region("region")?;
        let custom = settings::plain("endpoint")?;
        let iam = Endpoint::parse(
            "endpoint",
            custom.as_deref().unwrap_or("https://iam.amazonaws.com"),
        )?;
        let sts = match settings::plain("sts-endpoint")? {
            Some(text) => Endpoint::parse("sts-endpoint", &text)?,
            None if custom.is_some() => iam.clone(),
            None => Endpoint::parse(
                "sts-endpoint",
                &format!("https://sts.{sts_region}.amazonaws.com"),
            )?,
        };
        let key_id_field = field_name("key-id-field", "access key id")?;
        let secret_field = field_name("secret-field", "secret access key")?;
        if key_id_field.eq_ignore_ascii_case(&secret_field) {
            return Err(misconfigured(
                "`key-id-field` and `secret-field` name the same field",
            ));
        }
        Ok(Self {
            user,
            iam,
            iam_region,
            sts,
            sts_region,
            key_id_field,
            secret_field,
            propagation_seconds: number("propagation-seconds", 0..=3600, 30)?,
        })
    }

    /// IAM, signed with the admin credential.
    fn admin(&self) -> Result<Client, PluginError> {
        Ok(Client::new(
            Service::Iam,
            self.iam.clone(),
            self.iam_region.clone(),
            aws::settings::credentials()?,
        ))
    }

    /// STS, signed with the key under test.
    fn sts_as(&self, key: &PendingKey) -> Client {
        Client::new(
            Service::Sts,
            self.sts.clone(),
            self.sts_region.clone(),
            Credentials {
                access_key_id: key.id.clone(),
                secret_access_key: key.secret.clone().unwrap_or_default(),
                session_token: None,
            },
        )
    }

    /// The item's current key id, if the item has one.
    fn current_key_id(&self, rotation: &Rotation) -> Option<String> {
        fields::find(&rotation.item, &self.key_id_field)
            .and_then(|f| f.value.as_ref())
            .map(|v| v.reveal())
            .filter(|v| !v.is_empty())
    }

    /// The pending value of the field `name`, revealed; none when absent or empty.
    fn pending_value(&self, rotation: &Rotation, name: &str) -> Option<String> {
        let field = fields::find(&rotation.item, name);
        fields::pending(rotation, name, field)
            .map(|v| v.reveal())
            .filter(|v| !v.is_empty())
    }

    /// The pending key: its id is required, its secret only when `need_secret`.
    fn pending_key(
        &self,
        rotation: &Rotation,
        need_secret: bool,
    ) -> Result<Option<PendingKey>, PluginError> {
        let Some(id) = self.pending_value(rotation, &self.key_id_field) else {
            return Ok(None);
        };
        let secret = self.pending_value(rotation, &self.secret_field);
        if need_secret && secret.is_none() {
            return Err(permanent(format!(
                "no pending value for `{}` of item {} (pending: {})",
                self.secret_field,
                rotation.item.id,
                offered(rotation)
            )));
        }
        Ok(Some(PendingKey { id, secret }))
    }

    fn require_pending_key(
        &self,
        rotation: &Rotation,
        need_secret: bool,
    ) -> Result<PendingKey, PluginError> {
        self.pending_key(rotation, need_secret)?.ok_or_else(|| {
            permanent(format!(
                "no pending value for `{}` of item {} (pending: {})",
                self.key_id_field,
                rotation.item.id,
                offered(rotation)
            ))
        })
    }
}

/// The pending key's id and secret; no `Debug`.
struct PendingKey {
    id: String,
    secret: Option<String>,
}

/// The field names of the pending values, for messages.
fn offered(rotation: &Rotation) -> String {
    if rotation.pending.is_empty() {
        return "none".into();
    }
    rotation
        .pending
        .iter()
        .map(|v| v.field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn find<'a>(keys: &'a [KeyInfo], id: &str) -> Option<&'a KeyInfo> {
    keys.iter().find(|k| k.id == id)
}

/// The error for a key the user does not hold.
fn not_a_key(settings: &Settings, which: &str, id: &str) -> PluginError {
    permanent(format!(
        "{which} {} is not an access key of IAM user `{}` (deleted outside opsync?)",
        short(id),
        settings.user
    ))
}

fn rollback(settings: &Settings, rotation: &Rotation) -> Result<(), PluginError> {
    let Some(restored) = settings.pending_key(rotation, false)? else {
        log(
            Level::Warn,
            &format!(
                "rollback for item {}: the item has no current `{}`, so there is no key to restore; keys of `{}` are left as they are",
                rotation.item.id, settings.key_id_field, settings.user
            ),
        );
        return Ok(());
    };
    let iam = settings.admin()?;
    let keys = iam.list_access_keys(&settings.user)?;
    let Some(extra) = plan::deletions_at_rollback(&keys, &restored.id) else {
        return Err(not_a_key(
            settings,
            "cannot roll back: the item's current key",
            &restored.id,
        ));
    };
    if find(&keys, &restored.id).is_some_and(|k| !k.active) {
        iam.set_key_status(&settings.user, &restored.id, true)?;
        log(
            Level::Info,
            &format!(
                "reactivated access key {} of `{}`",
                short(&restored.id),
                settings.user
            ),
        );
    }
    for id in extra {
        iam.delete_access_key(&settings.user, &id)?;
        log(
            Level::Info,
            &format!(
                "rolled back: deleted access key {} of `{}`",
                short(&id),
                settings.user
            ),
        );
    }
    Ok(())
}

struct AwsIamAccessKey;

impl Guest for AwsIamAccessKey {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn create(rotation: Rotation) -> Result<Vec<NewValue>, PluginError> {
        let settings = Settings::load()?;
        let iam = settings.admin()?;
        let current = settings.current_key_id(&rotation);
        let keys = iam.list_access_keys(&settings.user)?;
        for id in plan::deletions_before_create(&keys, current.as_deref()) {
            let state = if find(&keys, &id).is_some_and(|k| k.active) {
                "active, not the item's current key: an orphan of an interrupted rotation"
            } else {
                "inactive: the previous key"
            };
            iam.delete_access_key(&settings.user, &id)?;
            log(
                Level::Info,
                &format!(
                    "deleted access key {} of `{}` ({state})",
                    short(&id),
                    settings.user
                ),
            );
        }
        let key = iam.create_access_key(&settings.user)?;
        let id = Secret::new("aws access key id", &key.id);
        let secret = Secret::new("aws secret access key", &key.secret);
        log(
            Level::Info,
            &format!(
                "created access key {} for `{}`",
                short(&key.id),
                settings.user
            ),
        );
        Ok(vec![
            NewValue {
                field: fields::key_for(&rotation.item, &settings.key_id_field),
                value: id,
            },
            NewValue {
                field: fields::key_for(&rotation.item, &settings.secret_field),
                value: secret,
            },
        ])
    }

    fn set(rotation: Rotation) -> Result<(), PluginError> {
        let settings = Settings::load()?;
        if is_rollback(&rotation) {
            return rollback(&settings, &rotation);
        }
        let pending = settings.require_pending_key(&rotation, false)?;
        let iam = settings.admin()?;
        let keys = iam.list_access_keys(&settings.user)?;
        let key = find(&keys, &pending.id)
            .ok_or_else(|| not_a_key(&settings, "the pending key", &pending.id))?;
        if !key.active {
            iam.set_key_status(&settings.user, &pending.id, true)?;
            log(
                Level::Info,
                &format!(
                    "activated access key {} of `{}`",
                    short(&pending.id),
                    settings.user
                ),
            );
        }
        Ok(())
    }

    fn test(rotation: Rotation) -> Result<(), PluginError> {
        let settings = Settings::load()?;
        let pending = settings.require_pending_key(&rotation, true)?;
        let sts = settings.sts_as(&pending);
        let what = format!(
            "signing {} with the pending key {}",
            sts.what("GetCallerIdentity"),
            short(&pending.id)
        );
        match sts.caller_arn()? {
            Ok(arn) if plan::arn_is_user(&arn, &settings.user) => {
                log(
                    Level::Info,
                    &format!(
                        "access key {} signs as `{}`",
                        short(&pending.id),
                        settings.user
                    ),
                );
                Ok(())
            }
            Ok(arn) => Err(permanent(format!(
                "{what}: it signs as {arn}, not as IAM user `{}`",
                settings.user
            ))),
            Err(e) if e.code == "InvalidClientTokenId" && settings.propagation_seconds > 0 => {
                // IAM takes a few seconds to make a new key known everywhere.
                let keys = settings.admin()?.list_access_keys(&settings.user)?;
                let age = find(&keys, &pending.id)
                    .and_then(|k| k.created)
                    .map(|created| Instant::now().unix() - created);
                if plan::still_propagating(age, settings.propagation_seconds) {
                    return Err(retryable(format!(
                        "{what}: status {}: {}: the key is {} s old, IAM may not have propagated it yet",
                        e.status,
                        e.code,
                        age.unwrap_or_default()
                    )));
                }
                Err(refused(&what, e))
            }
            Err(e) => Err(refused(&what, e)),
        }
    }

    fn finish(rotation: Rotation) -> Result<(), PluginError> {
        let settings = Settings::load()?;
        let promoted = settings.require_pending_key(&rotation, false)?;
        let iam = settings.admin()?;
        let keys = iam.list_access_keys(&settings.user)?;
        let others = plan::deactivations_at_finish(&keys, &promoted.id).ok_or_else(|| {
            not_a_key(
                &settings,
                "not deactivating anything: the promoted key",
                &promoted.id,
            )
        })?;
        for id in others {
            iam.set_key_status(&settings.user, &id, false)?;
            log(
                Level::Info,
                &format!(
                    "deactivated the previous access key {} of `{}`; the next rotation deletes it",
                    short(&id),
                    settings.user
                ),
            );
        }
        Ok(())
    }
}

/// The error for STS refusing the key under test: the key does not work, so `permanent` (not
/// `misconfigured`: the plugin's config is fine), unless the refusal is transient.
fn refused(what: &str, e: api::AwsError) -> PluginError {
    match api::failure(what, e) {
        PluginError::Misconfigured(msg) => permanent(msg),
        other => other,
    }
}

export_rotator!(AwsIamAccessKey);
