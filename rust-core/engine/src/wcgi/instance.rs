//! One long-lived instance: its guest thread running `_start`, the yamux session over its
//! stdio, and what tells whether it is still of use.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::budget::InstanceBudget;
use super::context::WcgiContext;
use super::session::{GuestIo, Session};
use super::stdio::{ChannelStdout, InboxStdin};
use crate::cgi_env;
use crate::compile::LoadedModule;
use crate::failure::{Failure, FailureKind};
use crate::guest::{entry, CStrings, GuestState};
use crate::host::{EngineLog, EventLog, LogFields, LogLevel};
use crate::limiter::GuestLimiter;
use crate::locks::lock;
use crate::pipe::{Inbox, StdoutBacklog};
use crate::request::RunSpec;
use crate::stdio::GuestStderr;

/// An instance that has left its stdin unread this long after one of its requests timed
/// out is wedged (a Go guest busy in a loop never yields to its reader goroutine) and is
/// replaced.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// One long-lived instance.
pub(super) struct Instance {
    pub(super) session: Session,
    inbox: Arc<Inbox>,
    stop: Arc<AtomicBool>,
    pub(super) inflight: AtomicUsize,
    /// When a request on this instance last ran past its time limit.
    pub(super) timed_out_at: Mutex<Option<Instant>>,
    /// When it started, for the admin listing.
    pub(super) started_at: SystemTime,
    /// Its linear memory size in bytes, kept by its limiter.
    pub(super) memory: Arc<AtomicUsize>,
}

impl Instance {
    /// True when a request timed out and the guest has not read its input since: it is
    /// stuck, and nothing else it serves can make progress.
    pub(super) fn wedged(&self, now: Instant) -> bool {
        let late =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) > STALL_GRACE);
        late(*lock(&self.timed_out_at)) && late(self.inbox.unread_since())
    }

    pub(super) fn shut_down(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes a guest waiting in poll_oneoff: it reads end-of-input and winds down; the
        // stop flag traps it at the next epoch tick if it keeps running wasm instead.
        self.inbox.close();
    }

    pub(super) fn alive(&self) -> bool {
        !self.session.ended() && !self.stop.load(Ordering::SeqCst)
    }

    /// Starts an instance of `module` for `spec`'s site, if the process has room for one.
    pub(super) fn start(
        ctx: &WcgiContext,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
    ) -> Result<Arc<Instance>, Failure> {
        if !ctx.budget.take() {
            return Err(Failure::new(
                FailureKind::Busy,
                format!(
                    "all {} WCGI instance slots of the process are taken",
                    ctx.budget.limit
                ),
            ));
        }
        // Given back when the instance's thread ends, or here if it never starts.
        let budget = ctx.budget.clone();
        let started = Instance::spawn(ctx, module, spec, budget.clone());
        if started.is_err() {
            budget.give_back();
        }
        started
    }

    fn spawn(
        ctx: &WcgiContext,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
        budget: Arc<InstanceBudget>,
    ) -> Result<Arc<Instance>, Failure> {
        let inbox = Arc::new(Inbox::default());
        let (stdout_tx, stdout_rx) = tokio::sync::mpsc::unbounded_channel();
        let backlog = Arc::new(StdoutBacklog::default());
        let stdout = ChannelStdout::new(stdout_tx, backlog.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let memory = Arc::new(AtomicUsize::new(0));
        let mut store = instance_store(
            ctx,
            module,
            spec,
            &inbox,
            stdout,
            stop.clone(),
            memory.clone(),
        )?;
        let instance = module
            .core()?
            .wcgi_pre
            .instantiate(&mut store)
            .map_err(|e| {
                Failure::new(
                    FailureKind::BadModule,
                    format!("cannot start WCGI instance: {e:#}"),
                )
            })?;
        let entrypoint = spec.entrypoint.clone();
        let start = entry::entry(&mut store, &instance, entrypoint.as_deref())
            .map_err(|e| Failure::new(FailureKind::BadModule, format!("{e:#}")))?;
        let ending = Ending {
            stop: stop.clone(),
            inbox: inbox.clone(),
            budget,
            log: ctx.log.clone(),
            path: spec.module_path.clone(),
            site: spec.script.document_root.clone(),
        };
        std::thread::Builder::new()
            .name("wagi-wcgi-guest".into())
            .spawn(move || {
                let result = entry::initialize(&mut store, &instance, entrypoint.as_deref())
                    .and_then(|()| start.call(&mut store, ()));
                // What it wrote last goes out before its stdout closes.
                let _ = store.data().send_held_stdout();
                ending.after(store, result);
            })
            .map_err(|e| Failure::new(FailureKind::Internal, format!("cannot spawn: {e}")))?;
        let session = Session::start(GuestIo::new(stdout_rx, backlog, inbox.clone()));
        Ok(Arc::new(Instance {
            session,
            inbox,
            stop,
            inflight: AtomicUsize::new(0),
            timed_out_at: Mutex::new(None),
            started_at: SystemTime::now(),
            memory,
        }))
    }
}

/// The store of a long-lived instance: site-level env, stdio through the inbox and the
/// stdout channel, the site's memory cap, and an epoch check that traps it once `stop` is set.
fn instance_store(
    ctx: &WcgiContext,
    module: &LoadedModule,
    spec: &RunSpec,
    inbox: &Arc<Inbox>,
    stdout: ChannelStdout,
    stop: Arc<AtomicBool>,
    memory: Arc<AtomicUsize>,
) -> Result<Store<GuestState>, Failure> {
    let core = module.core()?;
    let files = core.reaches_files;
    let wasi = crate::wasi_ctx::build(
        spec,
        files,
        InboxStdin(inbox.clone()),
        stdout.clone(),
        GuestStderr::per_second(instance_log(ctx.log.clone(), spec), spec.stderr),
    )?;
    let mut store = Store::new(
        core.module.engine(),
        GuestState {
            wasi,
            // Site-level values only: the starting request's facts stay out of a process
            // that serves everyone.
            args: CStrings::args(&spec.instance_args()),
            environ: cgi_env::instance(spec).to_cstrings(),
            limiter: GuestLimiter::new(spec.limits.memory_bytes).with_gauge(memory),
            inbox: Some(inbox.clone()),
            held_stdout: Some(stdout),
            // Long-lived: each request's deadline is kept by `relay`.
            watch: None,
            net: crate::wasi_ctx::net_files(spec, files, instance_log(ctx.log.clone(), spec)),
        },
    );
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |store| {
        if stop.load(Ordering::SeqCst) {
            return Err(Trap::Interrupt.into());
        }
        // A guest that keeps running after writing has its output sent within a tick.
        store.data().send_held_stdout()?;
        Ok(UpdateDeadline::Continue(1))
    });
    Ok(store)
}

/// What the guest thread does once `_start` returns.
struct Ending {
    /// Set when the host stopped the instance (drained, idle, restarted).
    stop: Arc<AtomicBool>,
    inbox: Arc<Inbox>,
    budget: Arc<InstanceBudget>,
    log: Option<EventLog>,
    path: PathBuf,
    site: String,
}

impl Ending {
    fn after(self, store: Store<GuestState>, result: wasmtime::Result<()>) {
        self.inbox.close();
        drop(store); // closes the guest's stdout: the session ends
        self.budget.give_back();
        let Some(log) = self.log else { return };
        let fields = LogFields {
            module: Some(&self.path),
            site: Some(&self.site),
        };
        let stopped = self.stop.load(Ordering::SeqCst);
        let failure = result.err().filter(|e| {
            let exit = e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|c| c.0);
            // The host's own stop traps a guest that keeps running (an interrupt).
            let interrupted = stopped && e.downcast_ref::<Trap>() == Some(&Trap::Interrupt);
            exit != Some(0) && !interrupted
        });
        match failure {
            Some(e) => log(
                LogLevel::Warn,
                &format!("WCGI instance ended: {e:#}"),
                fields,
            ),
            // Drained, idle or restarted: the host's doing, not the guest's failure.
            None if stopped => log(LogLevel::Info, "WCGI instance stopped", fields),
            None => {}
        }
    }
}

/// The engine log of a long-lived guest (its stderr, its connection events), with its
/// module and site as fields.
fn instance_log(log: Option<EventLog>, spec: &RunSpec) -> EngineLog {
    let (module, site) = (spec.module_path.clone(), spec.script.document_root.clone());
    Arc::new(move |level: LogLevel, message: &str| {
        if let Some(log) = &log {
            let fields = LogFields {
                module: Some(&module),
                site: Some(&site),
            };
            log(level, message, fields);
        }
    })
}
