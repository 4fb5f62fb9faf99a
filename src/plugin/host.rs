//! Loading plugins (identity, hash pinning, compile cache, `InstancePre`) and calling them: a
//! fresh store per call, under the plugin's limits, with errors that name the plugin.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use crate::plugin::abi::{self, Call, Outcome, OwnedCall, Pre, Target, World, v0_1_0};
use crate::plugin::cache::{CacheOutcome, ComponentCache};
use crate::plugin::call_end::{record, settle, settle_outcome};
use crate::plugin::config::PluginConfig;
use crate::plugin::engine::{EngineOptions, PluginEngine};
use crate::plugin::error::PluginError;
use crate::plugin::event::{
    AuditRecord, Found, ItemEvent, ItemRef, NewValue, Receipt, Rotation, RotationStep,
};
use crate::plugin::fingerprint::FingerprintKey;
use crate::plugin::http::OnDenied;
use crate::plugin::limits::Limits;
use crate::plugin::source;
use crate::plugin::state::{Grants, HostState, StoreSpec};

/// Where a plugin's component comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the binary (`plugins/<name>`).
    Builtin(String),
    /// A component file whose sha256 the config pins; a mismatch refuses to load.
    File { path: PathBuf, sha256: String },
}

/// Everything needed to load one plugin instance.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// The instance's name in config; every log line and error carries it.
    pub name: String,
    pub source: PluginSource,
    /// The world config expects; `None` accepts whatever the component is.
    pub world: Option<World>,
    pub config: PluginConfig,
    pub limits: Limits,
    pub grants: Grants,
}

/// Host-wide settings.
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    /// Directory of the compiled-component cache; `None` compiles at every load.
    pub cache_dir: Option<PathBuf>,
    pub engine: EngineOptions,
    /// Told of every outgoing request a plugin's grants refused.
    pub on_denied: Option<OnDenied>,
    /// The key of plugins' fingerprints (drift detection); `None` draws one for this process.
    pub fingerprint_key: Option<FingerprintKey>,
}

/// The plugin host: one engine, one linker, one cache, any number of plugins.
#[derive(Clone)]
pub struct PluginHost {
    engine: Arc<PluginEngine>,
    cache: ComponentCache,
    on_denied: Option<OnDenied>,
    fingerprint: Arc<FingerprintKey>,
}

impl PluginHost {
    pub fn new(options: HostOptions) -> Result<Self, PluginError> {
        let engine = PluginEngine::new(options.engine)?;
        let cache = ComponentCache::new(options.cache_dir, &engine.engine);
        Ok(Self {
            engine: Arc::new(engine),
            cache,
            on_denied: options.on_denied,
            fingerprint: Arc::new(
                options
                    .fingerprint_key
                    .unwrap_or_else(FingerprintKey::random),
            ),
        })
    }

    /// Loads, checks and pre-instantiates a plugin. Compiling is CPU-bound (tens of milliseconds
    /// per component without a cache entry); call from a blocking-friendly context.
    pub fn load(&self, spec: PluginSpec) -> Result<Plugin, PluginError> {
        let name = spec.name.clone();
        let (wasm, sha256) = source::read(&name, &spec.source)?;
        spec.limits
            .validate(self.engine.options.max_memory_bytes)
            .map_err(|e| PluginError::Config {
                plugin: name.clone(),
                reason: e.to_string(),
            })?;
        let started = Instant::now();
        let (component, outcome) = self
            .cache
            .load(&self.engine.engine, &wasm, &sha256)
            .map_err(|reason| PluginError::Invalid {
                plugin: name.clone(),
                reason,
            })?;
        let (target, pre) = self.prepare(&name, &component, spec.world)?;
        tracing::info!(
            plugin = %name,
            world = %target.world,
            abi = %target.version,
            sha256 = %sha256,
            cache = ?outcome,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "plugin loaded"
        );
        if !spec.grants.dirs.is_empty() {
            crate::plugin::state::private_files();
        }
        let plugin: Arc<str> = name.into();
        let cpu_ticks = spec.limits.cpu_ticks(self.engine.options.epoch_tick);
        Ok(Plugin {
            inner: Arc::new(Inner {
                engine: self.engine.clone(),
                world: target.world,
                abi_version: target.version,
                sha256,
                cache: outcome,
                pre,
                store: StoreSpec {
                    plugin,
                    limits: spec.limits,
                    http: Arc::new(spec.grants.http),
                    dirs: spec.grants.dirs,
                    tcp: spec.grants.tcp.into(),
                    config: Arc::new(spec.config),
                    cpu_ticks,
                    on_denied: self.on_denied.clone(),
                    fingerprint: self.fingerprint.clone(),
                },
            }),
        })
    }
}

impl PluginHost {
    /// Compiles a component without the cache (for `plugin inspect`, which never runs it).
    pub(crate) fn compile(&self, name: &str, wasm: &[u8]) -> Result<Component, PluginError> {
        Component::new(&self.engine.engine, wasm).map_err(|e| PluginError::Invalid {
            plugin: name.to_string(),
            reason: format!("not a WebAssembly component: {e:#}"),
        })
    }

    /// Every check a component must pass to be loaded: a plugin world and an ABI version this
    /// host speaks (the one `expected`, if any), and only imports the host provides. `load`,
    /// `plugin check` and `plugin inspect` all go through here.
    pub(crate) fn prepare(
        &self,
        name: &str,
        component: &Component,
        expected: Option<World>,
    ) -> Result<(Target, Pre), PluginError> {
        let invalid = |reason: String| PluginError::Invalid {
            plugin: name.to_string(),
            reason,
        };
        let target = abi::target(&self.engine.engine, component).map_err(invalid)?;
        if let Some(expected) = expected
            && expected != target.world
        {
            return Err(PluginError::WrongWorld {
                plugin: name.to_string(),
                expected: expected.to_string(),
                found: target.world.to_string(),
            });
        }
        let pre = self
            .engine
            .linker
            .instantiate_pre(component)
            .map_err(|e| invalid(format!("imports something opsync does not grant: {e:#}")))?;
        let pre = Pre::new(&target, pre)
            .map_err(|e| invalid(format!("exports do not match its world: {e:#}")))?;
        Ok((target, pre))
    }
}

/// A loaded plugin; cheap to clone, safe to call from many tasks at once.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<PluginEngine>,
    world: World,
    abi_version: String,
    sha256: String,
    cache: CacheOutcome,
    pre: Pre,
    store: StoreSpec,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("world", &self.inner.world)
            .field("sha256", &self.inner.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.inner.store.plugin
    }

    pub fn world(&self) -> World {
        self.inner.world
    }

    pub fn abi_version(&self) -> &str {
        &self.inner.abi_version
    }

    /// Whether a batch is one call (ABI 0.2.0 and later) rather than one call per event.
    pub fn batches(&self) -> bool {
        self.inner.pre.batches()
    }

    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Flushes the plugin's writable granted directories to disk (see `grants.dirs[].flush`);
    /// blocks. Returns how many it flushed: none for a plugin without directories.
    pub fn flush_dirs(&self) -> Result<usize, PluginError> {
        crate::plugin::flush::flush_dirs(self.name(), &self.inner.store.dirs)
    }

    /// Whether the component came from the compile cache.
    pub fn cache_outcome(&self) -> &CacheOutcome {
        &self.inner.cache
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.store.limits
    }

    /// Asks the plugin to check its config.
    pub async fn validate(&self) -> Result<(), PluginError> {
        self.call(Call::Validate).await.map(drop)
    }

    /// Hands one item change to a destination plugin.
    pub async fn deliver(&self, event: &ItemEvent) -> Result<Receipt, PluginError> {
        match self.call(Call::Deliver(event)).await? {
            Outcome::Receipt(receipt) => Ok(receipt),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Hands a batch of changes (one route's) to a destination plugin: one call for an ABI 0.2.0
    /// plugin, one call per event for an ABI 0.1.0 plugin. One result per event, in order; the
    /// outer error is a failure of the whole call (a trap, a limit), which every event shares.
    pub async fn deliver_batch(
        &self,
        events: &[ItemEvent],
    ) -> Result<Vec<Result<Receipt, PluginError>>, PluginError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if !self.inner.pre.batches() {
            let mut out = Vec::with_capacity(events.len());
            for event in events {
                out.push(self.deliver(event).await);
            }
            return Ok(out);
        }
        match self.call(Call::DeliverBatch(events)).await? {
            Outcome::Receipts(results) => Ok(results
                .into_iter()
                .map(|r| {
                    r.map_err(|failure| PluginError::Failed {
                        plugin: self.name().to_string(),
                        failure,
                    })
                })
                .collect()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// What is at `item`'s key at the destination, as a keyed fingerprint; `Unsupported` for a
    /// plugin that cannot tell (every ABI 0.1.0 plugin, without a call).
    pub async fn read_back(&self, item: &ItemRef) -> Result<Found, PluginError> {
        if !self.inner.pre.batches() {
            return Ok(Found::Unsupported);
        }
        match self.call(Call::ReadBack(item)).await? {
            Outcome::Found(found) => Ok(found),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Runs one rotation step; `create` may return new values, the other steps return none.
    pub async fn rotate(
        &self,
        step: RotationStep,
        rotation: &Rotation,
    ) -> Result<Vec<NewValue>, PluginError> {
        match self.call(Call::Rotate(step, rotation)).await? {
            Outcome::NewValues(values) => Ok(values),
            Outcome::Done => Ok(Vec::new()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Ships a batch of audit records to an audit-sink plugin.
    pub async fn ingest(&self, batch: &[AuditRecord]) -> Result<(), PluginError> {
        self.call(Call::Ingest(batch)).await.map(drop)
    }

    fn unexpected(&self, outcome: &Outcome) -> PluginError {
        PluginError::Trap {
            plugin: self.name().to_string(),
            message: format!("the host got an unexpected result: {outcome:?}"),
        }
    }

    /// One call in a fresh store: instantiate, call, drop. Nothing survives to the next call.
    ///
    /// A plugin with granted directories does file I/O, which blocks: its whole call runs on a
    /// thread of the blocking pool, with the guest's file operations inline, through the engine's
    /// dispatcher (a thread that finishes a call takes the next queued one). That keeps blocking
    /// file operations, and an `fsync`, off the runtime's threads, without a thread hand-off per
    /// file operation or a wake-up per call.
    async fn call(&self, call: Call<'_>) -> Result<Outcome, PluginError> {
        if self.inner.store.dirs.is_empty() {
            return self.call_in_store(call).await;
        }
        let plugin = self.clone();
        let call = OwnedCall::from(call);
        let runtime = tokio::runtime::Handle::current();
        self.inner
            .engine
            .dispatch
            .run(move || runtime.block_on(plugin.call_in_store(call.as_call())))
            .await
            .unwrap_or_else(|e| {
                Err(PluginError::Engine(format!(
                    "a call of plugin `{}` was cut off: {e}",
                    self.name()
                )))
            })
    }

    async fn call_in_store(&self, call: Call<'_>) -> Result<Outcome, PluginError> {
        let inner = &*self.inner;
        let plugin = self.name().to_string();
        if let Some(world) = call.world()
            && world != inner.world
        {
            return Err(PluginError::WrongWorld {
                plugin,
                expected: world.to_string(),
                found: inner.world.to_string(),
            });
        }
        let _permit = inner
            .engine
            .permits
            .acquire()
            .await
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        let started = Instant::now();
        // A batch may use what its events could have used one call each.
        let batch_spec = match call {
            Call::DeliverBatch(events) if events.len() > 1 => {
                Some(inner.store.for_batch(events.len()))
            }
            _ => None,
        };
        let spec = batch_spec.as_ref().unwrap_or(&inner.store);
        let mut store = self.new_store(spec)?;
        let limits = &spec.limits;
        let result =
            tokio::time::timeout(limits.wall_clock, inner.pre.call(&mut store, call)).await;
        let outcome = settle_outcome(&plugin, limits, &mut store, result);
        drop(store);
        record(self.name(), call.name(), started, &outcome);
        outcome
    }

    /// A store for one call, under the plugin's limits and CPU budget.
    fn new_store(&self, spec: &StoreSpec) -> Result<Store<HostState>, PluginError> {
        let inner = &*self.inner;
        let state = HostState::new(spec).map_err(|e| PluginError::Config {
            plugin: self.name().to_string(),
            reason: format!("cannot open a granted directory: {e}"),
        })?;
        let mut store = Store::new(&inner.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(spec.limits.hostcall_fuel);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.cpu_ticks_left <= 1 {
                state.cpu_exhausted = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            state.cpu_ticks_left -= 1;
            Ok(UpdateDeadline::Yield(1))
        });
        Ok(store)
    }

    /// Instantiates this destination into a store that stays alive for repeated `deliver`s.
    ///
    /// For benchmarks only (the warm-call cost and memory per live instance): the daemon never
    /// reuses a store, every real call goes through a fresh one. The instance holds one pool
    /// slot until dropped, waiting for one like any call.
    pub async fn warm_instance(&self) -> Result<WarmInstance, PluginError> {
        let inner = &*self.inner;
        if inner.world != World::Destination {
            return Err(PluginError::WrongWorld {
                plugin: self.name().to_string(),
                expected: World::Destination.to_string(),
                found: inner.world.to_string(),
            });
        }
        let permit = inner
            .engine
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        let mut store = self.new_store(&inner.store)?;
        let limits = &inner.store.limits;
        let Pre::V0_1(pre) = &inner.pre else {
            return Err(PluginError::Engine(
                "a warm instance is made of an ABI 0.1.0 destination only".into(),
            ));
        };
        let instantiated =
            tokio::time::timeout(limits.wall_clock, pre.instantiate_destination(&mut store))
                .await
                .map(|r| r.map(Ok));
        let instance = settle(self.name(), limits, &mut store, instantiated)?.ok_or_else(|| {
            PluginError::Engine("a destination instantiated as another world".into())
        })?;
        Ok(WarmInstance {
            plugin: self.clone(),
            store,
            instance,
            _permit: permit,
        })
    }
}

/// A destination instance kept alive in one store across calls. For benchmarks only: the daemon
/// never reuses a store (see [`Plugin::warm_instance`]). After an error, drop it.
pub struct WarmInstance {
    plugin: Plugin,
    store: Store<HostState>,
    instance: v0_1_0::destination::Destination,
    _permit: OwnedSemaphorePermit,
}

impl WarmInstance {
    /// Calls `deliver` again on the same instance, with the per-call CPU budget, host-call fuel
    /// and wall clock renewed.
    pub async fn deliver(&mut self, event: &ItemEvent) -> Result<Receipt, PluginError> {
        let inner = &*self.plugin.inner;
        let limits = &inner.store.limits;
        let started = Instant::now();
        let state = self.store.data_mut();
        state.cpu_ticks_left = inner.store.cpu_ticks;
        state.cpu_exhausted = false;
        self.store.set_hostcall_fuel(limits.hostcall_fuel);
        self.store.set_epoch_deadline(1);
        let result = tokio::time::timeout(
            limits.wall_clock,
            v0_1_0::deliver(&self.instance, &mut self.store, event),
        )
        .await;
        let outcome = settle_outcome(self.plugin.name(), limits, &mut self.store, result);
        record(self.plugin.name(), "deliver", started, &outcome);
        match outcome? {
            Outcome::Receipt(receipt) => Ok(receipt),
            other => Err(self.plugin.unexpected(&other)),
        }
    }
}
