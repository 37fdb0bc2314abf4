//! The engine's settings, and the wasmtime engines they make (one per compile tier): a
//! pooling allocator sized for every guest that may run at once, and epoch interruption for
//! time limits.

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

use crate::tier::Tier;

/// Tables in Go modules start at about their function count, far over wasmtime's default.
const TABLE_ELEMENTS: usize = 1 << 18;

/// Bytes of each linear memory and table reset in place rather than decommitted; see
/// `wasmtime_engine`. With PAGEMAP_SCAN (Linux 6.7+) only dirtied pages are reset, so a Go
/// guest's ~10 MiB working set stays mapped instead of faulting back in on every request
/// (+60% requests/s for the Go example). Idle resident memory is bounded by the number of
/// warm slots times their sum.
const MEMORY_KEEP_RESIDENT: usize = 32 << 20;
const TABLE_KEEP_RESIDENT: usize = 1 << 20;

/// Warm slots kept: about as many as guests run at once by default (2 per CPU).
fn warm_slots() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(2 * cpus).unwrap_or(u32::MAX)
}

/// Settings fixed for the life of an engine.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// How many per-request (CGI) guests may run at once (pool slots).
    pub instance_slots: u32,
    /// How many long-lived (WCGI) instances may live at once, over all sites; each holds
    /// a pool slot of its own for its life.
    pub wcgi_instance_slots: u32,
    /// The largest linear memory any guest may have, whatever its site allows.
    pub memory_ceiling: u64,
    /// How many modules may compile their first (baseline) tier at once; more loads wait,
    /// so compiles cannot take every core from serving. Optimised tiers compile on one
    /// more, low-priority thread.
    pub compile_concurrency: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            instance_slots: 128,
            wcgi_instance_slots: 64,
            memory_ceiling: 4 << 30,
            compile_concurrency: u32::try_from(cpus / 2).unwrap_or(1).max(1),
        }
    }
}

/// The wasmtime engine of `tier` for `config`: one pool slot per guest that may run at once,
/// CGI and WCGI together (each tier's pool is only reserved address space until used).
///
/// The baseline tier (Winch) compiles on every core: a request waits for it. The optimised
/// tier (Cranelift) compiles on the one low-priority background thread alone, so serving
/// keeps the other cores. Where Winch cannot run (its x86-64 code needs AVX), the baseline
/// engine is a Cranelift one.
pub fn wasmtime_engine(config: &EngineConfig, tier: Tier) -> wasmtime::Result<wasmtime::Engine> {
    let mut wasm_config = base_config(config);
    match tier {
        Tier::Baseline => {
            wasm_config.strategy(Strategy::Winch);
            wasmtime::Engine::new(&wasm_config).or_else(|_| {
                wasm_config.strategy(Strategy::Cranelift);
                wasmtime::Engine::new(&wasm_config)
            })
        }
        Tier::Optimized => {
            wasm_config
                .strategy(Strategy::Cranelift)
                .parallel_compilation(false);
            wasmtime::Engine::new(&wasm_config)
        }
    }
}

fn base_config(config: &EngineConfig) -> Config {
    let slots = config
        .instance_slots
        .max(1)
        .saturating_add(config.wcgi_instance_slots);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        // A wasi:http component takes several core instances and memories of these.
        .total_component_instances(slots)
        .max_memory_size(usize::try_from(config.memory_ceiling).unwrap_or(usize::MAX))
        .table_elements(TABLE_ELEMENTS)
        // Reset small memories and tables with memset instead of madvise: madvise on
        // a multi-threaded process (Caddy) costs a TLB shootdown on every core, per
        // request. Bounded by the few warm slots kept below.
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .max_unused_warm_slots(warm_slots());
    let mut wasm_config = Config::new();
    wasm_config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true);
    wasm_config
}
