//! A site's long-lived instances: one pool per module and root, round-robin within it,
//! instances of replaced versions drained, idle and wedged ones stopped by the sweep.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::context::WcgiContext;
use super::instance::Instance;
use crate::compile::LoadedModule;
use crate::failure::Failure;
use crate::host::{Host, LogLevel};
use crate::locks::lock;
use crate::request::RunSpec;
use crate::stats::EngineStats;

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

/// What a sweep did, for the log: what happened, to the instances of which module and
/// site root.
pub struct SweepEvent {
    pub kind: SweepKind,
    pub module: PathBuf,
    pub site: String,
}

pub enum SweepKind {
    /// The module's instances went unused for its keepalive and were stopped.
    Idle,
    /// An instance stayed busy after a request timed out and was stopped, to be replaced.
    Wedged,
}

impl SweepEvent {
    pub fn describe(&self) -> &'static str {
        match self.kind {
            SweepKind::Idle => "stopped idle WCGI instances",
            SweepKind::Wedged => {
                "a WCGI instance stayed busy after a request timed out; replacing it"
            }
        }
    }
}

/// A running instance, as the admin API lists it.
pub struct InstanceInfo {
    pub module: PathBuf,
    /// The site root it serves.
    pub site: String,
    pub started_at: SystemTime,
    /// Requests running on it now.
    pub inflight: usize,
    /// Its linear memory, in bytes.
    pub memory_bytes: usize,
}

impl WcgiPools {
    /// Stops idle pools, wedged instances and finished draining instances.
    pub fn sweep(&self, now: Instant) -> Vec<SweepEvent> {
        let mut events = Vec::new();
        lock(&self.pools).retain(|(path, root), pool| {
            let event = |kind| SweepEvent {
                kind,
                module: path.clone(),
                site: root.clone(),
            };
            let keep = now.saturating_duration_since(pool.last_used) < pool.keepalive;
            if !keep {
                pool.instances.iter().for_each(|i| i.shut_down());
                events.push(event(SweepKind::Idle));
                return false;
            }
            for instance in pool.instances.iter().filter(|i| i.alive() && i.wedged(now)) {
                instance.shut_down();
                events.push(event(SweepKind::Wedged));
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

    /// The instances serving requests, by module and site root.
    pub fn list(&self) -> Vec<InstanceInfo> {
        let pools = lock(&self.pools);
        let mut list = Vec::new();
        for ((module, site), pool) in pools.iter() {
            for i in pool.instances.iter().filter(|i| i.alive()) {
                list.push(InstanceInfo {
                    module: module.clone(),
                    site: site.clone(),
                    started_at: i.started_at,
                    inflight: i.inflight.load(Ordering::SeqCst),
                    memory_bytes: i.memory.load(Ordering::Relaxed),
                });
            }
        }
        list
    }

    /// How many instances are alive (draining ones included) and their memory in bytes.
    pub fn usage(&self) -> (usize, usize) {
        let pools = lock(&self.pools);
        let draining = lock(&self.draining);
        pools
            .values()
            .flat_map(|p| p.instances.iter())
            .chain(draining.iter())
            .filter(|i| i.alive())
            .fold((0, 0), |(n, bytes), i| {
                (n + 1, bytes + i.memory.load(Ordering::Relaxed))
            })
    }

    /// Drains the instances of `module` (every module when `None`): requests in flight on
    /// them finish, the next request starts new ones. Returns how many were drained.
    pub fn restart(&self, module: Option<&std::path::Path>, stats: &EngineStats) -> usize {
        let mut drained = Vec::new();
        for ((path, _), pool) in lock(&self.pools).iter_mut() {
            if module.is_none_or(|m| m == path) {
                drained.append(&mut pool.instances);
            }
        }
        let n = drained.len();
        EngineStats::add(&stats.wcgi_replaced, n as u64);
        lock(&self.draining).append(&mut drained);
        n
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
            EngineStats::add(&ctx.stats.wcgi_replaced, pool.instances.len() as u64);
            lock(&self.draining).append(&mut pool.instances);
            pool.module = module.clone();
        }
        let before = pool.instances.len();
        pool.instances.retain(|i| i.alive());
        if pool.instances.len() < before {
            EngineStats::add(
                &ctx.stats.wcgi_replaced,
                (before - pool.instances.len()) as u64,
            );
            host.log(LogLevel::Warn, "a WCGI instance ended; replacing it");
        }
        pool.last_used = Instant::now();
        pool.keepalive = spec.cache.keepalive;
        let wanted = spec.wcgi_instances.max(1) as usize;
        while pool.instances.len() < wanted {
            let instance = Instance::start(ctx, module, spec)?;
            EngineStats::add(&ctx.stats.wcgi_started, 1);
            host.log(LogLevel::Info, "started a WCGI instance");
            pool.instances.push(instance);
        }
        pool.next = (pool.next + 1) % pool.instances.len();
        Ok(pool.instances[pool.next].clone())
    }
}
