//! `poll_oneoff` bounded by the request's deadline: epoch interruption stops a guest running
//! wasm, not one waiting in a host call, so a per-request guest sleeping or waiting for
//! input is stopped here when its [`RequestWatch`](crate::deadline::RequestWatch) is over.
//!
//! wasmtime-wasi serves a lone relative clock (a plain sleep) with `std::thread::sleep`
//! when blocking the current thread is allowed, which it is for speed (file and stream
//! calls stay on the guest's thread); so that one case is served here, as an async sleep
//! the watch can cut short.

use std::time::Duration;

use wasmtime::{Caller, Linker, Trap};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::runtime::in_tokio;

use super::{errno, exported_memory, read_u64, write_u32, GuestState, WASI};

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
            if let Some(watch) = &watch {
                if let Some(timeout) = lone_relative_sleep(data, subs, nsubs) {
                    return sleep_bounded(watch, timeout, data, subs, events, nevents);
                }
            }
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

/// WASI preview1 layouts: a subscription is 48 bytes (userdata u64 at 0, tag u8 at 8, clock
/// timeout u64 at 24, flags u16 at 40); an event is 32 bytes (userdata u64 at 0, error u16
/// at 8, type u8 at 10, nbytes u64 at 16, flags u16 at 24).
const SUBSCRIPTION_LEN: usize = 48;
const EVENT_LEN: usize = 32;
const TAG_CLOCK: u8 = 0;
const SUBCLOCK_ABSTIME: u16 = 1;

/// The timeout of a `poll_oneoff` that only sleeps: one subscription, a relative clock.
fn lone_relative_sleep(data: &[u8], subs: i32, nsubs: i32) -> Option<Duration> {
    let sub = data.get(subs as u32 as usize..)?.get(..SUBSCRIPTION_LEN)?;
    let flags = u16::from_le_bytes([sub[40], sub[41]]);
    if nsubs != 1 || sub[8] != TAG_CLOCK || flags & SUBCLOCK_ABSTIME != 0 {
        return None;
    }
    read_u64(sub, 24).map(Duration::from_nanos)
}

/// Sleeps `timeout` unless the watch is over first (a trap), then reports the clock event
/// as wasmtime-wasi does.
fn sleep_bounded(
    watch: &crate::deadline::RequestWatch,
    timeout: Duration,
    data: &mut [u8],
    subs: i32,
    events: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    in_tokio(async {
        tokio::select! {
            () = tokio::time::sleep(timeout) => Ok(()),
            () = watch.until_over() => Err(wasmtime::Error::from(Trap::Interrupt)),
        }
    })?;
    let Some(userdata) = read_u64(data, subs as u32 as usize) else {
        return Ok(errno::FAULT);
    };
    let mut event = [0u8; EVENT_LEN];
    event[..8].copy_from_slice(&userdata.to_le_bytes());
    event[10] = TAG_CLOCK;
    event[16..24].copy_from_slice(&1u64.to_le_bytes());
    let at = events as u32 as usize;
    let Some(slot) = data.get_mut(at..at + EVENT_LEN) else {
        return Ok(errno::FAULT);
    };
    slot.copy_from_slice(&event);
    if write_u32(data, nevents as u32 as usize, 1).is_none() {
        return Ok(errno::FAULT);
    }
    Ok(errno::SUCCESS)
}
