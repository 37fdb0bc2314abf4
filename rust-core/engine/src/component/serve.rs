//! One request on a fresh component instance. The guest runs on another thread while this
//! thread waits for the response head and streams the body to the host: waiting for
//! `handle` to return first would deadlock on any response larger than the one chunk
//! wasi:http buffers. The request body, when there is one, is read on a third thread (see
//! `body`). Both are kept threads (see `guest_threads`), and both are done before
//! [`serve`] returns, so no host call outlives it.

use std::sync::Arc;

use futures::executor::block_on;
use futures::future::{select, Either};
use futures::FutureExt;
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use super::body::{self, RequestBody};
use super::outgoing::Outgoing;
use super::state::{HttpCode, HttpState};
use crate::deadline::{stop_when_over, RequestWatch};
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::limiter::GuestLimiter;
use crate::outcome::classify;
use crate::request::RunSpec;
use crate::response_fields::{sanitize, ResponseHead};
use crate::stdio::GuestStderr;

type Response = Result<http::Response<HyperOutgoingBody>, ErrorCode>;

/// Runs the request described by `spec` on a fresh instance of `code`, streaming the
/// response to `host`. On `Err`, the caller answers with the failure's status if no head
/// was sent yet, and aborts the response otherwise (as for [`crate::cgi::run`]).
pub fn serve(code: &HttpCode, spec: &RunSpec, host: Arc<dyn Host>) -> Result<(), Failure> {
    // The guest's stdout and stderr both go to the log (its response goes through wasi:http).
    let output = GuestStderr::new(host.clone(), spec.stderr);
    let wasi = crate::wasi_ctx::builder(
        spec,
        &spec.request_args(),
        &spec.env,
        std::io::empty(),
        output.clone(),
        output.clone(),
    )?
    .build();
    let watch = RequestWatch::start(spec.limits.timeout, host.clone());
    let limiter = GuestLimiter::new(spec.limits.memory_bytes);
    let outgoing = Outgoing::new(
        host.clone(),
        crate::wasi_ctx::net_files(spec, crate::net::files::request_log(&host)),
        spec.network
            .as_ref()
            .map_or(0, |n| n.limits.max_connections),
    );
    let mut store = Store::new(
        code.component.engine(),
        HttpState::new(wasi, limiter, watch.clone(), outgoing),
    );
    store.limiter(|s| &mut s.limiter);
    stop_when_over(&mut store, watch.clone());

    let (body, source) = body::channel(spec.http.content_length != Some(0));
    let request = incoming_request(spec, body)?;
    let scheme = match spec.http.tls_protocol {
        Some(_) => Scheme::Https,
        None => Scheme::Http,
    };
    let (tx, rx) = oneshot::channel();
    let setup = |store: &mut Store<HttpState>| -> wasmtime::Result<_> {
        let mut http = store.data_mut().http();
        let req = http.new_incoming_request(scheme, request)?;
        let out = http.new_response_outparam(tx)?;
        Ok((req, out))
    };
    let (req, out) = setup(&mut store).map_err(|e| {
        Failure::new(
            FailureKind::Internal,
            format!("cannot pass the request: {e:#}"),
        )
    })?;

    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    // The body's reader first: if no thread can be had for it, nothing has run yet.
    let pump = match source {
        Some(source) => {
            let host = host.clone();
            Some(
                crate::guest_threads::run(move || body::pump(host.as_ref(), source))
                    .map_err(no_thread)?,
            )
        }
        None => None,
    };
    let pre = code.pre.clone();
    let guest = crate::guest_threads::run(move || {
        let result = pre.instantiate(&mut store).and_then(|proxy| {
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
        });
        // The store (and with it the response body) lives on until the response has been
        // streamed: a body the guest left unfinished is then still open, and told apart
        // from a finished one.
        let _ = done_tx.send(());
        (result, store)
    });
    let ending = match guest {
        Ok(guest) => {
            let mut done = Some(&mut done_rx);
            let sent = respond(rx, &mut done, host.as_ref());
            // The guest's thread hands back its store once `handle` returned.
            let guest = match guest.recv() {
                Ok(Ok((result, store))) => {
                    let memory_denied = store.data().limiter.memory_denied;
                    drop(store);
                    (classify(result, memory_denied, &watch), memory_denied)
                }
                Ok(Err(_)) | Err(_) => (
                    Err(Failure::new(FailureKind::Internal, "guest thread panicked")),
                    false,
                ),
            };
            ending(sent, guest)
        }
        Err(e) => Err(no_thread(e)),
    };
    // The body's reader ends once the store that held the body is gone (dropped above, or
    // with a guest that never started): no host call of this request outlives `serve`.
    if let Some(pump) = pump {
        let _ = pump.recv();
    }
    output.finish();
    // Whatever went wrong once the deadline had passed is the deadline's doing.
    if ending.is_err() && watch.past_deadline() {
        return Err(watch.ending());
    }
    ending
}

/// How the request ended: the guest's own failure (trap, time, memory) first, as it is
/// the cause of a broken response too; a guest refused memory that then answered badly
/// (a JS runtime catches its out-of-memory) failed for its memory limit.
fn ending(
    sent: Result<bool, Failure>,
    (guest, memory_denied): (Result<Option<i32>, Failure>, bool),
) -> Result<(), Failure> {
    let ended = match (sent, guest?) {
        (_, Some(code)) => Err(Failure::new(
            FailureKind::Exit,
            format!("guest exited with code {code}"),
        )),
        (Err(f), None) => Err(f),
        (Ok(false), None) => Err(Failure::new(
            FailureKind::MalformedResponse,
            "guest returned without setting a response",
        )),
        (Ok(true), None) => Ok(()),
    };
    ended.map_err(|f| match memory_denied {
        true if f.kind != FailureKind::ClientGone => Failure::new(
            FailureKind::MemoryLimit,
            format!("guest hit its memory limit: {}", f.message),
        ),
        _ => f,
    })
}

/// The request as wasi:http sees it: the method, path and query the client sent (before
/// any rewrite), its headers (repeated ones kept), scheme and authority.
fn incoming_request(
    spec: &RunSpec,
    body: RequestBody,
) -> Result<http::Request<RequestBody>, Failure> {
    let http = &spec.http;
    let scheme = if http.tls_protocol.is_some() {
        "https"
    } else {
        "http"
    };
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(http.host.as_str())
        .path_and_query(http.request_uri.as_str())
        .build();
    let mut request = http::Request::builder()
        .method(http.method.as_bytes())
        .uri(uri.map_err(bad_request)?);
    for (name, value) in &http.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request.body(body).map_err(bad_request)
}

fn no_thread(e: std::io::Error) -> Failure {
    Failure::new(
        FailureKind::Internal,
        format!("cannot start a guest thread: {e}"),
    )
}

fn bad_request(e: impl std::fmt::Display) -> Failure {
    Failure::new(
        FailureKind::Internal,
        format!("cannot describe the request to the component: {e}"),
    )
}

/// Tells when the guest's `handle` returned: `None` once it has.
type GuestDone<'a> = Option<&'a mut oneshot::Receiver<()>>;

/// Waits for the guest's response and streams it to `host`: `Ok(false)` when the guest
/// set none, `Ok(true)` once all of it went out.
fn respond(
    rx: oneshot::Receiver<Response>,
    done: &mut GuestDone<'_>,
    host: &dyn Host,
) -> Result<bool, Failure> {
    let set = match done.as_mut() {
        Some(returned) => match block_on(select(rx, &mut **returned)) {
            Either::Left((set, _)) => set.ok(),
            Either::Right((_, mut rx)) => {
                *done = None;
                rx.try_recv().ok()
            }
        },
        None => None,
    };
    let response = match set {
        Some(Ok(response)) => response,
        Some(Err(code)) => {
            return Err(Failure::new(
                FailureKind::MalformedResponse,
                format!("guest answered with an error: {code:?}"),
            ))
        }
        None => return Ok(false),
    };
    let (parts, mut body) = response.into_parts();
    let mut head = ResponseHead {
        status: parts.status.as_u16(),
        fields: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect(),
    };
    sanitize(&mut head)?;
    stream_body(head, &mut body, done, host)?;
    Ok(true)
}

/// Streams the response to `host`: the head goes out with the first body bytes (or at the
/// end of an empty body), so a guest that fails before writing any (a JS runtime out of
/// memory answers 500 and leaves its body open) still gets its failure's status. Flushes
/// whenever the guest has nothing more ready, so an echo or a slow generator reaches the
/// client as it comes. A body still open once `handle` has returned was left unfinished:
/// that is a failure, not an end.
fn stream_body(
    head: ResponseHead,
    body: &mut HyperOutgoingBody,
    done: &mut GuestDone<'_>,
    host: &dyn Host,
) -> Result<(), Failure> {
    let mut head = Some(head);
    let mut unflushed = false;
    loop {
        let frame = match (body.frame().now_or_never(), done.as_mut()) {
            (Some(frame), _) => frame,
            (None, None) => {
                return Err(Failure::new(
                    FailureKind::MalformedResponse,
                    "guest returned without finishing its response body",
                ))
            }
            (None, Some(returned)) => {
                if unflushed {
                    host.write_body(&[], true).map_err(gone)?;
                    unflushed = false;
                }
                match block_on(select(body.frame(), &mut **returned)) {
                    Either::Left((frame, _)) => frame,
                    Either::Right(_) => {
                        *done = None;
                        continue;
                    }
                }
            }
        };
        let Some(frame) = frame else {
            if let Some(head) = head.take() {
                host.send_head(&head, &[], false).map_err(gone)?;
            }
            return Ok(());
        };
        let frame = frame.map_err(|e| {
            Failure::new(
                FailureKind::MalformedResponse,
                format!("guest's response body broke off: {e:?}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if let Some(head) = head.take() {
                host.send_head(&head, &data, false).map_err(gone)?;
                unflushed = true;
            } else if !data.is_empty() {
                host.write_body(&data, false).map_err(gone)?;
                unflushed = true;
            }
        }
    }
}

fn gone(_: crate::host::ClientGone) -> Failure {
    Failure::new(FailureKind::ClientGone, "client went away")
}
