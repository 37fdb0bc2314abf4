//! What a component's store holds, and the linker components are instantiated with.

use wasmtime::component::{Component, HasData, Linker, Resource, ResourceTable};
use wasmtime::Trap;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;

use super::outgoing::Outgoing;
use crate::deadline::RequestWatch;
use crate::limiter::GuestLimiter;

/// A component ready to instantiate, in the engine of its tier.
pub struct HttpCode {
    pub pre: ProxyPre<HttpState>,
    pub component: Component,
}

/// The store of one component instance: WASI preview2, wasi:http, the memory cap.
pub struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub limiter: GuestLimiter,
    hooks: Outgoing,
    /// Bounds the guest's waits in `wasi:io/poll`.
    watch: RequestWatch,
}

impl HttpState {
    pub fn new(
        wasi: WasiCtx,
        limiter: GuestLimiter,
        watch: RequestWatch,
        outgoing: Outgoing,
    ) -> Self {
        HttpState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter,
            hooks: outgoing,
            watch,
        }
    }
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The linker of an engine for components: all of WASI preview2 (environment and mounts
/// through wasi:cli and wasi:filesystem; sockets are denied by the context) and wasi:http
/// (outgoing requests through [`Outgoing`]),
/// with `wasi:io/poll` replaced by [`DeadlinePoll`].
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HttpState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    linker.allow_shadowing(true);
    sync_poll::add_to_linker::<HttpState, DeadlinePolls>(&mut linker, |s| DeadlinePoll {
        table: &mut s.table,
        watch: &s.watch,
    })?;
    linker.allow_shadowing(false);
    Ok(linker)
}

/// `wasi:io/poll` that gives up (a [`Trap::Interrupt`], so the request ends as its watch
/// says: 504, or client gone) once the request's watch is over. Epoch interruption stops
/// a guest running wasm, not one waiting in the host: without this a component that
/// sleeps (a JS `setTimeout`) would outlive its `timeout`.
struct DeadlinePoll<'a> {
    table: &'a mut ResourceTable,
    watch: &'a RequestWatch,
}

struct DeadlinePolls;

impl HasData for DeadlinePolls {
    type Data<'a> = DeadlinePoll<'a>;
}

impl DeadlinePoll<'_> {
    /// Runs `wait` until it ends or the watch is over.
    fn bounded<R>(
        watch: &RequestWatch,
        wait: impl std::future::Future<Output = wasmtime::Result<R>>,
    ) -> wasmtime::Result<R> {
        in_tokio(async {
            tokio::select! {
                done = wait => done,
                () = watch.until_over() => Err(Trap::Interrupt.into()),
            }
        })
    }
}

impl sync_poll::Host for DeadlinePoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        Self::bounded(
            self.watch,
            async_poll::Host::poll(&mut *self.table, pollables),
        )
    }
}

impl sync_poll::HostPollable for DeadlinePoll<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        Self::bounded(
            self.watch,
            async_poll::HostPollable::ready(&mut *self.table, pollable),
        )
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        Self::bounded(
            self.watch,
            async_poll::HostPollable::block(&mut *self.table, pollable),
        )
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(&mut *self.table, pollable)
    }
}
