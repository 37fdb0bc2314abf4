//! Runs one CGI request: a fresh instance of the module, the CGI environment, stdin from the
//! request body, stdout parsed into the response.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

use crate::cgi_env;
use crate::cgi_output::CgiOutput;
use crate::engine::{describe, Engine};
use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;
use crate::host::{Host, LogLevel};
use crate::limiter::GuestLimiter;
use crate::module_cache::LoadEvent;
use crate::request::RunSpec;
use crate::stdio::{GuestStderr, GuestStdin, GuestStdout};

impl Engine {
    /// Runs the request described by `spec`, streaming the response to `host`.
    ///
    /// On `Err`, the caller answers with the failure's status if no head was sent yet
    /// (`host.send_head` not called), and aborts the response otherwise.
    pub fn handle(&self, spec: &RunSpec, host: Arc<dyn Host>) -> Result<(), Failure> {
        let (module, event) = self.module(&spec.module_path, &spec.cache)?;
        if let Some(event) = &event {
            let level = match event {
                LoadEvent::Loaded { .. } => LogLevel::Info,
                LoadEvent::KeptPrevious(_) => LogLevel::Warn,
            };
            host.log(level, &describe(event));
        }

        if crate::wcgi::wants_wcgi(&module, spec) {
            return self.handle_wcgi(&module, spec, &host);
        }
        let output = Arc::new(Mutex::new(CgiOutput::new(host.clone())));
        let stderr = GuestStderr::new(host.clone());
        let wasi = crate::wasi_ctx::build(
            spec,
            &cgi_env::build(spec),
            GuestStdin::new(host.clone()),
            GuestStdout::new(output.clone()),
            stderr.clone(),
        )?;
        let state = GuestState {
            wasi,
            limiter: GuestLimiter::new(spec.limits.memory_bytes),
            wcgi: None,
        };

        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let started = Instant::now();
        let deadline = started + spec.limits.timeout;
        let watcher = host.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline || watcher.cancelled() {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });

        let result = module
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()));
        stderr.finish();

        let timed_out = started.elapsed() >= spec.limits.timeout;
        let memory_denied = store.data().limiter.memory_denied;
        drop(store);
        let output = crate::locks::lock(&output);
        if let Some(failure) = output.failure() {
            return Err(failure.clone());
        }
        let exit = classify(result, timed_out, memory_denied, host.as_ref())?;
        if let Some(code) = exit {
            return Err(Failure::new(
                if memory_denied {
                    FailureKind::MemoryLimit
                } else {
                    FailureKind::Exit
                },
                format!("guest exited with code {code}"),
            ));
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
}

/// Reads the guest's ending: `Ok(None)` for success, `Ok(Some(code))` for a non-zero exit.
fn classify(
    result: wasmtime::Result<()>,
    timed_out: bool,
    memory_denied: bool,
    host: &dyn Host,
) -> Result<Option<i32>, Failure> {
    let err = match result {
        Ok(()) => return Ok(None),
        Err(err) => err,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Ok((exit.0 != 0).then_some(exit.0));
    }
    if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
        if !timed_out && host.cancelled() {
            return Err(Failure::new(FailureKind::ClientGone, "client went away"));
        }
        return Err(Failure::new(
            FailureKind::Timeout,
            "guest ran past its time limit",
        ));
    }
    if memory_denied {
        return Err(Failure::new(
            FailureKind::MemoryLimit,
            format!("guest hit its memory limit: {}", first_line(&err)),
        ));
    }
    if err.to_string().contains("pooling allocator") {
        return Err(Failure::new(
            FailureKind::Busy,
            format!("no instance slot free: {}", first_line(&err)),
        ));
    }
    Err(Failure::new(FailureKind::Trap, format!("{err:#}")))
}

fn first_line(err: &wasmtime::Error) -> String {
    format!("{err:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
