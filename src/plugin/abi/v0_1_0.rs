//! ABI `opsync:plugin@0.1.0` (`wit/0.1.0/`): the bindings of its three worlds, the host side of
//! its interfaces, and the conversions between the host's types and its own.

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker, Resource};

use crate::connect::model::{Field, Item, SecretString};
use crate::plugin::abi::shared::{host_side, worlds};
use crate::plugin::abi::{Call, Outcome, World};
use crate::plugin::error::{Failure, FailureKind};
use crate::plugin::event::{
    AuditRecord, ChangeKind, ItemEvent, NewValue, Receipt, Rotation, RotationStep,
};
use crate::plugin::limits::SECRET_NAME_MAX;
use crate::plugin::log::Level;
use crate::plugin::secrets::SecretValue;
use crate::plugin::state::HostState;
use crate::plugin::text::sanitize;

worlds!("wit/0.1.0");

use destination::opsync::plugin::{config, log, secrets, types};

/// Adds this version's interfaces to the linker (WASI and wasi:http are added by the engine).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    config::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

host_side!(item {}, audit {});

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
            (Self::Destination(pre), Call::Validate) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let result = plugin.call_validate(&mut *store).await?;
                Ok(result.map(|()| Outcome::Done).map_err(failure))
            }
            (Self::Destination(pre), Call::Deliver(event)) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                deliver(&plugin, store, event).await
            }
            (Self::Rotator(pre), call) => rotator_call(pre, store, call).await,
            (Self::AuditSink(pre), call) => sink_call(pre, store, call).await,
            (Self::Destination(_), call) => Err(not_exported(call)),
        }
    }

    /// Instantiates a destination into `store` without calling it; `None` for the other worlds.
    /// Only the host's bench-only warm instance keeps an instance past one call.
    pub async fn instantiate_destination(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Option<destination::Destination>> {
        match self {
            Self::Destination(pre) => Ok(Some(pre.instantiate_async(&mut *store).await?)),
            Self::Rotator(_) | Self::AuditSink(_) => Ok(None),
        }
    }
}

/// Calls `deliver` on a destination instance already living in `store`.
pub async fn deliver(
    plugin: &destination::Destination,
    store: &mut Store<HostState>,
    event: &ItemEvent,
) -> wasmtime::Result<Result<Outcome, Failure>> {
    let event = item_event(store.data_mut(), event)?;
    let result = plugin.call_deliver(&mut *store, &event).await?;
    Ok(result
        .map(|r| {
            Outcome::Receipt(Receipt {
                location: r.location,
                destination_version: r.destination_version,
                unchanged: r.unchanged,
                fingerprint: None,
            })
        })
        .map_err(failure))
}

fn failure(e: types::PluginError) -> Failure {
    match e {
        types::PluginError::Retryable(m) => Failure::new(FailureKind::Retryable, m),
        types::PluginError::Permanent(m) => Failure::new(FailureKind::Permanent, m),
        types::PluginError::Misconfigured(m) => Failure::new(FailureKind::Misconfigured, m),
    }
}

/// 0.1.0 has no `repaired`: a repair reaches it as an update.
fn change_kind(kind: ChangeKind) -> types::ChangeKind {
    match kind {
        ChangeKind::Created => types::ChangeKind::Created,
        ChangeKind::Updated | ChangeKind::Repaired => types::ChangeKind::Updated,
        ChangeKind::Deleted => types::ChangeKind::Deleted,
        ChangeKind::Rotated => types::ChangeKind::Rotated,
    }
}

fn item_event(state: &mut HostState, event: &ItemEvent) -> wasmtime::Result<types::ItemEvent> {
    let with_values = event.kind != ChangeKind::Deleted;
    state.reserved = event.reserved_config();
    Ok(types::ItemEvent {
        idempotency_key: event.idempotency_key.clone(),
        kind: change_kind(event.kind),
        vault: vault_ref(&event.vault),
        item: item(state, &event.vault.id, &event.item, with_values)?,
    })
}
