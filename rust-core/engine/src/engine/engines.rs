//! The wasmtime engines of both tiers, and their renewal once idle.
//!
//! A pooling allocator keeps the memory of its warm slots resident (up to
//! `MEMORY_KEEP_RESIDENT` each, so that busy Go guests do not fault their heap back in on
//! every request) and wasmtime has no call to give it back. So once an engine runs no
//! instance and no loaded module uses it, the housekeeper replaces it with a fresh one: the
//! old pool is unmapped when its last user lets go. Anything still holding the old engine
//! (a module picked just before the swap) keeps working: the retired engine's epoch still
//! ticks until it is gone, so its time limits hold.

use std::sync::{Arc, Mutex};

use wasmtime::EngineWeak;

use super::config::{self, EngineConfig};
use crate::locks::lock;
use crate::tier::{Tier, TierEngine, TierEngines};

pub struct Engines {
    config: EngineConfig,
    current: Mutex<Arc<TierEngines>>,
    /// Replaced engines someone may still use: ticked until they are gone.
    retired: Mutex<Vec<EngineWeak>>,
}

impl Engines {
    pub fn new(config: EngineConfig) -> wasmtime::Result<Self> {
        let current = TierEngines {
            baseline: tier_engine(&config, Tier::Baseline)?,
            optimized: tier_engine(&config, Tier::Optimized)?,
        };
        Ok(Engines {
            config,
            current: Mutex::new(Arc::new(current)),
            retired: Mutex::default(),
        })
    }

    /// The engines new modules are loaded into.
    pub fn current(&self) -> Arc<TierEngines> {
        lock(&self.current).clone()
    }

    /// Advances the epoch of every engine that may run a guest.
    pub fn tick(&self) {
        for engine in self.current().engines() {
            engine.increment_epoch();
        }
        for engine in lock(&self.retired).iter().filter_map(EngineWeak::upgrade) {
            engine.increment_epoch();
        }
    }

    /// Replaces each tier's engine that keeps warm memory but runs no instance, unless
    /// `in_use` says a loaded module is of that tier. Returns the tiers renewed.
    pub fn renew_idle(&self, in_use: impl Fn(Tier) -> bool) -> Vec<Tier> {
        let mut renewed = Vec::new();
        let mut current = lock(&self.current);
        let mut next = TierEngines {
            baseline: current.baseline.clone(),
            optimized: current.optimized.clone(),
        };
        for tier in [Tier::Baseline, Tier::Optimized] {
            if in_use(tier) || !holds_idle_memory(&current.get(tier).engine) {
                continue;
            }
            let Ok(fresh) = tier_engine(&self.config, tier) else {
                continue;
            };
            let old = std::mem::replace(next.get_mut(tier), fresh);
            lock(&self.retired).push(old.engine.weak());
            renewed.push(tier);
        }
        if !renewed.is_empty() {
            *current = Arc::new(next);
        }
        lock(&self.retired).retain(|e| e.upgrade().is_some());
        renewed
    }
}

fn tier_engine(config: &EngineConfig, tier: Tier) -> wasmtime::Result<TierEngine> {
    TierEngine::new(config::wasmtime_engine(config, tier)?)
}

/// True when `engine` runs no instance but keeps warm pool slots.
fn holds_idle_memory(engine: &wasmtime::Engine) -> bool {
    engine
        .pooling_allocator_metrics()
        .is_some_and(|m| m.core_instances() == 0 && m.unused_warm_memories() > 0)
}
