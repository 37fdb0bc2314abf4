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

use super::{errno, exported_memory, net, read_u32, read_u64, write_u32, GuestState, WASI};

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
            // A long-lived guest about to wait sends what it wrote first.
            state.send_held_stdout()?;
            if let Some(result) = poll_with_conns(state, data, subs, events, nsubs, nevents) {
                return result;
            }
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
const TAG_FD_READ: u8 = 1;
const TAG_FD_WRITE: u8 = 2;
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

/// `poll_oneoff` when some subscriptions are on connection fds (`guest::net`), which
/// wasmtime-wasi does not know: `None` when none are. Ready connections answer at once;
/// otherwise the other subscriptions (clocks, stdin, files) are handed to wasmtime-wasi,
/// moved to the front of the guest's array for the call and put back after, and whichever
/// comes first wins: its events, or a connection waking (then the connections' events,
/// possibly none: Go's poller just polls again).
fn poll_with_conns(
    state: &mut GuestState,
    data: &mut [u8],
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> Option<wasmtime::Result<i32>> {
    state.net.as_ref()?;
    let start = subs as u32 as usize;
    let len = (nsubs.max(0) as usize).checked_mul(SUBSCRIPTION_LEN)?;
    let original = data.get(start..start.checked_add(len)?)?.to_vec();
    let mut conns = Vec::new();
    let mut others = Vec::new();
    for sub in original.chunks_exact(SUBSCRIPTION_LEN) {
        let fd = read_u32(sub, 16).unwrap_or(u32::MAX);
        match sub[8] {
            TAG_FD_READ | TAG_FD_WRITE if net::is_conn(state, fd as i32) => {
                let userdata = read_u64(sub, 0).unwrap_or_default();
                conns.push((userdata, sub[8], fd));
            }
            _ => others.extend_from_slice(sub),
        }
    }
    if conns.is_empty() {
        return None;
    }
    let ready =
        |state: &GuestState, data: &mut [u8]| conn_events(state, data, &conns, events, nevents);
    if let Some(done) = ready(state, data).filter(|&(n, _)| n > 0) {
        return Some(Ok(done.1));
    }
    let wake = state.net.as_ref()?.wake.clone();
    let watch = state.watch.clone();
    let over = async move {
        match watch {
            Some(watch) => watch.until_over().await,
            None => std::future::pending().await,
        }
    };
    let others_len = (others.len() / SUBSCRIPTION_LEN) as i32;
    data[start..start + others.len()].copy_from_slice(&others);
    let outcome = {
        let mut guest = wiggle::GuestMemory::Unshared(&mut *data);
        let poll = p1::poll_oneoff(
            &mut state.wasi,
            &mut guest,
            subs,
            events,
            others_len,
            nevents,
        );
        in_tokio(async {
            tokio::select! {
                result = poll, if others_len > 0 => Ok(Some(result)),
                () = wake.notified() => Ok(None),
                () = over => Err(wasmtime::Error::from(Trap::Interrupt)),
            }
        })
    };
    data[start..start + original.len()].copy_from_slice(&original);
    Some(match outcome {
        Err(trap) => Err(trap),
        Ok(Some(result)) => result,
        Ok(None) => Ok(ready(state, data).map_or(errno::FAULT, |(_, errno)| errno)),
    })
}

/// Writes an event for each ready connection subscription: `(events written, errno)`.
fn conn_events(
    state: &GuestState,
    data: &mut [u8],
    conns: &[(u64, u8, u32)],
    events: i32,
    nevents: i32,
) -> Option<(usize, i32)> {
    let mut n = 0usize;
    for &(userdata, tag, fd) in conns {
        let Some(nbytes) = net::ready(state, fd, tag == TAG_FD_WRITE) else {
            continue;
        };
        let mut event = [0u8; EVENT_LEN];
        event[..8].copy_from_slice(&userdata.to_le_bytes());
        event[10] = tag;
        event[16..24].copy_from_slice(&nbytes.to_le_bytes());
        let at = (events as u32 as usize).checked_add(n * EVENT_LEN)?;
        data.get_mut(at..at.checked_add(EVENT_LEN)?)?
            .copy_from_slice(&event);
        n += 1;
    }
    write_u32(data, nevents as u32 as usize, n as u32)?;
    Some((n, errno::SUCCESS))
}
