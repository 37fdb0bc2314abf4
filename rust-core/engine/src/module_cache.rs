//! Compiled modules, keyed by path and checked against the file's identity on every use, so
//! replacing a file takes effect on the next request. Compiles are single-flight: concurrent
//! first requests for one version wait for one compile.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{InstancePre, Linker, Module};

use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;

/// Which version of a file: changes when the file is rewritten or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// A module ready to instantiate.
pub struct LoadedModule {
    pub pre: InstancePre<GuestState>,
}

/// How a module became ready, for the log.
pub struct LoadReport {
    pub compiled_in: Option<Duration>,
}

struct Slot {
    identity: FileIdentity,
    module: OnceLock<Result<Arc<LoadedModule>, Failure>>,
}

#[derive(Default)]
pub struct ModuleCache {
    slots: Mutex<HashMap<PathBuf, Arc<Slot>>>,
}

impl ModuleCache {
    /// Returns the module at `path`, compiling it if this version of the file is new.
    pub fn get(
        &self,
        path: &Path,
        linker: &Linker<GuestState>,
    ) -> Result<(Arc<LoadedModule>, LoadReport), Failure> {
        let not_found = |e: std::io::Error| {
            let kind = match e.kind() {
                std::io::ErrorKind::NotFound => FailureKind::NotFound,
                _ => FailureKind::BadModule,
            };
            Failure::new(kind, format!("cannot open module: {e}"))
        };
        // Identity and bytes come from one open file, so they always describe one version.
        let mut file = File::open(path).map_err(not_found)?;
        let meta = file.metadata().map_err(not_found)?;
        if !meta.is_file() {
            return Err(Failure::new(FailureKind::NotFound, "module is not a file"));
        }
        let identity = FileIdentity::of(&meta);
        let slot = self.slot(path, identity);
        let mut compiled_in = None;
        let module = slot.module.get_or_init(|| {
            let started = Instant::now();
            let result = compile(&mut file, linker);
            compiled_in = Some(started.elapsed());
            result
        });
        module.clone().map(|m| (m, LoadReport { compiled_in }))
    }

    fn slot(&self, path: &Path, identity: FileIdentity) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(path) {
            Some(slot) if slot.identity == identity => slot.clone(),
            _ => {
                let slot = Arc::new(Slot {
                    identity,
                    module: OnceLock::new(),
                });
                slots.insert(path.to_path_buf(), slot.clone());
                slot
            }
        }
    }
}

fn compile(file: &mut File, linker: &Linker<GuestState>) -> Result<Arc<LoadedModule>, Failure> {
    let bad = |what: &str, e: wasmtime::Error| {
        Failure::new(FailureKind::BadModule, format!("{what}: {e:#}"))
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Failure::new(FailureKind::BadModule, format!("cannot read module: {e}")))?;
    let module =
        Module::new(linker.engine(), &bytes).map_err(|e| bad("cannot compile module", e))?;
    if module.get_export("_start").is_none() {
        return Err(Failure::new(
            FailureKind::BadModule,
            "module exports no _start function (not a WASI command)",
        ));
    }
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| bad("cannot link module", e))?;
    Ok(Arc::new(LoadedModule { pre }))
}
