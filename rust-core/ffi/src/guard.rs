//! The panic boundary: a panic must never unwind into C (it would abort Caddy).

use std::panic::{catch_unwind, AssertUnwindSafe};

use wagi_core::{Failure, FailureKind};

use crate::error::{wagi_error, wagi_result};

/// Runs `f`, turning its failure or panic into a result code and an owned error object.
///
/// # Safety
/// `err_out` is null or valid for writing one pointer.
pub(crate) unsafe fn guard(
    err_out: *mut *mut wagi_error,
    f: impl FnOnce() -> Result<(), Failure>,
) -> wagi_result {
    let (code, failure) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return wagi_result::WAGI_OK,
        Ok(Err(failure)) => (wagi_result::WAGI_ERROR, failure),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            (
                wagi_result::WAGI_PANIC,
                Failure::new(FailureKind::Internal, format!("panic in wagi: {what}")),
            )
        }
    };
    if !err_out.is_null() {
        // SAFETY: the caller guarantees `err_out` is writable.
        unsafe { *err_out = wagi_error::boxed(failure) };
    }
    code
}

/// Frees a value handed to C with `Box::into_raw`, behind the panic boundary (a `Drop`
/// that panics must not unwind into C). Null is allowed.
///
/// # Safety
/// `ptr` is null or from `Box::into_raw` of a `T`, not freed before.
pub(crate) unsafe fn free_boxed<T>(ptr: *mut T) {
    // SAFETY: the caller guarantees ownership of a live box, or null.
    unsafe {
        let _ = guard(std::ptr::null_mut(), || {
            if !ptr.is_null() {
                drop(Box::from_raw(ptr));
            }
            Ok(())
        });
    }
}
