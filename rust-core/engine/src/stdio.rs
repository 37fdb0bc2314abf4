//! The guest's stdin, stdout and stderr as WASI streams over the host.
//!
//! All three block the calling thread, like wasmtime-wasi's own `InputFile`/`OutputFile`:
//! a CGI guest runs on a thread of its own (the caller of `wagi_handle`), so blocking on
//! the request body or the client is exactly what it should do.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::cgi_output::CgiOutput;
use crate::host::{Host, LogLevel};
use crate::locks::lock;
use crate::request::StderrMode;

/// Largest read or write a guest is offered at once, per-request or long-lived.
pub const MAX_IO: usize = 64 << 10;
/// How much stderr one request may log; the rest is dropped with a note.
pub const STDERR_CAP: usize = 64 << 10;

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

/// Where guest stderr lines go: the request's log for CGI, the engine's for WCGI.
pub type StderrSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Stderr: logged line by line, up to a cap per request (CGI) or per second (WCGI).
#[derive(Clone)]
pub struct GuestStderr {
    state: Arc<Mutex<StderrState>>,
}

struct StderrState {
    sink: StderrSink,
    line: Vec<u8>,
    logged: usize,
    cap: usize,
    /// `Some`: the cap applies per window of this length (long-lived instances).
    window: Option<Duration>,
    window_start: Instant,
    truncated: bool,
}

impl GuestStderr {
    /// Stderr of one request, capped at [`STDERR_CAP`].
    pub fn new(host: Arc<dyn Host>, mode: StderrMode) -> Self {
        Self::with_cap(Arc::new(move |l, m| host.log(l, m)), STDERR_CAP, None, mode)
    }

    /// Stderr of a long-lived instance: [`STDERR_CAP`] per second, so one noisy request
    /// cannot flood the log and a quiet instance keeps logging for its whole life.
    pub fn per_second(sink: StderrSink, mode: StderrMode) -> Self {
        Self::with_cap(sink, STDERR_CAP, Some(Duration::from_secs(1)), mode)
    }

    fn with_cap(sink: StderrSink, cap: usize, window: Option<Duration>, mode: StderrMode) -> Self {
        let sink = match mode {
            StderrMode::Log => sink,
            StderrMode::Discard => Arc::new(|_: LogLevel, _: &str| {}) as StderrSink,
        };
        GuestStderr {
            state: Arc::new(Mutex::new(StderrState {
                sink,
                line: Vec::new(),
                logged: 0,
                cap,
                window,
                window_start: Instant::now(),
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
        if let Some(window) = self.window {
            if self.window_start.elapsed() >= window {
                self.window_start = Instant::now();
                self.logged = 0;
                self.truncated = false;
            }
        }
        if self.truncated {
            return;
        }
        if self.logged.saturating_add(line.len()) > self.cap {
            self.truncated = true;
            let per = if self.window.is_some() {
                " per second"
            } else {
                ""
            };
            let msg = format!(
                "guest stderr over {} bytes{per}; the rest is dropped",
                self.cap
            );
            (self.sink)(LogLevel::Warn, &msg);
            return;
        }
        self.logged += line.len();
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
        (self.sink)(LogLevel::GuestStderr, &text);
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
