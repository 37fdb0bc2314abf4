//! Per-request memory cap, remembering whether the guest hit it so the failure can say so.

use wasmtime::ResourceLimiter;

pub struct GuestLimiter {
    memory_limit: usize,
    /// Set when a memory growth was refused because of the cap.
    pub memory_denied: bool,
}

impl GuestLimiter {
    pub fn new(memory_limit: u64) -> Self {
        GuestLimiter {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_denied: false,
        }
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
