//! Counters of what the engine did since it started, read by the host for its metrics.
//! Counters only ever grow; the gauges of a [`StatsSnapshot`] (modules loaded, instances
//! running, their memory) are counted when the snapshot is taken.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The engine's counters, shared by the parts that count.
#[derive(Default)]
pub struct EngineStats {
    /// Modules compiled from wasm.
    pub compiles: AtomicU64,
    /// Time spent compiling them, in nanoseconds.
    pub compile_nanos: AtomicU64,
    /// Modules loaded from a disk cache file.
    pub disk_cache_hits: AtomicU64,
    /// Modules compiled although a disk cache was configured (no usable file).
    pub disk_cache_misses: AtomicU64,
    /// Disk cache files found but refused (bad MAC, stale, unreadable).
    pub disk_cache_rejects: AtomicU64,
    /// Long-lived (WCGI) instances started.
    pub wcgi_started: AtomicU64,
    /// Long-lived instances stopped to be replaced: module changed, instance ended or
    /// wedged, or restarted through the admin API. Idle ones stopped are not counted.
    pub wcgi_replaced: AtomicU64,
}

impl EngineStats {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one compile that took `took`.
    pub fn compiled(&self, took: Duration) {
        Self::add(&self.compiles, 1);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        Self::add(&self.compile_nanos, nanos);
    }

    /// The counters now, with the gauges left at zero for the engine to fill in.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            compiles: get(&self.compiles),
            compile_seconds: get(&self.compile_nanos) as f64 / 1e9,
            disk_cache_hits: get(&self.disk_cache_hits),
            disk_cache_misses: get(&self.disk_cache_misses),
            disk_cache_rejects: get(&self.disk_cache_rejects),
            wcgi_started: get(&self.wcgi_started),
            wcgi_replaced: get(&self.wcgi_replaced),
            ..StatsSnapshot::default()
        }
    }
}

/// The engine's counters and gauges at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatsSnapshot {
    pub compiles: u64,
    pub compile_seconds: f64,
    pub disk_cache_hits: u64,
    pub disk_cache_misses: u64,
    pub disk_cache_rejects: u64,
    pub wcgi_started: u64,
    pub wcgi_replaced: u64,
    /// Outbound connections guests opened, were refused (rules, cap), or failed to open
    /// (resolve, connect, handshake); and those open now. Process-wide (`net::counters`).
    pub outbound_opened: u64,
    pub outbound_refused: u64,
    pub outbound_failed: u64,
    pub outbound_open: u64,
    /// Modules held in memory now.
    pub modules_loaded: u64,
    /// Long-lived instances alive now (draining ones included).
    pub wcgi_running: u64,
    /// Linear memory those instances hold, in bytes.
    pub wcgi_memory_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_add_up() {
        let stats = EngineStats::default();
        stats.compiled(Duration::from_millis(1500));
        stats.compiled(Duration::from_millis(500));
        EngineStats::add(&stats.disk_cache_rejects, 1);
        let s = stats.snapshot();
        assert_eq!(s.compiles, 2);
        assert!((s.compile_seconds - 2.0).abs() < 1e-9);
        assert_eq!(s.disk_cache_rejects, 1);
        assert_eq!(s.modules_loaded, 0);
    }
}
