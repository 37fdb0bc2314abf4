//! The process-wide count of long-lived instances.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts long-lived instances against the engine's `wcgi_instance_slots`: each holds a
/// pool slot for its whole life, so they are admitted here rather than found missing
/// later by a CGI request.
pub struct InstanceBudget {
    live: AtomicUsize,
    pub(super) limit: usize,
}

impl InstanceBudget {
    pub fn new(limit: u32) -> Self {
        InstanceBudget {
            live: AtomicUsize::new(0),
            limit: limit as usize,
        }
    }

    /// Takes a place for a new instance; false when all are taken.
    pub(super) fn take(&self) -> bool {
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub(super) fn give_back(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
