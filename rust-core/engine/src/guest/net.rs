//! The connection files under `/dev` (see `crate::net`): `path_open` on the `/dev` preopen
//! and the fd functions on connection fds are served here; every other call goes to
//! wasmtime-wasi. `poll_oneoff` on connection fds is in `poll.rs`.
//!
//! Connection fds report FDFLAG_NONBLOCK once the guest asks for it (Go's `os.OpenFile`
//! does, through `fd_fdstat_set_flags`): then a read with nothing waiting and a write with
//! no room answer EAGAIN, the goroutine parks and Go's scheduler waits in `poll_oneoff`, so
//! a long-lived instance keeps serving while one request waits on the network. A guest
//! that leaves the fd blocking waits in the read itself, bounded by its request's deadline.

use wasmtime::{Caller, Linker, Trap};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::runtime::in_tokio;

use super::{
    errno, exported_memory, iovecs, put_count, with_hostcall_fuel, write_u32, GuestState,
    FDFLAGS_NONBLOCK, WASI,
};
use crate::net::conn::Read;
use crate::net::files::OpenError;

const FILETYPE_SOCKET_DGRAM: u8 = 5;
const FILETYPE_SOCKET_STREAM: u8 = 6;
const OFLAGS_DIRECTORY: i32 = 1 << 1;
/// fd_read, fd_write, fd_fdstat_set_flags, fd_filestat_get, poll_fd_readwrite.
const RIGHTS: u64 = (1 << 1) | (1 << 6) | (1 << 3) | (1 << 21) | (1 << 27);

/// True when `fd` is one of the guest's connection files.
pub fn is_conn(state: &GuestState, fd: i32) -> bool {
    state.net.as_ref().is_some_and(|n| n.owns(fd as u32))
}

/// Replaces the functions listed in the module docs in `linker`.
pub fn shadow_net(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI,
        "path_open",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         dirflags: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         base: i64,
         inheriting: i64,
         fdflags: i32,
         fd_out: i32|
         -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let dev = state.net.as_ref().is_some_and(|n| n.dev_fd == fd as u32);
            let start = path as u32 as usize;
            let name = data
                .get(start..start.saturating_add(path_len as u32 as usize))
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::to_string);
            let ours = dev && oflags & OFLAGS_DIRECTORY == 0 && name.as_deref() != Some(".");
            if !ours {
                let mut guest = wiggle::GuestMemory::Unshared(data);
                return in_tokio(p1::path_open(
                    &mut state.wasi,
                    &mut guest,
                    fd,
                    dirflags,
                    path,
                    path_len,
                    oflags,
                    base,
                    inheriting,
                    fdflags as u16 as i32,
                    fd_out,
                ));
            }
            let Some(name) = name else {
                return Ok(errno::FAULT);
            };
            let opened = open(state, &name)?;
            Ok(match opened {
                Ok(new_fd) => match write_u32(data, fd_out as u32 as usize, new_fd) {
                    Some(()) => errno::SUCCESS,
                    None => errno::FAULT,
                },
                Err(err) => open_errno(err),
            })
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nwritten: i32|
         -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            if !is_conn(state, fd) {
                let mut guest = wiggle::GuestMemory::Unshared(data);
                return in_tokio(p1::fd_write(
                    &mut state.wasi,
                    &mut guest,
                    fd,
                    iovs,
                    iovs_len,
                    nwritten,
                ));
            }
            write(state, data, fd, iovs, iovs_len, nwritten)
        },
    )?;
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
            fd_read(state, data, fd, iovs, iovs_len, nread)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_close",
        |mut caller: Caller<'_, GuestState>, fd: i32| -> wasmtime::Result<i32> {
            let state = with_hostcall_fuel(&mut caller);
            if let Some(net) = state.net.as_mut() {
                if net.close(fd as u32) {
                    return Ok(errno::SUCCESS);
                }
            }
            in_tokio(p1::fd_close(
                &mut state.wasi,
                &mut wiggle::GuestMemory::Unshared(&mut []),
                fd,
            ))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut caller: Caller<'_, GuestState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            fd_fdstat_get(state, data, fd, stat)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_set_flags",
        |mut caller: Caller<'_, GuestState>, fd: i32, flags: i32| -> wasmtime::Result<i32> {
            let state = with_hostcall_fuel(&mut caller);
            if let Some(net) = state.net.as_mut().filter(|n| n.owns(fd as u32)) {
                net.set_nonblock(fd as u32, flags as u16 & FDFLAGS_NONBLOCK != 0);
                return Ok(errno::SUCCESS);
            }
            let mut guest = wiggle::GuestMemory::Unshared(&mut []);
            p1::fd_fdstat_set_flags(&mut state.wasi, &mut guest, fd, flags)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_filestat_get",
        |mut caller: Caller<'_, GuestState>, fd: i32, out: i32| -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let Some(conn) = state.net.as_ref().and_then(|n| n.conn(fd as u32)) else {
                let mut guest = wiggle::GuestMemory::Unshared(data);
                return in_tokio(p1::fd_filestat_get(&mut state.wasi, &mut guest, fd, out));
            };
            // filestat: 64 bytes, filetype u8 at 16, the rest zero.
            let at = out as u32 as usize;
            let Some(slot) = data.get_mut(at..at.saturating_add(64)) else {
                return Ok(errno::FAULT);
            };
            slot.fill(0);
            slot[16] = filetype(conn.datagram());
            Ok(errno::SUCCESS)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn filetype(datagram: bool) -> u8 {
    if datagram {
        FILETYPE_SOCKET_DGRAM
    } else {
        FILETYPE_SOCKET_STREAM
    }
}

/// `fd_read` for connection fds, wasmtime-wasi's for the rest (stdin's override calls it).
pub fn fd_read(
    state: &mut GuestState,
    data: &mut [u8],
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    if !is_conn(state, fd) {
        let mut guest = wiggle::GuestMemory::Unshared(data);
        return in_tokio(p1::fd_read(
            &mut state.wasi,
            &mut guest,
            fd,
            iovs,
            iovs_len,
            nread,
        ));
    }
    loop {
        let got = read(state, data, fd, iovs, iovs_len, nread);
        let nonblock = state.net.as_ref().is_some_and(|n| n.nonblock(fd as u32));
        if got != errno::AGAIN || nonblock {
            return Ok(got);
        }
        wait(state)?;
    }
}

/// `fd_fdstat_get` for connection fds, wasmtime-wasi's for the rest.
pub fn fd_fdstat_get(
    state: &mut GuestState,
    data: &mut [u8],
    fd: i32,
    stat: i32,
) -> wasmtime::Result<i32> {
    let Some(net) = state.net.as_ref().filter(|n| n.owns(fd as u32)) else {
        let mut guest = wiggle::GuestMemory::Unshared(data);
        return in_tokio(p1::fd_fdstat_get(&mut state.wasi, &mut guest, fd, stat));
    };
    let datagram = net.conn(fd as u32).is_some_and(|c| c.datagram());
    let flags = if net.nonblock(fd as u32) {
        FDFLAGS_NONBLOCK
    } else {
        0
    };
    // fdstat: filetype u8 at 0, flags u16 at 2, rights u64 at 8 and 16.
    let at = stat as u32 as usize;
    let Some(slot) = data.get_mut(at..at.saturating_add(24)) else {
        return Ok(errno::FAULT);
    };
    slot.fill(0);
    slot[0] = filetype(datagram);
    slot[2..4].copy_from_slice(&flags.to_le_bytes());
    slot[8..16].copy_from_slice(&RIGHTS.to_le_bytes());
    Ok(errno::SUCCESS)
}

/// Waits until a connection may be ready, or the request is over (a trap).
fn wait(state: &GuestState) -> wasmtime::Result<()> {
    let Some(net) = state.net.as_ref() else {
        return Ok(());
    };
    let wake = net.wake.clone();
    let watch = state.watch.clone();
    in_tokio(async move {
        match watch {
            Some(watch) => tokio::select! {
                () = wake.notified() => Ok(()),
                () = watch.until_over() => Err(Trap::Interrupt.into()),
            },
            None => {
                wake.notified().await;
                Ok(())
            }
        }
    })
}

/// Opens the connection file `name` (relative to `/dev`).
fn open(state: &mut GuestState, name: &str) -> wasmtime::Result<Result<u32, OpenError>> {
    let Some(net) = state.net.as_mut() else {
        return Ok(Err(OpenError::NotFound));
    };
    let (target, host) = match net.admit(name) {
        Ok(admitted) => admitted,
        Err(err) => return Ok(Err(err)),
    };
    // A long-lived instance connects in the background (its other goroutines keep
    // running); a request's own guest waits, so failures are open errors, as go-wagi's.
    let Some(watch) = state.watch.clone() else {
        return Ok(Ok(net.start(target, host)));
    };
    let connected = in_tokio(async {
        tokio::select! {
            c = net.connect(&target, &host) => Ok(c),
            () = watch.until_over() => Err(wasmtime::Error::from(Trap::Interrupt)),
        }
    })?;
    Ok(connected.map(|socket| net.add(&target, socket)))
}

fn open_errno(err: OpenError) -> i32 {
    match err {
        OpenError::NotFound => errno::NOENT,
        OpenError::TooMany => errno::MFILE,
        OpenError::TimedOut => errno::TIMEDOUT,
        OpenError::Refused => errno::CONNREFUSED,
        OpenError::Io => errno::IO,
    }
}

fn io_errno(kind: std::io::ErrorKind) -> i32 {
    use std::io::ErrorKind::*;
    match kind {
        ConnectionReset | ConnectionAborted => errno::CONNRESET,
        ConnectionRefused => errno::CONNREFUSED,
        PermissionDenied => errno::ACCES,
        BrokenPipe | WriteZero => errno::PIPE,
        TimedOut => errno::TIMEDOUT,
        InvalidInput => errno::MSGSIZE,
        _ => errno::IO,
    }
}

fn read(state: &GuestState, data: &mut [u8], fd: i32, iovs: i32, iovs_len: i32, nread: i32) -> i32 {
    let Some(conn) = state.net.as_ref().and_then(|n| n.conn(fd as u32)).cloned() else {
        return errno::BADF;
    };
    let bufs = match iovecs(data, iovs, iovs_len) {
        Ok(bufs) => bufs,
        Err(errno) => return errno,
    };
    let mut total = 0usize;
    for (buf, len) in bufs {
        if len == 0 {
            continue;
        }
        match conn.read(&mut data[buf..buf + len]) {
            Read::Bytes(n) => {
                total += n;
                if n < len || conn.datagram() {
                    break;
                }
            }
            Read::Empty | Read::Eof => break,
            Read::Failed(kind) if total == 0 => return io_errno(kind),
            Read::Failed(_) => break,
        }
    }
    if total == 0 && !conn.readable() {
        return errno::AGAIN;
    }
    put_count(data, nread, total)
}

fn write(
    state: &mut GuestState,
    data: &mut [u8],
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    let bufs = match iovecs(data, iovs, iovs_len) {
        Ok(bufs) => bufs,
        Err(errno) => return Ok(errno),
    };
    loop {
        let Some(conn) = state.net.as_ref().and_then(|n| n.conn(fd as u32)).cloned() else {
            return Ok(errno::BADF);
        };
        let mut total = 0usize;
        for &(buf, len) in &bufs {
            match conn.write(&data[buf..buf + len]) {
                Ok(n) => {
                    total += n;
                    if n < len || conn.datagram() {
                        break;
                    }
                }
                Err(kind) if total == 0 => return Ok(io_errno(kind)),
                Err(_) => break,
            }
        }
        let wanted = bufs.iter().any(|&(_, len)| len > 0);
        if total > 0 || !wanted {
            return Ok(put_count(data, nwritten, total));
        }
        if state.net.as_ref().is_some_and(|n| n.nonblock(fd as u32)) {
            return Ok(errno::AGAIN);
        }
        wait(state)?;
    }
}

/// Readiness of connection fd `fd` for a poll subscription: `Some(nbytes)` when ready.
pub fn ready(state: &GuestState, fd: u32, write: bool) -> Option<u64> {
    let conn = state.net.as_ref()?.conn(fd)?;
    if write {
        conn.writable().then_some(1)
    } else {
        conn.readable().then_some(1)
    }
}
