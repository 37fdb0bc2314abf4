//! A guest's side of wasmtime: the state its store holds (here), and the linkers it is
//! instantiated with ([`Linkers`]: WASI preview1 plus the host functions this crate
//! replaces, one file each).
//!
//! Overrides call each other's fall-through (`net::fd_read`, `net::fd_fdstat_get`), not
//! wasmtime-wasi's directly, so the order they are added to a linker does not matter.

mod cli_strings;
pub mod entry;
mod linkers;
mod net;
mod poll;
mod stdin;
mod symlinks;

use std::sync::Arc;

use wasmtime::{AsContextMut, Caller};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::deadline::RequestWatch;
use crate::limiter::GuestLimiter;
use crate::net::NetFiles;
use crate::pipe::Inbox;
pub use cli_strings::CStrings;
pub use linkers::Linkers;

/// The module the replaced WASI functions are imported from.
const WASI: &str = "wasi_snapshot_preview1";

/// The WASI preview1 errnos the replaced functions answer with.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const ACCES: i32 = 2;
    pub const AGAIN: i32 = 6;
    pub const BADF: i32 = 8;
    pub const CONNREFUSED: i32 = 14;
    pub const CONNRESET: i32 = 15;
    pub const FAULT: i32 = 21;
    pub const ILSEQ: i32 = 25;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const MFILE: i32 = 33;
    pub const MSGSIZE: i32 = 35;
    pub const NOENT: i32 = 44;
    pub const OVERFLOW: i32 = 61;
    /// The guest sees "operation not permitted".
    pub const PERM: i32 = 63;
    pub const PIPE: i32 = 64;
    pub const TIMEDOUT: i32 = 73;
}

/// The fdflag a guest sets (and our fds report) for non-blocking reads and writes.
const FDFLAGS_NONBLOCK: u16 = 1 << 2;

/// Little-endian words in guest memory at a guest address; `None` when out of bounds
/// (the caller answers `errno::FAULT`).
fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn write_u32(data: &mut [u8], at: usize, value: u32) -> Option<()> {
    data.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&value.to_le_bytes());
    Some(())
}

/// The most iovecs one read or write takes (POSIX's IOV_MAX on Linux): the list is copied,
/// and its length is the guest's to choose.
const IOV_MAX: i32 = 1024;

/// The guest's iovecs as (address, length) pairs, or the errno: INVAL for more than
/// [`IOV_MAX`], FAULT when any is out of bounds.
fn iovecs(data: &[u8], iovs: i32, iovs_len: i32) -> Result<Vec<(usize, usize)>, i32> {
    if iovs_len > IOV_MAX {
        return Err(errno::INVAL);
    }
    (0..iovs_len.max(0) as usize)
        .map(|i| {
            let at = (iovs as u32 as usize).checked_add(i * 8)?;
            let buf = read_u32(data, at)? as usize;
            let len = read_u32(data, at + 4)? as usize;
            data.get(buf..buf.checked_add(len)?)?;
            Some((buf, len))
        })
        .collect::<Option<_>>()
        .ok_or(errno::FAULT)
}

/// Writes the byte count of a read or write to the guest's `nread`/`nwritten` address:
/// the call's errno.
fn put_count(data: &mut [u8], at: i32, count: usize) -> i32 {
    match write_u32(data, at as u32 as usize, count as u32) {
        Some(()) => errno::SUCCESS,
        None => errno::FAULT,
    }
}

pub struct GuestState {
    pub wasi: WasiP1Ctx,
    /// What `args_get` and `environ_get` answer (wasmtime-wasi's context holds neither).
    pub args: CStrings,
    pub environ: CStrings,
    pub limiter: GuestLimiter,
    /// Where a long-lived (WCGI) instance's stdin comes from; set for those only.
    pub inbox: Option<Arc<Inbox>>,
    /// A long-lived instance's stdout, which holds back what the guest writes until it
    /// waits (see `wcgi::ChannelStdout`); set for those only.
    pub held_stdout: Option<crate::wcgi::ChannelStdout>,
    /// The request a per-request (CGI) guest serves: its deadline and client.
    pub watch: Option<RequestWatch>,
    /// The guest's connection files, when its site has networking on.
    pub net: Option<NetFiles>,
}

impl GuestState {
    /// Sends the stdout a long-lived guest has held back: it is about to wait, or a tick
    /// passed.
    pub fn send_held_stdout(&self) -> wasmtime::Result<()> {
        match &self.held_stdout {
            Some(stdout) => stdout.send_held().or_else(|e| match e {
                // Closed: the session ended; the guest learns it at its next write.
                wasmtime_wasi::p2::StreamError::Closed => Ok(()),
                wasmtime_wasi::p2::StreamError::Trap(e) => Err(e),
                wasmtime_wasi::p2::StreamError::LastOperationFailed(e) => Err(e),
            }),
            None => Ok(()),
        }
    }
}

/// The guest's state, with wasmtime-wasi's per-call copy budget set as its own linker sets
/// it before each call: a replacement calling wasmtime-wasi's function directly must do the
/// same, or a guest whose first WASI call is a replaced one gets ENOMEM from any call that
/// copies guest memory (the budget starts at 0).
pub fn with_hostcall_fuel<'a>(caller: &'a mut Caller<'_, GuestState>) -> &'a mut GuestState {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let state = caller.data_mut();
    state.wasi.set_hostcall_fuel(fuel);
    state
}

/// The guest's exported linear memory, for host functions that read or write it; also
/// readies wasmtime-wasi for a direct call ([`with_hostcall_fuel`]).
pub fn exported_memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<wasmtime::Memory> {
    with_hostcall_fuel(caller);
    caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::format_err!("guest exports no memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iovecs_are_bounded_in_count_and_memory() {
        // Two iovecs at 0: (16, 4) and (20, 0), in 32 bytes of memory.
        let mut data = vec![0u8; 32];
        data[0..4].copy_from_slice(&16u32.to_le_bytes());
        data[4..8].copy_from_slice(&4u32.to_le_bytes());
        data[8..12].copy_from_slice(&20u32.to_le_bytes());
        assert_eq!(iovecs(&data, 0, 2), Ok(vec![(16, 4), (20, 0)]));
        // A buffer past the end of memory, or the list itself past it.
        data[4..8].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(iovecs(&data, 0, 2), Err(errno::FAULT));
        assert_eq!(iovecs(&data, 28, 1), Err(errno::FAULT));
        // More than IOV_MAX is refused before any is read.
        assert_eq!(iovecs(&data, 0, IOV_MAX + 1), Err(errno::INVAL));
        assert_eq!(iovecs(&data, 0, 0), Ok(vec![]));
    }
}
