//! One request on a fresh component instance, run on the request's own thread. Its
//! response goes to the host from that thread too, whenever the guest waits and once it
//! returns (see `respond`). The request body, when there is one, is read on a kept thread
//! (see `body`, `kept_threads`) that is done before [`serve`] returns, so no host call
//! outlives it.

use std::sync::Arc;

use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::WasiHttpView;

use super::body::{self, RequestBody};
use super::outgoing::Outgoing;
use super::respond::Responder;
use super::state::{HttpCode, HttpState};
use crate::deadline::{stop_when_over_and, RequestWatch};
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::limiter::GuestLimiter;
use crate::outcome::classify;
use crate::request::RunSpec;
use crate::stdio::GuestStderr;

/// Runs the request described by `spec` on a fresh instance of `code`, streaming the
/// response to `host`. On `Err`, the caller answers with the failure's status if no head
/// was sent yet, and aborts the response otherwise (as for [`crate::cgi::run`]).
pub fn serve(code: &HttpCode, spec: &RunSpec, host: Arc<dyn Host>) -> Result<(), Failure> {
    // The guest's stdout and stderr both go to the log (its response goes through wasi:http).
    let output = GuestStderr::new(host.clone(), spec.stderr);
    let wasi =
        crate::wasi_ctx::builder(spec, true, std::io::empty(), output.clone(), output.clone())?
            .args(&spec.request_args())
            .envs(&spec.env)
            .build();
    let watch = RequestWatch::start(spec.limits.timeout, host.clone());
    let limiter = GuestLimiter::new(spec.limits.memory_bytes);
    let outgoing = Outgoing::new(
        host.clone(),
        crate::wasi_ctx::net_files(spec, true, crate::net::files::request_log(&host)),
        spec.network
            .as_ref()
            .map_or(0, |n| n.limits.max_connections),
    );
    let (tx, rx) = oneshot::channel();
    let responder = Responder::new(host.clone(), rx);
    let mut store = Store::new(
        code.component.engine(),
        HttpState::new(wasi, limiter, watch.clone(), outgoing, responder),
    );
    store.limiter(|s| &mut s.limiter);
    // A guest that computes after writing has its output sent within a tick.
    stop_when_over_and(&mut store, watch.clone(), |state| {
        state.responder.send_ready(true)
    });

    let (body, source) = body::channel(spec.http.content_length != Some(0));
    let request = incoming_request(spec, body)?;
    let scheme = match spec.http.tls_protocol {
        Some(_) => Scheme::Https,
        None => Scheme::Http,
    };
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

    // The body's reader first: if no thread can be had for it, nothing has run yet.
    let pump = match source {
        Some(source) => {
            let host = host.clone();
            Some(
                crate::kept_threads::run(move || body::pump(host.as_ref(), source)).map_err(
                    |e| {
                        Failure::new(
                            FailureKind::Internal,
                            format!("cannot start the request body's reader: {e}"),
                        )
                    },
                )?,
            )
        }
        None => None,
    };
    let result = code.pre.instantiate(&mut store).and_then(|proxy| {
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
    });
    let memory_denied = store.data().limiter.memory_denied;
    // The rest of the response goes out while the store (and with it the response body)
    // still lives: a body the guest left unfinished is then still open, and told apart
    // from a finished one. After a failure nothing more goes out: the caller answers with
    // the failure's status if it can.
    let sent = match &result {
        Ok(()) => store.data_mut().responder.finish(),
        Err(_) => Ok(false),
    };
    drop(store);
    let ending = ending(sent, classify(result, memory_denied, &watch), memory_denied);
    // The body's reader ends once the store that held the body is gone: no host call of
    // this request outlives `serve`.
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
    guest: Result<Option<i32>, Failure>,
    memory_denied: bool,
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

fn bad_request(e: impl std::fmt::Display) -> Failure {
    Failure::new(
        FailureKind::Internal,
        format!("cannot describe the request to the component: {e}"),
    )
}
