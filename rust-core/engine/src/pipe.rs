//! The byte pipes between the host's yamux client and a long-lived guest's stdio.
//!
//! Host -> guest (the guest's stdin) is an [`Inbox`]: a buffer the guest reads without
//! blocking (an empty inbox is EAGAIN, not a wait), plus a readiness signal that WASI's
//! `poll_oneoff` waits on. That is what lets a Go guest park its reading goroutine and keep
//! running the others: a blocking stdin would freeze the whole single-threaded guest (the
//! hang go-wagi has under wazero).
//!
//! The inbox holds at most [`INBOX_CAP`] bytes: past that the host's writer waits (yamux then
//! stops reading the guest's frames too, so a guest flooding pings while never reading its
//! stdin fills nothing). Guest -> host (the guest's stdout) is a channel whose queued bytes
//! are counted against [`STDOUT_CAP`] (see `wcgi::stdio::ChannelStdout`).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::sync::Notify;

/// Most bytes waiting in a guest's stdin; the host's writes wait beyond it.
pub const INBOX_CAP: usize = 1 << 20;
/// Most bytes of a guest's stdout the host has not read yet; a guest writing more is stopped.
pub const STDOUT_CAP: usize = 8 << 20;

#[derive(Default)]
struct InboxState {
    buf: VecDeque<u8>,
    closed: bool,
    /// The host's writer, waiting for room.
    writer: Option<Waker>,
    /// Since when bytes have waited that the guest has not read (None while empty).
    unread_since: Option<Instant>,
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
        crate::locks::lock(&self.state)
    }

    /// Appends as much of `data` as fits under [`INBOX_CAP`] and wakes a waiting
    /// `poll_oneoff`; `Pending` (woken when the guest reads) while the inbox is full.
    pub fn poll_push(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut s = self.lock();
        if s.closed {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let room = INBOX_CAP.saturating_sub(s.buf.len());
        if room == 0 && !data.is_empty() {
            s.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        s.buf.extend(&data[..n]);
        if n > 0 && s.unread_since.is_none() {
            s.unread_since = Some(Instant::now());
        }
        drop(s);
        self.ready.notify_waiters();
        Poll::Ready(Ok(n))
    }

    /// Ends the guest's input (it reads EOF once the buffer is drained).
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        if let Some(writer) = s.writer.take() {
            writer.wake();
        }
        drop(s);
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
        // The guest is reading: whatever is left has only just become its to read.
        s.unread_since = (!s.buf.is_empty()).then(Instant::now);
        if let Some(writer) = s.writer.take() {
            writer.wake();
        }
        Take::Bytes(n)
    }

    /// Since when bytes have been waiting that the guest has not read.
    pub fn unread_since(&self) -> Option<Instant> {
        self.lock().unread_since
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

    fn push(inbox: &Inbox, data: &[u8]) -> Poll<usize> {
        let waker = futures::task::noop_waker();
        inbox
            .poll_push(&mut Context::from_waker(&waker), data)
            .map(|r| r.unwrap())
    }

    #[test]
    fn take_is_non_blocking_and_reports_close() {
        let inbox = Inbox::default();
        let mut out = [0u8; 4];
        assert_eq!(inbox.take(&mut out), Take::Empty);
        assert_eq!(push(&inbox, b"abcdef"), Poll::Ready(6));
        assert_eq!(inbox.take(&mut out), Take::Bytes(4));
        assert_eq!(&out, b"abcd");
        inbox.close();
        let waker = futures::task::noop_waker();
        let refused = inbox.poll_push(&mut Context::from_waker(&waker), b"late");
        assert!(matches!(refused, Poll::Ready(Err(_))));
        assert_eq!(inbox.take(&mut out), Take::Bytes(2));
        assert_eq!(inbox.take(&mut out), Take::Closed);
    }

    #[test]
    fn wait_readable_wakes_on_push_from_another_thread() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let pusher = inbox.clone();
        let t = std::thread::spawn(move || push(&pusher, b"x"));
        futures::executor::block_on(inbox.wait_readable());
        assert_eq!(t.join().unwrap(), Poll::Ready(1));
        let mut out = [0u8; 1];
        assert_eq!(inbox.take(&mut out), Take::Bytes(1));
    }

    #[test]
    fn a_full_inbox_makes_the_writer_wait_until_the_guest_reads() {
        let inbox = Inbox::default();
        let big = vec![7u8; INBOX_CAP + 10];
        assert_eq!(push(&inbox, &big), Poll::Ready(INBOX_CAP));
        assert_eq!(push(&inbox, b"more"), Poll::Pending);
        let since = inbox.unread_since().unwrap();
        let mut out = vec![0u8; 100];
        assert_eq!(inbox.take(&mut out), Take::Bytes(100));
        assert!(inbox.unread_since().unwrap() >= since);
        assert_eq!(push(&inbox, b"more"), Poll::Ready(4));
        let mut rest = vec![0u8; INBOX_CAP];
        assert_eq!(inbox.take(&mut rest), Take::Bytes(INBOX_CAP - 100 + 4));
        assert_eq!(inbox.unread_since(), None);
    }
}

/// Bytes the guest has written to stdout that the host has not taken yet.
#[derive(Default)]
pub struct StdoutBacklog(std::sync::atomic::AtomicUsize);

impl StdoutBacklog {
    /// Counts `n` more bytes; false (and nothing counted) past [`STDOUT_CAP`].
    pub fn add(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        let before = self.0.fetch_add(n, Ordering::SeqCst);
        if before.saturating_add(n) > STDOUT_CAP {
            self.0.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The host took `n` bytes.
    pub fn taken(&self, n: usize) {
        self.0.fetch_sub(n, std::sync::atomic::Ordering::SeqCst);
    }
}
