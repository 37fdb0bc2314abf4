//! A long-lived guest's stdio: stdin from an [`Inbox`] that never blocks the guest, stdout
//! to a channel, and the two WASI functions wasmtime-wasi implements as blocking for stdin
//! replaced for fd 0: `fd_fdstat_get` reports NONBLOCK (so Go's runtime registers stdin
//! with its poller) and `fd_read` answers EAGAIN when the inbox is empty (so the reading
//! goroutine parks). `poll_oneoff` stays wasmtime-wasi's: it waits on the stdin stream's
//! readiness, which is the inbox's.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::UnboundedSender;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;

use super::pipe::{Inbox, StdoutBacklog, Take, STDOUT_CAP};
use crate::guest::{exported_memory, GuestState};

const WASI: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_AGAIN: i32 = 6;
const ERRNO_FAULT: i32 = 21;
const FDFLAGS_NONBLOCK: u16 = 1 << 2;

/// What a long-lived guest's store holds besides WASI.
pub struct WcgiGuest {
    pub inbox: Arc<Inbox>,
}

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
        let mut buf = vec![0u8; size.min(64 << 10)];
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

/// The guest's stdout as a WASI stream feeding the host's yamux client. Bytes the host has
/// not taken yet are counted; a guest that writes past [`STDOUT_CAP`] of them (say, a ping
/// flood while the host waits for it to read its stdin) is stopped.
#[derive(Clone)]
pub struct ChannelStdout {
    pub chunks: UnboundedSender<Bytes>,
    pub backlog: Arc<StdoutBacklog>,
}

impl ChannelStdout {
    fn send(&self, bytes: Bytes) -> Result<(), StreamError> {
        if !self.backlog.add(bytes.len()) {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "the WCGI guest wrote more than {STDOUT_CAP} bytes to stdout that its host had not read"
            )));
        }
        let n = bytes.len();
        self.chunks.send(bytes).map_err(|_| {
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
        self.send(bytes)
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl AsyncWrite for ChannelStdout {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sent = self.send(Bytes::copy_from_slice(buf));
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

/// Replaces `fd_read` and `fd_fdstat_get` in `linker` for fd 0 (see the module docs);
/// other fds go to wasmtime-wasi's own implementations.
pub fn shadow_stdin(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI,
        "fd_read",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nread: i32|
         -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            if fd != 0 {
                let mut guest = wiggle::GuestMemory::Unshared(data);
                return in_tokio(p1::fd_read(
                    &mut state.wasi,
                    &mut guest,
                    fd,
                    iovs,
                    iovs_len,
                    nread,
                ));
            }
            let inbox = match &state.wcgi {
                Some(w) => w.inbox.clone(),
                None => return Err(wasmtime::format_err!("stdin override outside WCGI")),
            };
            Ok(read_stdin(&inbox, data, iovs, iovs_len, nread))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut caller: Caller<'_, GuestState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let mut guest = wiggle::GuestMemory::Unshared(&mut *data);
            let errno = in_tokio(p1::fd_fdstat_get(&mut state.wasi, &mut guest, fd, stat))?;
            if fd != 0 || errno != ERRNO_SUCCESS {
                return Ok(errno);
            }
            // fdstat: filetype u8 at 0, fs_flags u16 at 2.
            let at = stat as u32 as usize + 2;
            let Some(flags) = data.get_mut(at..at + 2) else {
                return Ok(ERRNO_FAULT);
            };
            let value = u16::from_le_bytes([flags[0], flags[1]]) | FDFLAGS_NONBLOCK;
            flags.copy_from_slice(&value.to_le_bytes());
            Ok(ERRNO_SUCCESS)
        },
    )?;
    Ok(())
}

/// `fd_read(0, iovs, iovs_len, nread)` against the inbox: EAGAIN when empty, 0 bytes at
/// the end of input.
fn read_stdin(inbox: &Inbox, data: &mut [u8], iovs: i32, iovs_len: i32, nread: i32) -> i32 {
    let word = |data: &[u8], at: usize| -> Option<usize> {
        let b = data.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let mut total = 0usize;
    let mut ended = false;
    for i in 0..iovs_len.max(0) as usize {
        let at = iovs as u32 as usize + i * 8;
        let (Some(buf), Some(len)) = (word(data, at), word(data, at + 4)) else {
            return ERRNO_FAULT;
        };
        let Some(out) = data.get_mut(buf..buf.saturating_add(len)) else {
            return ERRNO_FAULT;
        };
        match inbox.take(out) {
            Take::Bytes(n) if n == len => total += n,
            Take::Bytes(n) => {
                total += n;
                break;
            }
            Take::Empty => break,
            Take::Closed => {
                ended = true;
                break;
            }
        }
    }
    if total == 0 && !ended {
        return ERRNO_AGAIN;
    }
    let at = nread as u32 as usize;
    match data.get_mut(at..at + 4) {
        Some(slot) => {
            slot.copy_from_slice(&(total as u32).to_le_bytes());
            ERRNO_SUCCESS
        }
        None => ERRNO_FAULT,
    }
}
