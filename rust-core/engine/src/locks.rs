//! The one way this crate takes a lock.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning: a panic while holding a lock is caught at the FFI
/// boundary, and the state it guards (caches, buffers, counters) stays usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
