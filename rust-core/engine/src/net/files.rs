//! A guest's open connection files: what `path_open` under `/dev` makes, and what the
//! replaced fd functions (`guest::net`) act on.
//!
//! Their fds start at [`FD_BASE`], far above any fd wasmtime-wasi hands out (it counts up
//! from 3), so the two tables cannot collide and an fd says by itself whose it is.
//!
//! A CGI request's table lives in its store: the request's end, or its deadline, drops it
//! and with it every connection. A WCGI instance has one table for its life (a goroutine's
//! connection cannot be tied to one request), closed when the instance ends or is replaced.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;
use wasmtime_wasi::runtime::with_ambient_tokio_runtime;

use super::conn::Conn;
use super::rules::{check, Host, Resolve, SystemResolver};
use super::{count, counters, NetPolicy};
use crate::host::LogLevel;

/// The first fd of a connection file.
pub const FD_BASE: u32 = 1 << 30;

/// Where a guest's connection events are logged (the host adds the module).
pub type NetLog = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Connection events of one request, in its log.
pub fn request_log(host: &Arc<dyn crate::host::Host>) -> NetLog {
    let host = host.clone();
    Arc::new(move |level, message: &str| host.log(level, message))
}

/// A connected socket, before it is handed to its task.
pub enum Socket {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Udp(UdpSocket),
}

pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Socket>> + Send + 'a>>;

/// Opens sockets; injectable so tests prove that a refused address is never dialled.
pub trait Connect: Send + Sync {
    fn connect<'a>(&'a self, addrs: &'a [SocketAddr], udp: bool) -> ConnectFuture<'a>;
}

/// The operating system's sockets: the first address that connects.
pub struct SystemConnect;

impl Connect for SystemConnect {
    fn connect<'a>(&'a self, addrs: &'a [SocketAddr], udp: bool) -> ConnectFuture<'a> {
        Box::pin(async move {
            if udp {
                let addr = addrs[0];
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(addr).await?;
                return Ok(Socket::Udp(socket));
            }
            Ok(Socket::Tcp(TcpStream::connect(addrs).await?))
        })
    }
}

/// A `/dev` path, as go-fsnet writes it: `{tcp|udp}/<host>/<port>[/tls]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub udp: bool,
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Target {
    /// `path` is relative to `/dev`. Mirrors go-fsnet's `^/dev/(tcp|udp)/(.+)/(\d+)(/tls|)$`.
    pub fn parse(path: &str) -> Option<Target> {
        let (proto, rest) = path.split_once('/')?;
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            _ => return None,
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let split = |s: &str| {
            s.rsplit_once('/')
                .filter(|(h, p)| !h.is_empty() && digits(p))
                .map(|(h, p)| (h.to_string(), p.to_string()))
        };
        let (tls, (host, port)) = match rest.strip_suffix("/tls").and_then(split) {
            Some(hp) => (true, hp),
            None => (false, split(rest)?),
        };
        Some(Target {
            udp,
            host,
            port: port.parse().ok()?,
            tls,
        })
    }

    fn describe(&self) -> String {
        let proto = if self.udp { "udp" } else { "tcp" };
        let tls = if self.tls { "/tls" } else { "" };
        format!("{proto} {}:{}{tls}", self.host, self.port)
    }
}

/// Why an open failed, as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Refused by the rules, or not a connection path: "file does not exist", as go-wagi.
    NotFound,
    /// The connection cap is reached.
    TooMany,
    TimedOut,
    Refused,
    /// Any other resolve, connect or handshake failure.
    Io,
}

struct File {
    conn: Arc<Conn>,
    nonblock: bool,
}

/// Resolves, checks and connects targets for one guest: what an open does once the written
/// host passed the rules. Shared with the tasks of connections opened without waiting.
struct Dialer {
    policy: Arc<NetPolicy>,
    log: NetLog,
    resolver: Arc<dyn Resolve>,
    connector: Arc<dyn Connect>,
}

impl Dialer {
    /// Resolves, checks every address and connects (then does TLS for `/tls`), bounded by
    /// the connect timeout.
    async fn connect(&self, target: &Target, host: &Host) -> Result<Socket, OpenError> {
        let what = target.describe();
        let attempt = async {
            let addrs = check(
                &self.policy.rules,
                self.resolver.as_ref(),
                host,
                target.port,
            )
            .await
            .map_err(|refusal| {
                count(&counters().refused);
                self.debug(format!("network: refused {what}: {refusal}"));
                OpenError::NotFound
            })?;
            let socket = self
                .connector
                .connect(&addrs, target.udp)
                .await
                .map_err(|e| self.failed(&what, &e.to_string(), io_error(e.kind())))?;
            match socket {
                Socket::Tcp(stream) if target.tls => {
                    let ca_file = self.policy.ca_file.as_deref();
                    super::tls::handshake(stream, &target.host, ca_file)
                        .await
                        .map(|tls| Socket::Tls(Box::new(tls)))
                        .map_err(|e| self.failed(&what, &e, OpenError::Io))
                }
                socket => Ok(socket),
            }
        };
        match tokio::time::timeout(self.policy.limits.connect_timeout, attempt).await {
            Ok(Ok(socket)) => {
                count(&counters().opened);
                self.debug(format!("network: opened {what}"));
                Ok(socket)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.failed(&what, "connect timed out", OpenError::TimedOut)),
        }
    }

    fn failed(&self, what: &str, why: &str, error: OpenError) -> OpenError {
        count(&counters().failed);
        self.debug(format!("network: failed {what}: {why}"));
        error
    }

    fn debug(&self, message: String) {
        (self.log)(LogLevel::Debug, &message)
    }
}

/// A guest's connection files.
pub struct NetFiles {
    /// The fd of the guest's `/dev` preopen.
    pub dev_fd: u32,
    files: HashMap<u32, File>,
    next: u32,
    /// Signalled whenever one of the connections may have become ready.
    pub wake: Arc<Notify>,
    dialer: Arc<Dialer>,
}

impl NetFiles {
    pub fn new(policy: Arc<NetPolicy>, dev_fd: u32, log: NetLog) -> NetFiles {
        NetFiles::with(
            policy,
            dev_fd,
            log,
            Arc::new(SystemResolver),
            Arc::new(SystemConnect),
        )
    }

    pub fn with(
        policy: Arc<NetPolicy>,
        dev_fd: u32,
        log: NetLog,
        resolver: Arc<dyn Resolve>,
        connector: Arc<dyn Connect>,
    ) -> NetFiles {
        NetFiles {
            dev_fd,
            files: HashMap::new(),
            next: FD_BASE,
            wake: Arc::new(Notify::new()),
            dialer: Arc::new(Dialer {
                policy,
                log,
                resolver,
                connector,
            }),
        }
    }

    pub fn owns(&self, fd: u32) -> bool {
        self.files.contains_key(&fd)
    }

    pub fn conn(&self, fd: u32) -> Option<&Arc<Conn>> {
        self.files.get(&fd).map(|f| &f.conn)
    }

    pub fn nonblock(&self, fd: u32) -> bool {
        self.files.get(&fd).is_some_and(|f| f.nonblock)
    }

    pub fn set_nonblock(&mut self, fd: u32, on: bool) {
        if let Some(f) = self.files.get_mut(&fd) {
            f.nonblock = on;
        }
    }

    /// Closes connection `fd`: its task sends what is left (bounded by
    /// [`super::conn::LINGER`]) and ends. False when `fd` is not one.
    pub fn close(&mut self, fd: u32) -> bool {
        let Some(file) = self.files.remove(&fd) else {
            return false;
        };
        file.conn.close();
        counters().open_now.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// The first part of an open, before anything is resolved or leaves the host: the
    /// path, the connection cap, and the rules on the host as the guest wrote it.
    pub fn admit(&self, path: &str) -> Result<(Target, Host), OpenError> {
        let log = |m: String| self.dialer.debug(m);
        let Some(target) = Target::parse(path).filter(|t| !(t.tls && t.udp)) else {
            log(format!("network: no such device /dev/{path}"));
            return Err(OpenError::NotFound);
        };
        let what = target.describe();
        let limits = self.dialer.policy.limits;
        if self.files.len() >= limits.max_connections as usize {
            count(&counters().refused);
            let max = limits.max_connections;
            log(format!(
                "network: refused {what}: all {max} connections of this guest are open"
            ));
            return Err(OpenError::TooMany);
        }
        let Some(host) = Host::parse(&target.host) else {
            count(&counters().refused);
            log(format!("network: refused {what}: bad host"));
            return Err(OpenError::NotFound);
        };
        if !self.dialer.policy.rules.admits(&host, target.port) {
            count(&counters().refused);
            log(format!(
                "network: refused {what}: {}",
                super::rules::Refusal::NotAllowed
            ));
            return Err(OpenError::NotFound);
        }
        Ok((target, host))
    }

    /// Connects an admitted target, waiting for it (bounded by the connect timeout; the
    /// caller bounds it by the request's deadline as well).
    pub async fn connect(&self, target: &Target, host: &Host) -> Result<Socket, OpenError> {
        self.dialer.connect(target, host).await
    }

    /// Adds a connected socket as a new file and starts its task.
    pub fn add(&mut self, target: &Target, socket: Socket) -> u32 {
        let conn = self.new_conn(target);
        let task = conn.clone();
        with_ambient_tokio_runtime(|| drop(tokio::spawn(task.run(socket))));
        self.insert(conn)
    }

    /// Adds an admitted target as a new file at once and connects it in the background:
    /// reads wait (EAGAIN) and writes are buffered until it is connected; if it cannot be,
    /// they fail with the reason (refused: EACCES; else ECONNREFUSED, ETIMEDOUT, EIO). For
    /// long-lived instances, which must not stop for one goroutine's connect.
    pub fn start(&mut self, target: Target, host: Host) -> u32 {
        let conn = self.new_conn(&target);
        let (task, dialer) = (conn.clone(), self.dialer.clone());
        with_ambient_tokio_runtime(|| {
            drop(tokio::spawn(async move {
                match dialer.connect(&target, &host).await {
                    Ok(socket) => task.run(socket).await,
                    Err(e) => task.fail(open_error_kind(e)),
                }
            }))
        });
        self.insert(conn)
    }

    fn new_conn(&self, target: &Target) -> Arc<Conn> {
        let cap = self.dialer.policy.limits.buffer_bytes;
        Conn::new(target.udp, cap, self.wake.clone())
    }

    fn insert(&mut self, conn: Arc<Conn>) -> u32 {
        let mut fd = self.next;
        while self.files.contains_key(&fd) {
            fd = fd.checked_add(1).unwrap_or(FD_BASE);
        }
        self.next = fd.checked_add(1).unwrap_or(FD_BASE);
        self.files.insert(
            fd,
            File {
                conn,
                nonblock: false,
            },
        );
        counters().open_now.fetch_add(1, Ordering::Relaxed);
        fd
    }
}

/// How a background connect's failure reads to the guest.
fn open_error_kind(e: OpenError) -> io::ErrorKind {
    match e {
        OpenError::NotFound | OpenError::TooMany => io::ErrorKind::PermissionDenied,
        OpenError::Refused => io::ErrorKind::ConnectionRefused,
        OpenError::TimedOut => io::ErrorKind::TimedOut,
        OpenError::Io => io::ErrorKind::Other,
    }
}

/// The end of the guest's request (CGI) or instance (WCGI) closes its connections.
impl Drop for NetFiles {
    fn drop(&mut self) {
        for file in self.files.values() {
            file.conn.close();
        }
        let n = self.files.len() as u64;
        counters().open_now.fetch_sub(n, Ordering::Relaxed);
    }
}

fn io_error(kind: io::ErrorKind) -> OpenError {
    match kind {
        io::ErrorKind::ConnectionRefused => OpenError::Refused,
        io::ErrorKind::TimedOut => OpenError::TimedOut,
        _ => OpenError::Io,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::net::rules::tests::{list, table};
    use crate::net::{NetLimits, RuleSet};

    /// Counts dials and fails them: nothing leaves the host.
    #[derive(Default)]
    struct NoDial(AtomicUsize);

    impl Connect for NoDial {
        fn connect<'a>(&'a self, _: &'a [SocketAddr], _: bool) -> ConnectFuture<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(io::ErrorKind::ConnectionRefused.into()) })
        }
    }

    fn files(rules: RuleSet, dns: crate::net::rules::tests::Table, dial: Arc<NoDial>) -> NetFiles {
        let policy = Arc::new(NetPolicy {
            rules,
            limits: NetLimits::default(),
            ca_file: None,
        });
        NetFiles::with(policy, 3, Arc::new(|_, _: &str| {}), Arc::new(dns), dial)
    }

    fn open(files: &NetFiles, path: &str) -> Result<Socket, OpenError> {
        let (target, host) = files.admit(path)?;
        wasmtime_wasi::runtime::in_tokio(files.connect(&target, &host))
    }

    #[test]
    fn refused_addresses_are_never_dialled() {
        let dial = Arc::new(NoDial::default());
        let dns = table(&[
            ("metadata.test", "169.254.169.254"),
            ("home.test", "127.0.0.1"),
        ]);
        let f = files(list(&["*", "0.0.0.0/0"], &[]), dns, dial.clone());
        for path in [
            "tcp/169.254.169.254/80",
            "tcp/metadata.test/80",
            "tcp/[fd00:ec2::254]/80",
            "udp/169.254.169.254/53",
            "tcp/bad host/80",
            "tcp/127.0.0.1/80/tls/more",
            "sctp/127.0.0.1/80",
            "tcp/127.0.0.1/99999",
        ] {
            assert_eq!(open(&f, path).err(), Some(OpenError::NotFound), "{path}");
        }
        let dns = table(&[("home.test", "127.0.0.1")]);
        let names_only = files(list(&["*"], &[]), dns, dial.clone());
        assert_eq!(
            open(&names_only, "tcp/home.test/80").err(),
            Some(OpenError::NotFound)
        );
        assert_eq!(dial.0.load(Ordering::SeqCst), 0);
        // An allowed address is dialled (and this dialler refuses it).
        assert_eq!(open(&f, "tcp/8.8.8.8/53").err(), Some(OpenError::Refused));
        assert_eq!(dial.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn paths_as_go_fsnet_writes_them() {
        let t = |p| Target::parse(p);
        assert_eq!(
            t("tcp/example.com/443/tls"),
            Some(Target {
                udp: false,
                host: "example.com".into(),
                port: 443,
                tls: true
            })
        );
        assert_eq!(
            t("udp/1.2.3.4/53").map(|t| (t.udp, t.port)),
            Some((true, 53))
        );
        assert_eq!(t("tcp/[::1]/80").map(|t| t.host), Some("[::1]".into()));
        for bad in [
            "tcp",
            "tcp/",
            "tcp/host",
            "tcp//80",
            "tcp/host/http",
            "tcp/host/80/ssl",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
