//! The server side of a request, as the engine sees it: where the body comes from, where
//! the response goes, where logs go. The FFI crate implements it with the callbacks Caddy
//! registers; tests implement it in memory. [`EventLog`] is where the engine logs what
//! happens outside any request, with the module and site it concerns as fields.

use std::path::Path;
use std::sync::Arc;

use crate::response_fields::ResponseHead;

/// Severity of a log line sent to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    /// A line the guest wrote to stderr (logged at info level).
    GuestStderr = 4,
}

/// Where the engine logs a line that concerns no module (a cache directory pruned).
pub type EngineLog = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// What an engine-level log line is about, logged as structured fields beside it.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogFields<'a> {
    /// The module's path.
    pub module: Option<&'a Path>,
    /// The site root of the WCGI instance concerned.
    pub site: Option<&'a str>,
}

impl<'a> LogFields<'a> {
    /// The fields of a line about one module.
    pub fn module(path: &'a Path) -> Self {
        LogFields {
            module: Some(path),
            site: None,
        }
    }
}

/// Where the engine logs what happens outside any request (idle modules dropped, WCGI
/// instances started and ended, their stderr), with the fields the line is about.
pub type EventLog = Arc<dyn Fn(LogLevel, &str, LogFields<'_>) + Send + Sync>;

/// The plain [`EngineLog`] of an [`EventLog`]: its lines carry no fields.
pub fn plain_log(log: &EventLog) -> EngineLog {
    let log = log.clone();
    Arc::new(move |level: LogLevel, message: &str| log(level, message, LogFields::default()))
}

/// The client cannot receive more of the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientGone;

/// One request's connection to the server. Calls come from the thread running the guest.
pub trait Host: Send + Sync {
    /// Reads request body bytes into `buf`; `Ok(0)` is the end of the body.
    fn read_body(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Sends the status and header fields, and the first body bytes when the guest wrote
    /// them together (one crossing instead of two); `flush` asks for all of it to reach the
    /// client now.
    fn send_head(&self, head: &ResponseHead, body: &[u8], flush: bool) -> Result<(), ClientGone>;
    /// Sends body bytes; `flush` asks for everything so far to reach the client now.
    fn write_body(&self, data: &[u8], flush: bool) -> Result<(), ClientGone>;
    /// Logs a line about this request (the host adds the module's path).
    fn log(&self, level: LogLevel, message: &str);
    /// True once the client has gone away and the guest should stop.
    fn cancelled(&self) -> bool;
    /// The request runs on a long-lived instance and needs no guest slot of its own: the
    /// host may let another request take it.
    fn release_slot(&self) {}
    /// The request must be over `remaining` from now: the host bounds its blocking body
    /// reads and response writes by that, so a slow client cannot hold the guest past it.
    fn set_deadline(&self, _remaining: std::time::Duration) {}
}

/// A host that keeps what it is sent, for unit tests.
#[cfg(test)]
pub mod capture {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::{ClientGone, Host, LogLevel};
    use crate::response_fields::ResponseHead;

    #[derive(Default)]
    pub struct Capture {
        pub head: Mutex<Option<ResponseHead>>,
        pub body: Mutex<Vec<u8>>,
        /// Flushes asked for.
        pub flushes: AtomicUsize,
        /// Set: every send fails, as when the client has gone.
        pub gone: AtomicBool,
    }

    impl Capture {
        fn sent(&self, data: &[u8], flush: bool) -> Result<(), ClientGone> {
            if self.gone.load(Ordering::SeqCst) {
                return Err(ClientGone);
            }
            self.body.lock().unwrap().extend_from_slice(data);
            self.flushes.fetch_add(usize::from(flush), Ordering::SeqCst);
            Ok(())
        }
    }

    impl Host for Capture {
        fn read_body(&self, _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn send_head(
            &self,
            head: &ResponseHead,
            body: &[u8],
            flush: bool,
        ) -> Result<(), ClientGone> {
            self.sent(body, flush)?;
            *self.head.lock().unwrap() = Some(head.clone());
            Ok(())
        }
        fn write_body(&self, data: &[u8], flush: bool) -> Result<(), ClientGone> {
            self.sent(data, flush)
        }
        fn log(&self, _: LogLevel, _: &str) {}
        fn cancelled(&self) -> bool {
            false
        }
    }
}
