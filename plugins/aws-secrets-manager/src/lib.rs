//! The built-in `aws-secrets-manager` destination: writes items to AWS Secrets Manager with
//! SigV4-signed calls, tags the secrets it manages, and makes replays no-ops through
//! `ClientRequestToken`. Its fingerprint (receipts, `read-back`) is over the `SecretString`: as
//! written, and as GetSecretValue answers it.
//!
//! Config: `region` (required), `endpoint` (default `https://secretsmanager.<region>.amazonaws.com`;
//! grant its host:port), `access-key-id`, `secret-access-key` (required, usually `op://`
//! references), `session-token`, `name` (template; unset: the route's key, which comes with the
//! event), `format` (`json`, `item-json`, or `raw` with `field`), `fields`, `kms-key-id`,
//! `overwrite-unmanaged` (`false`: a secret without the `managed-by=opsync` tag is never
//! overwritten), `on-delete` (`keep`, `delete` after `recovery-window-days` (7-30, default 30),
//! `force-delete`).

mod api;

use api::{Description, SecretsManager};
use opsync_aws_sigv4 as aws;
use opsync_destination_kit::http::Endpoint;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::select::{Format, Selection};
use opsync_destination_kit::settings::{self, check_keys, choice, flag, number, required};
use opsync_destination_kit::{
    ChangeKind, Destination, Found, ItemEvent, ItemRef, PluginError, Receipt, deliver_each,
    fingerprint, permanent, receipt, receipt_with_fingerprint,
};
use sha2::{Digest, Sha256};

const KNOWN_KEYS: &[&str] = &[
    "region",
    "endpoint",
    "access-key-id",
    "secret-access-key",
    "session-token",
    "name",
    "format",
    "fields",
    "field",
    "kms-key-id",
    "overwrite-unmanaged",
    "on-delete",
    "recovery-window-days",
];

/// The tag that marks a secret as written by opsync.
pub const MANAGED_TAG: (&str, &str) = ("managed-by", "opsync");
const ITEM_TAG: &str = "opsync:item-id";
const VAULT_TAG: &str = "opsync:vault-id";

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDelete {
    Keep,
    /// Schedule the deletion after the recovery window.
    Delete,
    /// Delete at once, without recovery.
    ForceDelete,
}

struct Settings {
    endpoint: Endpoint,
    region: String,
    name: Naming,
    selection: Selection,
    kms_key_id: Option<String>,
    overwrite_unmanaged: bool,
    on_delete: OnDelete,
    recovery_days: u32,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let region = aws::settings::region("region", required("region")?)?;
        let endpoint = settings::plain("endpoint")?
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
        let endpoint = Endpoint::parse("endpoint", &endpoint)?;
        aws::settings::check_credentials()?;
        let name = Naming::load("name", "{{vault}}/{{title}}")?;
        let selection = Selection::load(&[Format::Json, Format::ItemJson, Format::Raw])?;
        let on_delete = match choice("on-delete", &["keep", "delete", "force-delete"], "keep")? {
            "delete" => OnDelete::Delete,
            "force-delete" => OnDelete::ForceDelete,
            _ => OnDelete::Keep,
        };
        Ok(Self {
            endpoint,
            region,
            name,
            selection,
            kms_key_id: settings::plain("kms-key-id")?,
            overwrite_unmanaged: flag("overwrite-unmanaged", false)?,
            on_delete,
            recovery_days: number("recovery-window-days", 7..=30, 30)?,
        })
    }

    fn client(&self) -> Result<SecretsManager, PluginError> {
        Ok(SecretsManager::new(
            self.endpoint.clone(),
            self.region.clone(),
            aws::settings::credentials()?,
        ))
    }
}

/// The `ClientRequestToken` for an idempotency key: the same key always gives the same token, so
/// a replay finds its version already there. UUID-shaped (36 characters; AWS wants 32 to 64).
pub fn client_token(idempotency_key: &str) -> String {
    let hex = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn tags(event: &ItemEvent) -> Vec<(String, String)> {
    vec![
        (MANAGED_TAG.0.into(), MANAGED_TAG.1.into()),
        (ITEM_TAG.into(), event.item.id.clone()),
        (VAULT_TAG.into(), event.vault.id.clone()),
    ]
}

fn is_managed(secret: &Description) -> bool {
    secret.tag(MANAGED_TAG.0) == Some(MANAGED_TAG.1)
}

/// Whether this item may write to (or delete) `secret`.
fn check_owner(name: &str, secret: &Description, event: &ItemEvent) -> Result<(), PluginError> {
    match secret.tag(ITEM_TAG) {
        Some(id) if is_managed(secret) && id != event.item.id => Err(permanent(format!(
            "{name} is managed by opsync for item {id}, not {}: two items render to the same name",
            event.item.id
        ))),
        _ => Ok(()),
    }
}

/// The receipt of a write of `value` (the `SecretString`), with its fingerprint.
fn written(arn: String, version: String, unchanged: bool, value: &str) -> Receipt {
    let print = fingerprint::digest(value.as_bytes());
    receipt_with_fingerprint(arn, Some(version), unchanged, print)
}

fn write(
    settings: &Settings,
    sm: &SecretsManager,
    name: &str,
    event: &ItemEvent,
) -> Result<Receipt, PluginError> {
    let token = client_token(&event.idempotency_key);
    let Some(secret) = sm.describe(name)? else {
        let value = settings.selection.render(event)?;
        let description = format!("Managed by opsync: 1Password item {}", event.item.id);
        let (arn, version) = sm.create(
            name,
            &value,
            &token,
            &tags(event),
            settings.kms_key_id.as_deref(),
            &description,
        )?;
        return Ok(written(arn, version, false, &value));
    };
    let managed = is_managed(&secret);
    if !managed && !settings.overwrite_unmanaged {
        return Err(permanent(format!(
            "{name} exists without the tag {}={}, so opsync does not overwrite it; set `overwrite-unmanaged = true` to take it over",
            MANAGED_TAG.0, MANAGED_TAG.1
        )));
    }
    check_owner(name, &secret, event)?;
    if event.kind == ChangeKind::Repaired && !secret.deleted {
        return repair(settings, sm, name, secret, event);
    }
    if secret.version_ids.contains(&token) && !secret.deleted {
        // The fingerprint of what this version wrote, so that a change made at the destination
        // since then still shows as drift on the next read-back.
        let value = settings.selection.render(event)?;
        return Ok(written(secret.arn, token, true, &value));
    }
    if secret.deleted {
        log(
            Level::Info,
            &format!("restoring {name}, which was scheduled for deletion"),
        );
        sm.restore(&secret.arn)?;
    }
    if !managed {
        log(
            Level::Warn,
            &format!("taking over {name}: overwrite-unmanaged is true"),
        );
        sm.tag(&secret.arn, &tags(event))?;
    }
    let value = settings.selection.render(event)?;
    let version = sm.put(&secret.arn, &value, &token)?;
    Ok(written(secret.arn, version, false, &value))
}

/// Writes this version again over what a read-back found changed: unless the secret holds it
/// already (a retry after the repair landed), a new version under a token of its own (the
/// version's own token is taken by the write the change replaced).
fn repair(
    settings: &Settings,
    sm: &SecretsManager,
    name: &str,
    secret: Description,
    event: &ItemEvent,
) -> Result<Receipt, PluginError> {
    let value = settings.selection.render(event)?;
    let current = sm.current_value(name)?;
    let token = client_token(&format!(
        "{}:{}",
        event.idempotency_key,
        secret.version_ids.len()
    ));
    if current.as_deref() == Some(value.as_bytes()) {
        return Ok(written(secret.arn, token, true, &value));
    }
    let version = sm.put(&secret.arn, &value, &token)?;
    Ok(written(secret.arn, version, false, &value))
}

fn delete(
    settings: &Settings,
    sm: &SecretsManager,
    name: &str,
    event: &ItemEvent,
) -> Result<Receipt, PluginError> {
    if settings.on_delete == OnDelete::Keep {
        log(Level::Info, &format!("kept {name}: on-delete is keep"));
        return Ok(receipt(name.to_string(), None, true));
    }
    let Some(secret) = sm.describe(name)? else {
        return Ok(receipt(name.to_string(), None, true));
    };
    if !is_managed(&secret) {
        return Err(permanent(format!(
            "not deleting {name}: it has no {}={} tag",
            MANAGED_TAG.0, MANAGED_TAG.1
        )));
    }
    check_owner(name, &secret, event)?;
    if secret.deleted && settings.on_delete == OnDelete::Delete {
        return Ok(receipt(secret.arn, None, true));
    }
    let window = match settings.on_delete {
        OnDelete::Delete => Some(settings.recovery_days),
        _ => None,
    };
    sm.delete(&secret.arn, window)?;
    Ok(receipt(secret.arn, None, false))
}

/// The deletion of a renamed item's old key, where the name did not change: nothing to delete.
fn unchanged_by_rename(event: &ItemEvent) -> Receipt {
    log(
        Level::Info,
        &format!(
            "not deleting anything for item {}: its name does not follow its title",
            event.item.id
        ),
    );
    receipt(String::new(), None, true)
}

fn deliver(
    settings: &Settings,
    sm: &SecretsManager,
    event: ItemEvent,
) -> Result<Receipt, PluginError> {
    let Some(name) = settings.name.name(&event)? else {
        return Ok(unchanged_by_rename(&event));
    };
    match event.kind {
        ChangeKind::Deleted => delete(settings, sm, &name, &event),
        ChangeKind::Created | ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired => {
            write(settings, sm, &name, &event)
        }
    }
}

/// The config and the client (its credentials revealed once per call).
fn setup() -> Result<(Settings, SecretsManager), PluginError> {
    let settings = Settings::load()?;
    let sm = settings.client()?;
    Ok((settings, sm))
}

struct AwsSecretsManager;

impl Destination for AwsSecretsManager {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let (settings, sm) = setup()?;
        deliver(&settings, &sm, event)
    }

    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        deliver_each(events, setup, |(settings, sm), event| {
            deliver(settings, sm, event)
        })
    }

    /// The fingerprint of the secret's current value at the item's name; absent when there is
    /// no such secret or it is scheduled for deletion.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let (settings, sm) = setup()?;
        let Some(name) = settings.name.name(&item)? else {
            return Ok(Found::Absent);
        };
        Ok(match sm.current_value(&name)? {
            Some(value) => Found::Present(fingerprint::digest(&value)),
            None => Found::Absent,
        })
    }
}

opsync_destination_kit::export_destination!(AwsSecretsManager);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_stable_uuid_shaped_and_distinct() {
        let a = client_token("route-a:itm1:3:updated");
        assert_eq!(a, client_token("route-a:itm1:3:updated"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, client_token("route-a:itm1:4:updated"));
    }
}
