//! Result codes and the owned error object.

use std::ffi::c_char;

use wagi_core::Failure;

/// What a call did.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wagi_result {
    /// Success.
    WAGI_OK = 0,
    /// Failure described by the error object written to `err_out`.
    WAGI_ERROR = 1,
    /// A bug in wagi: a panic was caught. The error object says where.
    WAGI_PANIC = 2,
}

/// An error: HTTP status, a stable kind name and a message. Free with `wagi_error_free`.
pub struct wagi_error {
    failure: Failure,
}

impl wagi_error {
    pub(crate) fn boxed(failure: Failure) -> *mut wagi_error {
        Box::into_raw(Box::new(wagi_error { failure }))
    }
}

/// The HTTP status for this error (404, 500, 502, 503, 504; 499 when the client left).
///
/// # Safety
/// `err` is a live error from this library.
#[no_mangle]
pub unsafe extern "C" fn wagi_error_status(err: *const wagi_error) -> u16 {
    // SAFETY: the caller passes a live error; reading it cannot panic.
    unsafe { err.as_ref() }.map_or(500, |e| e.failure.status())
}

/// The error's kind as a static NUL-terminated string, e.g. `"timeout"`.
///
/// # Safety
/// `err` is a live error from this library.
#[no_mangle]
pub unsafe extern "C" fn wagi_error_kind(err: *const wagi_error) -> *const c_char {
    // SAFETY: as above.
    let kind = unsafe { err.as_ref() }.map_or(wagi_core::FailureKind::Internal, |e| e.failure.kind);
    kind.c_name().as_ptr()
}

/// The error's message (UTF-8, not NUL-terminated); its length goes to `*len`. Valid until
/// the error is freed.
///
/// # Safety
/// `err` is a live error from this library; `len` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn wagi_error_message(err: *const wagi_error, len: *mut usize) -> *const u8 {
    // SAFETY: as above.
    let message = unsafe { err.as_ref() }.map_or("", |e| e.failure.message.as_str());
    if !len.is_null() {
        // SAFETY: the caller guarantees `len` is writable.
        unsafe { *len = message.len() };
    }
    message.as_ptr()
}

/// Frees an error. Null is allowed.
///
/// # Safety
/// `err` is null or an error from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn wagi_error_free(err: *mut wagi_error) {
    if !err.is_null() {
        // SAFETY: ownership comes back from `Box::into_raw` in `wagi_error::boxed`.
        drop(unsafe { Box::from_raw(err) });
    }
}
