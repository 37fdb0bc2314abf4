//! `poll_oneoff` bounded by the request's deadline: epoch interruption stops a guest running
//! wasm, not one waiting in a host call, so a per-request guest sleeping or waiting for
//! input is stopped here when its [`RequestWatch`](crate::deadline::RequestWatch) is over.

use wasmtime::{Caller, Linker, Trap};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::runtime::in_tokio;

use super::{exported_memory, GuestState, WASI};

/// Wraps `poll_oneoff` so a guest waiting in it is stopped at its request's deadline or when
/// its client goes away; long-lived (WCGI) instances, which have no watch, wait as before.
pub fn bound_poll_oneoff(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI,
        "poll_oneoff",
        |mut caller: Caller<'_, GuestState>,
         subs: i32,
         events: i32,
         nsubs: i32,
         nevents: i32|
         -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let watch = state.watch.clone();
            let mut guest = wiggle::GuestMemory::Unshared(data);
            let poll = p1::poll_oneoff(&mut state.wasi, &mut guest, subs, events, nsubs, nevents);
            let Some(watch) = watch else {
                return in_tokio(poll);
            };
            in_tokio(async move {
                tokio::select! {
                    result = poll => result,
                    () = watch.until_over() => Err(Trap::Interrupt.into()),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
