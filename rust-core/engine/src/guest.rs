//! The per-instance state a guest's store holds.

use wasmtime::Caller;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::deadline::RequestWatch;
use crate::limiter::GuestLimiter;
use crate::wcgi::WcgiState;

pub struct GuestState {
    pub wasi: WasiP1Ctx,
    pub limiter: GuestLimiter,
    /// Set for long-lived (WCGI) instances only.
    pub wcgi: Option<WcgiState>,
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
