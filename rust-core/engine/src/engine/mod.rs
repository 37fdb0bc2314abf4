//! The facade: one engine per process, holding the wasmtime engines of both compile tiers
//! and their linkers, the module cache, the sites and the housekeeping thread. [`Engine::handle`] finds a
//! request's module and hands the request to CGI mode ([`crate::cgi`]) or WCGI mode
//! ([`crate::wcgi`]).

mod config;
mod engines;
mod housekeeper;
mod site;

use std::path::Path;
use std::sync::Arc;

use crate::compile::{Code, LoadedModule, Source};
use crate::disk_cache::CacheDirs;
use crate::failure::{Failure, FailureKind};
use crate::host::{plain_log, EngineLog, EventLog, Host, LogFields};
use crate::module_cache::{CacheOptions, FileIdentity, LoadEvent, ModuleCache, ModuleInfo};
use crate::request::{CacheSettings, Mode, RunSpec};
use crate::stats::{EngineStats, StatsSnapshot};
use crate::wcgi::{InstanceBudget, InstanceInfo, Waiting, WcgiContext};
pub use config::EngineConfig;
use engines::Engines;
use housekeeper::{Chores, Housekeeper};
pub use site::Site;
use site::SiteRegistry;

pub struct Engine {
    /// The wasmtime engines (one per compile tier) modules are loaded into.
    engines: Arc<Engines>,
    /// What long-lived instances run with.
    wcgi: WcgiContext,
    modules: Arc<ModuleCache>,
    cache_dirs: Arc<CacheDirs>,
    sites: Arc<SiteRegistry>,
    log: Option<EventLog>,
    /// `log` without fields, for the disk caches' lines.
    plain_log: Option<EngineLog>,
    stats: Arc<EngineStats>,
    housekeeper: Housekeeper,
}

impl Engine {
    pub fn new(config: EngineConfig, log: Option<EventLog>) -> Result<Self, Failure> {
        let internal = |e: wasmtime::Error| {
            Failure::new(
                FailureKind::Internal,
                format!("cannot create engine: {e:#}"),
            )
        };
        crate::trim::tune_allocator();
        let engines = Arc::new(Engines::new(config).map_err(internal)?);
        let modules = Arc::new(ModuleCache::new(config.compile_concurrency, log.clone()));
        let cache_dirs = Arc::new(CacheDirs::default());
        let sites = Arc::new(SiteRegistry::default());
        let stats = Arc::new(EngineStats::default());
        let chores = Chores {
            engines: engines.clone(),
            modules: modules.clone(),
            cache_dirs: cache_dirs.clone(),
            sites: sites.clone(),
            log: log.clone(),
        };
        let wcgi = WcgiContext {
            budget: Arc::new(InstanceBudget::new(config.wcgi_instance_slots)),
            log: log.clone(),
            stats: stats.clone(),
        };
        Ok(Engine {
            housekeeper: Housekeeper::start(chores),
            engines,
            wcgi,
            modules,
            cache_dirs,
            sites,
            plain_log: log.as_ref().map(plain_log),
            log,
            stats,
        })
    }

    /// Starts the request described by `spec` (a copy of `site`'s base with the request's
    /// own fields), streaming the response to `host`. A request run by a fresh instance (CGI,
    /// components) is over when this returns (`None`); one relayed to a long-lived WCGI
    /// instance returns `Some` while it waits for the guest's answer, for the caller to poll
    /// or wait for.
    ///
    /// On `Err` (here or from the [`Waiting`]), the caller answers with the failure's status
    /// if no head was sent yet (`host.send_head` not called), and aborts the response
    /// otherwise.
    pub fn start(
        &self,
        site: &Site,
        spec: RunSpec,
        host: Arc<dyn Host>,
    ) -> Result<Option<Waiting>, Failure> {
        let (module, event) = self.module(&spec.module_path, spec.module_identity, &spec.cache)?;
        if let Some(event) = &event {
            host.log(event.level(), &event.describe());
        }
        match (&module.code, spec.mode) {
            (Code::Http(code), Mode::Auto | Mode::Http) => {
                return crate::component::serve(code, &spec, host).map(|()| None)
            }
            (Code::Core(_), Mode::Http) => {
                return Err(Failure::new(
                    FailureKind::BadModule,
                    "mode http needs a wasi:http component, and this is a core module",
                ))
            }
            _ => {}
        }
        if wants_wcgi(&module, &spec) {
            return crate::wcgi::start(&self.wcgi, &site.wcgi, &module, spec, host).map(Some);
        }
        crate::cgi::run(module.core()?, &spec, host).map(|()| None)
    }

    /// Runs the request described by `spec` to its end on this thread ([`Engine::start`],
    /// then waiting for a WCGI instance's answer).
    pub fn handle(&self, site: &Site, spec: RunSpec, host: Arc<dyn Host>) -> Result<(), Failure> {
        self.start(site, spec, host)?.map_or(Ok(()), Waiting::wait)
    }

    /// Loads (compiles, or reads from the disk cache) the module at `path` without running
    /// it, so a first request does not wait, and logs what it did.
    pub fn prepare(&self, path: &Path, cache: &CacheSettings) -> Result<(), Failure> {
        let (_, event) = self.module(path, None, cache)?;
        if let (Some(event), Some(log)) = (event, &self.log) {
            let fields = LogFields {
                module: Some(path),
                site: None,
            };
            log(event.level(), &event.describe(), fields);
        }
        Ok(())
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

    /// The engine's counters, and its gauges now.
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.stats.snapshot();
        snapshot.modules_loaded = self.modules.len() as u64;
        let net = crate::net::counters();
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        snapshot.outbound_opened = get(&net.opened);
        snapshot.outbound_refused = get(&net.refused);
        snapshot.outbound_failed = get(&net.failed);
        snapshot.outbound_open = get(&net.open_now);
        for site in self.sites.live() {
            let (running, memory) = site.wcgi.usage();
            snapshot.wcgi_running += running as u64;
            snapshot.wcgi_memory_bytes += memory as u64;
        }
        snapshot
    }

    /// The modules loaded, and the long-lived instances of every site.
    pub fn list(&self) -> (Vec<ModuleInfo>, Vec<InstanceInfo>) {
        let instances = self
            .sites
            .live()
            .iter()
            .flat_map(|s| s.wcgi.list())
            .collect();
        (self.modules.list(), instances)
    }

    /// Drains the long-lived instances of `module` (all when `None`) in every site; the
    /// next request starts fresh ones. Returns how many were drained.
    pub fn restart(&self, module: Option<&Path>) -> usize {
        let sites = self.sites.live();
        sites
            .iter()
            .map(|s| s.wcgi.restart(module, &self.stats))
            .sum()
    }

    /// Drops the loaded module at `path` (all when `None`): the next request loads it
    /// again. Returns how many were dropped.
    pub fn evict(&self, module: Option<&Path>) -> usize {
        self.modules.evict(module)
    }

    fn module(
        &self,
        path: &Path,
        identity: Option<FileIdentity>,
        cache: &CacheSettings,
    ) -> Result<(Arc<LoadedModule>, Option<LoadEvent>), Failure> {
        let dir = cache.cache_dir.as_deref().and_then(|dir| {
            self.cache_dirs
                .get(dir, cache.max_age, self.plain_log.as_ref())
        });
        let opts = CacheOptions {
            cache: dir.as_ref(),
            keepalive: cache.keepalive,
        };
        let loaded = self
            .modules
            .get(path, identity, &self.engines.current(), opts)?;
        if let Some(event) = &loaded.1 {
            self.count(event, dir.is_some());
        }
        Ok(loaded)
    }

    /// Counts a load in the engine's stats.
    fn count(&self, event: &LoadEvent, cache_configured: bool) {
        let LoadEvent::Loaded {
            source,
            took,
            rejected,
            ..
        } = event
        else {
            return;
        };
        let stats = &self.stats;
        if rejected.is_some() {
            EngineStats::add(&stats.disk_cache_rejects, 1);
        }
        match source {
            Source::DiskCache => EngineStats::add(&stats.disk_cache_hits, 1),
            _ => {
                stats.compiled(*took);
                if cache_configured {
                    EngineStats::add(&stats.disk_cache_misses, 1);
                }
            }
        }
    }
}

/// Whether `module` takes WCGI mode for `spec`.
fn wants_wcgi(module: &LoadedModule, spec: &RunSpec) -> bool {
    match spec.mode {
        Mode::Cgi | Mode::Http => false,
        Mode::Wcgi => true,
        Mode::Auto => module.wcgi_export,
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
