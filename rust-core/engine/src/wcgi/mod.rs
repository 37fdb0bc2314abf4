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
pub use pools::{InstanceInfo, SweepKind, WcgiPools};
use session::MAX_STREAMS;
pub use stdio::ChannelStdout;

/// Runs a request on a long-lived instance of `module` among `pools` (its site's).
pub fn handle(
    ctx: &WcgiContext,
    pools: &WcgiPools,
    module: &Arc<LoadedModule>,
    spec: &RunSpec,
    host: &Arc<dyn Host>,
) -> Result<(), Failure> {
    host.release_slot();
    let instance = pools.pick(ctx, module, spec, host.as_ref())?;
    if instance.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        instance.inflight.fetch_sub(1, Ordering::SeqCst);
        return Err(Failure::new(
            FailureKind::Busy,
            format!("the WCGI instance already has {MAX_STREAMS} requests in flight"),
        ));
    }
    let result = relay::relay(&instance, spec, host);
    instance.inflight.fetch_sub(1, Ordering::SeqCst);
    if result
        .as_ref()
        .is_err_and(|f| f.kind == FailureKind::Timeout)
    {
        *lock(&instance.timed_out_at) = Some(Instant::now());
    }
    result
}
