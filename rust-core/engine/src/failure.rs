//! Why a request failed, and the HTTP status that says so.
//!
//! The status is decided here, once, so the Go side never re-derives it from error text.

use std::ffi::CStr;
use std::fmt;

/// The class of a failed request. Each maps to one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The module file does not exist (404).
    NotFound,
    /// The file is not valid wasm, fails to compile, or imports what we do not provide (500).
    BadModule,
    /// The guest trapped (500).
    Trap,
    /// The guest exited with a non-zero code (500).
    Exit,
    /// The guest grew its memory past the configured cap (500).
    MemoryLimit,
    /// The guest's stdout is not a valid CGI response (502).
    MalformedResponse,
    /// The long-lived (WCGI) instance serving the request ended or broke its session (502).
    InstanceGone,
    /// The guest ran past its time limit (504).
    Timeout,
    /// The client went away; nothing can be sent (499, for logs only).
    ClientGone,
    /// No instance slot was free (503).
    Busy,
    /// A request the host could not describe or set up (500).
    Internal,
}

impl FailureKind {
    /// The HTTP status a client sees for this failure, while headers are still unsent.
    pub fn status(self) -> u16 {
        match self {
            FailureKind::NotFound => 404,
            FailureKind::BadModule
            | FailureKind::Trap
            | FailureKind::Exit
            | FailureKind::MemoryLimit
            | FailureKind::Internal => 500,
            FailureKind::MalformedResponse | FailureKind::InstanceGone => 502,
            FailureKind::Busy => 503,
            FailureKind::Timeout => 504,
            FailureKind::ClientGone => 499,
        }
    }

    /// A short stable name, used in log fields.
    pub fn name(self) -> &'static str {
        // The C names are plain ASCII, so this cannot fail.
        self.c_name().to_str().unwrap_or("internal")
    }

    /// [`FailureKind::name`] as a NUL-terminated string, for the C ABI.
    pub fn c_name(self) -> &'static CStr {
        match self {
            FailureKind::NotFound => c"module_not_found",
            FailureKind::BadModule => c"bad_module",
            FailureKind::Trap => c"trap",
            FailureKind::Exit => c"exit",
            FailureKind::MemoryLimit => c"memory_limit",
            FailureKind::MalformedResponse => c"malformed_response",
            FailureKind::InstanceGone => c"instance_gone",
            FailureKind::Timeout => c"timeout",
            FailureKind::ClientGone => c"client_gone",
            FailureKind::Busy => c"busy",
            FailureKind::Internal => c"internal",
        }
    }
}

/// A failed request: its kind and a message for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for Failure {}
