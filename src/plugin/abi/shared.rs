//! What every ABI version's host side has in common. The versions' interfaces have the same
//! shape but are distinct generated types (a package's version is part of each type's
//! identity), so these are macros: each version module invokes [`worlds!`] with its WIT folder
//! for its bindings, and [`host_side!`] with its generated `types`, `secrets`, `log` and
//! `config` modules in scope for the host implementations of those interfaces and the
//! conversions to and from their types. What involves no generated type is a plain function.

/// The bindings of a version's three worlds, generated from its WIT folder (`$path`): the
/// `destination` world defines the interfaces; the other two reuse its types.
macro_rules! worlds {
    ($path:literal) => {
        /// The `destination` world, and the interfaces the other worlds share with it.
        pub mod destination {
            wasmtime::component::bindgen!({
                world: "destination",
                path: $path,
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
                path: $path,
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
                path: $path,
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
    };
}

pub(crate) use worlds;

/// The label of the item's section `section` (a field's or a file's), if it has one.
pub(crate) fn section_label(
    item: &crate::connect::model::Item,
    section: Option<&crate::connect::model::IdRef>,
) -> Option<String> {
    let id = &section?.id;
    item.sections
        .iter()
        .flatten()
        .find(|s| s.id == *id)
        .and_then(|s| s.label.clone())
}

/// The host side of the interfaces every version shares, and the conversions of items,
/// rotations and audit records into the version's types. Expects `types`, `secrets`, `log`
/// and `config` (the version's generated modules) and the host types used below in scope; the
/// arguments name the fields a version added to `item` and to `audit-event`, and the functions
/// that fill them (an item's take the state, the vault id, the item and whether values go
/// along; an audit record's take the record).
macro_rules! host_side {
    (
        item { $($item_field:ident: $item_value:path),* $(,)? },
        audit { $($audit_field:ident: $audit_value:path),* $(,)? } $(,)?
    ) => {
        impl types::Host for HostState {}

        impl secrets::Host for HostState {}

        impl secrets::HostSecret for HostState {
            fn new(
                &mut self,
                name: String,
                value: String,
            ) -> wasmtime::Result<Resource<SecretValue>> {
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

            fn get_secret(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Option<Resource<SecretValue>>> {
                match self.config.get_secret(&key) {
                    Some(secret) => Ok(Some(self.table.push(secret)?)),
                    None => Ok(None),
                }
            }

            fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
                Ok(self.config.keys().map(String::from).collect())
            }
        }

        fn vault_ref(vault: &crate::plugin::event::VaultRef) -> types::VaultRef {
            types::VaultRef {
                id: vault.id.clone(),
                name: vault.name.clone(),
            }
        }

        fn rotation_arg(
            state: &mut HostState,
            rotation: &Rotation,
        ) -> wasmtime::Result<types::Rotation> {
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
                $($item_field: $item_value(state, vault_id, item, with_values)?,)*
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
            let section = crate::plugin::abi::shared::section_label(item, f.section.as_ref());
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

        /// An audit record in this version's shape: the common fields, and the fields the
        /// version added (`$audit_field`, each the value of `$audit_value(record)`).
        fn audit_event(record: &AuditRecord) -> types::AuditEvent {
            let r = &record.request;
            types::AuditEvent {
                $($audit_field: $audit_value(record),)*
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

        /// One call of a rotator: instantiate into `store`, then the step or `validate`.
        async fn rotator_call(
            pre: &rotator::RotatorPre<HostState>,
            store: &mut Store<HostState>,
            call: Call<'_>,
        ) -> wasmtime::Result<Result<Outcome, Failure>> {
            let plugin = pre.instantiate_async(&mut *store).await?;
            let (step, rotation) = match call {
                Call::Validate => {
                    let result = plugin.call_validate(&mut *store).await?;
                    return Ok(result.map(|()| Outcome::Done).map_err(failure));
                }
                Call::Rotate(step, rotation) => (step, rotation),
                other => return Err(not_exported(other)),
            };
            let arg = rotation_arg(store.data_mut(), rotation)?;
            let result = match step {
                RotationStep::Create => match plugin.call_create(&mut *store, &arg).await? {
                    Ok(values) => {
                        let values = take_new_values(store.data_mut(), values)?;
                        return Ok(Ok(Outcome::NewValues(values)));
                    }
                    Err(e) => Err(e),
                },
                RotationStep::Set => plugin.call_set(&mut *store, &arg).await?,
                RotationStep::Test => plugin.call_test(&mut *store, &arg).await?,
                RotationStep::Finish => plugin.call_finish(&mut *store, &arg).await?,
            };
            Ok(result.map(|()| Outcome::Done).map_err(failure))
        }

        /// One call of an audit sink: instantiate into `store`, then `ingest` or `validate`.
        async fn sink_call(
            pre: &audit_sink::AuditSinkPre<HostState>,
            store: &mut Store<HostState>,
            call: Call<'_>,
        ) -> wasmtime::Result<Result<Outcome, Failure>> {
            let plugin = pre.instantiate_async(&mut *store).await?;
            let result = match call {
                Call::Validate => plugin.call_validate(&mut *store).await?,
                Call::Ingest(batch) => {
                    let batch: Vec<types::AuditEvent> = batch.iter().map(audit_event).collect();
                    plugin.call_ingest(&mut *store, &batch).await?
                }
                other => return Err(not_exported(other)),
            };
            Ok(result.map(|()| Outcome::Done).map_err(failure))
        }

        fn not_exported(call: Call<'_>) -> wasmtime::Error {
            wasmtime::Error::msg(format!(
                "`{}` is not an export of this plugin's world",
                call.name()
            ))
        }
    };
}

pub(crate) use host_side;
