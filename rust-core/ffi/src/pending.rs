//! Requests that wait for a long-lived (WCGI) instance's answer without blocking the
//! server's thread: `wagi_handle` given a `wagi_waker` hands back a `wagi_pending`, and the
//! server polls it each time the waker's descriptor turns readable.

use std::os::fd::IntoRawFd;
use std::task::{Poll, Waker};

use wagi_core::{Failure, FailureKind, Waiting, WakeFd};

use crate::api::internal;
use crate::error::{wagi_error, wagi_result};
use crate::guard::{free_boxed, guard};

/// An eventfd a server waits on (its own descriptor, from `wagi_waker_new`) for the
/// requests it hands to `wagi_handle` with this waker. One waker serves one request at a
/// time; it can be reused for the next once that one is over. A wake left over from an
/// earlier request only costs a poll that finds nothing to do.
pub struct wagi_waker {
    wake: WakeFd,
}

/// A request waiting for a long-lived instance's answer; see `wagi_pending_poll`.
pub struct wagi_pending {
    waiting: Waiting,
    waker: Waker,
}

impl wagi_pending {
    /// Polls once: `Some` when the request is over.
    pub(crate) fn poll(&mut self) -> Option<Result<(), Failure>> {
        match self.waiting.poll(&self.waker) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        }
    }

    /// Polls a request that has just started; returns it when it still waits.
    pub(crate) fn start(
        waiting: Waiting,
        waker: &wagi_waker,
    ) -> Result<Option<Box<wagi_pending>>, Failure> {
        let mut pending = Box::new(wagi_pending {
            waiting,
            waker: waker.wake.waker(),
        });
        match pending.poll() {
            Some(result) => result.map(|()| None),
            None => Ok(Some(pending)),
        }
    }
}

/// Makes a waker. On success `*waker_out` owns it (free it with `wagi_waker_free`) and
/// `*fd_out` is the server's own non-blocking descriptor of its eventfd: readable (8 bytes,
/// a counter; reading resets it) whenever a request using the waker can go on. The server
/// closes that descriptor itself, before or after freeing the waker.
///
/// # Safety
/// `fd_out`, `waker_out` and `err_out` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_waker_new(
    fd_out: *mut i32,
    waker_out: *mut *mut wagi_waker,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        guard(err_out, || {
            let fd_out = fd_out.as_mut().ok_or_else(|| internal("fd_out is null"))?;
            let waker_out = waker_out
                .as_mut()
                .ok_or_else(|| internal("waker_out is null"))?;
            let (wake, theirs) = WakeFd::new().map_err(|e| {
                Failure::new(
                    FailureKind::Internal,
                    format!("cannot make an eventfd: {e}"),
                )
            })?;
            *fd_out = theirs.into_raw_fd();
            *waker_out = Box::into_raw(Box::new(wagi_waker { wake }));
            Ok(())
        })
    }
}

/// Frees a waker. Requests started with it may still be pending: they keep the eventfd.
/// Null is allowed.
///
/// # Safety
/// `waker` is null or from `wagi_waker_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn wagi_waker_free(waker: *mut wagi_waker) {
    // SAFETY: the caller guarantees ownership.
    unsafe { free_boxed(waker) }
}

/// Runs a pending request until it waits again or is over, calling its host's callbacks
/// on this thread meanwhile (as `wagi_handle` does). Call it once the waker's descriptor
/// is readable, after reading it.
///
/// `*done_out` is set to true when the request is over; `pending` is then freed, and on
/// `WAGI_ERROR`/`WAGI_PANIC` (which also end it) `*err_out` owns an error, as for
/// `wagi_handle`. Otherwise it waits again.
///
/// # Safety
/// `pending` is from `wagi_handle`, still pending; `done_out` and `err_out` are valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_pending_poll(
    pending: *mut wagi_pending,
    done_out: *mut bool,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        let Some(done_out) = done_out.as_mut() else {
            return guard(err_out, || Err(internal("done_out is null")));
        };
        // Freed on every path but a plain "still waiting", a panic included.
        *done_out = true;
        let result = guard(err_out, || {
            let waiting = pending
                .as_mut()
                .ok_or_else(|| internal("pending is null"))?;
            match waiting.poll() {
                Some(result) => result,
                None => {
                    *done_out = false;
                    Ok(())
                }
            }
        });
        if *done_out {
            free_boxed(pending);
        }
        result
    }
}

/// Abandons a pending request: the guest's stream is reset, its instance serves its other
/// requests on. Null is allowed.
///
/// # Safety
/// `pending` is null or from `wagi_handle`, not over and not freed before.
#[no_mangle]
pub unsafe extern "C" fn wagi_pending_free(pending: *mut wagi_pending) {
    // SAFETY: the caller guarantees ownership.
    unsafe { free_boxed(pending) }
}
