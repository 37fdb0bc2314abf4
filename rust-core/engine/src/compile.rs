//! Turning a wasm file into a linked module, through the on-disk cache of precompiled code
//! when one is configured.
//!
//! Cache files are named by the wasm's SHA-256 and the engine's compatibility hash, so a
//! new wasmtime or different settings never load stale code, and the same bytes under
//! another path (or after a restart) load without compiling. They are loaded with
//! `Module::deserialize_file`, which maps the file so it backs copy-on-write heap images.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::{Linker, Module};

use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;
use crate::module_cache::LoadedModule;

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
}

fn bad(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(FailureKind::BadModule, format!("{what}: {e:#}"))
}

/// Builds a module from wasm `bytes`, using `cache_dir` when given.
pub fn load(
    bytes: &[u8],
    linker: &Linker<GuestState>,
    cache_dir: Option<&Path>,
) -> Result<Loaded, Failure> {
    let started = Instant::now();
    let engine = linker.engine();
    let (module, source) = match cache_dir {
        None => {
            let module = Module::new(engine, bytes);
            crate::trim::release_free_heap();
            (
                module.map_err(|e| bad("cannot compile module", e))?,
                Source::Compiled,
            )
        }
        Some(dir) => through_cache(engine, bytes, dir)?,
    };
    if module.get_export("_start").is_none() {
        return Err(Failure::new(
            FailureKind::BadModule,
            "module exports no _start function (not a WASI command)",
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
    })
}

fn through_cache(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    dir: &Path,
) -> Result<(Module, Source), Failure> {
    let path = cache_path(engine, bytes, dir);
    if path.exists() {
        // SAFETY: files in the cache directory are written only by `store` below, from
        // `Engine::precompile_module` of this engine configuration (the name carries its
        // compatibility hash), and never modified in place.
        match unsafe { Module::deserialize_file(engine, &path) } {
            Ok(module) => return Ok((module, Source::DiskCache)),
            // A damaged file: drop it and compile again.
            Err(_) => {
                let _ = fs::remove_file(&path);
            }
        }
    }
    let code = engine.precompile_module(bytes);
    crate::trim::release_free_heap();
    let code = code.map_err(|e| bad("cannot compile module", e))?;
    if store(&path, &code).is_ok() {
        // SAFETY: as above; the file was just written whole and renamed into place.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &path) } {
            return Ok((module, Source::Compiled));
        }
    }
    // The cache directory is unusable: still serve, from memory.
    // SAFETY: `code` is the output of `precompile_module` on this very engine.
    let module = unsafe { Module::deserialize(engine, &code) }
        .map_err(|e| bad("cannot load compiled module", e))?;
    Ok((module, Source::Compiled))
}

fn cache_path(engine: &wasmtime::Engine, bytes: &[u8], dir: &Path) -> PathBuf {
    let digest = Sha256::digest(bytes);
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let mut name = String::with_capacity(90);
    for b in &digest[..16] {
        name.push_str(&format!("{b:02x}"));
    }
    name.push_str(&format!("-{:016x}.cwasm", hasher.finish()));
    dir.join(name)
}

/// Writes `code` to `path` atomically: a reader sees no file or the whole file.
fn store(path: &Path, code: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("module"),
        std::process::id()
    ));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(code)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
