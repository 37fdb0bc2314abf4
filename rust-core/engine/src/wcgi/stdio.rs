//! A long-lived guest's stdio as WASI streams: stdin from an [`Inbox`] that never blocks
//! the guest, stdout to a channel. The WASI functions that would still block on stdin are
//! replaced for these guests in `guest::stdin`. `poll_oneoff` stays wasmtime-wasi's: it
//! waits on the stdin stream's readiness, which is the inbox's.
//!
//! Stdout is held back and sent as one chunk when the guest next waits (`poll_oneoff`),
//! at the next epoch tick if it keeps running, when it ends, or once [`HOLD_MAX`] bytes are
//! held. A Go guest writes each yamux frame in two writes and several frames per request;
//! sent one by one, each could wake the session's driver thread anew.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::locks::lock;
use crate::pipe::{Inbox, StdoutBacklog, Take, STDOUT_CAP};
use crate::stdio::MAX_IO;

/// The guest's stdin as a WASI stream: reads never wait; readiness is the inbox's.
#[derive(Clone)]
pub struct InboxStdin(pub Arc<Inbox>);

impl IsTerminal for InboxStdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for InboxStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for InboxStdin {
    async fn ready(&mut self) {
        self.0.wait_readable().await;
    }
}

impl InputStream for InboxStdin {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut buf = vec![0u8; size.min(MAX_IO)];
        match self.0.take(&mut buf) {
            Take::Bytes(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Take::Empty => Ok(Bytes::new()),
            Take::Closed => Err(StreamError::Closed),
        }
    }
}

impl AsyncRead for InboxStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Only wasmtime-wasi's p2/p3 paths use this; p1 reads go through `fd_read` below.
        if let Take::Bytes(n) = self.0.take(buf.initialize_unfilled()) {
            buf.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

/// The most stdout held back before it is sent without waiting for the guest to wait.
pub const HOLD_MAX: usize = 64 << 10;

/// The guest's stdout as a WASI stream feeding the host's yamux client. Bytes the host has
/// not taken yet, held ones included, are counted; a guest that writes past [`STDOUT_CAP`]
/// of them (say, a ping flood while the host waits for it to read its stdin) is stopped.
#[derive(Clone)]
pub struct ChannelStdout {
    chunks: UnboundedSender<Bytes>,
    backlog: Arc<StdoutBacklog>,
    /// Written and not sent yet.
    held: Arc<Mutex<BytesMut>>,
}

impl ChannelStdout {
    pub fn new(chunks: UnboundedSender<Bytes>, backlog: Arc<StdoutBacklog>) -> Self {
        ChannelStdout {
            chunks,
            backlog,
            held: Arc::default(),
        }
    }

    fn hold(&self, bytes: &[u8]) -> Result<(), StreamError> {
        if !self.backlog.add(bytes.len()) {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "the WCGI guest wrote more than {STDOUT_CAP} bytes to stdout that its host had not read"
            )));
        }
        let full = {
            let mut held = lock(&self.held);
            held.extend_from_slice(bytes);
            held.len() >= HOLD_MAX
        };
        if full {
            self.send_held()?;
        }
        Ok(())
    }

    /// Sends what is held, as one chunk.
    pub fn send_held(&self) -> Result<(), StreamError> {
        let chunk = lock(&self.held).split().freeze();
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len();
        self.chunks.send(chunk).map_err(|_| {
            self.backlog.taken(n);
            StreamError::Closed
        })
    }
}

impl IsTerminal for ChannelStdout {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ChannelStdout {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait]
impl Pollable for ChannelStdout {
    async fn ready(&mut self) {}
}

impl OutputStream for ChannelStdout {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.hold(&bytes)
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_IO)
    }
}

impl AsyncWrite for ChannelStdout {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sent = self.hold(buf).and_then(|()| self.send_held());
        Poll::Ready(
            sent.map(|()| buf.len())
                .map_err(|_| io::ErrorKind::BrokenPipe.into()),
        )
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
