//! Turning a wasm file into a linked module, through the on-disk cache of precompiled code
//! when one is configured ([`crate::disk_cache`] says how that cache is trusted).
//!
//! Cache entries are named by the wasm's SHA-256 and the engine's compatibility hash, so a
//! new wasmtime or different settings never load stale code, and the same bytes under
//! another path (or after a restart) load without compiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{InstancePre, Linker, Module};

use crate::disk_cache::{CacheDir, EntryKey, Rejected};
use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;

/// A module ready to instantiate.
pub struct LoadedModule {
    pub pre: InstancePre<GuestState>,
    pub module: Module,
    /// The module exports `wagi_wcgi`: it serves many requests from one instance.
    pub wcgi_export: bool,
}

/// Where a module's code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Compiled,
    DiskCache,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Compiled => "compiled",
            Source::DiskCache => "disk cache",
        }
    }
}

/// How loading went, for the log.
pub struct Loaded {
    pub module: Arc<LoadedModule>,
    pub source: Source,
    pub took: Duration,
    /// Why a cache file was found but not used, when one was.
    pub rejected: Option<String>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(FailureKind::BadModule, format!("{what}: {e:#}"))
}

/// Builds a module from wasm `bytes`, using `cache_dir` when given.
pub fn load(
    bytes: &[u8],
    linker: &Linker<GuestState>,
    cache: Option<&CacheDir>,
) -> Result<Loaded, Failure> {
    let started = Instant::now();
    let engine = linker.engine();
    let (module, source, rejected) = match cache {
        None => {
            let module = Module::new(engine, bytes);
            crate::trim::release_free_heap();
            (
                module.map_err(|e| bad("cannot compile module", e))?,
                Source::Compiled,
                None,
            )
        }
        Some(dir) => through_cache(engine, bytes, dir)?,
    };
    // A command starts at `_start`; a reactor (`_initialize`) runs only with an
    // `entrypoint`, which is checked when an instance starts (see guest/entry.rs).
    if module.get_export("_start").is_none() && module.get_export("_initialize").is_none() {
        return Err(Failure::new(
            FailureKind::BadModule,
            "module exports neither _start nor _initialize (not a WASI command or reactor)",
        ));
    }
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| bad("cannot link module", e))?;
    let wcgi_export = module.get_export("wagi_wcgi").is_some();
    Ok(Loaded {
        module: Arc::new(LoadedModule {
            pre,
            module,
            wcgi_export,
        }),
        source,
        took: started.elapsed(),
        rejected,
    })
}

fn through_cache(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    cache: &CacheDir,
) -> Result<(Module, Source, Option<String>), Failure> {
    let entry = EntryKey::new(bytes, engine);
    let rejected = match cache.load(&entry) {
        Ok(code) => {
            // SAFETY: `code` is in private memory and carries a valid MAC under a key only
            // this server holds, over this wasm's digest and this engine's compatibility
            // hash: it is what `precompile_module` produced for exactly these bytes.
            match unsafe { Module::deserialize(engine, &code) } {
                Ok(module) => return Ok((module, Source::DiskCache, None)),
                Err(e) => Some(format!("cannot load it: {e:#}")),
            }
        }
        Err(Rejected::Missing) => None,
        Err(Rejected::Invalid(why)) => Some(format!("removed: {why}")),
        Err(Rejected::Unreadable(e)) => Some(format!("cannot read it: {e}")),
    };
    let code = engine.precompile_module(bytes);
    crate::trim::release_free_heap();
    let code = code.map_err(|e| bad("cannot compile module", e))?;
    // A cache directory that cannot be written still lets us serve, from memory.
    let _ = cache.store(&entry, &code);
    // SAFETY: `code` is the output of `precompile_module` on this very engine.
    let module = unsafe { Module::deserialize(engine, &code) }
        .map_err(|e| bad("cannot load compiled module", e))?;
    Ok((module, Source::Compiled, rejected))
}
