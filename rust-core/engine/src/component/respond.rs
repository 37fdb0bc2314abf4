//! A component's response on its way to the host, sent from the thread the guest runs on
//! (the request's own): whenever the guest is about to wait (see `waits`), at each epoch
//! tick, and once `handle` has returned. Nothing else takes the guest's output while it
//! runs, and nothing needs to: wasi:http holds at most two chunks of a response body, and
//! taking them before every wait is what keeps a guest writing a large response from
//! waiting on itself. Running the guest here, instead of on a thread of its own while this
//! thread streamed, saves two thread switches and the wakes between them per request.
//!
//! Data reaches the client by the guest's next wait, or within one epoch tick while it
//! computes; a response the guest finishes without waiting goes out in one piece, with a
//! `Content-Length` where the server can set one.

use std::sync::Arc;

use futures::FutureExt;
use http_body_util::BodyExt;
use tokio::sync::oneshot::{self, error::TryRecvError};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::response_fields::{sanitize, ResponseHead};

/// What the guest passes to `response-outparam.set`.
pub type Response = Result<http::Response<HyperOutgoingBody>, ErrorCode>;

/// The response of one request, from the guest's `set` to its last byte.
pub struct Responder {
    host: Arc<dyn Host>,
    progress: Progress,
    /// Bytes went to the host since its last flush.
    unflushed: bool,
}

enum Progress {
    /// The guest has not set its response yet.
    Unset(oneshot::Receiver<Response>),
    /// Set. The head goes out with the first body bytes (or at the end of an empty body),
    /// so a guest that fails before writing any (a JS runtime out of memory answers 500
    /// and leaves its body open) still gets its failure's status.
    Streaming {
        head: Option<ResponseHead>,
        body: HyperOutgoingBody,
    },
    /// All of it went out.
    Ended,
    /// The guest dropped its outparam without setting a response.
    NoneSet,
    /// Sending failed (a bad head, a broken body, the client gone): the body is dropped,
    /// so the guest's further writes fail.
    Failed(Failure),
}

impl Responder {
    /// The response that arrives on `set`, sent to `host`.
    pub fn new(host: Arc<dyn Host>, set: oneshot::Receiver<Response>) -> Self {
        Responder {
            host,
            progress: Progress::Unset(set),
            unflushed: false,
        }
    }

    /// Sends what the guest has written so far without waiting for more, and flushes it to
    /// the client when `flush` (the guest is about to wait, or time has passed).
    pub fn send_ready(&mut self, flush: bool) {
        if let Err(failure) = self.send_written() {
            self.progress = Progress::Failed(failure);
        }
        if flush && self.unflushed && matches!(self.progress, Progress::Streaming { .. }) {
            self.unflushed = false;
            if self.host.write_body(&[], true).is_err() {
                self.progress = Progress::Failed(gone());
            }
        }
    }

    /// Once `handle` has returned normally: sends the rest. `Ok(false)` when the guest set
    /// no response. A body still open now was left unfinished: that is a failure, not an
    /// end.
    pub fn finish(&mut self) -> Result<bool, Failure> {
        self.send_ready(false);
        match std::mem::replace(&mut self.progress, Progress::Ended) {
            Progress::Unset(_) | Progress::NoneSet => Ok(false),
            Progress::Ended => Ok(true),
            Progress::Streaming { .. } => Err(Failure::new(
                FailureKind::MalformedResponse,
                "guest returned without finishing its response body",
            )),
            Progress::Failed(failure) => Err(failure),
        }
    }

    fn send_written(&mut self) -> Result<(), Failure> {
        if let Progress::Unset(set) = &mut self.progress {
            self.progress = match set.try_recv() {
                Ok(Ok(response)) => streaming(response)?,
                Ok(Err(code)) => {
                    return Err(Failure::new(
                        FailureKind::MalformedResponse,
                        format!("guest answered with an error: {code:?}"),
                    ))
                }
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Closed) => Progress::NoneSet,
            };
        }
        let Progress::Streaming { head, body } = &mut self.progress else {
            return Ok(());
        };
        // At most the two chunks wasi:http buffers, and the end.
        while let Some(frame) = body.frame().now_or_never() {
            let Some(frame) = frame else {
                if let Some(head) = head.take() {
                    self.host.send_head(&head, &[], false).map_err(|_| gone())?;
                }
                self.progress = Progress::Ended;
                return Ok(());
            };
            let frame = frame.map_err(|e| {
                Failure::new(
                    FailureKind::MalformedResponse,
                    format!("guest's response body broke off: {e:?}"),
                )
            })?;
            // Trailers are not passed on (CGI has none either).
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if let Some(head) = head.take() {
                self.host
                    .send_head(&head, &data, false)
                    .map_err(|_| gone())?;
            } else if !data.is_empty() {
                self.host.write_body(&data, false).map_err(|_| gone())?;
            } else {
                continue;
            }
            self.unflushed = true;
        }
        Ok(())
    }
}

/// A response just set: its head checked, nothing sent yet.
fn streaming(response: http::Response<HyperOutgoingBody>) -> Result<Progress, Failure> {
    let (parts, body) = response.into_parts();
    let mut head = ResponseHead {
        status: parts.status.as_u16(),
        fields: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect(),
    };
    sanitize(&mut head)?;
    Ok(Progress::Streaming {
        head: Some(head),
        body,
    })
}

fn gone() -> Failure {
    Failure::new(FailureKind::ClientGone, "client went away")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use bytes::Bytes;
    use wasmtime_wasi::p2::OutputStream;
    use wasmtime_wasi_http::p2::body::{HostOutgoingBody, StreamContext};

    use super::*;
    use crate::host::capture::Capture;

    /// A responder, the guest's end of its outparam, and what the host was sent.
    fn responder() -> (Responder, oneshot::Sender<Response>, Arc<Capture>) {
        let host = Arc::new(Capture::default());
        let (tx, rx) = oneshot::channel();
        (Responder::new(host.clone(), rx), tx, host)
    }

    /// What the guest does on `set`: a response with a header, and the stream of its body.
    fn set(tx: oneshot::Sender<Response>) -> (HostOutgoingBody, Box<dyn OutputStream>) {
        let (mut body, hyper) = HostOutgoingBody::new(StreamContext::Response, None, 1, 1 << 20);
        let stream = body.take_output_stream().unwrap();
        let response = http::Response::builder()
            .status(201)
            .header("x-a", "1")
            .body(hyper)
            .unwrap();
        assert!(tx.send(Ok(response)).is_ok());
        (body, stream)
    }

    fn body(host: &Capture) -> Vec<u8> {
        host.body.lock().unwrap().clone()
    }

    #[test]
    fn the_head_waits_for_the_first_bytes_and_a_flush_for_a_wait() {
        let (mut r, tx, host) = responder();
        r.send_ready(true);
        let (out, mut stream) = set(tx);
        r.send_ready(true);
        assert!(host.head.lock().unwrap().is_none(), "no body bytes yet");
        stream.write(Bytes::from_static(b"one ")).unwrap();
        r.send_ready(false);
        let head = host.head.lock().unwrap().clone().unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(head.fields, vec![(b"x-a".to_vec(), b"1".to_vec())]);
        assert_eq!(host.flushes.load(Ordering::SeqCst), 0);
        r.send_ready(true);
        r.send_ready(true);
        assert_eq!(
            host.flushes.load(Ordering::SeqCst),
            1,
            "one flush for what was sent"
        );
        stream.write(Bytes::from_static(b"two")).unwrap();
        drop(stream);
        out.finish(None).unwrap();
        assert_eq!(r.finish(), Ok(true));
        assert_eq!(body(&host), b"one two");
    }

    #[test]
    fn a_full_body_buffer_is_emptied_by_each_send() {
        let (mut r, tx, host) = responder();
        let (out, mut stream) = set(tx);
        for piece in [b"ab", b"cd", b"ef"] {
            stream.write(Bytes::from_static(piece)).unwrap();
            stream.write(Bytes::from_static(piece)).unwrap();
            assert_eq!(
                stream.check_write().unwrap(),
                0,
                "wasi:http holds two chunks"
            );
            r.send_ready(false);
            assert!(stream.check_write().unwrap() > 0);
        }
        drop(stream);
        out.finish(None).unwrap();
        assert_eq!(r.finish(), Ok(true));
        assert_eq!(body(&host), b"ababcdcdefef");
    }

    #[test]
    fn a_body_left_open_is_a_failure() {
        let (mut r, tx, host) = responder();
        let (_out, mut stream) = set(tx);
        stream.write(Bytes::from_static(b"partial")).unwrap();
        let failure = r.finish().unwrap_err();
        assert_eq!(failure.kind, FailureKind::MalformedResponse);
        assert_eq!(body(&host), b"partial");
    }

    #[test]
    fn no_response_set_is_told_apart() {
        let (mut r, tx, host) = responder();
        assert_eq!(r.finish(), Ok(false));
        drop(tx);
        let (mut r, tx, _) = responder();
        drop(tx);
        r.send_ready(true);
        assert_eq!(r.finish(), Ok(false));
        assert!(host.head.lock().unwrap().is_none());
    }

    #[test]
    fn a_gone_client_closes_the_guests_body() {
        let (mut r, tx, host) = responder();
        let (_out, mut stream) = set(tx);
        host.gone.store(true, Ordering::SeqCst);
        stream.write(Bytes::from_static(b"lost")).unwrap();
        r.send_ready(true);
        assert!(matches!(
            stream.check_write(),
            Err(wasmtime_wasi::p2::StreamError::Closed)
        ));
        assert_eq!(r.finish().unwrap_err().kind, FailureKind::ClientGone);
    }

    #[test]
    fn an_invalid_head_fails_before_anything_is_sent() {
        let (mut r, tx, host) = responder();
        let (_, hyper) = HostOutgoingBody::new(StreamContext::Response, None, 1, 1 << 20);
        let response = http::Response::builder().status(101).body(hyper).unwrap();
        assert!(tx.send(Ok(response)).is_ok());
        r.send_ready(true);
        assert_eq!(r.finish().unwrap_err().kind, FailureKind::MalformedResponse);
        assert!(host.head.lock().unwrap().is_none());
    }
}
