//! Compiled modules, keyed by path and checked against the file's identity on every use, so
//! replacing a file takes effect on the next request while requests already running keep
//! the version they started with.
//!
//! - Loads are single-flight: concurrent requests for one new version wait for one load.
//! - A new version that fails to load (say, a file still being copied) does not take the
//!   site down: requests keep the last version that loaded, with a warning.
//! - Modules unused for their keepalive are dropped by [`ModuleCache::sweep`].

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::Linker;

use crate::compile::{self, LoadedModule, Source};
use crate::disk_cache::CacheDir;
use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;
use crate::host::LogLevel;

/// Which version of a file: changes when the file is rewritten or replaced. The change
/// time is part of it because a deploy may keep size and mtime (`cp -p`,
/// `rsync --inplace -t`), but no user can set ctime: any write moves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
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
        source: Source,
        took: Duration,
        /// Why a disk cache file was not used, when one was found.
        rejected: Option<String>,
    },
    /// This call found the new version broken and kept serving the previous one.
    KeptPrevious(Failure),
}

impl LoadEvent {
    /// How loud its log line is: a broken new version is worth a warning.
    pub fn level(&self) -> LogLevel {
        match self {
            LoadEvent::Loaded { .. } => LogLevel::Info,
            LoadEvent::KeptPrevious(_) => LogLevel::Warn,
        }
    }

    /// Its log line.
    pub fn describe(&self) -> String {
        match self {
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
}

/// Per-path options that come with each request.
#[derive(Clone, Copy)]
pub struct CacheOptions<'a> {
    pub cache: Option<&'a CacheDir>,
    pub keepalive: Duration,
}

/// One version of one file; `module` is filled once, by the first request that needs it.
struct Version {
    identity: FileIdentity,
    module: OnceLock<Result<Arc<LoadedModule>, Failure>>,
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
}

pub struct ModuleCache {
    entries: Mutex<HashMap<PathBuf, Entry>>,
    /// Bounds how many loads compile at once.
    compiles: Gate,
}

impl ModuleCache {
    /// A cache that compiles at most `concurrency` modules at once.
    pub fn new(concurrency: u32) -> Self {
        ModuleCache {
            entries: Mutex::default(),
            compiles: Gate::new(concurrency.max(1) as usize),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Entry>> {
        crate::locks::lock(&self.entries)
    }

    /// Returns the module at `path`, loading it if this version of the file is new.
    pub fn get(
        &self,
        path: &Path,
        linker: &Linker<GuestState>,
        opts: CacheOptions<'_>,
    ) -> Result<(Arc<LoadedModule>, Option<LoadEvent>), Failure> {
        // One stat per request; the file is opened only to load a new version.
        let identity = match identify(path) {
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
        let result = version.module.get_or_init(|| {
            attempted = true;
            // If the file changed again since the stat, these bytes are newer than
            // `identity`; the next request's stat sees that and loads them again.
            let _turn = self.compiles.enter();
            let loaded = read_all(path).and_then(|bytes| compile::load(&bytes, linker, opts.cache));
            loaded.map(|l| {
                event = Some(LoadEvent::Loaded {
                    source: l.source,
                    took: l.took,
                    rejected: l.rejected,
                });
                l.module
            })
        });
        match result {
            Ok(module) => {
                if let Some(entry) = self.lock().get_mut(path) {
                    entry.last_good = Some(module.clone());
                    if event.is_some() {
                        entry.loaded_at = Some(SystemTime::now());
                    }
                }
                Ok((module.clone(), event))
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
