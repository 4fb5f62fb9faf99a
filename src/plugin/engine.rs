//! The one wasmtime `Engine` of the process: pooling allocator, epoch interruption with its ticker
//! thread, the linker every plugin is instantiated through, the pool's admission semaphore, and the
//! dispatcher of calls that block.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::plugin::abi;
use crate::plugin::dispatch::Dispatcher;
use crate::plugin::error::PluginError;
use crate::plugin::state::HostState;

/// Bytes of each pool slot's memory and tables reset in place after a call rather than handed
/// back to the kernel; only pages the call touched stay resident.
const KEEP_RESIDENT: usize = 2 << 20;

/// Process-wide engine settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How often the epoch advances; CPU limits are counted in these ticks.
    pub epoch_tick: Duration,
    /// Plugin instances alive at once (pool slots); calls past it wait.
    pub max_instances: u32,
    /// Largest linear memory of any plugin (the pool slot size); per-plugin limits sit below it.
    pub max_memory_bytes: usize,
    /// WebAssembly stack per call.
    pub max_wasm_stack: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(10),
            max_instances: 64,
            max_memory_bytes: 256 << 20,
            max_wasm_stack: 512 << 10,
        }
    }
}

/// The engine and what goes with it.
pub struct PluginEngine {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub options: EngineOptions,
    /// One permit per pool slot: instantiating past the pool is an error, so calls wait here.
    pub permits: Arc<Semaphore>,
    /// Runs the calls of plugins with granted directories (their file I/O blocks), on at most
    /// one pool thread per pool slot.
    pub dispatch: Arc<Dispatcher>,
}

impl PluginEngine {
    pub fn new(options: EngineOptions) -> Result<Self, PluginError> {
        let engine_err = |e: wasmtime::Error| PluginError::Engine(format!("{e:#}"));
        let slots = options.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(8))
            .total_stacks(slots)
            .max_memory_size(options.max_memory_bytes)
            .max_core_instances_per_component(16)
            .max_memories_per_component(2)
            .max_tables_per_component(8)
            .max_unused_warm_slots(slots.min(16))
            // A call dirties a few hundred KiB of its slot. Resetting those pages in place (found
            // with PAGEMAP_SCAN where the kernel has it) instead of `madvise`-ing the slot avoids
            // a TLB shootdown across cores per call and the page faults of the next call.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .max_wasm_stack(options.max_wasm_stack)
            .concurrency_support(false);
        let engine = Engine::new(&config).map_err(engine_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        crate::plugin::dir_guard::add_to_linker(&mut linker).map_err(engine_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_err)?;
        abi::add_to_linker(&mut linker).map_err(engine_err)?;
        spawn_ticker(&engine, options.epoch_tick)?;
        Ok(Self {
            engine,
            linker,
            permits: Arc::new(Semaphore::new(slots as usize)),
            dispatch: Dispatcher::new(slots as usize),
            options,
        })
    }
}

/// Advances the engine's epoch every `tick` until the engine is dropped. A plain thread rather than
/// a task, so a busy or blocked runtime never stops the clock that stops runaway plugins.
fn spawn_ticker(engine: &Engine, tick: Duration) -> Result<(), PluginError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("opsync-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker: {e}")))
}
