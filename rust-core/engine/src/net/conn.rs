//! One connection: a tokio task moves bytes between the socket and two bounded buffers,
//! which the guest reads and writes without ever blocking (EAGAIN when there is nothing to
//! read or no room to write), and a readiness signal its `poll_oneoff` waits on.
//!
//! TCP is a byte stream; UDP keeps datagram boundaries (one write is one datagram, one read
//! takes one datagram).
//!
//! Closing (the guest's `fd_close`, or its table dropped at the end of its request or
//! instance) lets the task send what the guest wrote before it closed, for at most
//! [`LINGER`], then the socket closes: a guest may write a request and close at once.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::files::Socket;
use crate::locks::lock;

/// Most bytes one socket read asks for.
const READ_CHUNK: usize = 16 << 10;
/// How long a closed connection may still take to send what the guest wrote.
pub const LINGER: Duration = Duration::from_secs(2);

#[derive(Default)]
struct State {
    /// Received chunks (datagrams for UDP), oldest first, and their byte total.
    rx: VecDeque<Vec<u8>>,
    rx_bytes: usize,
    /// Chunks (datagrams) to send, and their byte total.
    tx: VecDeque<Vec<u8>>,
    tx_bytes: usize,
    /// The peer ended its side (TCP) .
    eof: bool,
    /// The connection broke; reads and writes answer this from now on.
    error: Option<io::ErrorKind>,
    /// The guest closed it: the task sends what is left, then ends.
    closing: bool,
}

/// What a non-blocking read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Bytes(usize),
    Empty,
    Eof,
    Failed(io::ErrorKind),
}

/// The guest's side of one connection.
pub struct Conn {
    datagram: bool,
    cap: usize,
    state: Mutex<State>,
    /// Wakes the task: bytes to send, or room to receive.
    to_task: Notify,
    /// Wakes the guest's `poll_oneoff`: shared by all its connections.
    to_guest: Arc<Notify>,
}

impl Conn {
    pub fn new(datagram: bool, cap: usize, to_guest: Arc<Notify>) -> Arc<Conn> {
        Arc::new(Conn {
            datagram,
            cap: cap.max(1),
            state: Mutex::new(State::default()),
            to_task: Notify::new(),
            to_guest,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn datagram(&self) -> bool {
        self.datagram
    }

    /// Copies received bytes into `out` (one datagram for UDP, truncated to `out`).
    pub fn read(&self, out: &mut [u8]) -> Read {
        let mut s = self.lock();
        let Some(front) = s.rx.front_mut() else {
            return match (s.error, s.eof) {
                (Some(kind), _) => Read::Failed(kind),
                (None, true) => Read::Eof,
                (None, false) => Read::Empty,
            };
        };
        let n = front.len().min(out.len());
        out[..n].copy_from_slice(&front[..n]);
        let taken = if self.datagram || n == front.len() {
            s.rx.pop_front().map_or(0, |c| c.len())
        } else {
            front.drain(..n);
            n
        };
        s.rx_bytes -= taken;
        drop(s);
        self.to_task.notify_one();
        Read::Bytes(n)
    }

    /// Queues `data` to send; `Ok(0)` when there is no room now (EAGAIN). A datagram goes
    /// whole or not at all.
    pub fn write(&self, data: &[u8]) -> Result<usize, io::ErrorKind> {
        let mut s = self.lock();
        if let Some(kind) = s.error {
            return Err(kind);
        }
        let room = self.cap.saturating_sub(s.tx_bytes);
        let n = if self.datagram {
            if data.len() > self.cap {
                return Err(io::ErrorKind::InvalidInput);
            }
            if data.len() > room {
                0
            } else {
                data.len()
            }
        } else {
            data.len().min(room)
        };
        if n > 0 || (self.datagram && data.is_empty()) {
            s.tx.push_back(data[..n].to_vec());
            s.tx_bytes += n;
            drop(s);
            self.to_task.notify_one();
        }
        Ok(n)
    }

    /// Whether a read would not answer EAGAIN.
    pub fn readable(&self) -> bool {
        let s = self.lock();
        !s.rx.is_empty() || s.eof || s.error.is_some()
    }

    /// Whether a write would not answer EAGAIN.
    pub fn writable(&self) -> bool {
        let s = self.lock();
        s.tx_bytes < self.cap || s.error.is_some()
    }

    /// The guest is done with the connection (see the module docs).
    pub fn close(&self) {
        self.lock().closing = true;
        self.to_task.notify_one();
    }

    /// `Some(deadline)` once closing: the task ends when nothing is left to send, or then.
    fn closing(&self, since: &mut Option<Instant>) -> Option<Instant> {
        if self.lock().closing {
            Some(*since.get_or_insert_with(|| Instant::now() + LINGER))
        } else {
            None
        }
    }

    /// Moves bytes for `socket` until the connection ends.
    pub async fn run(self: Arc<Self>, socket: Socket) {
        match socket {
            Socket::Tcp(stream) => self.run_stream(stream).await,
            Socket::Tls(stream) => self.run_stream(*stream).await,
            Socket::Udp(socket) => self.run_datagram(socket).await,
        }
    }

    /// The connection broke (or never connected): reads and writes answer `kind`.
    pub fn fail(&self, kind: io::ErrorKind) {
        self.lock().error.get_or_insert(kind);
        self.to_guest.notify_one();
    }

    /// Room left for received bytes (a whole datagram buffer for UDP).
    fn rx_room(&self) -> usize {
        self.cap.saturating_sub(self.lock().rx_bytes)
    }

    fn received(&self, data: &[u8]) {
        let mut s = self.lock();
        if data.is_empty() && !self.datagram {
            s.eof = true;
        } else {
            s.rx_bytes += data.len();
            s.rx.push_back(data.to_vec());
        }
        drop(s);
        self.to_guest.notify_one();
    }

    fn next_to_send(&self) -> Option<Vec<u8>> {
        self.lock().tx.front().cloned()
    }

    fn sent(&self, n: usize) {
        let mut s = self.lock();
        let whole = self.datagram || s.tx.front().is_some_and(|c| c.len() == n);
        if whole {
            let len = s.tx.pop_front().map_or(0, |c| c.len());
            s.tx_bytes -= len;
        } else if let Some(front) = s.tx.front_mut() {
            front.drain(..n);
            s.tx_bytes -= n;
        }
        drop(s);
        self.to_guest.notify_one();
    }

    /// Moves bytes between `stream` and the buffers until either side ends.
    pub async fn run_stream<S: AsyncRead + AsyncWrite>(self: Arc<Self>, stream: S) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut eof = false;
        let mut linger = None;
        loop {
            let closing = self.closing(&mut linger);
            let room = self.rx_room().min(READ_CHUNK);
            let pending = self.next_to_send();
            if closing.is_some() && pending.is_none() {
                let _ = writer.shutdown().await;
                return;
            }
            let until = closing.unwrap_or_else(far_future);
            tokio::select! {
                () = tokio::time::sleep_until(until.into()), if closing.is_some() => return,
                read = reader.read(&mut buf[..room.max(1)]), if room > 0 && !eof && closing.is_none() => match read {
                    Ok(n) => {
                        eof = n == 0;
                        self.received(&buf[..n]);
                    }
                    Err(e) => return self.fail(e.kind()),
                },
                wrote = write_some(&mut writer, pending.as_deref()), if pending.is_some() => {
                    match wrote {
                        Ok(n) => self.sent(n),
                        Err(e) => return self.fail(e.kind()),
                    }
                }
                () = self.to_task.notified() => {}
            }
        }
    }

    /// Moves datagrams between `socket` (connected) and the buffers.
    pub async fn run_datagram(self: Arc<Self>, socket: UdpSocket) {
        let mut buf = vec![0u8; 64 << 10];
        let mut linger = None;
        loop {
            let closing = self.closing(&mut linger);
            let room = self.rx_room();
            let pending = self.next_to_send();
            if closing.is_some() && pending.is_none() {
                return;
            }
            let until = closing.unwrap_or_else(far_future);
            tokio::select! {
                () = tokio::time::sleep_until(until.into()), if closing.is_some() => return,
                got = socket.recv(&mut buf), if room > 0 && closing.is_none() => match got {
                    // A datagram that would overfill the buffer is dropped, as a full
                    // socket buffer would.
                    Ok(n) if n <= room => self.received(&buf[..n]),
                    Ok(_) => {}
                    Err(e) => return self.fail(e.kind()),
                },
                sent = send_one(&socket, pending.as_deref()), if pending.is_some() => match sent {
                    Ok(n) => self.sent(n),
                    Err(e) => return self.fail(e.kind()),
                },
                () = self.to_task.notified() => {}
            }
        }
    }
}

/// A deadline that is never reached (the branch using it is disabled anyway).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400)
}

async fn write_some<W: AsyncWrite + Unpin>(w: &mut W, data: Option<&[u8]>) -> io::Result<usize> {
    let data = data.unwrap_or_default();
    let n = w.write(data).await?;
    if n == 0 && !data.is_empty() {
        return Err(io::ErrorKind::WriteZero.into());
    }
    w.flush().await?;
    Ok(n)
}

async fn send_one(socket: &UdpSocket, data: Option<&[u8]>) -> io::Result<usize> {
    socket.send(data.unwrap_or_default()).await?;
    Ok(data.map_or(0, <[u8]>::len))
}
