//! A request relayed to a long-lived instance, waiting for the guest's answer: a future the
//! server polls when woken ([`Waiting::poll`]), or waits for on its thread
//! ([`Waiting::wait`]). Polls call the request's host on the polling thread, as a CGI run
//! does on its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::session;
use crate::failure::Failure;

type Relay = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// A request waiting on a long-lived instance. Dropping it abandons the request: its
/// stream is reset and the instance serves its other requests on.
pub struct Waiting(Relay);

impl Waiting {
    pub(super) fn new(relay: impl Future<Output = Result<(), Failure>> + Send + 'static) -> Self {
        Waiting(Box::pin(relay))
    }

    /// Runs the request until it waits again (`Pending`: `waker` is woken when it can go
    /// on) or is over. Not to be called again once it returned `Ready`.
    pub fn poll(&mut self, waker: &Waker) -> Poll<Result<(), Failure>> {
        // Its timers belong to the WCGI runtime.
        let _runtime = session::runtime().enter();
        self.0.as_mut().poll(&mut Context::from_waker(waker))
    }

    /// Runs the request to its end on this thread.
    pub fn wait(self) -> Result<(), Failure> {
        session::runtime().block_on(self.0)
    }
}
