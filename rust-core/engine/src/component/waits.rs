//! Where a component waits: `wasi:io/poll` and the blocking calls of `wasi:io/streams`,
//! in place of wasmtime-wasi's own. Each one first sends the response written so far (see
//! `respond`: the guest runs on the request's thread, so its waits are where its output
//! goes out), flushed to the client if the call really has to wait; then it waits no
//! longer than the request's watch allows: a [`Trap::Interrupt`] once it is over, so the
//! request ends as the watch says (504, or client gone). Epoch interruption stops a guest
//! running wasm, not one waiting in the host: without this a component that sleeps (a JS
//! `setTimeout`) or waits on a stream would outlive its `timeout`.
//!
//! The calls that do not wait are wasmtime-wasi's, unchanged.

use std::future::Future;
use std::task::Poll;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::Trap;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::p2::bindings::sync::io::streams as sync_streams;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};

use super::respond::Responder;
use super::state::HttpState;
use crate::deadline::RequestWatch;

/// Puts these waits in `linker` over the ones `wasmtime_wasi::p2::add_to_linker_sync` added.
pub fn add_to_linker(linker: &mut Linker<HttpState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    sync_poll::add_to_linker::<HttpState, Waits>(linker, HttpState::waits)?;
    sync_streams::add_to_linker::<HttpState, Waits>(linker, HttpState::waits)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What a wait needs of the store: the guest's resources, the request's watch, and the
/// response to send before waiting.
pub struct GuestWaits<'a> {
    pub table: &'a mut ResourceTable,
    pub watch: &'a RequestWatch,
    pub responder: &'a mut Responder,
}

struct Waits;

impl HasData for Waits {
    type Data<'a> = GuestWaits<'a>;
}

/// Sends the response so far, then runs `wait` until it ends or `watch` is over. When
/// `wait` has to wait, what was sent is flushed to the client first. `wait` is one of
/// wasmtime-wasi's async calls, which do nothing until polled.
fn wait<R, E: Interrupted>(
    responder: &mut Responder,
    watch: &RequestWatch,
    wait: impl Future<Output = Result<R, E>>,
) -> Result<R, E> {
    responder.send_ready(false);
    in_tokio(async {
        let mut wait = std::pin::pin!(wait);
        if let Poll::Ready(done) = futures::poll!(wait.as_mut()) {
            return done;
        }
        responder.send_ready(true);
        tokio::select! {
            done = wait => done,
            () = watch.until_over() => Err(E::interrupted()),
        }
    })
}

/// The error a wait ends with once the watch is over: a trap, whatever the call's error type.
trait Interrupted {
    fn interrupted() -> Self;
}

impl Interrupted for wasmtime::Error {
    fn interrupted() -> Self {
        Trap::Interrupt.into()
    }
}

impl Interrupted for StreamError {
    fn interrupted() -> Self {
        StreamError::Trap(Trap::Interrupt.into())
    }
}

impl sync_poll::Host for GuestWaits<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        wait(
            self.responder,
            self.watch,
            async_poll::Host::poll(&mut *self.table, pollables),
        )
    }
}

impl sync_poll::HostPollable for GuestWaits<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        // Does not wait, but a guest may spin on it for room in its response body.
        self.responder.send_ready(false);
        in_tokio(async_poll::HostPollable::ready(&mut *self.table, pollable))
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        wait(
            self.responder,
            self.watch,
            async_poll::HostPollable::block(&mut *self.table, pollable),
        )
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

impl sync_streams::Host for GuestWaits<'_> {
    fn convert_stream_error(
        &mut self,
        err: StreamError,
    ) -> wasmtime::Result<sync_streams::StreamError> {
        sync_streams::Host::convert_stream_error(&mut *self.table, err)
    }
}

impl sync_streams::HostInputStream for GuestWaits<'_> {
    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        sync_streams::HostInputStream::read(&mut *self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        wait(
            self.responder,
            self.watch,
            AsyncInput::blocking_read(&mut *self.table, stream, len),
        )
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        sync_streams::HostInputStream::skip(&mut *self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        wait(
            self.responder,
            self.watch,
            AsyncInput::blocking_skip(&mut *self.table, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        sync_streams::HostInputStream::subscribe(&mut *self.table, stream)
    }

    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        sync_streams::HostInputStream::drop(&mut *self.table, stream)
    }
}

impl sync_streams::HostOutputStream for GuestWaits<'_> {
    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        sync_streams::HostOutputStream::check_write(&mut *self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        sync_streams::HostOutputStream::write(&mut *self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        wait(
            self.responder,
            self.watch,
            AsyncOutput::blocking_write_and_flush(&mut *self.table, stream, bytes),
        )
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        wait(
            self.responder,
            self.watch,
            AsyncOutput::blocking_write_zeroes_and_flush(&mut *self.table, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        sync_streams::HostOutputStream::subscribe(&mut *self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        sync_streams::HostOutputStream::write_zeroes(&mut *self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        sync_streams::HostOutputStream::flush(&mut *self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        let borrow = Resource::new_borrow(stream.rep());
        wait(
            self.responder,
            self.watch,
            AsyncOutput::blocking_flush(&mut *self.table, borrow),
        )
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        sync_streams::HostOutputStream::splice(&mut *self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        wait(
            self.responder,
            self.watch,
            AsyncOutput::blocking_splice(&mut *self.table, dst, src, len),
        )
    }

    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        sync_streams::HostOutputStream::drop(&mut *self.table, stream)
    }
}
