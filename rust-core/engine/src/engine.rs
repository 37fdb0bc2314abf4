//! The process-wide engine: one wasmtime engine with a pooling allocator, the WASI linker,
//! the module cache and the epoch ticker that enforces time limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;
use crate::module_cache::ModuleCache;

/// How often the epoch advances; a timeout fires within one tick of its deadline, and a
/// vanished client is noticed within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Tables in Go modules start at about their function count, far over wasmtime's default.
const TABLE_ELEMENTS: usize = 1 << 18;

/// Settings fixed for the life of an engine.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// How many guest instances may exist at once (pool slots).
    pub instance_slots: u32,
    /// The largest linear memory any guest may have, whatever its site allows.
    pub memory_ceiling: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            instance_slots: 128,
            memory_ceiling: 4 << 30,
        }
    }
}

pub struct Engine {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) linker: Linker<GuestState>,
    pub(crate) modules: ModuleCache,
    ticker: EpochTicker,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Self, Failure> {
        let internal = |e: wasmtime::Error| {
            Failure::new(
                FailureKind::Internal,
                format!("cannot create engine: {e:#}"),
            )
        };
        let slots = config.instance_slots.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .total_component_instances(0)
            .max_memory_size(usize::try_from(config.memory_ceiling).unwrap_or(usize::MAX))
            .table_elements(TABLE_ELEMENTS);
        let mut wasm_config = Config::new();
        wasm_config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true);
        let engine = wasmtime::Engine::new(&wasm_config).map_err(internal)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut GuestState| &mut s.wasi)
            .map_err(internal)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Engine {
            engine,
            linker,
            modules: ModuleCache::default(),
            ticker,
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`].
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wagi-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop, thread }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
