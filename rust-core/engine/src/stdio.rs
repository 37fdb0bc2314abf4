//! The guest's stdin, stdout and stderr as WASI streams over the host.
//!
//! All three block the calling thread, like wasmtime-wasi's own `InputFile`/`OutputFile`:
//! a CGI guest runs on a thread of its own (the caller of `wagi_handle`), so blocking on
//! the request body or the client is exactly what it should do.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::cgi_output::CgiOutput;
use crate::host::{Host, LogLevel};

/// Largest read or write the guest is offered at once.
const MAX_IO: usize = 64 << 10;
/// How much stderr one request may log; the rest is dropped with a note.
pub const STDERR_CAP: usize = 64 << 10;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is caught at the FFI boundary; the state is still
    // usable for reporting, so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stdin: the request body, read from the host as the guest asks for it.
#[derive(Clone)]
pub struct GuestStdin {
    host: Arc<dyn Host>,
}

impl GuestStdin {
    pub fn new(host: Arc<dyn Host>) -> Self {
        GuestStdin { host }
    }
}

impl IsTerminal for GuestStdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for GuestStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for GuestStdin {
    async fn ready(&mut self) {}
}

impl InputStream for GuestStdin {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut buf = vec![0u8; size.min(MAX_IO)];
        match self.host.read_body(&mut buf) {
            Ok(0) => Err(StreamError::Closed),
            Ok(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Err(e) => Err(StreamError::LastOperationFailed(wasmtime::Error::new(e))),
        }
    }
}

impl AsyncRead for GuestStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.host.read_body(buf.initialize_unfilled());
        Poll::Ready(n.map(|n| buf.advance(n)))
    }
}

/// Stdout: the CGI response.
#[derive(Clone)]
pub struct GuestStdout {
    output: Arc<Mutex<CgiOutput>>,
}

impl GuestStdout {
    pub fn new(output: Arc<Mutex<CgiOutput>>) -> Self {
        GuestStdout { output }
    }
}

impl IsTerminal for GuestStdout {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStdout {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for GuestStdout {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStdout {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        // A bad header block or a vanished client stops the guest: nothing it writes
        // afterwards can reach anyone. The failure stays in `CgiOutput` for the caller.
        lock(&self.output)
            .write(&bytes)
            .map_err(|f| StreamError::Trap(wasmtime::Error::new(f)))
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_IO)
    }
}

impl AsyncWrite for GuestStdout {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = lock(&self.output).write(buf);
        Poll::Ready(result.map(|()| buf.len()).map_err(io::Error::other))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Stderr: logged by the host line by line, up to [`STDERR_CAP`] bytes per request.
#[derive(Clone)]
pub struct GuestStderr {
    state: Arc<Mutex<StderrState>>,
}

struct StderrState {
    host: Arc<dyn Host>,
    line: Vec<u8>,
    logged: usize,
    cap: usize,
    truncated: bool,
}

impl GuestStderr {
    /// Stderr of one request, capped at [`STDERR_CAP`].
    pub fn new(host: Arc<dyn Host>) -> Self {
        Self::with_cap(host, STDERR_CAP)
    }

    /// Stderr of a long-lived instance: every line is logged.
    pub fn unlimited(host: Arc<dyn Host>) -> Self {
        Self::with_cap(host, usize::MAX)
    }

    fn with_cap(host: Arc<dyn Host>, cap: usize) -> Self {
        GuestStderr {
            state: Arc::new(Mutex::new(StderrState {
                host,
                line: Vec::new(),
                logged: 0,
                cap,
                truncated: false,
            })),
        }
    }

    /// Logs a last line that had no newline.
    pub fn finish(&self) {
        let mut s = lock(&self.state);
        if !s.line.is_empty() {
            let line = std::mem::take(&mut s.line);
            s.emit(&line);
        }
    }

    fn write(&self, data: &[u8]) {
        let mut s = lock(&self.state);
        for piece in data.split_inclusive(|&b| b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(end) => {
                    let mut line = std::mem::take(&mut s.line);
                    line.extend_from_slice(end);
                    s.emit(&line);
                }
                None => {
                    s.line.extend_from_slice(piece);
                    if s.line.len() > STDERR_CAP {
                        let line = std::mem::take(&mut s.line);
                        s.emit(&line);
                    }
                }
            }
        }
    }
}

impl StderrState {
    fn emit(&mut self, line: &[u8]) {
        if self.truncated {
            return;
        }
        if self.logged.saturating_add(line.len()) > self.cap {
            self.truncated = true;
            self.host.log(
                LogLevel::Warn,
                &format!("guest stderr over {} bytes; the rest is dropped", self.cap),
            );
            return;
        }
        self.logged += line.len();
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
        self.host.log(LogLevel::GuestStderr, &text);
    }
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for GuestStderr {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStderr {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestStderr::write(self, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_IO)
    }
}

impl AsyncWrite for GuestStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        GuestStderr::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
