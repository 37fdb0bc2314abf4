//! Compiled modules, keyed by path and checked against the file's identity on every use, so
//! replacing a file takes effect on the next request while requests already running keep
//! the version they started with.
//!
//! - Loads are single-flight: concurrent requests for one new version wait for one load.
//! - A new version that fails to load (say, a file still being copied) does not take the
//!   site down: requests keep the last version that loaded, with a warning.
//! - A version first loads as fast as it can ([`compile::load_first`]); when that is the
//!   baseline tier, its optimised tier is compiled on the background thread and replaces
//!   it for the requests (and WCGI instances) that start afterwards.
//! - Modules unused for their keepalive are dropped by [`ModuleCache::sweep`].

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::background::Background;
use crate::compile::{self, LoadedModule, Source};
use crate::disk_cache::CacheDir;
use crate::failure::{Failure, FailureKind};
use crate::host::{EventLog, LogFields, LogLevel};
use crate::tier::{Tier, TierEngines};

/// Which version of a file: changes when the file is rewritten or replaced. The change
/// time is part of it because a deploy may keep size and mtime (`cp -p`,
/// `rsync --inplace -t`), but no user can set ctime: any write moves it. Times are
/// nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// What [`ModuleCache::get`] did beyond a cache hit, for the log.
pub enum LoadEvent {
    /// This call loaded the module.
    Loaded {
        tier: Tier,
        source: Source,
        took: Duration,
        /// Why a disk cache file was not used, when one was found.
        rejected: Option<String>,
    },
    /// This call is the first to run the optimised tier compiled in the background.
    TierUp { took: Duration },
    /// This call found the new version broken and kept serving the previous one.
    KeptPrevious(Failure),
}

impl LoadEvent {
    /// How loud its log line is: a broken new version is worth a warning.
    pub fn level(&self) -> LogLevel {
        match self {
            LoadEvent::Loaded { .. } | LoadEvent::TierUp { .. } => LogLevel::Info,
            LoadEvent::KeptPrevious(_) => LogLevel::Warn,
        }
    }

    /// Its log line.
    pub fn describe(&self) -> String {
        match self {
            LoadEvent::Loaded {
                tier,
                source,
                took,
                rejected,
            } => {
                let mut line = format!(
                    "module ready from {} in {:.1} ms (tier={})",
                    source.name(),
                    took.as_secs_f64() * 1e3,
                    tier.name()
                );
                if let Some(why) = rejected {
                    line.push_str(&format!("; its disk cache file was not used ({why})"));
                }
                line
            }
            LoadEvent::TierUp { took } => format!(
                "module now runs tier={} (ready in the background in {:.1} ms)",
                Tier::Optimized.name(),
                took.as_secs_f64() * 1e3
            ),
            LoadEvent::KeptPrevious(f) => {
                format!("new module version failed to load; serving the previous one: {f}")
            }
        }
    }
}

/// Per-path options that come with each request.
#[derive(Clone, Copy)]
pub struct CacheOptions<'a> {
    pub cache: Option<&'a Arc<CacheDir>>,
    pub keepalive: Duration,
}

/// One version of one file; `module` is filled once, by the first request that needs it,
/// and its code replaced once, by the background thread, when it was the baseline tier (the
/// baseline code is then freed once the requests running it end).
struct Version {
    identity: FileIdentity,
    module: OnceLock<Result<Mutex<Arc<LoadedModule>>, Failure>>,
    /// How long the background compile took, once its code replaced the baseline.
    tier_up: OnceLock<Duration>,
    /// A request has logged that it runs the optimised tier.
    announced: AtomicBool,
}

impl Version {
    /// The code of this version to run now, and the event when this call is the first to
    /// run the optimised tier compiled in the background.
    fn current(&self, slot: &Mutex<Arc<LoadedModule>>) -> (Arc<LoadedModule>, Option<LoadEvent>) {
        let module = crate::locks::lock(slot).clone();
        let event = match self.tier_up.get() {
            Some(took) if !self.announced.swap(true, Ordering::SeqCst) => {
                Some(LoadEvent::TierUp { took: *took })
            }
            _ => None,
        };
        (module, event)
    }

    /// Replaces the baseline code with `optimized`.
    fn tier_up(&self, optimized: Arc<LoadedModule>, took: Duration) {
        if let Some(Ok(slot)) = self.module.get() {
            *crate::locks::lock(slot) = optimized;
            let _ = self.tier_up.set(took);
        }
    }
}

struct Entry {
    latest: Arc<Version>,
    last_good: Option<Arc<LoadedModule>>,
    /// When `last_good` was loaded, for the admin listing.
    loaded_at: Option<SystemTime>,
    last_used: Instant,
    keepalive: Duration,
}

/// A module held in memory, as the admin API lists it.
pub struct ModuleInfo {
    pub path: PathBuf,
    /// Size of the wasm file, in bytes.
    pub size: u64,
    pub loaded_at: Option<SystemTime>,
    pub last_used: SystemTime,
    pub wcgi_export: bool,
    /// The compile tier it serves with now.
    pub tier: Tier,
    /// When its code (of that tier) was ready.
    pub ready_at: SystemTime,
    /// It is a wasi:http component.
    pub component: bool,
}

pub struct ModuleCache {
    entries: Mutex<HashMap<PathBuf, Entry>>,
    /// Bounds how many loads compile at once (the background thread not counted).
    compiles: Gate,
    /// Compiles optimised tiers.
    background: Background,
    /// Where a failed background compile is reported.
    log: Option<EventLog>,
}

impl ModuleCache {
    /// A cache that compiles at most `concurrency` modules at once in the foreground.
    pub fn new(concurrency: u32, log: Option<EventLog>) -> Self {
        ModuleCache {
            entries: Mutex::default(),
            compiles: Gate::new(concurrency.max(1) as usize),
            background: Background::start("wagi-tier-up"),
            log,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Entry>> {
        crate::locks::lock(&self.entries)
    }

    /// Returns the module at `path`, loading it if this version of the file is new.
    /// `known` is the file's identity when the caller has just stat'ed it (the server does,
    /// to resolve the request's path): then no second stat is made.
    pub fn get(
        &self,
        path: &Path,
        known: Option<FileIdentity>,
        engines: &Arc<TierEngines>,
        opts: CacheOptions<'_>,
    ) -> Result<(Arc<LoadedModule>, Option<LoadEvent>), Failure> {
        // One stat per request; the file is opened only to load a new version.
        let identity = match known.map_or_else(|| identify(path), Ok) {
            Ok(identity) => identity,
            Err(f) => {
                if f.kind == FailureKind::NotFound {
                    self.lock().remove(path);
                }
                return Err(f);
            }
        };
        let version = self.version(path, identity, opts.keepalive);
        let mut event = None;
        let mut attempted = false;
        let mut baseline_of = None;
        let result = version.module.get_or_init(|| {
            attempted = true;
            // If the file changed again since the stat, these bytes are newer than
            // `identity`; the next request's stat sees that and loads them again.
            let _turn = self.compiles.enter();
            let bytes = read_all(path)?;
            let cache = opts.cache.map(|c| &**c);
            let loaded = compile::load_first(&bytes, engines, cache)?;
            if loaded.module.tier == Tier::Baseline {
                baseline_of = Some(bytes);
            }
            event = Some(LoadEvent::Loaded {
                tier: loaded.module.tier,
                source: loaded.source,
                took: loaded.took,
                rejected: loaded.rejected,
            });
            Ok(Mutex::new(loaded.module))
        });
        if let Some(bytes) = baseline_of {
            self.tier_up(path, &version, bytes, engines, opts.cache);
        }
        if attempted {
            // The file's bytes, freed only now, go back to the OS.
            crate::trim::release_free_heap();
        }
        match result {
            Ok(slot) => {
                let (module, tier_up) = version.current(slot);
                if let Some(entry) = self.lock().get_mut(path) {
                    entry.last_good = Some(module.clone());
                    if event.is_some() {
                        entry.loaded_at = Some(SystemTime::now());
                    }
                }
                Ok((module, event.or(tier_up)))
            }
            Err(failure) => {
                let previous = self.lock().get(path).and_then(|e| e.last_good.clone());
                match previous {
                    Some(module) if failure.kind == FailureKind::BadModule => {
                        let event = attempted.then(|| LoadEvent::KeptPrevious(failure.clone()));
                        Ok((module, event))
                    }
                    _ => Err(failure.clone()),
                }
            }
        }
    }

    /// The entry's version for `identity`, made current if it is new.
    fn version(&self, path: &Path, identity: FileIdentity, keepalive: Duration) -> Arc<Version> {
        let mut entries = self.lock();
        let fresh = || {
            Arc::new(Version {
                identity,
                module: OnceLock::new(),
                tier_up: OnceLock::new(),
                announced: AtomicBool::new(false),
            })
        };
        let entry = entries.entry(path.to_path_buf()).or_insert_with(|| Entry {
            latest: fresh(),
            last_good: None,
            loaded_at: None,
            last_used: Instant::now(),
            keepalive,
        });
        if entry.latest.identity != identity {
            entry.latest = fresh();
        }
        entry.last_used = Instant::now();
        // Shared by every site that names the file: the longest keepalive asked for holds.
        entry.keepalive = entry.keepalive.max(keepalive);
        entry.latest.clone()
    }

    /// Queues the optimised compile of `version` (loaded at the baseline tier from `bytes`)
    /// on the background thread. If the version is gone by then (replaced, or dropped as
    /// idle), it is compiled only for the disk cache, and skipped without one.
    fn tier_up(
        &self,
        path: &Path,
        version: &Arc<Version>,
        bytes: Vec<u8>,
        engines: &Arc<TierEngines>,
        cache: Option<&Arc<CacheDir>>,
    ) {
        let weak: Weak<Version> = Arc::downgrade(version);
        let engines = engines.clone();
        let cache = cache.cloned();
        let log = self.log.clone();
        let job_path = path.to_path_buf();
        let job = Box::new(move || {
            if weak.strong_count() == 0 && cache.is_none() {
                return;
            }
            let loaded = compile::load(&bytes, Tier::Optimized, &engines, cache.as_deref());
            drop(bytes);
            crate::trim::release_free_heap();
            match loaded {
                Ok(loaded) => {
                    let (source, took) = (loaded.source, loaded.took);
                    // Swapped in before it is logged: a request after the line runs it.
                    if let Some(version) = weak.upgrade() {
                        version.tier_up(loaded.module, took);
                    }
                    if let Some(log) = &log {
                        let msg = format!(
                            "optimized tier ready from {} in {:.1} ms",
                            source.name(),
                            took.as_secs_f64() * 1e3
                        );
                        log(LogLevel::Info, &msg, LogFields::module(&job_path));
                    }
                }
                Err(f) => {
                    if let Some(log) = &log {
                        let msg = format!(
                            "cannot compile the optimized tier; the module keeps the baseline tier: {f}"
                        );
                        log(LogLevel::Warn, &msg, LogFields::module(&job_path));
                    }
                }
            }
        });
        if !self.background.submit(job) {
            if let Some(log) = &self.log {
                let msg = "background compiles are backed up; the module keeps the baseline tier";
                log(LogLevel::Warn, msg, LogFields::module(path));
            }
        }
    }

    /// Drops modules unused for longer than their keepalive; returns their paths. Requests
    /// still running keep their own reference until they finish.
    pub fn sweep(&self, now: Instant) -> Vec<PathBuf> {
        let mut dropped = Vec::new();
        self.lock().retain(|path, e| {
            let keep = now.saturating_duration_since(e.last_used) < e.keepalive;
            if !keep {
                dropped.push(path.clone());
            }
            keep
        });
        dropped
    }

    /// How many modules are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The modules held, by path.
    pub fn list(&self) -> Vec<ModuleInfo> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut list: Vec<_> = self
            .lock()
            .iter()
            .filter_map(|(path, e)| {
                let module = e.last_good.as_ref()?;
                Some(ModuleInfo {
                    path: path.clone(),
                    size: e.latest.identity.size,
                    loaded_at: e.loaded_at,
                    last_used: wall
                        .checked_sub(now.saturating_duration_since(e.last_used))
                        .unwrap_or(wall),
                    wcgi_export: module.wcgi_export,
                    tier: module.tier,
                    ready_at: module.ready_at,
                    component: matches!(module.code, crate::compile::Code::Http(_)),
                })
            })
            .collect();
        list.sort_by(|a, b| a.path.cmp(&b.path));
        list
    }

    /// Drops the module at `path`, or every module when `None`, so the next request loads
    /// it again (from the disk cache when there is one). Returns how many were dropped.
    pub fn evict(&self, path: Option<&Path>) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|p, _| path.is_some_and(|path| path != p));
        before - entries.len()
    }
}

/// A counting gate: at most `limit` holders at once; others wait their turn.
struct Gate {
    inside: Mutex<usize>,
    turn: Condvar,
    limit: usize,
}

impl Gate {
    fn new(limit: usize) -> Self {
        Gate {
            inside: Mutex::new(0),
            turn: Condvar::new(),
            limit,
        }
    }

    fn enter(&self) -> GatePass<'_> {
        let mut inside = crate::locks::lock(&self.inside);
        while *inside >= self.limit {
            inside = self.turn.wait(inside).unwrap_or_else(|e| e.into_inner());
        }
        *inside += 1;
        GatePass(self)
    }
}

/// Leaves the gate when dropped.
struct GatePass<'a>(&'a Gate);

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        *crate::locks::lock(&self.0.inside) -= 1;
        self.0.turn.notify_one();
    }
}

fn io_failure(e: std::io::Error) -> Failure {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => FailureKind::NotFound,
        _ => FailureKind::BadModule,
    };
    Failure::new(kind, format!("cannot open module: {e}"))
}

/// The identity of the file at `path` now.
fn identify(path: &Path) -> Result<FileIdentity, Failure> {
    let meta = std::fs::metadata(path).map_err(io_failure)?;
    if !meta.is_file() {
        return Err(Failure::new(FailureKind::NotFound, "module is not a file"));
    }
    Ok(FileIdentity::of(&meta))
}

fn read_all(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_failure)?;
    Ok(bytes)
}
