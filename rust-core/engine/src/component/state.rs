//! What a component's store holds, and the linker components are instantiated with.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::outgoing::Outgoing;
use super::respond::Responder;
use super::waits::GuestWaits;
use crate::deadline::RequestWatch;
use crate::limiter::GuestLimiter;

/// A component ready to instantiate, in the engine of its tier.
pub struct HttpCode {
    pub pre: ProxyPre<HttpState>,
    pub component: Component,
}

/// The store of one component instance: WASI preview2, wasi:http, the memory cap, and the
/// response on its way out.
pub struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub limiter: GuestLimiter,
    hooks: Outgoing,
    /// Bounds the guest's waits.
    watch: RequestWatch,
    pub responder: Responder,
}

impl HttpState {
    pub fn new(
        wasi: WasiCtx,
        limiter: GuestLimiter,
        watch: RequestWatch,
        outgoing: Outgoing,
        responder: Responder,
    ) -> Self {
        HttpState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter,
            hooks: outgoing,
            watch,
            responder,
        }
    }

    /// What the guest's waits work on (see `waits`).
    pub fn waits(&mut self) -> GuestWaits<'_> {
        GuestWaits {
            table: &mut self.table,
            watch: &self.watch,
            responder: &mut self.responder,
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
/// (outgoing requests through [`Outgoing`]), with the calls that wait replaced by
/// `waits`' own.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HttpState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    super::waits::add_to_linker(&mut linker)?;
    Ok(linker)
}
