//! CGI mode: runs one request on a fresh instance of the module, with the CGI environment,
//! stdin from the request body, stdout parsed into the response.

use std::sync::{Arc, Mutex};

use wasmtime::Store;

use crate::cgi_env;
use crate::cgi_output::CgiOutput;
use crate::compile::CoreCode;
use crate::deadline::RequestWatch;
use crate::failure::{Failure, FailureKind};
use crate::guest::{entry, CStrings, GuestState};
use crate::host::Host;
use crate::limiter::GuestLimiter;
use crate::outcome::classify;
use crate::request::RunSpec;
use crate::stdio::{GuestStderr, GuestStdin, GuestStdout};

/// Runs the request described by `spec` on a fresh instance of `module`, streaming the
/// response to `host`.
///
/// On `Err`, the caller answers with the failure's status if no head was sent yet
/// (`host.send_head` not called), and aborts the response otherwise.
pub fn run(module: &CoreCode, spec: &RunSpec, host: Arc<dyn Host>) -> Result<(), Failure> {
    let output = Arc::new(Mutex::new(CgiOutput::new(host.clone())));
    let stderr = GuestStderr::new(host.clone(), spec.stderr);
    let wasi = crate::wasi_ctx::build(
        spec,
        module.reaches_files,
        GuestStdin::new(host.clone()),
        GuestStdout::new(output.clone()),
        stderr.clone(),
    )?;
    let watch = RequestWatch::start(spec.limits.timeout, host.clone());
    let state = GuestState {
        wasi,
        args: CStrings::args(&spec.request_args()),
        environ: cgi_env::build(spec).to_cstrings(),
        limiter: GuestLimiter::new(spec.limits.memory_bytes),
        inbox: None,
        held_stdout: None,
        watch: Some(watch.clone()),
        net: crate::wasi_ctx::net_files(
            spec,
            module.reaches_files,
            crate::net::files::request_log(&host),
        ),
    };

    // A module runs in the engine of its compile tier.
    let mut store = request_store(module.module.engine(), state, watch.clone());
    let entrypoint = spec.entrypoint.as_deref();
    let result = module.pre.instantiate(&mut store).and_then(|instance| {
        let start = entry::entry(&mut store, &instance, entrypoint)?;
        entry::initialize(&mut store, &instance, entrypoint)?;
        start.call(&mut store, ())
    });
    stderr.finish();

    let memory_denied = store.data().limiter.memory_denied;
    drop(store);
    let output = crate::locks::lock(&output);
    let ending = ending(result, &output, memory_denied, &watch);
    // Whatever went wrong once the deadline had passed (a body read or response write
    // the server cut short, the guest giving up on that) is the deadline's doing.
    if ending.is_err() && watch.past_deadline() {
        return Err(watch.ending());
    }
    ending
}

/// A store for one request: the guest's memory cap, and an epoch check that stops the
/// guest once `watch` is over.
fn request_store(
    engine: &wasmtime::Engine,
    state: GuestState,
    watch: RequestWatch,
) -> Store<GuestState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    crate::deadline::stop_when_over(&mut store, watch);
    store
}

/// How a finished guest's request ended.
fn ending(
    result: wasmtime::Result<()>,
    output: &CgiOutput,
    memory_denied: bool,
    watch: &RequestWatch,
) -> Result<(), Failure> {
    if let Some(failure) = output.failure() {
        return Err(failure.clone());
    }
    if let Some(code) = classify(result, memory_denied, watch)? {
        let kind = if memory_denied {
            FailureKind::MemoryLimit
        } else {
            FailureKind::Exit
        };
        return Err(Failure::new(kind, format!("guest exited with code {code}")));
    }
    if !output.head_sent() {
        let message = if output.has_partial_head() {
            "guest ended inside its CGI header block"
        } else {
            "guest wrote no CGI response"
        };
        return Err(Failure::new(FailureKind::MalformedResponse, message));
    }
    Ok(())
}
