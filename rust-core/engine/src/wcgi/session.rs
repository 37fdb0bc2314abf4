//! The yamux client session over a long-lived guest's stdio (go-wagi's WCGI protocol: the
//! guest is the yamux server, each request is a new stream).
//!
//! A yamux connection only makes progress while it is polled, so each session has a driver
//! task on the shared WCGI runtime that polls it continuously (answering the guest's
//! keepalive pings) and opens streams on request.
//!
//! The driver keeps one stream opened ahead, so that a request takes it without a round
//! trip through the driver's thread (two thread switches). Opening is local in yamux (the
//! SYN goes out with the stream's first frame), so the guest sees nothing of a stream
//! until a request uses it.
//!
//! A stream whose exchange ended cleanly is kept for a later request (HTTP/1.1 keep-alive,
//! as `reverse_proxy` keeps connections to a backend): the guest's server then skips
//! accepting a stream, starting a connection and closing it again for every request, which
//! was about a third of what a small request cost the guest.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::locks::lock;
use crate::pipe::{Inbox, StdoutBacklog};

/// Most requests in flight on one instance (yamux streams); more answer 503. With yamux's
/// 256 KiB window per stream this bounds what a guest can make the host buffer.
pub const MAX_STREAMS: usize = 256;

/// Most idle streams an instance keeps for later requests; more are closed after use.
const KEPT_IDLE: usize = 32;

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

/// Why a stream cannot be opened once the guest is gone.
const SESSION_ENDED: &str = "the guest's yamux session has ended";

type Opened = oneshot::Sender<Result<yamux::Stream, String>>;

/// A running yamux client session.
pub struct Session {
    open: mpsc::UnboundedSender<Opened>,
    /// The stream opened ahead for the next request, if the driver has made it yet.
    ready: Arc<std::sync::Mutex<Option<yamux::Stream>>>,
    closed: Arc<tokio::sync::Notify>,
    ended: Arc<std::sync::atomic::AtomicBool>,
    /// Streams whose exchange ended cleanly, most recently used last.
    idle: std::sync::Mutex<Vec<yamux::Stream>>,
}

impl Session {
    /// Starts driving a client session over `io`.
    pub fn start(io: GuestIo) -> Session {
        let (open, mut requests) = mpsc::unbounded_channel::<Opened>();
        let closed = Arc::new(tokio::sync::Notify::new());
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (notify, flag) = (closed.clone(), ended.clone());
        let ready: Arc<std::sync::Mutex<Option<yamux::Stream>>> = Arc::default();
        let ahead = ready.clone();
        let mut config = yamux::Config::default();
        // Bounds what a guest can make the host buffer: at most MAX_STREAMS streams in use
        // (the engine refuses more requests first), the one opened ahead and the idle ones
        // kept, with a 256 KiB window each.
        let streams = MAX_STREAMS + 1 + KEPT_IDLE;
        config
            .set_max_num_streams(streams)
            .set_max_connection_receive_window(Some(streams * yamux::DEFAULT_CREDIT as usize));
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
                // Opens the next request's stream ahead. It can be refused for a moment
                // (too many streams, or unacknowledged ones): the next request then asks.
                if waiting.is_empty() && lock(&ahead).is_none() {
                    if let Poll::Ready(Ok(stream)) = conn.poll_new_outbound(cx) {
                        *lock(&ahead) = Some(stream);
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
            ready,
            closed,
            ended,
            idle: std::sync::Mutex::default(),
        }
    }

    /// A stream for one request: an idle one kept from an earlier request (`true`), else a
    /// new one.
    pub async fn stream(&self) -> Result<(yamux::Stream, bool), String> {
        if self.ended() {
            return Err(SESSION_ENDED.to_string());
        }
        if let Some(stream) = self.take_idle() {
            return Ok((stream, true));
        }
        Ok((self.open().await?, false))
    }

    /// Keeps a stream whose exchange ended cleanly for a later request, if there is room.
    pub fn keep(&self, stream: yamux::Stream) {
        let mut idle = lock(&self.idle);
        if idle.len() < KEPT_IDLE && !self.ended() {
            idle.push(stream);
        }
    }

    /// The most recently used idle stream that is still quiet. One the guest has closed,
    /// reset or written to since its last response is dropped: bytes after a response
    /// belong to no request.
    fn take_idle(&self) -> Option<yamux::Stream> {
        let mut idle = lock(&self.idle);
        while let Some(mut stream) = idle.pop() {
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let mut probe = [0u8; 1];
            if Pin::new(&mut stream)
                .poll_read(&mut cx, &mut probe)
                .is_pending()
            {
                return Some(stream);
            }
        }
        None
    }

    /// Opens a new stream: the one opened ahead, else one asked of the driver. The driver
    /// opens the next one ahead when the request's first frame wakes it.
    pub async fn open(&self) -> Result<yamux::Stream, String> {
        if self.ended() {
            return Err(SESSION_ENDED.to_string());
        }
        if let Some(stream) = lock(&self.ready).take() {
            return Ok(stream);
        }
        let (tx, rx) = oneshot::channel();
        self.open.send(tx).map_err(|_| SESSION_ENDED.to_string())?;
        rx.await.map_err(|_| SESSION_ENDED.to_string())?
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
