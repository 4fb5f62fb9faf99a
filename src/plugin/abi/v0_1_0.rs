//! ABI `opsync:plugin@0.1.0` (`wit/0.1.0/`): the bindings of its three worlds, the host side of
//! its interfaces, and the conversions between the host's types and its own.

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker, Resource};

use crate::connect::model::{ApiRequest, Field, Item, SecretString};
use crate::plugin::abi::{Call, Outcome, World};
use crate::plugin::error::{Failure, FailureKind};
use crate::plugin::event::{ChangeKind, ItemEvent, NewValue, Receipt, Rotation, RotationStep};
use crate::plugin::limits::SECRET_NAME_MAX;
use crate::plugin::log::Level;
use crate::plugin::secrets::SecretValue;
use crate::plugin::state::HostState;
use crate::plugin::text::sanitize;

/// The `destination` world, and the interfaces the other worlds share with it.
pub mod destination {
    wasmtime::component::bindgen!({
        world: "destination",
        path: "wit/0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "opsync:plugin/secrets.secret": crate::plugin::secrets::SecretValue,
        },
    });
}

/// The `rotator` world.
pub mod rotator {
    wasmtime::component::bindgen!({
        world: "rotator",
        path: "wit/0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "opsync:plugin/secrets": super::destination::opsync::plugin::secrets,
            "opsync:plugin/types": super::destination::opsync::plugin::types,
            "opsync:plugin/log": super::destination::opsync::plugin::log,
            "opsync:plugin/config": super::destination::opsync::plugin::config,
        },
    });
}

/// The `audit-sink` world.
pub mod audit_sink {
    wasmtime::component::bindgen!({
        world: "audit-sink",
        path: "wit/0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "opsync:plugin/secrets": super::destination::opsync::plugin::secrets,
            "opsync:plugin/types": super::destination::opsync::plugin::types,
            "opsync:plugin/log": super::destination::opsync::plugin::log,
            "opsync:plugin/config": super::destination::opsync::plugin::config,
        },
    });
}

use destination::opsync::plugin::{config, log, secrets, types};

/// Adds this version's interfaces to the linker (WASI and wasi:http are added by the engine).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    log::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    config::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

impl types::Host for HostState {}

impl secrets::Host for HostState {}

impl secrets::HostSecret for HostState {
    fn new(&mut self, name: String, value: String) -> wasmtime::Result<Resource<SecretValue>> {
        self.secrets.make(&value)?;
        let name = sanitize(&self.secrets, &name, SECRET_NAME_MAX);
        let secret = SecretValue::new(name, "plugin-made", SecretString::new(value));
        Ok(self.table.push(secret)?)
    }

    fn name(&mut self, secret: Resource<SecretValue>) -> wasmtime::Result<String> {
        Ok(self.table.get(&secret)?.name().to_string())
    }

    fn len(&mut self, secret: Resource<SecretValue>) -> wasmtime::Result<u32> {
        let len = self.table.get(&secret)?.len();
        Ok(u32::try_from(len).unwrap_or(u32::MAX))
    }

    fn reveal(&mut self, secret: Resource<SecretValue>) -> wasmtime::Result<String> {
        let HostState { table, secrets, .. } = self;
        Ok(secrets.reveal(table.get(&secret)?))
    }

    fn drop(&mut self, secret: Resource<SecretValue>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

impl From<log::Level> for Level {
    fn from(level: log::Level) -> Self {
        match level {
            log::Level::Trace => Level::Trace,
            log::Level::Debug => Level::Debug,
            log::Level::Info => Level::Info,
            log::Level::Warn => Level::Warn,
            log::Level::Error => Level::Error,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log
            .log(&self.secrets, level.into(), &message)
            .map_err(wasmtime::Error::new)
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        if key.starts_with(crate::plugin::RESERVED_CONFIG_PREFIX) {
            let value = self.reserved.iter().find(|(k, _)| *k == key);
            return Ok(value.map(|(_, v)| v.clone()));
        }
        Ok(self.config.get(&key).map(String::from))
    }

    fn get_secret(&mut self, key: String) -> wasmtime::Result<Option<Resource<SecretValue>>> {
        match self.config.get_secret(&key) {
            Some(secret) => Ok(Some(self.table.push(secret)?)),
            None => Ok(None),
        }
    }

    fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.config.keys().map(String::from).collect())
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
            (Self::Destination(pre), Call::Validate) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let result = plugin.call_validate(&mut *store).await?;
                Ok(result.map(|()| Outcome::Done).map_err(failure))
            }
            (Self::Destination(pre), Call::Deliver(event)) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                deliver(&plugin, store, event).await
            }
            (Self::Rotator(pre), Call::Validate) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let result = plugin.call_validate(&mut *store).await?;
                Ok(result.map(|()| Outcome::Done).map_err(failure))
            }
            (Self::Rotator(pre), Call::Rotate(step, rotation)) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let arg = rotation_arg(store.data_mut(), rotation)?;
                match step {
                    RotationStep::Create => {
                        let result = plugin.call_create(&mut *store, &arg).await?;
                        match result {
                            Ok(values) => {
                                let values = take_new_values(store.data_mut(), values)?;
                                Ok(Ok(Outcome::NewValues(values)))
                            }
                            Err(e) => Ok(Err(failure(e))),
                        }
                    }
                    RotationStep::Set => {
                        let result = plugin.call_set(&mut *store, &arg).await?;
                        Ok(result.map(|()| Outcome::Done).map_err(failure))
                    }
                    RotationStep::Test => {
                        let result = plugin.call_test(&mut *store, &arg).await?;
                        Ok(result.map(|()| Outcome::Done).map_err(failure))
                    }
                    RotationStep::Finish => {
                        let result = plugin.call_finish(&mut *store, &arg).await?;
                        Ok(result.map(|()| Outcome::Done).map_err(failure))
                    }
                }
            }
            (Self::AuditSink(pre), Call::Validate) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let result = plugin.call_validate(&mut *store).await?;
                Ok(result.map(|()| Outcome::Done).map_err(failure))
            }
            (Self::AuditSink(pre), Call::Ingest(batch)) => {
                let plugin = pre.instantiate_async(&mut *store).await?;
                let batch: Vec<types::AuditEvent> = batch.iter().map(audit_event).collect();
                let result = plugin.call_ingest(&mut *store, &batch).await?;
                Ok(result.map(|()| Outcome::Done).map_err(failure))
            }
            (_, call) => Err(wasmtime::Error::msg(format!(
                "`{}` is not an export of this plugin's world",
                call.name()
            ))),
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

fn change_kind(kind: ChangeKind) -> types::ChangeKind {
    match kind {
        ChangeKind::Created => types::ChangeKind::Created,
        ChangeKind::Updated => types::ChangeKind::Updated,
        ChangeKind::Deleted => types::ChangeKind::Deleted,
        ChangeKind::Rotated => types::ChangeKind::Rotated,
    }
}

fn vault_ref(vault: &crate::plugin::event::VaultRef) -> types::VaultRef {
    types::VaultRef {
        id: vault.id.clone(),
        name: vault.name.clone(),
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

fn rotation_arg(state: &mut HostState, rotation: &Rotation) -> wasmtime::Result<types::Rotation> {
    let item = item(state, &rotation.vault.id, &rotation.item, true)?;
    let mut pending = Vec::with_capacity(rotation.pending.len());
    for new in &rotation.pending {
        let name = format!(
            "{}/{}/{} (pending)",
            rotation.vault.id, rotation.item.id, new.field
        );
        let secret = SecretValue::new(name, new.field.clone(), new.value.clone());
        pending.push(types::NewValue {
            field: new.field.clone(),
            value: state.table.push(secret)?,
        });
    }
    Ok(types::Rotation {
        idempotency_key: rotation.idempotency_key.clone(),
        vault: vault_ref(&rotation.vault),
        item,
        pending,
    })
}

fn take_new_values(
    state: &mut HostState,
    values: Vec<types::NewValue>,
) -> wasmtime::Result<Vec<NewValue>> {
    values
        .into_iter()
        .map(|v| {
            let secret = state.table.delete(v.value)?;
            Ok(NewValue {
                field: v.field,
                value: secret.into_value(),
            })
        })
        .collect()
}

fn item(
    state: &mut HostState,
    vault_id: &str,
    item: &Item,
    with_values: bool,
) -> wasmtime::Result<types::Item> {
    let mut fields = Vec::new();
    if with_values {
        for f in item.fields.iter().flatten() {
            fields.push(field(state, vault_id, item, f)?);
        }
    }
    Ok(types::Item {
        id: item.id.clone(),
        title: item.title.clone(),
        category: item.category.as_str().to_string(),
        tags: item.tags.clone(),
        version: item.version,
        urls: item
            .urls
            .iter()
            .map(|u| types::ItemUrl {
                href: u.href.clone(),
                label: u.label.clone(),
                primary: u.primary,
            })
            .collect(),
        updated_at: item.updated_at.map(|t| t.to_rfc3339()),
        fields,
    })
}

fn field(
    state: &mut HostState,
    vault_id: &str,
    item: &Item,
    f: &Field,
) -> wasmtime::Result<types::Field> {
    let label = f.label.clone().unwrap_or_default();
    let section = f.section.as_ref().and_then(|s| {
        item.sections
            .iter()
            .flatten()
            .find(|sec| sec.id == s.id)
            .and_then(|sec| sec.label.clone())
    });
    let value = match &f.value {
        Some(v) => {
            let shown = if label.is_empty() { &f.id } else { &label };
            let name = format!("{vault_id}/{}/{shown}", item.id);
            Some(
                state
                    .table
                    .push(SecretValue::new(name, shown.clone(), v.clone()))?,
            )
        }
        None => None,
    };
    Ok(types::Field {
        id: f.id.clone(),
        label,
        field_type: f.field_type.as_str().to_string(),
        purpose: f.purpose.as_ref().map(|p| p.as_str().to_string()),
        section,
        value,
    })
}

fn audit_event(r: &ApiRequest) -> types::AuditEvent {
    types::AuditEvent {
        request_id: r.request_id.clone(),
        timestamp: r.timestamp.to_rfc3339(),
        action: r.action.as_str().to_string(),
        outcome: r.result.as_str().to_string(),
        actor: types::AuditActor {
            id: r.actor.id.clone(),
            account: r.actor.account.clone(),
            jti: r.actor.jti.clone(),
            user_agent: r.actor.user_agent.clone(),
            request_ip: r.actor.request_ip.clone(),
        },
        target: r.resource.as_ref().map(|res| types::AuditResource {
            kind: res.resource_type.as_str().to_string(),
            vault_id: res.vault.as_ref().map(|v| v.id.clone()),
            item_id: res.item.as_ref().map(|i| i.id.clone()),
            item_version: res.item_version,
        }),
    }
}
