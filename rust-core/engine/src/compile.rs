//! Turning a wasm file into a linked module of one [`Tier`], through the on-disk cache of
//! precompiled code when one is configured ([`crate::disk_cache`] says how that cache is
//! trusted).
//!
//! Cache entries are named by the wasm's digest, the engine's compatibility hash and the
//! tier, so a new wasmtime, different settings or the other compiler never load stale code,
//! and the same bytes under another path (or after a restart) load without compiling.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{InstancePre, Module};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;

use crate::component::{is_component, HttpCode};
use crate::disk_cache::{CacheDir, EntryKey, Rejected};
use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;
use crate::tier::{Tier, TierEngine, TierEngines};

/// A module (or component) ready to instantiate, in the engine of its tier.
pub struct LoadedModule {
    pub code: Code,
    /// The module exports `wagi_wcgi`: it serves many requests from one instance.
    pub wcgi_export: bool,
    pub tier: Tier,
    /// When its code was ready.
    pub ready_at: std::time::SystemTime,
}

/// The two kinds of wasm binary a site may hold.
pub enum Code {
    /// A WASI preview1 module (CGI or WCGI).
    Core(CoreCode),
    /// A wasi:http/proxy component.
    Http(HttpCode),
}

/// A core module linked for both modes, in the engine of its tier (`module.engine()`).
pub struct CoreCode {
    /// Linked for per-request (CGI) instances.
    pub pre: InstancePre<GuestState>,
    /// Linked for long-lived (WCGI) instances.
    pub wcgi_pre: InstancePre<GuestState>,
    pub module: Module,
    /// It imports a WASI call that can reach a directory: its instances get the site's
    /// mounts (see [`crate::wasi_ctx::reaches_files`]).
    pub reaches_files: bool,
}

impl LoadedModule {
    /// Its core module; `Err` for a component, which runs only as wasi:http.
    pub fn core(&self) -> Result<&CoreCode, Failure> {
        match &self.code {
            Code::Core(core) => Ok(core),
            Code::Http(_) => Err(Failure::new(
                FailureKind::BadModule,
                "this is a wasi:http component: it cannot run as CGI or WCGI",
            )),
        }
    }
}

/// Compiled code of either kind, before linking.
enum Artifact {
    Module(Module),
    Component(Component),
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

/// The fastest way to serve `bytes` now: the optimised code from the disk cache, else the
/// baseline code from it, else a baseline compile. The caller upgrades a baseline result.
pub fn load_first(
    bytes: &[u8],
    engines: &TierEngines,
    cache: Option<&CacheDir>,
) -> Result<Loaded, Failure> {
    let started = Instant::now();
    let mut rejected = None;
    if let Some(cache) = cache {
        for tier in [Tier::Optimized, Tier::Baseline] {
            let te = engines.get(tier);
            let entry = EntryKey::new(bytes, &te.engine, tier.name());
            match from_disk(&te.engine, &entry, cache, is_component(bytes)) {
                Ok(module) => return link(module, te, tier, Source::DiskCache, started, rejected),
                Err(why) => rejected = rejected.or(why),
            }
        }
    }
    // Winch lacks a few proposals Cranelift has: such a module compiles at the optimised
    // tier straight away.
    let loaded = load(bytes, Tier::Baseline, engines, cache)
        .or_else(|_| load(bytes, Tier::Optimized, engines, cache))?;
    Ok(Loaded {
        rejected: rejected.or(loaded.rejected),
        took: started.elapsed(),
        ..loaded
    })
}

/// Builds the `tier` code of `bytes`, through `cache` when given.
pub fn load(
    bytes: &[u8],
    tier: Tier,
    engines: &TierEngines,
    cache: Option<&CacheDir>,
) -> Result<Loaded, Failure> {
    let started = Instant::now();
    let te = engines.get(tier);
    let engine = &te.engine;
    let Some(cache) = cache else {
        let artifact = match is_component(bytes) {
            true => Component::new(engine, bytes).map(Artifact::Component),
            false => Module::new(engine, bytes).map(Artifact::Module),
        };
        crate::trim::release_free_heap();
        let artifact = artifact.map_err(|e| bad("cannot compile module", e))?;
        return link(artifact, te, tier, Source::Compiled, started, None);
    };
    let entry = EntryKey::new(bytes, engine, tier.name());
    let rejected = match from_disk(engine, &entry, cache, is_component(bytes)) {
        Ok(module) => return link(module, te, tier, Source::DiskCache, started, None),
        Err(why) => why,
    };
    let module = compile_to_cache(engine, bytes, cache, &entry);
    // The compiler's memory and the code buffer (freed only now) go back to the OS.
    crate::trim::release_free_heap();
    link(module?, te, tier, Source::Compiled, started, rejected)
}

/// Compiles `bytes`, stores the code for `entry` in `cache` and loads it.
fn compile_to_cache(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    cache: &CacheDir,
    entry: &EntryKey,
) -> Result<Artifact, Failure> {
    let component = is_component(bytes);
    let code = match component {
        true => engine.precompile_component(bytes),
        false => engine.precompile_module(bytes),
    }
    .map_err(|e| bad("cannot compile module", e))?;
    // A cache directory that cannot be written still lets us serve, from memory.
    let _ = cache.store(entry, &code);
    let loaded = match component {
        // SAFETY: `code` is the output of `precompile_component` on this very engine.
        true => unsafe { Component::deserialize(engine, &code) }.map(Artifact::Component),
        // SAFETY: `code` is the output of `precompile_module` on this very engine.
        false => unsafe { Module::deserialize(engine, &code) }.map(Artifact::Module),
    };
    loaded.map_err(|e| bad("cannot load compiled module", e))
}

/// The module of `entry` from `cache`; `Err` says why not when a file was there.
fn from_disk(
    engine: &wasmtime::Engine,
    entry: &EntryKey,
    cache: &CacheDir,
    component: bool,
) -> Result<Artifact, Option<String>> {
    let cannot = |e: wasmtime::Error| Some(format!("cannot load it: {e:#}"));
    match cache.load(entry) {
        Ok(code) if component => {
            // wasmtime has no `deserialize_open_file` for components: it maps the same
            // sealed file through its /proc path (a copy in a Vec would be misaligned).
            let path = format!("/proc/self/fd/{}", code.as_raw_fd());
            // SAFETY: as below: `code` (kept open across the call) is the sealed, verified
            // output of `precompile_component` for this digest on an engine like this one.
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            drop(code);
            loaded.map(Artifact::Component).map_err(cannot)
        }
        Ok(code) => {
            // SAFETY: `code` is a sealed memfd (immutable) whose bytes carry a valid MAC
            // under a key only this server holds, over this wasm's digest, this engine's
            // compatibility hash and the tier: it is what `precompile_module` (or
            // `precompile_component`, for a component's digest) produced for exactly these
            // bytes on an engine like this one.
            unsafe { Module::deserialize_open_file(engine, code) }
                .map(Artifact::Module)
                .map_err(cannot)
        }
        Err(Rejected::Missing) => Err(None),
        Err(Rejected::Invalid(why)) => Err(Some(format!("removed: {why}"))),
        Err(Rejected::Unreadable(e)) => Err(Some(format!("cannot read it: {e}"))),
    }
}

/// Links `artifact` for the ways it can run.
fn link(
    artifact: Artifact,
    te: &TierEngine,
    tier: Tier,
    source: Source,
    started: Instant,
    rejected: Option<String>,
) -> Result<Loaded, Failure> {
    let (code, wcgi_export) = match artifact {
        Artifact::Module(module) => link_core(module, te)?,
        Artifact::Component(component) => (Code::Http(link_http(component, te)?), false),
    };
    Ok(Loaded {
        module: Arc::new(LoadedModule {
            code,
            wcgi_export,
            tier,
            ready_at: std::time::SystemTime::now(),
        }),
        source,
        took: started.elapsed(),
        rejected,
    })
}

/// Checks that `component` is a wasi:http/proxy and links it.
fn link_http(component: Component, te: &TierEngine) -> Result<HttpCode, Failure> {
    let pre = te
        .http_linker
        .instantiate_pre(&component)
        .map_err(|e| bad("cannot link component", e))?;
    let pre = ProxyPre::new(pre).map_err(|e| {
        bad(
            "component is not a wasi:http/proxy (it must export wasi:http/incoming-handler)",
            e,
        )
    })?;
    Ok(HttpCode { pre, component })
}

/// Checks that `module` is a WASI command and links it for both modes; also says whether
/// it exports `wagi_wcgi`.
fn link_core(module: Module, te: &TierEngine) -> Result<(Code, bool), Failure> {
    // A command starts at `_start`; a reactor (`_initialize`) runs only with an
    // `entrypoint`, which is checked when an instance starts (see guest/entry.rs).
    if module.get_export("_start").is_none() && module.get_export("_initialize").is_none() {
        return Err(Failure::new(
            FailureKind::BadModule,
            "module exports neither _start nor _initialize (not a WASI command or reactor)",
        ));
    }
    let link_for = |linker: &wasmtime::Linker<GuestState>| {
        linker
            .instantiate_pre(&module)
            .map_err(|e| bad("cannot link module", e))
    };
    let pre = link_for(&te.linkers.cgi)?;
    let wcgi_pre = link_for(&te.linkers.wcgi)?;
    let wcgi_export = module.get_export("wagi_wcgi").is_some();
    let core = CoreCode {
        pre,
        wcgi_pre,
        reaches_files: crate::wasi_ctx::reaches_files(&module),
        module,
    };
    Ok((Code::Core(core), wcgi_export))
}
