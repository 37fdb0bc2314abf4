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
