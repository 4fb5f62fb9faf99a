//! The built-in `vault-kv` destination: writes items to a HashiCorp Vault / OpenBao KV v2 mount,
//! marks what it manages in the secret's custom metadata, and skips versions already written.
//! Its fingerprint (receipts, `read-back`) is over the secret's `data` map as canonical JSON
//! (keys sorted): what it sends on a write, what a KV v2 read answers on `read-back`.
//!
//! Config: `address` (required; grant its host:port), `token` (required, usually an `op://`
//! reference), `namespace`, `mount` (default `secret`), `path` (template; unset: the route's
//! key, which comes with the event), `format` (`json` or `item-json`), `fields`, `on-delete`
//! (`keep`, `delete`: soft-delete the current version, `destroy`: every version and the
//! metadata), `adopt-unmanaged` (`false`: a secret without opsync's metadata is never
//! overwritten).

mod kv;

use kv::{Kv, Metadata};
use opsync_destination_kit::http::Endpoint;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::select::{Format, Selection};
use opsync_destination_kit::settings::{self, check_keys, choice, flag, required};
use opsync_destination_kit::{
    ChangeKind, Destination, Found, ItemEvent, ItemRef, PluginError, Receipt, canonical,
    deliver_each, fingerprint, misconfigured, permanent, receipt, receipt_with_fingerprint,
};
use serde_json::{Map, Value};

const KNOWN_KEYS: &[&str] = &[
    "address",
    "token",
    "namespace",
    "mount",
    "path",
    "format",
    "fields",
    "on-delete",
    "adopt-unmanaged",
];

/// Custom metadata keys opsync sets on the secrets it manages.
const MANAGED: &str = "opsync-managed";
const ITEM_ID: &str = "opsync-item-id";
const VAULT_ID: &str = "opsync-vault-id";
const ITEM_VERSION: &str = "opsync-item-version";
const IDEMPOTENCY_KEY: &str = "opsync-idempotency-key";

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDelete {
    Keep,
    /// Soft-delete the current version.
    Delete,
    /// Remove every version and the metadata.
    Destroy,
}

struct Settings {
    address: Endpoint,
    namespace: Option<String>,
    mount: String,
    path: Naming,
    selection: Selection,
    on_delete: OnDelete,
    adopt_unmanaged: bool,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let address = Endpoint::parse("address", &required("address")?)?;
        settings::secret("token")?;
        let mount = settings::plain("mount")?.unwrap_or_else(|| "secret".into());
        let mount = mount.trim_matches('/').to_string();
        if mount.is_empty() || mount.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(misconfigured(format!(
                "`mount` `{mount}` is not a mount path"
            )));
        }
        let path = Naming::load("path", "{{vault}}/{{title}}")?;
        let selection = Selection::load(&[Format::Json, Format::ItemJson])?;
        let on_delete = match choice("on-delete", &["keep", "delete", "destroy"], "keep")? {
            "delete" => OnDelete::Delete,
            "destroy" => OnDelete::Destroy,
            _ => OnDelete::Keep,
        };
        Ok(Self {
            address,
            namespace: settings::plain("namespace")?,
            mount,
            path,
            selection,
            on_delete,
            adopt_unmanaged: flag("adopt-unmanaged", false)?,
        })
    }

    fn kv(&self) -> Result<Kv, PluginError> {
        Ok(Kv {
            address: self.address.clone(),
            token: settings::secret("token")?.reveal(),
            namespace: self.namespace.clone(),
            mount: self.mount.clone(),
        })
    }
}

/// Whether the secret carries opsync's marker.
fn is_managed(meta: &Metadata) -> bool {
    meta.custom.get(MANAGED).and_then(Value::as_str) == Some("true")
}

/// Whether opsync may write to a secret with this metadata for `event`'s item.
fn check_ownership(
    settings: &Settings,
    location: &str,
    meta: &Metadata,
    event: &ItemEvent,
) -> Result<(), PluginError> {
    if !is_managed(meta) {
        if settings.adopt_unmanaged {
            return Ok(());
        }
        return Err(permanent(format!(
            "{location} exists and is not managed by opsync; set `adopt-unmanaged = true` to take it over"
        )));
    }
    match meta.custom.get(ITEM_ID).and_then(Value::as_str) {
        Some(id) if id != event.item.id => Err(permanent(format!(
            "{location} is managed by opsync for item {id}, not {}: two items render to the same path",
            event.item.id
        ))),
        _ => Ok(()),
    }
}

fn custom_metadata(existing: &Map<String, Value>, event: &ItemEvent) -> Map<String, Value> {
    let mut custom = existing.clone();
    for (key, value) in [
        (MANAGED, "true".to_string()),
        (ITEM_ID, event.item.id.clone()),
        (VAULT_ID, event.vault.id.clone()),
        (ITEM_VERSION, event.item.version.to_string()),
        (IDEMPOTENCY_KEY, event.idempotency_key.clone()),
    ] {
        custom.insert(key.into(), Value::String(value));
    }
    custom
}

/// The fingerprint of a secret's `data`, on write and on read-back alike.
fn fingerprint_of(data: &Value) -> String {
    fingerprint::digest(&canonical::json(data))
}

fn write(
    settings: &Settings,
    kv: &Kv,
    path: &str,
    event: &ItemEvent,
) -> Result<Receipt, PluginError> {
    let location = kv.location(path);
    let meta = kv.metadata(path)?;
    if let Some(meta) = &meta {
        check_ownership(settings, &location, meta, event)?;
        let held = meta.custom.get(ITEM_VERSION).and_then(Value::as_str);
        // A repair writes even though the marker says this version is there: the data was
        // changed behind it.
        if is_managed(meta)
            && !meta.current_gone
            && event.kind != ChangeKind::Repaired
            && held == Some(event.item.version.to_string().as_str())
        {
            // The fingerprint of what this version wrote, so that a change made at the
            // destination since then still shows as drift on the next read-back.
            let data = settings.selection.document(event)?;
            return Ok(receipt_with_fingerprint(
                location,
                Some(meta.current_version.to_string()),
                true,
                fingerprint_of(&data),
            ));
        }
    }
    let data = settings.selection.document(event)?;
    let (cas, existing) = match &meta {
        Some(m) => (m.current_version, m.custom.clone()),
        None => (0, Map::new()),
    };
    // A crash between the data write and the metadata write leaves the data in place with old
    // metadata: compare before writing, so a replay does not add a version.
    let same = match &meta {
        Some(m) if !m.current_gone => kv.read(path)?.as_ref() == Some(&data),
        _ => false,
    };
    let version = if same {
        cas
    } else {
        kv.write(path, &data, cas)?
    };
    kv.set_custom_metadata(path, &custom_metadata(&existing, event))?;
    Ok(receipt_with_fingerprint(
        location,
        Some(version.to_string()),
        same,
        fingerprint_of(&data),
    ))
}

fn delete(
    settings: &Settings,
    kv: &Kv,
    path: &str,
    event: &ItemEvent,
) -> Result<Receipt, PluginError> {
    let location = kv.location(path);
    if settings.on_delete == OnDelete::Keep {
        log(Level::Info, &format!("kept {location}: on-delete is keep"));
        return Ok(receipt(location, None, true));
    }
    let Some(meta) = kv.metadata(path)? else {
        return Ok(receipt(location, None, true));
    };
    if !is_managed(&meta) {
        return Err(permanent(format!(
            "not deleting {location}: it is not managed by opsync"
        )));
    }
    check_ownership(settings, &location, &meta, event)?;
    match settings.on_delete {
        OnDelete::Destroy => kv.destroy(path)?,
        OnDelete::Delete if meta.current_gone => {
            return Ok(receipt(
                location,
                Some(meta.current_version.to_string()),
                true,
            ));
        }
        _ => kv.delete_current(path)?,
    }
    Ok(receipt(
        location,
        Some(meta.current_version.to_string()),
        false,
    ))
}

fn deliver(settings: &Settings, kv: &Kv, event: ItemEvent) -> Result<Receipt, PluginError> {
    let Some(path) = settings.path.name(&event)? else {
        log(
            Level::Info,
            &format!(
                "not deleting anything for item {}: its path does not follow its title",
                event.item.id
            ),
        );
        return Ok(receipt(String::new(), None, true));
    };
    match event.kind {
        ChangeKind::Deleted => delete(settings, kv, &path, &event),
        ChangeKind::Created | ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired => {
            write(settings, kv, &path, &event)
        }
    }
}

/// The config and the KV client (its token revealed once per call).
fn setup() -> Result<(Settings, Kv), PluginError> {
    let settings = Settings::load()?;
    let kv = settings.kv()?;
    Ok((settings, kv))
}

struct VaultKv;

impl Destination for VaultKv {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let (settings, kv) = setup()?;
        deliver(&settings, &kv, event)
    }

    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        deliver_each(events, setup, |(settings, kv), event| {
            deliver(settings, kv, event)
        })
    }

    /// The fingerprint of the current version's data at the item's path; absent when there is no
    /// secret there or its current version is deleted or destroyed.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let (settings, kv) = setup()?;
        let Some(path) = settings.path.name(&item)? else {
            return Ok(Found::Absent);
        };
        Ok(match kv.read(&path)? {
            Some(data) => Found::Present(fingerprint_of(&data)),
            None => Found::Absent,
        })
    }
}

opsync_destination_kit::export_destination!(VaultKv);
