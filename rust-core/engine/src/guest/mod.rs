//! A guest's side of wasmtime: the state its store holds, and the linkers it is
//! instantiated with (WASI preview1 plus the host functions this crate replaces).

mod poll;
mod stdin;
mod symlinks;

use std::sync::Arc;

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::deadline::RequestWatch;
use crate::limiter::GuestLimiter;
use crate::pipe::Inbox;

/// The module the replaced WASI functions are imported from.
const WASI: &str = "wasi_snapshot_preview1";

pub struct GuestState {
    pub wasi: WasiP1Ctx,
    pub limiter: GuestLimiter,
    /// Where a long-lived (WCGI) instance's stdin comes from; set for those only.
    pub inbox: Option<Arc<Inbox>>,
    /// The request a per-request (CGI) guest serves: its deadline and client.
    pub watch: Option<RequestWatch>,
}

/// The guest's exported linear memory, for host functions that read or write it.
pub fn exported_memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<wasmtime::Memory> {
    caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::format_err!("guest exports no memory"))
}

/// The two linkers of an engine.
pub struct Linkers {
    /// WASI with symlinks kept downward and `poll_oneoff` bounded by the request's watch.
    pub cgi: Linker<GuestState>,
    /// `cgi` with stdin made non-blocking, for long-lived instances.
    pub wcgi: Linker<GuestState>,
}

impl Linkers {
    pub fn new(engine: &wasmtime::Engine) -> wasmtime::Result<Self> {
        let mut cgi = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut cgi, |s: &mut GuestState| &mut s.wasi)?;
        symlinks::restrict_symlinks(&mut cgi)?;
        poll::bound_poll_oneoff(&mut cgi)?;
        let mut wcgi = cgi.clone();
        stdin::shadow_stdin(&mut wcgi)?;
        Ok(Linkers { cgi, wcgi })
    }
}
