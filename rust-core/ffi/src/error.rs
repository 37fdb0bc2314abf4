//! Result codes and the owned error object.

use std::ffi::c_char;

use wagi_core::{Failure, FailureKind};

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

/// Why a request failed (`wagi_error_failure`); each maps to one HTTP status.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wagi_failure {
    /// The module file does not exist (404).
    WAGI_FAILURE_NOT_FOUND = 1,
    /// Not valid wasm, fails to compile or link (500).
    WAGI_FAILURE_BAD_MODULE = 2,
    /// The guest trapped (500).
    WAGI_FAILURE_TRAP = 3,
    /// The guest exited with a non-zero code (500).
    WAGI_FAILURE_EXIT = 4,
    /// The guest hit its memory cap (500).
    WAGI_FAILURE_MEMORY_LIMIT = 5,
    /// The guest's response is not valid (502).
    WAGI_FAILURE_MALFORMED_RESPONSE = 6,
    /// The long-lived instance serving the request ended (502).
    WAGI_FAILURE_INSTANCE_GONE = 7,
    /// The request ran past its deadline (504).
    WAGI_FAILURE_TIMEOUT = 8,
    /// The client went away; nothing can be sent.
    WAGI_FAILURE_CLIENT_GONE = 9,
    /// No instance slot was free (503).
    WAGI_FAILURE_BUSY = 10,
    /// A request the server could not describe, or a bug (500).
    WAGI_FAILURE_INTERNAL = 11,
}

impl From<FailureKind> for wagi_failure {
    fn from(kind: FailureKind) -> Self {
        use wagi_failure::*;
        match kind {
            FailureKind::NotFound => WAGI_FAILURE_NOT_FOUND,
            FailureKind::BadModule => WAGI_FAILURE_BAD_MODULE,
            FailureKind::Trap => WAGI_FAILURE_TRAP,
            FailureKind::Exit => WAGI_FAILURE_EXIT,
            FailureKind::MemoryLimit => WAGI_FAILURE_MEMORY_LIMIT,
            FailureKind::MalformedResponse => WAGI_FAILURE_MALFORMED_RESPONSE,
            FailureKind::InstanceGone => WAGI_FAILURE_INSTANCE_GONE,
            FailureKind::Timeout => WAGI_FAILURE_TIMEOUT,
            FailureKind::ClientGone => WAGI_FAILURE_CLIENT_GONE,
            FailureKind::Busy => WAGI_FAILURE_BUSY,
            FailureKind::Internal => WAGI_FAILURE_INTERNAL,
        }
    }
}

/// An error: HTTP status, its failure, a stable kind name and a message. Free with
/// `wagi_error_free`.
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

/// What failed, for the server to compare (never compare `wagi_error_kind` strings).
///
/// # Safety
/// `err` is a live error from this library.
#[no_mangle]
pub unsafe extern "C" fn wagi_error_failure(err: *const wagi_error) -> wagi_failure {
    // SAFETY: as above.
    let kind = unsafe { err.as_ref() }.map_or(FailureKind::Internal, |e| e.failure.kind);
    kind.into()
}

/// The error's kind as a static NUL-terminated string for logs, e.g. `"timeout"`.
///
/// # Safety
/// `err` is a live error from this library.
#[no_mangle]
pub unsafe extern "C" fn wagi_error_kind(err: *const wagi_error) -> *const c_char {
    // SAFETY: as above.
    let kind = unsafe { err.as_ref() }.map_or(FailureKind::Internal, |e| e.failure.kind);
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
