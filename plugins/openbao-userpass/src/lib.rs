//! The built-in `openbao-userpass` rotator: changes the password of an OpenBao / Vault userpass
//! user and proves the new one by logging in.
//!
//! Config: `address` (required; grant its host:port), `token` (required admin token allowed to
//! read `auth/<mount>/users/<user>` and update `.../password`, usually an `op://` reference),
//! `namespace`, `mount` (default `userpass`), `username` (default: the item's USERNAME field, or
//! the field `username-field` names), `password-field` (default: the item's PASSWORD field, else
//! the field labelled `password`).
//!
//! Steps: `create` checks the user exists and returns no values (the host generates the
//! password); `set` sets the pending password; `test` logs in with it (and revokes the token the
//! login made); `finish` has nothing to retire: a userpass user has one password. The host's
//! rollback is a `set` with the item's current password, which simply sets it back.

mod userpass;

use opsync_rotator_kit::http::Endpoint;
use opsync_rotator_kit::log::{Level, log};
use opsync_rotator_kit::settings::{self, check_keys, required};
use opsync_rotator_kit::{
    Field, Guest, NewValue, PluginError, Rotation, export_rotator, fields, is_rollback,
    misconfigured, permanent,
};
use userpass::Userpass;

const KNOWN_KEYS: &[&str] = &[
    "address",
    "token",
    "namespace",
    "mount",
    "username",
    "username-field",
    "password-field",
];

struct Settings {
    address: Endpoint,
    namespace: Option<String>,
    mount: String,
    username: Option<String>,
    username_field: Option<String>,
    password_field: Option<String>,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let address = Endpoint::parse("address", &required("address")?)?;
        settings::secret("token")?;
        let mount = settings::plain("mount")?.unwrap_or_else(|| "userpass".into());
        let mount = mount.trim_matches('/').to_string();
        if mount.is_empty() || mount.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(misconfigured(format!(
                "`mount` `{mount}` is not an auth mount path"
            )));
        }
        let username = settings::plain("username")?;
        if username.as_deref() == Some("") {
            return Err(misconfigured("`username` is empty"));
        }
        let username_field = settings::plain("username-field")?;
        if username.is_some() && username_field.is_some() {
            return Err(misconfigured(
                "set `username` or `username-field`, not both",
            ));
        }
        Ok(Self {
            address,
            namespace: settings::plain("namespace")?,
            mount,
            username,
            username_field,
            password_field: settings::plain("password-field")?,
        })
    }

    fn client(&self) -> Result<Userpass, PluginError> {
        Ok(Userpass {
            address: self.address.clone(),
            token: settings::secret("token")?.reveal(),
            namespace: self.namespace.clone(),
            mount: self.mount.clone(),
        })
    }

    /// The user to rotate: from config, else from the item.
    fn username(&self, rotation: &Rotation) -> Result<String, PluginError> {
        if let Some(name) = &self.username {
            return Ok(name.clone());
        }
        let item = &rotation.item;
        let field = match &self.username_field {
            Some(name) => fields::find(item, name),
            None => fields::by_purpose(item, "USERNAME").or_else(|| fields::find(item, "username")),
        };
        let described = self.username_field.as_deref().map_or(
            "USERNAME field (or field labelled `username`)".to_string(),
            |n| format!("field `{n}`"),
        );
        let value = field
            .and_then(|f| f.value.as_ref())
            .map(|v| v.reveal())
            .filter(|v| !v.is_empty());
        value.ok_or_else(|| {
            permanent(format!(
                "item {} has no {described} with a value, and `username` is not set",
                item.id
            ))
        })
    }

    /// The item's password field (if it has one) and the name the pending value is looked up by.
    fn password_field<'a>(&self, rotation: &'a Rotation) -> (Option<&'a Field>, String) {
        let item = &rotation.item;
        match &self.password_field {
            Some(name) => (fields::find(item, name), name.clone()),
            None => {
                let field =
                    fields::by_purpose(item, "PASSWORD").or_else(|| fields::find(item, "password"));
                let name = field.map_or_else(|| "password".to_string(), |f| f.label.clone());
                (field, name)
            }
        }
    }

    /// The pending password, revealed.
    fn pending_password(&self, rotation: &Rotation) -> Result<String, PluginError> {
        let (field, name) = self.password_field(rotation);
        let value = fields::pending(rotation, &name, field).ok_or_else(|| {
            let offered: Vec<&str> = rotation.pending.iter().map(|v| v.field.as_str()).collect();
            permanent(format!(
                "no pending value for the password field `{name}` of item {} (pending: {})",
                rotation.item.id,
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ))
        })?;
        let password = value.reveal();
        if password.is_empty() {
            return Err(permanent(format!(
                "the pending value for `{name}` of item {} is empty",
                rotation.item.id
            )));
        }
        Ok(password)
    }
}

/// The user must exist: OpenBao answers a password change for a missing user with a 500, which
/// would look transient.
fn check_user(client: &Userpass, user: &str) -> Result<(), PluginError> {
    if client.user_exists(user)? {
        return Ok(());
    }
    Err(permanent(format!(
        "user `{user}` does not exist in auth mount `{}` (GET {}{}: status 404)",
        client.mount,
        client.address.origin(),
        client.user_path(user)
    )))
}

struct OpenBaoUserpass;

impl Guest for OpenBaoUserpass {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(drop)
    }

    fn create(rotation: Rotation) -> Result<Vec<NewValue>, PluginError> {
        let settings = Settings::load()?;
        let user = settings.username(&rotation)?;
        check_user(&settings.client()?, &user)?;
        Ok(Vec::new())
    }

    fn set(rotation: Rotation) -> Result<(), PluginError> {
        let settings = Settings::load()?;
        let user = settings.username(&rotation)?;
        let password = settings.pending_password(&rotation)?;
        let client = settings.client()?;
        check_user(&client, &user)?;
        client.set_password(&user, &password)?;
        let what = if is_rollback(&rotation) {
            "set back to the item's current password"
        } else {
            "set to the pending password"
        };
        log(
            Level::Info,
            &format!("{}: user `{user}` {what}", settings.mount),
        );
        Ok(())
    }

    fn test(rotation: Rotation) -> Result<(), PluginError> {
        let settings = Settings::load()?;
        let user = settings.username(&rotation)?;
        let password = settings.pending_password(&rotation)?;
        let client = settings.client()?;
        let token = client.login(&user, &password)?;
        // The login proved the password; the token it made is not needed.
        if let Err(e) = client.revoke_self(&token.reveal()) {
            log(
                Level::Warn,
                &format!("could not revoke the test login's token: {e:?}"),
            );
        }
        log(
            Level::Info,
            &format!(
                "{}: logged in as `{user}` with the pending password",
                settings.mount
            ),
        );
        Ok(())
    }

    fn finish(rotation: Rotation) -> Result<(), PluginError> {
        let settings = Settings::load()?;
        let user = settings.username(&rotation)?;
        log(
            Level::Debug,
            &format!(
                "{}: user `{user}` has one password, nothing to retire",
                settings.mount
            ),
        );
        Ok(())
    }
}

export_rotator!(OpenBaoUserpass);
