//! WCGI mode: long-lived instances of a module, each serving many requests over yamux
//! streams on its stdio (go-wagi's protocol). A module exporting `wagi_wcgi` runs this way
//! unless the site says `mode cgi`.
//!
//! - An instance starts with the site-level CGI variables and the configured `env` (never
//!   the facts of the request that started it, see [`crate::cgi_env::instance`]), plus
//!   `WAGI_WCGI=true`, and runs `_start` on a thread of its own for as long as it lives.
//! - Requests are spread round-robin over `instances` instances per module.
//! - An instance that exits, traps or breaks the session is replaced on the next request;
//!   requests in flight on it get 502.
//! - A changed module file drains the old instances (requests in flight finish) and starts
//!   new ones; instances unused for `keepalive` are stopped.

mod budget;
mod context;
mod http1;
mod instance;
mod pools;
mod relay;
mod session;
mod stdio;
mod waiting;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::compile::LoadedModule;
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::locks::lock;
use crate::request::RunSpec;
pub use budget::InstanceBudget;
pub use context::WcgiContext;
use instance::Instance;
pub use pools::{InstanceInfo, SweepKind, WcgiPools};
use session::MAX_STREAMS;
pub use stdio::ChannelStdout;
pub use waiting::Waiting;

/// Starts a request on a long-lived instance of `module` among `pools` (its site's): the
/// instance is picked (or started) now, and the request is relayed as the returned
/// [`Waiting`] is polled.
pub fn start(
    ctx: &WcgiContext,
    pools: &WcgiPools,
    module: &Arc<LoadedModule>,
    spec: RunSpec,
    host: Arc<dyn Host>,
) -> Result<Waiting, Failure> {
    host.release_slot();
    let instance = pools.pick(ctx, module, &spec, host.as_ref())?;
    let in_flight = InFlight::enter(instance)?;
    Ok(Waiting::new(async move {
        let result = relay::relay(&in_flight.0, &spec, &host).await;
        if result
            .as_ref()
            .is_err_and(|f| f.kind == FailureKind::Timeout)
        {
            *lock(&in_flight.0.timed_out_at) = Some(Instant::now());
        }
        result
    }))
}

/// A request counted in its instance's `inflight` until it ends or is abandoned.
struct InFlight(Arc<Instance>);

impl InFlight {
    fn enter(instance: Arc<Instance>) -> Result<Self, Failure> {
        if instance.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            instance.inflight.fetch_sub(1, Ordering::SeqCst);
            return Err(Failure::new(
                FailureKind::Busy,
                format!("the WCGI instance already has {MAX_STREAMS} requests in flight"),
            ));
        }
        Ok(InFlight(instance))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}
