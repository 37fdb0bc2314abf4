//! The two compile tiers and the wasmtime engines that make them.
//!
//! A never-seen module is first compiled by Winch, wasmtime's baseline compiler (about 3x
//! faster to compile than Cranelift; for CGI guests, whose time goes to Go's own start,
//! about as fast to run), so its first request does not wait for Cranelift. Cranelift's
//! optimised code is compiled afterwards, in the background, and replaces it for new
//! instances. Code from one engine can only be instantiated in that engine, so each tier has
//! its own engine, pool and linkers; [`LoadedModule`](crate::compile::LoadedModule) keeps the
//! engine it belongs to.

use std::sync::Arc;

use crate::component::HttpState;
use crate::guest::Linkers;

/// Which compiler made a module's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Winch: compiled fast, for a module's first requests.
    Baseline,
    /// Cranelift: compiled in the background, used from then on.
    Optimized,
}

impl Tier {
    /// Its name in log lines and in disk cache file names.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }
}

/// One tier's engine and the linkers bound to it.
#[derive(Clone)]
pub struct TierEngine {
    pub engine: wasmtime::Engine,
    pub linkers: Arc<Linkers>,
    /// For wasi:http components.
    pub http_linker: Arc<wasmtime::component::Linker<HttpState>>,
}

impl TierEngine {
    pub fn new(engine: wasmtime::Engine) -> wasmtime::Result<Self> {
        let linkers = Arc::new(Linkers::new(&engine)?);
        let http_linker = Arc::new(crate::component::linker(&engine)?);
        Ok(TierEngine {
            engine,
            linkers,
            http_linker,
        })
    }
}

/// The engines of both tiers, made together from one configuration.
pub struct TierEngines {
    pub baseline: TierEngine,
    pub optimized: TierEngine,
}

impl TierEngines {
    pub fn get(&self, tier: Tier) -> &TierEngine {
        match tier {
            Tier::Baseline => &self.baseline,
            Tier::Optimized => &self.optimized,
        }
    }

    pub fn get_mut(&mut self, tier: Tier) -> &mut TierEngine {
        match tier {
            Tier::Baseline => &mut self.baseline,
            Tier::Optimized => &mut self.optimized,
        }
    }

    /// Both engines, for epoch ticks.
    pub fn engines(&self) -> [&wasmtime::Engine; 2] {
        [&self.baseline.engine, &self.optimized.engine]
    }
}
