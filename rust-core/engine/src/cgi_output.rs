//! Turns the guest's stdout into an HTTP response: parses the CGI header block, then
//! streams the body to the host as it is written.

use std::sync::Arc;

use crate::cgi_response::{Fed, HeadParser};
use crate::failure::{Failure, FailureKind};
use crate::host::Host;

/// WASI preview1 hands stdout to us in pieces of at most this size (wasmtime-wasi splits
/// each `fd_write`). A shorter piece is the end of one guest write.
const WASI_WRITE_PIECE: usize = 4096;

/// The response side of one request.
pub struct CgiOutput {
    host: Arc<dyn Host>,
    parser: HeadParser,
    /// Body pieces delivered so far.
    body_pieces: u64,
    /// The first failure; once set, every later write fails with it.
    failure: Option<Failure>,
}

impl CgiOutput {
    pub fn new(host: Arc<dyn Host>) -> Self {
        CgiOutput {
            host,
            parser: HeadParser::default(),
            body_pieces: 0,
            failure: None,
        }
    }

    /// True once the status and headers have gone to the host.
    pub fn head_sent(&self) -> bool {
        self.parser.is_done()
    }

    /// True when the guest wrote part of a header block and stopped.
    pub fn has_partial_head(&self) -> bool {
        self.parser.has_partial_head()
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Handles one piece of guest stdout.
    ///
    /// Flushing: the head and the first body write are not flushed, so a response written
    /// in one go (Go's net/http/cgi writes the head, then the whole body at exit) still gets
    /// a Content-Length. Every later guest write ends with a flush, so streaming guests
    /// stream; their first body write reaches the client with the second.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let result = self.deliver(data);
        if let Err(f) = &result {
            self.failure = Some(f.clone());
        }
        result
    }

    fn deliver(&mut self, data: &[u8]) -> Result<(), Failure> {
        let gone = |_| Failure::new(FailureKind::ClientGone, "client went away");
        if self.parser.is_done() {
            return self.body(data);
        }
        match self.parser.feed(data)? {
            Fed::NeedMore => Ok(()),
            Fed::Head(head, body) => {
                if !body.is_empty() {
                    self.body_pieces += 1;
                }
                self.host.send_head(&head, body, false).map_err(gone)
            }
        }
    }

    fn body(&mut self, data: &[u8]) -> Result<(), Failure> {
        // A piece shorter than WASI's maximum ends a guest write.
        let flush = self.body_pieces > 0 && data.len() < WASI_WRITE_PIECE;
        self.body_pieces += 1;
        self.host
            .write_body(data, flush)
            .map_err(|_| Failure::new(FailureKind::ClientGone, "client went away"))
    }
}
