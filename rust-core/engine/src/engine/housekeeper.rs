//! The engine's background thread: advances the epochs every [`EPOCH_TICK`] (time limits and
//! vanished clients are noticed within one tick) and, every [`SWEEP_EVERY`], stops idle or
//! wedged WCGI instances, drops idle modules, renews idle wasmtime engines (giving their
//! pools' memory back) and prunes the disk caches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engines::Engines;
use super::site::SiteRegistry;
use crate::deadline::EPOCH_TICK;
use crate::disk_cache::CacheDirs;
use crate::host::{EventLog, LogFields, LogLevel};
use crate::module_cache::ModuleCache;
use crate::wcgi::SweepKind;

/// How often idle modules are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// What the housekeeper sweeps.
pub struct Chores {
    pub engines: Arc<Engines>,
    pub modules: Arc<ModuleCache>,
    pub cache_dirs: Arc<CacheDirs>,
    pub sites: Arc<SiteRegistry>,
    pub log: Option<EventLog>,
}

/// A thread that advances the engine's epoch and does its [`Chores`].
pub struct Housekeeper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Housekeeper {
    pub fn start(chores: Chores) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wagi-housekeeper".into())
            .spawn(move || {
                let mut last_sweep = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    chores.engines.tick();
                    let now = Instant::now();
                    if now.duration_since(last_sweep) >= SWEEP_EVERY {
                        last_sweep = now;
                        chores.sweep(now);
                    }
                }
            })
            .ok();
        Housekeeper { stop, thread }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Chores {
    fn sweep(&self, now: Instant) {
        self.sweep_instances(now);
        self.sweep_modules(now);
        self.renew_engines();
        self.prune_caches(now);
    }

    fn log(&self, level: LogLevel, message: &str, fields: LogFields<'_>) {
        if let Some(log) = &self.log {
            log(level, message, fields);
        }
    }

    fn sweep_instances(&self, now: Instant) {
        let live = self.sites.live();
        let events: Vec<_> = live.iter().flat_map(|s| s.wcgi.sweep(now)).collect();
        // The last handle of a site may be gone: its instances stop here.
        drop(live);
        for event in events {
            let level = match event.kind {
                SweepKind::Idle => LogLevel::Info,
                SweepKind::Wedged => LogLevel::Warn,
            };
            let fields = LogFields {
                module: Some(&event.module),
                site: Some(&event.site),
            };
            self.log(level, event.describe(), fields);
        }
    }

    fn sweep_modules(&self, now: Instant) {
        let dropped = self.modules.sweep(now);
        if !dropped.is_empty() {
            crate::trim::release_free_heap();
        }
        for path in dropped {
            let fields = LogFields {
                module: Some(&path),
                site: None,
            };
            self.log(LogLevel::Info, "dropped idle module", fields);
        }
    }

    /// Gives back the warm pool memory of engines nothing runs on (see [`Engines`]).
    fn renew_engines(&self) {
        let loaded = self.modules.list();
        let renewed = self
            .engines
            .renew_idle(|tier| loaded.iter().any(|m| m.tier == tier));
        if renewed.is_empty() {
            return;
        }
        crate::trim::release_free_heap();
        let names: Vec<_> = renewed.iter().map(|t| t.name()).collect();
        let msg = format!(
            "released the idle memory of the {} tier engine",
            names.join(" and ")
        );
        self.log(LogLevel::Info, &msg, LogFields::default());
    }

    fn prune_caches(&self, now: Instant) {
        for (dir, n) in self.cache_dirs.prune_due(now) {
            let msg = format!(
                "pruned {n} unused files from the module cache {}",
                dir.display()
            );
            self.log(LogLevel::Info, &msg, LogFields::default());
        }
    }
}
