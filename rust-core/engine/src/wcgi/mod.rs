//! WCGI mode: long-lived instances of a module, each serving many requests over yamux
//! streams on its stdio (go-wagi's protocol). A module exporting `wagi_wcgi` runs this way
//! unless the site says `mode cgi`.
//!
//! - An instance starts with the site-level CGI variables and the configured `env` (never
//!   the facts of the request that started it, see [`cgi_env::instance`]), plus
//!   `WAGI_WCGI=true`, and runs `_start` on a thread of its own for as long as it lives.
//! - Requests are spread round-robin over `instances` instances per module.
//! - An instance that exits, traps or breaks the session is replaced on the next request;
//!   requests in flight on it get 502.
//! - A changed module file drains the old instances (requests in flight finish) and starts
//!   new ones; instances unused for `keepalive` are stopped.

mod http1;
mod session;
mod stdio;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::AsyncReadExt;
use wasmtime::{Linker, Store, Trap, UpdateDeadline};

use crate::cgi_env;
use crate::compile::LoadedModule;
use crate::failure::{Failure, FailureKind};
use crate::guest::GuestState;
use crate::host::{EngineLog, Host, LogLevel};
use crate::limiter::GuestLimiter;
use crate::locks::lock;
use crate::request::RunSpec;
use crate::stdio::{GuestStderr, StderrSink};
use stdio::{ChannelStdout, InboxStdin};

use crate::pipe::{Inbox, StdoutBacklog};
use session::{GuestIo, Session};

/// How often a waiting request checks whether its client is still there.
const CANCEL_CHECK: Duration = Duration::from_millis(20);

/// Most requests in flight on one instance (yamux streams); more answer 503. With yamux's
/// 256 KiB window per stream this bounds what a guest can make the host buffer.
pub const MAX_STREAMS: usize = 256;

/// An instance that has left its stdin unread this long after one of its requests timed
/// out is wedged (a Go guest busy in a loop never yields to its reader goroutine) and is
/// replaced.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// Counts long-lived instances against the engine's `wcgi_instance_slots`: each holds a
/// pool slot for its whole life, so they are admitted here rather than found missing
/// later by a CGI request.
pub struct InstanceBudget {
    live: AtomicUsize,
    limit: usize,
}

impl InstanceBudget {
    pub fn new(limit: u32) -> Self {
        InstanceBudget {
            live: AtomicUsize::new(0),
            limit: limit as usize,
        }
    }

    /// Takes a place for a new instance; false when all are taken.
    fn take(&self) -> bool {
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One long-lived instance.
struct Instance {
    session: Session,
    inbox: Arc<Inbox>,
    stop: Arc<AtomicBool>,
    inflight: AtomicUsize,
    /// When a request on this instance last ran past its time limit.
    timed_out_at: Mutex<Option<Instant>>,
}

impl Instance {
    /// True when a request timed out and the guest has not read its input since: it is
    /// stuck, and nothing else it serves can make progress.
    fn wedged(&self, now: Instant) -> bool {
        let late =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) > STALL_GRACE);
        late(*lock(&self.timed_out_at)) && late(self.inbox.unread_since())
    }

    fn shut_down(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes a guest waiting in poll_oneoff: it reads end-of-input and winds down; the
        // stop flag traps it at the next epoch tick if it keeps running wasm instead.
        self.inbox.close();
    }

    fn alive(&self) -> bool {
        !self.session.ended() && !self.stop.load(Ordering::SeqCst)
    }
}

struct Pool {
    module: Arc<LoadedModule>,
    instances: Vec<Arc<Instance>>,
    next: usize,
    last_used: Instant,
    keepalive: Duration,
}

/// All WCGI instances of a site, by module path and site root.
#[derive(Default)]
pub struct WcgiPools {
    pools: Mutex<HashMap<(PathBuf, String), Pool>>,
    /// Instances of replaced module versions, stopped once their requests finish.
    draining: Mutex<Vec<Arc<Instance>>>,
}

/// Sends a long-lived guest's stderr to the engine log, attributed to its module.
fn stderr_sink(log: Option<EngineLog>, module: PathBuf) -> StderrSink {
    Arc::new(move |level: LogLevel, message: &str| {
        if let Some(log) = &log {
            let what = match level {
                LogLevel::GuestStderr => "guest stderr",
                _ => "guest",
            };
            let line = format!("{what} (WCGI) {}: {message}", module.display());
            log(LogLevel::Info, &line);
        }
    })
}

/// What a sweep did, for the log.
pub enum SweepEvent {
    /// The module's instances went unused for its keepalive and were stopped.
    Idle(PathBuf),
    /// An instance stayed busy after a request timed out and was stopped, to be replaced.
    Wedged(PathBuf),
}

impl SweepEvent {
    pub fn describe(&self) -> String {
        match self {
            SweepEvent::Idle(p) => format!("stopped idle WCGI instances of {}", p.display()),
            SweepEvent::Wedged(p) => format!(
                "a WCGI instance of {} stayed busy after a request timed out; replacing it",
                p.display()
            ),
        }
    }
}

impl WcgiPools {
    /// Stops idle pools, wedged instances and finished draining instances.
    pub fn sweep(&self, now: Instant) -> Vec<SweepEvent> {
        let mut events = Vec::new();
        lock(&self.pools).retain(|(path, _), pool| {
            let keep = now.saturating_duration_since(pool.last_used) < pool.keepalive;
            if !keep {
                pool.instances.iter().for_each(|i| i.shut_down());
                events.push(SweepEvent::Idle(path.clone()));
                return false;
            }
            for instance in pool.instances.iter().filter(|i| i.alive() && i.wedged(now)) {
                instance.shut_down();
                events.push(SweepEvent::Wedged(path.clone()));
            }
            true
        });
        lock(&self.draining).retain(|i| {
            let busy = i.inflight.load(Ordering::SeqCst) > 0 && i.alive();
            if !busy {
                i.shut_down();
            }
            busy
        });
        events
    }

    /// Stops every instance (engine shutdown).
    pub fn stop_all(&self) {
        for pool in lock(&self.pools).values() {
            pool.instances.iter().for_each(|i| i.shut_down());
        }
        lock(&self.draining).iter().for_each(|i| i.shut_down());
    }
}

/// What long-lived instances need from the engine that runs them.
pub struct WcgiContext {
    pub engine: wasmtime::Engine,
    /// The linker with non-blocking stdin.
    pub linker: Linker<GuestState>,
    /// Long-lived instances alive now, against the engine's `wcgi_instance_slots`.
    pub budget: Arc<InstanceBudget>,
    /// Where an instance's stderr and its end are logged: it outlives any request.
    pub log: Option<EngineLog>,
}

impl WcgiContext {
    /// Runs a request on a long-lived instance of `module` among `pools` (its site's).
    pub fn handle(
        &self,
        pools: &WcgiPools,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
        host: &Arc<dyn Host>,
    ) -> Result<(), Failure> {
        host.release_slot();
        let instance = self.pick_instance(pools, module, spec, host.as_ref())?;
        if instance.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            instance.inflight.fetch_sub(1, Ordering::SeqCst);
            return Err(Failure::new(
                FailureKind::Busy,
                format!("the WCGI instance already has {MAX_STREAMS} requests in flight"),
            ));
        }
        let result = relay(&instance, spec, host.as_ref());
        instance.inflight.fetch_sub(1, Ordering::SeqCst);
        if result
            .as_ref()
            .is_err_and(|f| f.kind == FailureKind::Timeout)
        {
            *lock(&instance.timed_out_at) = Some(Instant::now());
        }
        result
    }

    fn pick_instance(
        &self,
        pools: &WcgiPools,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
        host: &dyn Host,
    ) -> Result<Arc<Instance>, Failure> {
        let draining = &pools.draining;
        let mut pools = lock(&pools.pools);
        // The root is mounted into the instance: one pool per module and root.
        let key = (spec.module_path.clone(), spec.script.document_root.clone());
        let pool = pools.entry(key).or_insert_with(|| Pool {
            module: module.clone(),
            instances: Vec::new(),
            next: 0,
            last_used: Instant::now(),
            keepalive: spec.cache.keepalive,
        });
        if !Arc::ptr_eq(&pool.module, module) {
            host.log(
                LogLevel::Info,
                "module changed; draining its WCGI instances",
            );
            lock(draining).append(&mut pool.instances);
            pool.module = module.clone();
        }
        let before = pool.instances.len();
        pool.instances.retain(|i| i.alive());
        if pool.instances.len() < before {
            host.log(LogLevel::Warn, "a WCGI instance ended; replacing it");
        }
        pool.last_used = Instant::now();
        pool.keepalive = spec.cache.keepalive;
        let wanted = spec.wcgi_instances.max(1) as usize;
        while pool.instances.len() < wanted {
            let instance = self.start_instance(module, spec)?;
            host.log(LogLevel::Info, "started a WCGI instance");
            pool.instances.push(instance);
        }
        pool.next = (pool.next + 1) % pool.instances.len();
        Ok(pool.instances[pool.next].clone())
    }

    fn start_instance(
        &self,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
    ) -> Result<Arc<Instance>, Failure> {
        if !self.budget.take() {
            return Err(Failure::new(
                FailureKind::Busy,
                format!(
                    "all {} WCGI instance slots of the process are taken",
                    self.budget.limit
                ),
            ));
        }
        // Given back when the instance's thread ends, or here if it never starts.
        let budget = self.budget.clone();
        let started = self.spawn_instance(module, spec, budget.clone());
        if started.is_err() {
            budget.give_back();
        }
        started
    }

    fn spawn_instance(
        &self,
        module: &Arc<LoadedModule>,
        spec: &RunSpec,
        budget: Arc<InstanceBudget>,
    ) -> Result<Arc<Instance>, Failure> {
        let internal = |what: &str, e: wasmtime::Error| {
            Failure::new(FailureKind::Internal, format!("{what}: {e:#}"))
        };
        let inbox = Arc::new(Inbox::default());
        let (stdout_tx, stdout_rx) = tokio::sync::mpsc::unbounded_channel();
        let backlog = Arc::new(StdoutBacklog::default());
        // Site-level values only: the starting request's facts stay out of a process that
        // serves everyone.
        let env = cgi_env::instance(spec);
        let wasi = crate::wasi_ctx::build(
            spec,
            &env,
            InboxStdin(inbox.clone()),
            ChannelStdout {
                chunks: stdout_tx,
                backlog: backlog.clone(),
            },
            GuestStderr::per_second(stderr_sink(self.log.clone(), spec.module_path.clone())),
        )?;
        let mut store = Store::new(
            &self.engine,
            GuestState {
                wasi,
                limiter: GuestLimiter::new(spec.limits.memory_bytes),
                inbox: Some(inbox.clone()),
                // Long-lived: each request's deadline is kept by `relay`.
                watch: None,
            },
        );
        store.limiter(|s| &mut s.limiter);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if stopping.load(Ordering::SeqCst) {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let instance = self
            .linker
            .instantiate(&mut store, &module.module)
            .map_err(|e| {
                Failure::new(
                    FailureKind::BadModule,
                    format!("cannot start WCGI instance: {e:#}"),
                )
            })?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| internal("no _start", e))?;
        let log = self.log.clone();
        let path = spec.module_path.clone();
        let ended_inbox = inbox.clone();
        std::thread::Builder::new()
            .name("wagi-wcgi-guest".into())
            .spawn(move || {
                let result = start.call(&mut store, ());
                ended_inbox.close();
                drop(store); // closes the guest's stdout: the session ends
                budget.give_back();
                if let (Some(log), Err(e)) = (log, result) {
                    let exit = e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|c| c.0);
                    if exit != Some(0) {
                        let msg = format!("WCGI instance of {} ended: {e:#}", path.display());
                        log(LogLevel::Warn, &msg);
                    }
                }
            })
            .map_err(|e| Failure::new(FailureKind::Internal, format!("cannot spawn: {e}")))?;
        let session = Session::start(GuestIo::new(stdout_rx, backlog, inbox.clone()));
        Ok(Arc::new(Instance {
            session,
            inbox,
            stop,
            inflight: AtomicUsize::new(0),
            timed_out_at: Mutex::new(None),
        }))
    }
}

/// Relays one request over a new stream of `instance`'s session.
fn relay(instance: &Instance, spec: &RunSpec, host: &dyn Host) -> Result<(), Failure> {
    // The server bounds its body reads and response writes by the same deadline, so a
    // slow client cannot hold this thread inside them past it.
    host.set_deadline(spec.limits.timeout);
    let head_only = spec.http.method.eq_ignore_ascii_case("HEAD");
    let exchange = async {
        let stream = instance
            .session
            .open()
            .await
            .map_err(|e| Failure::new(FailureKind::InstanceGone, e))?;
        let (rd, wr) = stream.split();
        let send = std::pin::pin!(http1::send_request(wr, spec, host));
        let relay = std::pin::pin!(http1::relay_response(rd, head_only, host));
        // Only the answer counts: a guest may answer (403, say) without reading the whole
        // body, and its answer must reach the client while the upload is still stalled on
        // the guest's window. What is left of the body is then the server's to drain or
        // close; a failed send (the client went away mid-body) shows in the answer too.
        match futures::future::select(send, relay).await {
            futures::future::Either::Left((_, relay)) => relay.await,
            futures::future::Either::Right((relayed, _)) => relayed,
        }
    };
    let deadline = Instant::now() + spec.limits.timeout;
    let cancelled = async {
        loop {
            tokio::time::sleep(CANCEL_CHECK).await;
            // Past the deadline the request's context ends too: the timeout branch answers.
            if host.cancelled() && Instant::now() < deadline {
                return;
            }
        }
    };
    let ended = instance.session.wait_ended();
    session::runtime().block_on(async {
        tokio::select! {
            result = tokio::time::timeout(spec.limits.timeout, exchange) => result.unwrap_or_else(|_| {
                Err(Failure::new(FailureKind::Timeout, "guest ran past its time limit"))
            }),
            () = cancelled => Err(Failure::new(FailureKind::ClientGone, "client went away")),
            () = ended => Err(Failure::new(FailureKind::InstanceGone, "the WCGI instance ended")),
        }
    })
}
