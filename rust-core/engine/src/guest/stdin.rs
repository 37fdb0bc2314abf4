//! Non-blocking stdin for long-lived (WCGI) guests: wasmtime-wasi implements `fd_read` and
//! `fd_fdstat_get` as blocking for stdin, so both are replaced for fd 0. `fd_fdstat_get`
//! reports NONBLOCK (so Go's runtime registers stdin with its poller) and `fd_read` takes
//! from the guest's [`Inbox`], answering EAGAIN when it is empty (so the reading goroutine
//! parks instead of freezing the whole guest).

use wasmtime::{Caller, Linker};

use super::{errno, exported_memory, iovecs, net, put_count, GuestState, FDFLAGS_NONBLOCK, WASI};
use crate::pipe::{Inbox, Take};

/// Replaces `fd_read` and `fd_fdstat_get` in `linker` for fd 0 (see the module docs);
/// other fds go to wasmtime-wasi's own implementations.
pub fn shadow_stdin(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI,
        "fd_read",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nread: i32|
         -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            if fd != 0 {
                return net::fd_read(state, data, fd, iovs, iovs_len, nread);
            }
            let Some(inbox) = state.inbox.clone() else {
                return Err(wasmtime::format_err!("stdin override outside WCGI"));
            };
            Ok(read_stdin(&inbox, data, iovs, iovs_len, nread))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut caller: Caller<'_, GuestState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let errno = net::fd_fdstat_get(state, data, fd, stat)?;
            if fd != 0 || errno != errno::SUCCESS {
                return Ok(errno);
            }
            // fdstat: filetype u8 at 0, fs_flags u16 at 2.
            let at = stat as u32 as usize + 2;
            let Some(flags) = data.get_mut(at..at + 2) else {
                return Ok(errno::FAULT);
            };
            let value = u16::from_le_bytes([flags[0], flags[1]]) | FDFLAGS_NONBLOCK;
            flags.copy_from_slice(&value.to_le_bytes());
            Ok(errno::SUCCESS)
        },
    )?;
    Ok(())
}

/// `fd_read(0, iovs, iovs_len, nread)` against the inbox: EAGAIN when empty, 0 bytes at
/// the end of input.
fn read_stdin(inbox: &Inbox, data: &mut [u8], iovs: i32, iovs_len: i32, nread: i32) -> i32 {
    let bufs = match iovecs(data, iovs, iovs_len) {
        Ok(bufs) => bufs,
        Err(errno) => return errno,
    };
    let mut total = 0usize;
    let mut ended = false;
    for (buf, len) in bufs {
        match inbox.take(&mut data[buf..buf + len]) {
            Take::Bytes(n) if n == len => total += n,
            Take::Bytes(n) => {
                total += n;
                break;
            }
            Take::Empty => break,
            Take::Closed => {
                ended = true;
                break;
            }
        }
    }
    if total == 0 && !ended {
        return errno::AGAIN;
    }
    put_count(data, nread, total)
}
