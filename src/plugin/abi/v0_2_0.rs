//! ABI `opsync:plugin@0.2.0` (`wit/0.2.0/`): the bindings of its three worlds, the host side of
//! its interfaces (the shared ones through [`host_side!`], and `fingerprint`), and the
//! conversions between the host's types and its own: batches, read-back and retry hints.

use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker, Resource};

use crate::connect::model::{Field, Item, SecretString};
use crate::plugin::abi::shared::{host_side, section_label, worlds};
use crate::plugin::abi::{Call, Outcome, World};
use crate::plugin::error::{Failure, FailureKind};
use crate::plugin::event::{
    AuditRecord, ChangeKind, Found, ItemEvent, ItemRef, NewValue, Receipt, Rotation, RotationStep,
};
use crate::plugin::limits::SECRET_NAME_MAX;
use crate::plugin::log::Level;
use crate::plugin::secrets::SecretValue;
use crate::plugin::state::HostState;
use crate::plugin::text::sanitize;

worlds!("wit/0.2.0");

use destination::opsync::plugin::{config, fingerprint, log, secrets, types};

/// Adds this version's interfaces to the linker (WASI and wasi:http are added by the engine).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    config::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    fingerprint::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

host_side!(
    item { files: item_files },
    audit {
        source: audit_source,
        detail: audit_detail
    },
);

/// `item.files`: the item's files, each with its content as a secret when the delivery read
/// it (the route's `files = true`) and the call carries values.
fn item_files(
    state: &mut HostState,
    vault_id: &str,
    item: &Item,
    with_values: bool,
) -> wasmtime::Result<Vec<types::ItemFile>> {
    let mut files = Vec::new();
    for file in item.files.iter().flatten() {
        let (content, base64) = match file.content.as_ref().filter(|_| with_values) {
            Some(inline) => {
                let (value, base64) = file_content(inline);
                let name = format!("{vault_id}/{}/files/{}", item.id, file.name);
                let secret = SecretValue::new(name, file.name.clone(), value);
                (Some(state.table.push(secret)?), base64)
            }
            None => (None, false),
        };
        files.push(types::ItemFile {
            id: file.id.clone(),
            name: file.name.clone(),
            size: file.size,
            section: section_label(item, file.section.as_ref()),
            content,
            base64,
        });
    }
    Ok(files)
}

/// A file's content as a plugin receives it, from Connect's inline base64: the text when the
/// bytes are UTF-8, else the base64 itself (and `true`).
fn file_content(inline: &SecretString) -> (SecretString, bool) {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(inline.expose().trim());
    match decoded.map(String::from_utf8) {
        Ok(Ok(text)) => (SecretString::new(text), false),
        _ => (inline.clone(), true),
    }
}

/// `audit-event.source`: the log the record comes from.
fn audit_source(record: &AuditRecord) -> String {
    record.source.clone()
}

/// `audit-event.detail`: an Events API record as the API returned it.
fn audit_detail(record: &AuditRecord) -> Option<String> {
    record.detail.clone()
}

impl fingerprint::Host for HostState {
    fn digest(&mut self, data: Vec<u8>) -> wasmtime::Result<String> {
        HostState::digest(self, &data).map_err(wasmtime::Error::new)
    }
}

/// A plugin's pre-instantiated component, typed by its world.
pub enum Pre {
    Destination(destination::DestinationPre<HostState>),
    Rotator(rotator::RotatorPre<HostState>),
    AuditSink(audit_sink::AuditSinkPre<HostState>),
}

impl Pre {
    /// Type-checks the component's exports against `world`.
    pub fn new(world: World, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match world {
            World::Destination => Self::Destination(destination::DestinationPre::new(pre)?),
            World::Rotator => Self::Rotator(rotator::RotatorPre::new(pre)?),
            World::AuditSink => Self::AuditSink(audit_sink::AuditSinkPre::new(pre)?),
        })
    }

    /// Instantiates into `store` and makes one call. The outer error is a trap or host failure,
    /// the inner one the plugin's own `plugin-error`.
    pub async fn call(
        &self,
        store: &mut Store<HostState>,
        call: Call<'_>,
    ) -> wasmtime::Result<Result<Outcome, Failure>> {
        match (self, call) {
            (Self::Destination(pre), call) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                destination_call(&plugin, store, call).await
            }
            (Self::Rotator(pre), call) => rotator_call(pre, store, call).await,
            (Self::AuditSink(pre), call) => sink_call(pre, store, call).await,
        }
    }
}

/// One call of a destination instance living in `store`.
async fn destination_call(
    plugin: &destination::Destination,
    store: &mut Store<HostState>,
    call: Call<'_>,
) -> wasmtime::Result<Result<Outcome, Failure>> {
    match call {
        Call::Validate => {
            let result = plugin.call_validate(&mut *store).await?;
            Ok(result.map(|()| Outcome::Done).map_err(failure))
        }
        Call::Deliver(event) => {
            let event = item_event(store.data_mut(), event)?;
            let result = plugin.call_deliver(&mut *store, &event).await?;
            Ok(result
                .map(|r| Outcome::Receipt(receipt(r)))
                .map_err(failure))
        }
        Call::DeliverBatch(events) => {
            let mut args = Vec::with_capacity(events.len());
            for event in events {
                args.push(item_event(store.data_mut(), event)?);
            }
            let results = plugin.call_deliver_batch(&mut *store, &args).await?;
            if results.len() != events.len() {
                return Err(wasmtime::Error::msg(format!(
                    "deliver-batch answered {} results for {} events",
                    results.len(),
                    events.len()
                )));
            }
            Ok(Ok(Outcome::Receipts(
                results
                    .into_iter()
                    .map(|r| r.map(receipt).map_err(failure))
                    .collect(),
            )))
        }
        Call::ReadBack(item) => {
            let result = plugin.call_read_back(&mut *store, &item_ref(item)).await?;
            Ok(result.map(|f| Outcome::Found(found(f))).map_err(failure))
        }
        other => Err(not_exported(other)),
    }
}

fn receipt(r: types::Receipt) -> Receipt {
    Receipt {
        location: r.location,
        destination_version: r.destination_version,
        unchanged: r.unchanged,
        fingerprint: r.fingerprint,
    }
}

fn found(f: types::Found) -> Found {
    match f {
        types::Found::Unsupported => Found::Unsupported,
        types::Found::Absent => Found::Absent,
        types::Found::Present(fingerprint) => Found::Present(fingerprint),
    }
}

fn failure(e: types::PluginError) -> Failure {
    match e {
        types::PluginError::Retryable(r) => {
            Failure::retry_after(r.message, r.after_ms.map(Duration::from_millis))
        }
        types::PluginError::Permanent(m) => Failure::new(FailureKind::Permanent, m),
        types::PluginError::Misconfigured(m) => Failure::new(FailureKind::Misconfigured, m),
    }
}

fn change_kind(kind: ChangeKind) -> types::ChangeKind {
    match kind {
        ChangeKind::Created => types::ChangeKind::Created,
        ChangeKind::Updated => types::ChangeKind::Updated,
        ChangeKind::Deleted => types::ChangeKind::Deleted,
        ChangeKind::Rotated => types::ChangeKind::Rotated,
        ChangeKind::Repaired => types::ChangeKind::Repaired,
    }
}

fn item_event(state: &mut HostState, event: &ItemEvent) -> wasmtime::Result<types::ItemEvent> {
    let with_values = event.kind != ChangeKind::Deleted;
    Ok(types::ItemEvent {
        idempotency_key: event.idempotency_key.clone(),
        kind: change_kind(event.kind),
        vault: vault_ref(&event.vault),
        item: item(state, &event.vault.id, &event.item, with_values)?,
        key: event.destination_key.clone().unwrap_or_default(),
        renamed_to: event.renamed_to.clone(),
    })
}

fn item_ref(item: &ItemRef) -> types::ItemRef {
    types::ItemRef {
        key: item.key.clone(),
        vault: vault_ref(&item.vault),
        id: item.id.clone(),
        title: item.title.clone(),
        category: item.category.clone(),
        tags: item.tags.clone(),
        version: item.version,
    }
}
