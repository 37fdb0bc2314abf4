//! The byte pipes between the host's yamux client and a long-lived guest's stdio.
//!
//! Host -> guest (the guest's stdin) is an [`Inbox`]: a buffer the guest reads without
//! blocking (an empty inbox is EAGAIN, not a wait), plus a readiness signal that WASI's
//! `poll_oneoff` waits on. That is what lets a Go guest park its reading goroutine and keep
//! running the others: a blocking stdin would freeze the whole single-threaded guest (the
//! hang go-wagi has under wazero).
//!
//! Guest -> host (the guest's stdout) is an unbounded channel of chunks.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Default)]
struct InboxState {
    buf: VecDeque<u8>,
    closed: bool,
}

/// What a non-blocking read of the inbox found.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// This many bytes were copied.
    Bytes(usize),
    /// Nothing to read now; try again when ready.
    Empty,
    /// The host closed the pipe: end of input.
    Closed,
}

/// Host -> guest bytes.
#[derive(Default)]
pub struct Inbox {
    state: Mutex<InboxState>,
    ready: Notify,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends bytes for the guest and wakes a waiting `poll_oneoff`.
    pub fn push(&self, data: &[u8]) {
        self.lock().buf.extend(data);
        self.ready.notify_waiters();
    }

    /// Ends the guest's input (it reads EOF once the buffer is drained).
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    /// Copies up to `out.len()` bytes without waiting.
    pub fn take(&self, out: &mut [u8]) -> Take {
        let mut s = self.lock();
        if s.buf.is_empty() {
            return if s.closed { Take::Closed } else { Take::Empty };
        }
        let n = out.len().min(s.buf.len());
        for (slot, byte) in out.iter_mut().zip(s.buf.drain(..n)) {
            *slot = byte;
        }
        Take::Bytes(n)
    }

    fn readable(&self) -> bool {
        let s = self.lock();
        !s.buf.is_empty() || s.closed
    }

    /// Waits until there is something to read (or the pipe is closed).
    pub async fn wait_readable(&self) {
        wait_until(&self.ready, || self.readable()).await
    }
}

/// Waits until `ready()` holds, re-checking each time `notify` wakes its waiters.
pub async fn wait_until(notify: &Notify, ready: impl Fn() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before checking, so a change between the check and the wait is seen.
        notified.as_mut().enable();
        if ready() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_is_non_blocking_and_reports_close() {
        let inbox = Inbox::default();
        let mut out = [0u8; 4];
        assert_eq!(inbox.take(&mut out), Take::Empty);
        inbox.push(b"abcdef");
        assert_eq!(inbox.take(&mut out), Take::Bytes(4));
        assert_eq!(&out, b"abcd");
        inbox.close();
        assert_eq!(inbox.take(&mut out), Take::Bytes(2));
        assert_eq!(inbox.take(&mut out), Take::Closed);
    }

    #[test]
    fn wait_readable_wakes_on_push_from_another_thread() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let pusher = inbox.clone();
        let t = std::thread::spawn(move || pusher.push(b"x"));
        futures::executor::block_on(inbox.wait_readable());
        t.join().unwrap();
        let mut out = [0u8; 1];
        assert_eq!(inbox.take(&mut out), Take::Bytes(1));
    }
}
