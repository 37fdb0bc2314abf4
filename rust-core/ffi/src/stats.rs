//! The engine's counters and gauges for the server's metrics.

use wagi_core::StatsSnapshot;

use crate::api::{internal, wagi_engine};
use crate::error::{wagi_error, wagi_result};
use crate::guard::guard;

/// The engine's counters (since it was created) and gauges (now). New fields are added at
/// the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wagi_stats {
    /// Modules compiled from wasm.
    pub compiles: u64,
    /// Seconds spent compiling them.
    pub compile_seconds: f64,
    /// Modules loaded from a disk cache file instead of compiled.
    pub disk_cache_hits: u64,
    /// Modules compiled although a disk cache was configured.
    pub disk_cache_misses: u64,
    /// Disk cache files found but refused.
    pub disk_cache_rejects: u64,
    /// Modules held in memory now.
    pub modules_loaded: u64,
    /// Long-lived (WCGI) instances alive now.
    pub wcgi_running: u64,
    /// Long-lived instances started.
    pub wcgi_started: u64,
    /// Long-lived instances replaced (module changed, instance ended or wedged, restart).
    pub wcgi_replaced: u64,
    /// Linear memory of the long-lived instances alive now, in bytes.
    pub wcgi_memory_bytes: u64,
    /// Outbound connections guests opened (process-wide).
    pub outbound_opened: u64,
    /// Outbound connections refused by the rules or the connection cap.
    pub outbound_refused: u64,
    /// Outbound connections that failed to resolve, connect or handshake.
    pub outbound_failed: u64,
    /// Outbound connections open now.
    pub outbound_open: u64,
}

impl From<StatsSnapshot> for wagi_stats {
    fn from(s: StatsSnapshot) -> Self {
        wagi_stats {
            compiles: s.compiles,
            compile_seconds: s.compile_seconds,
            disk_cache_hits: s.disk_cache_hits,
            disk_cache_misses: s.disk_cache_misses,
            disk_cache_rejects: s.disk_cache_rejects,
            modules_loaded: s.modules_loaded,
            wcgi_running: s.wcgi_running,
            wcgi_started: s.wcgi_started,
            wcgi_replaced: s.wcgi_replaced,
            wcgi_memory_bytes: s.wcgi_memory_bytes,
            outbound_opened: s.outbound_opened,
            outbound_refused: s.outbound_refused,
            outbound_failed: s.outbound_failed,
            outbound_open: s.outbound_open,
        }
    }
}

/// Fills `*out` with the engine's counters and gauges.
///
/// # Safety
/// `engine` is live; `out` is valid for writes; `err_out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_engine_stats(
    engine: *const wagi_engine,
    out: *mut wagi_stats,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        guard(err_out, || {
            let engine = engine.as_ref().ok_or_else(|| internal("engine is null"))?;
            let out = out.as_mut().ok_or_else(|| internal("out is null"))?;
            *out = engine.engine.stats().into();
            Ok(())
        })
    }
}
