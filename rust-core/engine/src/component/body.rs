//! The request body as a component reads it: chunks that a thread of its own (a kept one)
//! reads from the host (whose reads block) and hands over through a small bounded channel,
//! so the guest streams it and at most `DEPTH` chunks wait in memory. The thread reads
//! only when the guest asks for more, so a guest that answers without reading its body is
//! not held up by a client that is slow to send it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;
use wasmtime_wasi_http::Error;

use crate::host::Host;

/// Bytes read from the host at a time.
const CHUNK: usize = 64 << 10;
/// Chunks read ahead of the guest.
const DEPTH: usize = 2;

/// The body side of the channel, given to wasi:http.
pub struct RequestBody {
    chunks: Option<mpsc::Receiver<Result<Bytes, Error>>>,
    /// Asks the reading thread for one more chunk.
    demand: Option<mpsc::Sender<()>>,
}

/// The host side of the channel: [`pump`] it on its own thread.
pub struct BodySource {
    chunks: mpsc::Sender<Result<Bytes, Error>>,
    demand: mpsc::Receiver<()>,
}

/// The body of a request; `None` for the source when the request has no body.
pub fn channel(has_body: bool) -> (RequestBody, Option<BodySource>) {
    if !has_body {
        let body = RequestBody {
            chunks: None,
            demand: None,
        };
        return (body, None);
    }
    let (chunks_tx, chunks_rx) = mpsc::channel(DEPTH);
    let (demand_tx, demand_rx) = mpsc::channel(1);
    let body = RequestBody {
        chunks: Some(chunks_rx),
        demand: Some(demand_tx),
    };
    let source = BodySource {
        chunks: chunks_tx,
        demand: demand_rx,
    };
    (body, Some(source))
}

/// Reads the body from `host`, a chunk each time the guest asks, until its end, a read
/// error (the guest's read fails), or the guest dropping the body. The host bounds each
/// read by the request's deadline.
pub fn pump(host: &dyn Host, mut source: BodySource) {
    let mut buf = vec![0; CHUNK];
    while source.demand.blocking_recv().is_some() {
        let chunk = match host.read_body(&mut buf) {
            Ok(0) => return,
            Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
            Err(_) => Err(Error::ConnectionTerminated),
        };
        let failed = chunk.is_err();
        if source.chunks.blocking_send(chunk).is_err() || failed {
            return;
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Some(chunks) = self.chunks.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = chunks.poll_recv(cx);
        if polled.is_pending() {
            if let Some(demand) = &self.demand {
                // Full: a chunk is asked for already.
                let _ = demand.try_send(());
            }
        }
        polled.map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_none()
    }
}
