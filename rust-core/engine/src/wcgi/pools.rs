//! A site's long-lived instances: one pool per module and root, round-robin within it,
//! instances of replaced versions drained, idle and wedged ones stopped by the sweep.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::context::WcgiContext;
use super::instance::Instance;
use crate::compile::LoadedModule;
use crate::failure::Failure;
use crate::host::{Host, LogLevel};
use crate::locks::lock;
use crate::request::RunSpec;

struct Pool {
    module: Arc<LoadedModule>,
    instances: Vec<Arc<Instance>>,
    next: usize,
    last_used: Instant,
    keepalive: Duration,
}

/// All WCGI instances of a site, by module path and site root.
#[derive(Default)]
pub struct WcgiPools {
    pools: Mutex<HashMap<(PathBuf, String), Pool>>,
    /// Instances of replaced module versions, stopped once their requests finish.
    draining: Mutex<Vec<Arc<Instance>>>,
}

/// What a sweep did, for the log.
pub enum SweepEvent {
    /// The module's instances went unused for its keepalive and were stopped.
    Idle(PathBuf),
    /// An instance stayed busy after a request timed out and was stopped, to be replaced.
    Wedged(PathBuf),
}

impl SweepEvent {
    pub fn describe(&self) -> String {
        match self {
            SweepEvent::Idle(p) => format!("stopped idle WCGI instances of {}", p.display()),
            SweepEvent::Wedged(p) => format!(
                "a WCGI instance of {} stayed busy after a request timed out; replacing it",
                p.display()
            ),
        }
    }
}

impl WcgiPools {
    /// Stops idle pools, wedged instances and finished draining instances.
    pub fn sweep(&self, now: Instant) -> Vec<SweepEvent> {
        let mut events = Vec::new();
        lock(&self.pools).retain(|(path, _), pool| {
            let keep = now.saturating_duration_since(pool.last_used) < pool.keepalive;
            if !keep {
                pool.instances.iter().for_each(|i| i.shut_down());
                events.push(SweepEvent::Idle(path.clone()));
                return false;
            }
            for instance in pool.instances.iter().filter(|i| i.alive() && i.wedged(now)) {
                instance.shut_down();
                events.push(SweepEvent::Wedged(path.clone()));
            }
            true
        });
        lock(&self.draining).retain(|i| {
            let busy = i.inflight.load(Ordering::SeqCst) > 0 && i.alive();
            if !busy {
                i.shut_down();
            }
            busy
        });
        events
    }

    /// Stops every instance (engine shutdown).
    pub fn stop_all(&self) {
        for pool in lock(&self.pools).values() {
            pool.instances.iter().for_each(|i| i.shut_down());
        }
        lock(&self.draining).iter().for_each(|i| i.shut_down());
    }

    /// The instance of `module` the next request goes to: round-robin over the pool for
    /// `spec`'s module and root, started or replaced as needed.
    pub(super) fn pick(
        &self,
        ctx: &WcgiContext,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
        host: &dyn Host,
    ) -> Result<Arc<Instance>, Failure> {
        let mut pools = lock(&self.pools);
        // The root is mounted into the instance: one pool per module and root.
        let key = (spec.module_path.clone(), spec.script.document_root.clone());
        let pool = pools.entry(key).or_insert_with(|| Pool {
            module: module.clone(),
            instances: Vec::new(),
            next: 0,
            last_used: Instant::now(),
            keepalive: spec.cache.keepalive,
        });
        if !Arc::ptr_eq(&pool.module, module) {
            host.log(
                LogLevel::Info,
                "module changed; draining its WCGI instances",
            );
            lock(&self.draining).append(&mut pool.instances);
            pool.module = module.clone();
        }
        let before = pool.instances.len();
        pool.instances.retain(|i| i.alive());
        if pool.instances.len() < before {
            host.log(LogLevel::Warn, "a WCGI instance ended; replacing it");
        }
        pool.last_used = Instant::now();
        pool.keepalive = spec.cache.keepalive;
        let wanted = spec.wcgi_instances.max(1) as usize;
        while pool.instances.len() < wanted {
            let instance = Instance::start(ctx, module, spec)?;
            host.log(LogLevel::Info, "started a WCGI instance");
            pool.instances.push(instance);
        }
        pool.next = (pool.next + 1) % pool.instances.len();
        Ok(pool.instances[pool.next].clone())
    }
}
