//! Per-request memory cap, remembering whether the guest hit it so the failure can say so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime::ResourceLimiter;

pub struct GuestLimiter {
    memory_limit: usize,
    /// Set when a memory growth was refused because of the cap.
    pub memory_denied: bool,
    /// Where a long-lived instance shows its linear memory size, for metrics.
    memory_gauge: Option<Arc<AtomicUsize>>,
}

impl GuestLimiter {
    pub fn new(memory_limit: u64) -> Self {
        GuestLimiter {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_denied: false,
            memory_gauge: None,
        }
    }

    /// Also keeps `gauge` at the size of the guest's linear memory.
    pub fn with_gauge(mut self, gauge: Arc<AtomicUsize>) -> Self {
        self.memory_gauge = Some(gauge);
        self
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        if let Some(gauge) = &self.memory_gauge {
            gauge.store(desired, Ordering::Relaxed);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's `table_elements`.
        Ok(true)
    }
}
