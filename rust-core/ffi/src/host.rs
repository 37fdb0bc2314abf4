//! The callbacks the server registers, and the [`Host`] built on them.

use wagi_core::{ClientGone, Host, LogLevel, ResponseHead};

/// Callbacks into the server, called on the thread running `wagi_handle` (or
/// `wagi_pending_poll`, for a request left pending). `ctx` is the value passed to
/// `wagi_handle`: it names the request on the server's side.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wagi_host {
    /// Reads up to `len` request body bytes into `buf`. Returns the count, 0 at the end of
    /// the body, or -1 on error.
    pub read_body: Option<unsafe extern "C" fn(ctx: u64, buf: *mut u8, len: usize) -> i64>,
    /// Sends the response status and header fields, encoded as `name NUL value NUL` pairs,
    /// then `body_len` bytes of body (possibly none) that came with them. Returns false if
    /// the client is gone.
    pub send_head: Option<
        unsafe extern "C" fn(
            ctx: u64,
            status: u16,
            fields: *const u8,
            fields_len: usize,
            body: *const u8,
            body_len: usize,
            flush: bool,
        ) -> bool,
    >,
    /// Sends response body bytes. Returns false if the client is gone.
    pub write_body:
        Option<unsafe extern "C" fn(ctx: u64, data: *const u8, len: usize, flush: bool) -> bool>,
    /// Logs a line (UTF-8) about this request. Levels: 0 debug, 1 info, 2 warn, 3 error for
    /// the engine's notes; 4 for a line the guest wrote to stderr.
    pub log: Option<unsafe extern "C" fn(ctx: u64, level: u8, msg: *const u8, len: usize)>,
    /// Returns true once the client has gone away.
    pub cancelled: Option<unsafe extern "C" fn(ctx: u64) -> bool>,
    /// The request was handed to a long-lived (WCGI) instance: the server may give its
    /// concurrency slot to another request.
    pub release_slot: Option<unsafe extern "C" fn(ctx: u64)>,
    /// The request must be over `ms` milliseconds from now: the server makes `read_body`
    /// and `send_head`/`write_body` fail rather than block past that (e.g. with
    /// connection read and write deadlines), and lifts the limit when `wagi_handle` returns.
    pub set_deadline: Option<unsafe extern "C" fn(ctx: u64, ms: u64)>,
}

/// A [`Host`] that forwards to the server's callbacks.
pub(crate) struct CallbackHost {
    read_body: unsafe extern "C" fn(u64, *mut u8, usize) -> i64,
    send_head: unsafe extern "C" fn(u64, u16, *const u8, usize, *const u8, usize, bool) -> bool,
    write_body: unsafe extern "C" fn(u64, *const u8, usize, bool) -> bool,
    log: unsafe extern "C" fn(u64, u8, *const u8, usize),
    cancelled: unsafe extern "C" fn(u64) -> bool,
    release_slot: unsafe extern "C" fn(u64),
    set_deadline: unsafe extern "C" fn(u64, u64),
    ctx: u64,
}

impl CallbackHost {
    /// `None` if a callback is missing.
    pub(crate) fn new(cb: &wagi_host, ctx: u64) -> Option<Self> {
        Some(CallbackHost {
            read_body: cb.read_body?,
            send_head: cb.send_head?,
            write_body: cb.write_body?,
            log: cb.log?,
            cancelled: cb.cancelled?,
            release_slot: cb.release_slot?,
            set_deadline: cb.set_deadline?,
            ctx,
        })
    }
}

/// `name NUL value NUL ...`: header names are tokens and values were checked for NUL by the
/// CGI parser, so NUL cannot occur inside either.
fn encode_fields(head: &ResponseHead) -> Vec<u8> {
    let size = head.fields.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(size);
    for (name, value) in &head.fields {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

// SAFETY (for every call below): the server registered these callbacks until the request is
// over, and calls them only from inside `wagi_handle` or `wagi_pending_poll`, one of which
// is running on this thread; pointers passed are valid for `len`.
impl Host for CallbackHost {
    fn read_body(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = unsafe { (self.read_body)(self.ctx, buf.as_mut_ptr(), buf.len()) };
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= buf.len())
            .ok_or_else(|| std::io::Error::other("reading the request body failed"))
    }

    fn send_head(&self, head: &ResponseHead, body: &[u8], flush: bool) -> Result<(), ClientGone> {
        let fields = encode_fields(head);
        let ok = unsafe {
            (self.send_head)(
                self.ctx,
                head.status,
                fields.as_ptr(),
                fields.len(),
                body.as_ptr(),
                body.len(),
                flush,
            )
        };
        ok.then_some(()).ok_or(ClientGone)
    }

    fn write_body(&self, data: &[u8], flush: bool) -> Result<(), ClientGone> {
        let ok = unsafe { (self.write_body)(self.ctx, data.as_ptr(), data.len(), flush) };
        ok.then_some(()).ok_or(ClientGone)
    }

    fn log(&self, level: LogLevel, message: &str) {
        unsafe { (self.log)(self.ctx, level as u8, message.as_ptr(), message.len()) }
    }

    fn cancelled(&self) -> bool {
        unsafe { (self.cancelled)(self.ctx) }
    }

    fn release_slot(&self) {
        unsafe { (self.release_slot)(self.ctx) }
    }

    fn set_deadline(&self, remaining: std::time::Duration) {
        let ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
        unsafe { (self.set_deadline)(self.ctx, ms) }
    }
}
