//! A [`Waker`] that makes a file descriptor readable (an eventfd), so a server can wait for
//! a request in its own event loop instead of blocking a thread in the engine.
//!
//! Caddy waits for it in Go's netpoller: a request waiting on a long-lived WCGI instance
//! then holds a goroutine, not an OS thread, and Go's `sysmon` has no thread stuck in a
//! cgo call to take a processor from.
//!
//! The server gets its own descriptor for the same eventfd (a duplicate) and closes it when
//! it likes. The engine's descriptor lives as long as any clone of the waker: a waker kept
//! by a timer or a yamux stream may fire after the request it served has ended, and must
//! then write to this eventfd, never to whatever file took its number. Such a late wake
//! only makes the next request that uses the eventfd poll once for nothing.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// The engine's end of an eventfd; see the module documentation.
pub struct WakeFd {
    signal: Arc<Signal>,
}

struct Signal(OwnedFd);

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let one = 1u64.to_ne_bytes();
        // An eventfd adds the value to its counter; it only fails when the counter would
        // overflow, and then it is readable already.
        // SAFETY: the descriptor is open while `self` lives; `one` is 8 readable bytes.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

impl WakeFd {
    /// A new eventfd (non-blocking, close-on-exec), and the server's duplicate of it.
    pub fn new() -> io::Result<(WakeFd, OwnedFd)> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let ours = unsafe { OwnedFd::from_raw_fd(fd) };
        let theirs = ours.try_clone()?;
        Ok((
            WakeFd {
                signal: Arc::new(Signal(ours)),
            },
            theirs,
        ))
    }

    /// A waker that makes the eventfd readable.
    pub fn waker(&self) -> Waker {
        Waker::from(self.signal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_counter(fd: &OwnedFd) -> Option<u64> {
        let mut buf = [0u8; 8];
        // SAFETY: `fd` is open; `buf` is 8 writable bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        (n == 8).then(|| u64::from_ne_bytes(buf))
    }

    #[test]
    fn a_wake_makes_the_servers_copy_readable_once() {
        let (wake, theirs) = WakeFd::new().unwrap();
        assert_eq!(read_counter(&theirs), None, "not readable before a wake");
        wake.waker().wake_by_ref();
        wake.waker().wake();
        assert_eq!(read_counter(&theirs), Some(2));
        assert_eq!(read_counter(&theirs), None, "reading resets it");
    }

    #[test]
    fn a_waker_keeps_the_eventfd_after_the_engines_handle_is_gone() {
        let (wake, theirs) = WakeFd::new().unwrap();
        let late = wake.waker();
        drop(wake);
        late.wake_by_ref();
        assert_eq!(read_counter(&theirs), Some(1));
    }
}
