//! The yamux client session over a long-lived guest's stdio (go-wagi's WCGI protocol: the
//! guest is the yamux server, each request is a new stream).
//!
//! A yamux connection only makes progress while it is polled, so each session has a driver
//! task on the shared WCGI runtime that polls it continuously (answering the guest's
//! keepalive pings) and opens streams on request.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::pipe::{Inbox, StdoutBacklog};

/// Most requests in flight on one instance (yamux streams); more answer 503. With yamux's
/// 256 KiB window per stream this bounds what a guest can make the host buffer.
pub const MAX_STREAMS: usize = 256;

/// The runtime that drives every WCGI session and times requests out.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wagi-wcgi")
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the WCGI runtime: {e}"))
    })
}

/// The guest's stdio as one byte stream for yamux.
pub struct GuestIo {
    from_guest: mpsc::UnboundedReceiver<Bytes>,
    /// What `from_guest` holds, counted against the guest's stdout cap.
    backlog: Arc<StdoutBacklog>,
    pending: Bytes,
    to_guest: Arc<Inbox>,
}

impl GuestIo {
    pub fn new(
        from_guest: mpsc::UnboundedReceiver<Bytes>,
        backlog: Arc<StdoutBacklog>,
        to_guest: Arc<Inbox>,
    ) -> Self {
        GuestIo {
            from_guest,
            backlog,
            pending: Bytes::new(),
            to_guest,
        }
    }
}

impl AsyncRead for GuestIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        while self.pending.is_empty() {
            match self.from_guest.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => {
                    self.backlog.taken(chunk.len());
                    self.pending = chunk;
                }
                // The guest's stdout is gone: the instance ended.
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for GuestIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.to_guest.poll_push(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.to_guest.close();
        Poll::Ready(Ok(()))
    }
}

type Opened = oneshot::Sender<Result<yamux::Stream, String>>;

/// A running yamux client session.
pub struct Session {
    open: mpsc::UnboundedSender<Opened>,
    closed: Arc<tokio::sync::Notify>,
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Session {
    /// Starts driving a client session over `io`.
    pub fn start(io: GuestIo) -> Session {
        let (open, mut requests) = mpsc::unbounded_channel::<Opened>();
        let closed = Arc::new(tokio::sync::Notify::new());
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (notify, flag) = (closed.clone(), ended.clone());
        let mut config = yamux::Config::default();
        // Bounds what a guest can make the host buffer: at most MAX_STREAMS streams (the
        // engine refuses more requests first) with a 256 KiB window each.
        config
            .set_max_num_streams(MAX_STREAMS)
            .set_max_connection_receive_window(Some(MAX_STREAMS * yamux::DEFAULT_CREDIT as usize));
        let mut conn = yamux::Connection::new(io, config, yamux::Mode::Client);
        runtime().spawn(async move {
            let mut waiting: VecDeque<Opened> = VecDeque::new();
            poll_fn(|cx| {
                while let Poll::Ready(Some(tx)) = requests.poll_recv(cx) {
                    waiting.push_back(tx);
                }
                while !waiting.is_empty() {
                    match conn.poll_new_outbound(cx) {
                        Poll::Ready(Ok(stream)) => {
                            if let Some(tx) = waiting.pop_front() {
                                let _ = tx.send(Ok(stream));
                            }
                        }
                        Poll::Ready(Err(e)) => {
                            for tx in waiting.drain(..) {
                                let _ = tx.send(Err(e.to_string()));
                            }
                            return Poll::Ready(());
                        }
                        Poll::Pending => break,
                    }
                }
                // Drives the connection; a guest never opens streams to us.
                loop {
                    match conn.poll_next_inbound(cx) {
                        Poll::Ready(Some(Ok(stream))) => drop(stream),
                        Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            notify.notify_waiters();
        });
        Session {
            open,
            closed,
            ended,
        }
    }

    /// Opens a new stream (one request).
    pub async fn open(&self) -> Result<yamux::Stream, String> {
        let (tx, rx) = oneshot::channel();
        self.open
            .send(tx)
            .map_err(|_| "the guest's yamux session has ended".to_string())?;
        rx.await
            .map_err(|_| "the guest's yamux session has ended".to_string())?
    }

    /// True once the session has ended (the guest exited or broke the protocol).
    pub fn ended(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until the session ends.
    pub async fn wait_ended(&self) {
        crate::pipe::wait_until(&self.closed, || self.ended()).await
    }
}
