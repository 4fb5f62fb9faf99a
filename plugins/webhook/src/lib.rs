//! The built-in `webhook` destination: POSTs each item change as JSON to one URL, signed the
//! Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! Config: `url` (required; grant its host:port), `secret` (required, `whsec_<base64>`, usually an
//! `op://` reference), `name` (template; unset: the route's key, which comes with the event),
//! `format` (`json`: values in `data.values`; `item-json`: the whole item in `data.item`),
//! `fields` (comma-separated ids or labels; default every field with a value), `on-delete`
//! (`send` or `skip`). The body is `{"type": "item.<kind>", "timestamp", "data": {"name", "kind",
//! "idempotency_key", "item", "values"}}`; `webhook-id` is the event's idempotency key, so
//! receivers drop replays. A webhook cannot be read back: `read-back` answers `unsupported`, and
//! receipts carry no fingerprint.

use opsync_destination_kit::clock::Instant;
use opsync_destination_kit::http::{self, Endpoint, Request};
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::naming::Naming;
use opsync_destination_kit::select::{self, Format, Selection};
use opsync_destination_kit::settings::{check_keys, choice, required};
use opsync_destination_kit::{
    ChangeKind, Destination, ItemEvent, PluginError, Receipt, deliver_each, kind_name, permanent,
    receipt,
};
use opsync_webhook_sign::SigningKey;
use serde_json::{Value, json};

const KNOWN_KEYS: &[&str] = &["url", "secret", "name", "format", "fields", "on-delete"];

struct Settings {
    url: Endpoint,
    key: SigningKey,
    name: Naming,
    selection: Selection,
    send_deletes: bool,
}

impl Settings {
    fn load() -> Result<Self, PluginError> {
        check_keys(KNOWN_KEYS)?;
        let url = Endpoint::parse("url", &required("url")?)?;
        let name = Naming::load("name", "{{vault}}/{{title}}")?;
        let selection = Selection::load(&[Format::Json, Format::ItemJson])?;
        let send_deletes = choice("on-delete", &["send", "skip"], "send")? == "send";
        Ok(Self {
            url,
            key: SigningKey::from_config("secret")?,
            name,
            selection,
            send_deletes,
        })
    }
}

/// The Standard Webhooks payload: `type`, `timestamp` and `data`.
fn payload(
    settings: &Settings,
    event: &ItemEvent,
    name: &str,
    at: Instant,
) -> Result<Value, PluginError> {
    let mut data = json!({
        "name": name,
        "kind": kind_name(event.kind),
        "idempotency_key": event.idempotency_key,
    });
    let deleted = event.kind == ChangeKind::Deleted;
    let item = match settings.selection.format {
        Format::ItemJson if !deleted => settings.selection.document(event)?,
        _ => select::item_summary(event),
    };
    if let Value::Object(map) = &mut data {
        map.insert("item".into(), item);
        if settings.selection.format == Format::Json && !deleted {
            map.insert("values".into(), settings.selection.document(event)?);
        }
    }
    Ok(json!({
        "type": format!("item.{}", kind_name(event.kind)),
        "timestamp": at.rfc3339(),
        "data": data,
    }))
}

struct Webhook;

impl Destination for Webhook {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        deliver(&Settings::load()?, event)
    }

    /// One POST per event, in order, with the config (and its signing key) read once.
    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        deliver_each(events, Settings::load, deliver)
    }
}

fn deliver(settings: &Settings, event: ItemEvent) -> Result<Receipt, PluginError> {
    let Some(name) = settings.name.name(&event)? else {
        log(
            Level::Info,
            &format!(
                "not sending a deletion for item {}: its name does not follow its title",
                event.item.id
            ),
        );
        return Ok(receipt(settings.url.origin(), None, true));
    };
    let location = format!("{} {name}", settings.url.origin());
    if event.kind == ChangeKind::Deleted && !settings.send_deletes {
        log(
            Level::Info,
            &format!("not sending the deletion of {name}: on-delete is skip"),
        );
        return Ok(receipt(location, None, true));
    }
    let at = Instant::now();
    let body = serde_json::to_vec(&payload(settings, &event, &name, at)?)
        .map_err(|e| permanent(format!("cannot render the payload: {e}")))?;
    let signature = settings.key.sign(&event.idempotency_key, at.unix(), &body);
    let response = http::send(Request {
        method: "POST",
        endpoint: &settings.url,
        path: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "opsync-webhook".into()),
            ("webhook-id".into(), event.idempotency_key.clone()),
            ("webhook-timestamp".into(), at.unix().to_string()),
            ("webhook-signature".into(), signature),
        ],
        body: Some(body),
    })?;
    if !response.is_success() {
        // The receiver's body is not quoted: it may echo the payload, values included.
        return Err(response.error(&format!("webhook {}", settings.url.origin()), ""));
    }
    Ok(receipt(location, None, false))
}

opsync_destination_kit::export_destination!(Webhook);
