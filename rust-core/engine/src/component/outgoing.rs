//! Outgoing `wasi:http` requests: allowed only where the site's `network` rules allow the
//! address (the same rules, resolver checks, connect timeout, TLS and counters as the
//! `/dev/tcp` files, through [`NetFiles`]), at most `max_connections` per request, and
//! refused (`HTTP-request-denied`, one warning logged) on a site without networking.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::host::{Host, LogLevel};
use crate::net::files::{OpenError, Socket};
use crate::net::NetFiles;

type IoFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;
type SendResult = wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)>;

/// The outgoing side of one request's guest.
pub struct Outgoing {
    host: Arc<dyn Host>,
    /// The site's network, when it has one.
    net: Option<Arc<NetFiles>>,
    /// Requests sent so far, against `max`.
    sent: Arc<AtomicU32>,
    max: u32,
}

impl Outgoing {
    pub fn new(host: Arc<dyn Host>, net: Option<NetFiles>, max: u32) -> Self {
        Outgoing {
            host,
            net: net.map(Arc::new),
            sent: Arc::default(),
            max,
        }
    }

    fn refuse(&self, target: &str, why: &str) -> Box<dyn Future<Output = SendResult> + Send> {
        self.host.log(
            LogLevel::Warn,
            &format!("outgoing wasi:http request to {target} refused: {why}"),
        );
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}

impl WasiHttpHooks for Outgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let target = request
            .uri()
            .authority()
            .map_or(String::new(), |a| a.to_string());
        let Some(net) = self.net.clone() else {
            return self.refuse(&target, "the site has no network");
        };
        if self.sent.fetch_add(1, Ordering::SeqCst) >= self.max {
            return self.refuse(&target, "the request's max_connections are used up");
        }
        let tls = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        let Some(authority) = request.uri().authority() else {
            return self.refuse(&target, "no authority");
        };
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = format!(
            "tcp/{}/{port}{}",
            authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']'),
            if tls { "/tls" } else { "" }
        );
        let admitted = match net.admit(&path) {
            Ok(admitted) => admitted,
            Err(_) => return self.refuse(&target, "not allowed by the site's network rules"),
        };
        let host = self.host.clone();
        Box::new(async move {
            let (addr, name) = admitted;
            let socket = net.connect(&addr, &name).await.map_err(|e| {
                if e == OpenError::NotFound {
                    host.log(
                        LogLevel::Warn,
                        &format!("outgoing wasi:http request to {target} refused: its address is not allowed by the site's network rules"),
                    );
                }
                connect_error(e)
            })?;
            send(socket, request).await
        })
    }
}

/// A connected stream of either kind.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Sends `request` over `socket` (HTTP/1.1): the response head, and the future that
/// carries the bodies.
async fn send(socket: Socket, mut request: http::Request<WasiBody>) -> SendResult {
    let stream: Pin<Box<dyn Stream>> = match socket {
        Socket::Tcp(tcp) => Box::pin(tcp),
        Socket::Tls(tls) => Box::pin(tls),
        Socket::Udp(_) => return Err(Error::InternalError(Some("udp socket".into()))),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Error::from)?;
    let io: IoFuture = Box::new(async move { conn.await.map_err(Error::from) });
    // HTTP/1.1 wants the origin form; wasi:http has set Host from the authority.
    let origin = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = origin;
    let (response, io) = {
        let mut io = Box::into_pin(io);
        let response = tokio::select! {
            response = sender.send_request(request) => response.map_err(Error::from)?,
            done = &mut io => {
                done?;
                return Err(Error::HttpResponseIncomplete);
            }
        };
        (response, io)
    };
    let io: IoFuture = Box::new(io);
    Ok((
        response.map(|body| body.map_err(Error::from).boxed_unsync()),
        io,
    ))
}

fn connect_error(e: OpenError) -> Error {
    match e {
        OpenError::NotFound => Error::HttpRequestDenied,
        OpenError::TooMany => Error::ConnectionLimitReached,
        OpenError::TimedOut => Error::ConnectionTimeout,
        OpenError::Refused => Error::ConnectionRefused,
        OpenError::Io => Error::DestinationUnavailable,
    }
}
