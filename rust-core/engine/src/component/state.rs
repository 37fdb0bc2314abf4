//! What a component's store holds, and the linker components are instantiated with.

use std::sync::Arc;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::host::{Host, LogLevel};
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
    hooks: RefuseOutgoing,
}

impl HttpState {
    pub fn new(wasi: WasiCtx, limiter: GuestLimiter, host: Arc<dyn Host>) -> Self {
        HttpState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter,
            hooks: RefuseOutgoing { host },
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

/// Outgoing `wasi:http` requests are refused (the guest sees `HTTP-request-denied`) and
/// logged: a guest reaches the network only where the site's network rules allow, and
/// those rules are not applied to wasi:http yet.
struct RefuseOutgoing {
    host: Arc<dyn Host>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for RefuseOutgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        let target = request.uri().authority().map_or("", |a| a.as_str());
        self.host.log(
            LogLevel::Warn,
            &format!(
                "outgoing wasi:http request to {target} refused: components may not make outgoing requests"
            ),
        );
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// The linker of an engine for components: all of WASI preview2 (environment and mounts
/// through wasi:cli and wasi:filesystem; sockets are denied by the context) and wasi:http.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HttpState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    Ok(linker)
}
