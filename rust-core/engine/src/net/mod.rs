//! Outbound network for guests, as go-wagi offers it: with networking on for a site, the
//! guest sees `/dev` holding `tcp/<host>/<port>`, `tcp/<host>/<port>/tls` and
//! `udp/<host>/<port>`; opening one connects (if the site's rules allow the address), reads
//! and writes are the connection's bytes, closing closes it.
//!
//! - `rules`: which addresses a guest may reach, with an injectable resolver; `gost`: the
//!   `WASI_NET` reading of those rules.
//! - `conn`: one connection, driven by a tokio task, with bounded buffers the guest reads
//!   and writes without blocking.
//! - `files`: a guest's table of open connection files; `tls`: the host's TLS for `/tls`.

pub mod conn;
pub mod files;
pub mod gost;
pub mod rules;
pub mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use files::NetFiles;
pub use rules::{Entry, ListRules, RuleSet};

/// A site's network settings, made once from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetPolicy {
    pub rules: RuleSet,
    pub limits: NetLimits,
    /// PEM file of extra trusted CAs for `/tls` connections, besides the system roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Bounds on a guest's connections, by configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// Open connection files a CGI request, or a long-lived WCGI instance, may hold.
    pub max_connections: u32,
    /// How long resolving and connecting may take.
    pub connect_timeout: Duration,
    /// Bytes buffered per direction per connection.
    pub buffer_bytes: usize,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_connections: 64,
            connect_timeout: Duration::from_secs(10),
            buffer_bytes: 256 << 10,
        }
    }
}

/// Process-wide connection counters, for metrics.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Connections opened.
    pub opened: AtomicU64,
    /// Opens refused by the rules or the connection cap.
    pub refused: AtomicU64,
    /// Opens that failed to resolve, connect or handshake.
    pub failed: AtomicU64,
    /// Connection files open now.
    pub open_now: AtomicU64,
}

static COUNTERS: NetCounters = NetCounters {
    opened: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    open_now: AtomicU64::new(0),
};

/// The process's connection counters.
pub fn counters() -> &'static NetCounters {
    &COUNTERS
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
