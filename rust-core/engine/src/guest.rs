//! The per-instance state a guest's store holds.

use wasmtime_wasi::p1::WasiP1Ctx;

use crate::limiter::GuestLimiter;
use crate::wcgi::WcgiState;

pub struct GuestState {
    pub wasi: WasiP1Ctx,
    pub limiter: GuestLimiter,
    /// Set for long-lived (WCGI) instances only.
    pub wcgi: Option<WcgiState>,
}
