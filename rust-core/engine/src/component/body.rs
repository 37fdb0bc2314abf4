//! The request body as a component reads it: chunks that a thread of its own reads from
//! the host (whose reads block) and hands over through a small bounded channel, so the
//! guest streams it and at most `DEPTH` chunks wait in memory.

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
}

/// The host side of the channel: [`pump`] it on its own thread.
pub struct BodySource(mpsc::Sender<Result<Bytes, Error>>);

/// The body of a request; `None` for the source when the request has no body.
pub fn channel(has_body: bool) -> (RequestBody, Option<BodySource>) {
    if !has_body {
        return (RequestBody { chunks: None }, None);
    }
    let (tx, rx) = mpsc::channel(DEPTH);
    (RequestBody { chunks: Some(rx) }, Some(BodySource(tx)))
}

/// Reads the body from `host` until its end, a read error (the guest's read fails), or the
/// guest dropping the body. The host bounds each read by the request's deadline.
pub fn pump(host: &dyn Host, source: BodySource) {
    let mut buf = vec![0; CHUNK];
    loop {
        let chunk = match host.read_body(&mut buf) {
            Ok(0) => return,
            Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
            Err(_) => Err(Error::ConnectionTerminated),
        };
        let failed = chunk.is_err();
        if source.0.blocking_send(chunk).is_err() || failed {
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
        chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_none()
    }
}
