//! One deadline per request, wall clock, kept whatever the guest is doing.
//!
//! Epoch interruption stops a guest running wasm, but not one waiting in a host call. So:
//! - `poll_oneoff` (sleep, waiting for input) is wrapped (`guest::poll`): it returns a trap
//!   when the deadline passes or the client goes away, checked every [`EPOCH_TICK`].
//! - Body reads and response writes block in the server: the host is told the deadline
//!   ([`Host::set_deadline`]) and bounds its own I/O by it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::failure::{Failure, FailureKind};
use crate::host::Host;

/// How often the epoch advances; a timeout fires within one tick of its deadline, and a
/// vanished client is noticed within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The deadline and client of the request a guest is serving.
#[derive(Clone)]
pub struct RequestWatch {
    pub deadline: Instant,
    pub host: Arc<dyn Host>,
}

impl RequestWatch {
    /// Starts the clock: `timeout` from now, told to the host as well.
    pub fn start(timeout: Duration, host: Arc<dyn Host>) -> Self {
        host.set_deadline(timeout);
        RequestWatch {
            deadline: Instant::now() + timeout,
            host,
        }
    }

    /// True once the deadline has passed or the client has gone.
    pub fn over(&self) -> bool {
        self.past_deadline() || self.host.cancelled()
    }

    /// True once the deadline has passed. Checked before `cancelled` when telling why a
    /// request ended: the server's own deadline also ends the request's context.
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Why the request ended once the watch is over: the deadline, or else the client left.
    pub fn ending(&self) -> Failure {
        if self.past_deadline() {
            Failure::new(FailureKind::Timeout, "guest ran past its time limit")
        } else {
            Failure::new(FailureKind::ClientGone, "client went away")
        }
    }

    /// Waits until [`RequestWatch::over`] holds.
    pub async fn until_over(&self) {
        while !self.over() {
            let left = self.deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(EPOCH_TICK)).await;
        }
    }
}

/// Makes `store` stop its guest (a [`Trap::Interrupt`]) within one epoch tick of `watch`
/// being over.
pub fn stop_when_over<T: 'static>(store: &mut wasmtime::Store<T>, watch: RequestWatch) {
    stop_when_over_and(store, watch, |_| {});
}

/// As [`stop_when_over`], and runs `tick` on the store's data at every epoch tick its guest
/// runs through.
pub fn stop_when_over_and<T: 'static>(
    store: &mut wasmtime::Store<T>,
    watch: RequestWatch,
    tick: fn(&mut T),
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut store| {
        if watch.over() {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        tick(store.data_mut());
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
}
