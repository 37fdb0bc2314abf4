//! The per-instance state a guest's store holds.

use wasmtime_wasi::p1::WasiP1Ctx;

use crate::limiter::GuestLimiter;

pub struct GuestState {
    pub wasi: WasiP1Ctx,
    pub limiter: GuestLimiter,
}
