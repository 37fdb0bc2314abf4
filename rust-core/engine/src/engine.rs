//! The process-wide engine: one wasmtime engine with a pooling allocator, the WASI linker,
//! the module cache, and a housekeeping thread that advances the epoch (time limits) and
//! drops idle modules.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::{Config, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

use crate::compile::LoadedModule;
use crate::deadline::EPOCH_TICK;
use crate::disk_cache::CacheDirs;
use crate::failure::{Failure, FailureKind};
use crate::guest::{GuestState, Linkers};
use crate::host::{EngineLog, LogLevel};
use crate::module_cache::{CacheOptions, LoadEvent, ModuleCache};
use crate::request::{CacheSettings, RunSpec};
use crate::site::{Site, SiteRegistry};
use crate::wcgi::{InstanceBudget, WcgiContext};

/// How often idle modules are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Tables in Go modules start at about their function count, far over wasmtime's default.
const TABLE_ELEMENTS: usize = 1 << 18;

/// Bytes of each linear memory and table reset in place rather than decommitted; see
/// `Engine::new`. With PAGEMAP_SCAN (Linux 6.7+) only dirtied pages are reset, so a Go
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
    /// How many modules may compile at once; more loads wait, so compiles cannot take
    /// every core from serving.
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

pub struct Engine {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) linker: Linker<GuestState>,
    /// What long-lived instances run with.
    pub(crate) wcgi: WcgiContext,
    pub(crate) modules: Arc<ModuleCache>,
    pub(crate) cache_dirs: Arc<CacheDirs>,
    pub(crate) sites: Arc<SiteRegistry>,
    pub(crate) log: Option<EngineLog>,
    housekeeper: Housekeeper,
}

impl Engine {
    pub fn new(config: EngineConfig, log: Option<EngineLog>) -> Result<Self, Failure> {
        let internal = |e: wasmtime::Error| {
            Failure::new(
                FailureKind::Internal,
                format!("cannot create engine: {e:#}"),
            )
        };
        let slots = config
            .instance_slots
            .max(1)
            .saturating_add(config.wcgi_instance_slots);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .total_component_instances(0)
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
        let engine = wasmtime::Engine::new(&wasm_config).map_err(internal)?;
        let linkers = Linkers::new(&engine).map_err(internal)?;
        let modules = Arc::new(ModuleCache::new(config.compile_concurrency));
        let cache_dirs = Arc::new(CacheDirs::default());
        let sites = Arc::new(SiteRegistry::default());
        let housekeeper = Housekeeper::start(
            engine.clone(),
            modules.clone(),
            cache_dirs.clone(),
            sites.clone(),
            log.clone(),
        );
        let wcgi = WcgiContext {
            engine: engine.clone(),
            linker: linkers.wcgi,
            budget: Arc::new(InstanceBudget::new(config.wcgi_instance_slots)),
            log: log.clone(),
        };
        Ok(Engine {
            engine,
            linker: linkers.cgi,
            wcgi,
            modules,
            cache_dirs,
            sites,
            log,
            housekeeper,
        })
    }

    /// Loads (compiles, or reads from the disk cache) the module at `path` without running
    /// it, so a first request does not wait. Returns what was done, if anything.
    pub fn prepare(&self, path: &Path, cache: &CacheSettings) -> Result<Option<String>, Failure> {
        let (_, event) = self.module(path, cache)?;
        Ok(event.map(|e| describe(&e)))
    }

    /// The site configured by `config` (its canonical encoding; equal encodings are one
    /// site), with `base` as the site-level part of its requests.
    pub fn site(&self, config: &[u8], base: impl FnOnce() -> RunSpec) -> Arc<Site> {
        self.sites.get_or_make(config, base)
    }

    /// How many modules are loaded.
    pub fn loaded_modules(&self) -> usize {
        self.modules.len()
    }

    pub(crate) fn module(
        &self,
        path: &Path,
        cache: &CacheSettings,
    ) -> Result<(Arc<LoadedModule>, Option<LoadEvent>), Failure> {
        let dir = cache
            .cache_dir
            .as_deref()
            .and_then(|dir| self.cache_dirs.get(dir, cache.max_age, self.log.as_ref()));
        let opts = CacheOptions {
            cache: dir.as_deref(),
            keepalive: cache.keepalive,
        };
        self.modules.get(path, &self.linker, opts)
    }
}

/// A log line for a load event.
pub(crate) fn describe(event: &LoadEvent) -> String {
    match event {
        LoadEvent::Loaded {
            source,
            took,
            rejected,
        } => {
            let mut line = format!(
                "module ready from {} in {:.1} ms",
                source.name(),
                took.as_secs_f64() * 1e3
            );
            if let Some(why) = rejected {
                line.push_str(&format!("; its disk cache file was not used ({why})"));
            }
            line
        }
        LoadEvent::KeptPrevious(f) => {
            format!("new module version failed to load; serving the previous one: {f}")
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.housekeeper.stop();
        for site in self.sites.live() {
            site.wcgi.stop_all();
        }
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] and drops idle modules.
struct Housekeeper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Housekeeper {
    fn start(
        engine: wasmtime::Engine,
        modules: Arc<ModuleCache>,
        cache_dirs: Arc<CacheDirs>,
        sites: Arc<SiteRegistry>,
        log: Option<EngineLog>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wagi-housekeeper".into())
            .spawn(move || {
                let mut last_sweep = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    let now = Instant::now();
                    if now.duration_since(last_sweep) >= SWEEP_EVERY {
                        last_sweep = now;
                        let live = sites.live();
                        let events: Vec<_> = live.iter().flat_map(|s| s.wcgi.sweep(now)).collect();
                        // The last handle of a site may be gone: its instances stop here.
                        drop(live);
                        for event in events {
                            if let Some(log) = &log {
                                let level = match event {
                                    crate::wcgi::SweepEvent::Idle(_) => LogLevel::Info,
                                    crate::wcgi::SweepEvent::Wedged(_) => LogLevel::Warn,
                                };
                                log(level, &event.describe());
                            }
                        }
                        let dropped = modules.sweep(now);
                        if !dropped.is_empty() {
                            crate::trim::release_free_heap();
                        }
                        for path in dropped {
                            if let Some(log) = &log {
                                let msg = format!("dropped idle module {}", path.display());
                                log(LogLevel::Info, &msg);
                            }
                        }
                        for (dir, n) in cache_dirs.prune_due(now) {
                            if let Some(log) = &log {
                                let msg = format!(
                                    "pruned {n} unused files from the module cache {}",
                                    dir.display()
                                );
                                log(LogLevel::Info, &msg);
                            }
                        }
                    }
                }
            })
            .ok();
        Housekeeper { stop, thread }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
