//! What the host tells us about one request: the HTTP facts, the script it maps to, and
//! the sandbox it runs in.

use std::path::PathBuf;
use std::time::Duration;

/// What becomes of a guest's stderr (the `stderr` subdirective; go-wagi's `WASI_DEBUG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StderrMode {
    /// Logged line by line, within the cap.
    #[default]
    Log,
    /// Dropped unread.
    Discard,
}

/// The HTTP request as the server received it. Values are the server's, unprocessed: the
/// CGI environment is derived from them in [`crate::cgi_env`].
#[derive(Clone, Debug, Default)]
pub struct HttpFacts {
    pub method: String,
    /// The request target as the client sent it, before any rewrite, e.g. `/hello1?x=1`.
    pub request_uri: String,
    /// The raw query string, without `?` (after rewrites, as Caddy's FastCGI transport
    /// passes it).
    pub query_string: String,
    /// e.g. `HTTP/1.1`.
    pub protocol: String,
    /// The Host the client asked for, possibly with a port.
    pub host: String,
    /// The client's address as `ip:port`.
    pub remote_addr: String,
    /// The IP address of the listener the request came in on; empty when unknown.
    pub server_addr: String,
    /// The user an authentication handler (`basic_auth`) accepted; empty when none.
    pub remote_user: String,
    /// `Some(protocol name)` when the request came over TLS, e.g. `TLSv1.3`.
    pub tls_protocol: Option<String>,
    /// `Some(cipher suite name)` over TLS, e.g. `TLS_AES_128_GCM_SHA256`.
    pub tls_cipher: Option<String>,
    /// The client is a proxy the server trusts (`trusted_proxies`): its `X-Forwarded-*`
    /// headers are kept and extended rather than replaced.
    pub trusted_proxy: bool,
    /// Request headers in arrival order; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    /// The body length when known in advance.
    pub content_length: Option<u64>,
    pub server_software: String,
}

/// Which script a request runs, in CGI terms (RFC 3875 4.1).
#[derive(Clone, Debug, Default)]
pub struct ScriptFacts {
    pub document_root: String,
    pub script_name: String,
    pub script_filename: String,
    pub path_info: String,
}

/// A host directory the guest may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub writable: bool,
}

/// Resource limits for one guest run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 128 << 20,
        }
    }
}

/// How the engine keeps the module's compiled code.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Directory for precompiled code; `None` compiles in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How long an unused module stays loaded.
    pub keepalive: Duration,
    /// How long a file in `cache_dir` may go unused before it is pruned.
    pub max_age: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            cache_dir: None,
            keepalive: Duration::from_secs(600),
            max_age: Duration::from_secs(30 * 86400),
        }
    }
}

/// How a module serves requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// wasi:http for a component; for a module, WCGI if it exports `wagi_wcgi`, else CGI.
    #[default]
    Auto,
    /// A fresh instance per request.
    Cgi,
    /// Long-lived instances speaking yamux + HTTP/1.1 on stdio.
    Wcgi,
    /// A fresh wasi:http/proxy component instance per request; a module fails to serve.
    Http,
}

/// Everything needed to run one request.
#[derive(Clone, Debug, Default)]
pub struct RunSpec {
    /// The wasm file to run.
    pub module_path: PathBuf,
    /// That file's identity as the server found it resolving the request (it stats the
    /// file anyway); `None`: the engine stats it itself.
    pub module_identity: Option<crate::module_cache::FileIdentity>,
    pub http: HttpFacts,
    pub script: ScriptFacts,
    /// Extra environment from the site's configuration; overrides derived variables.
    pub env: Vec<(String, String)>,
    /// The same configuration evaluated without the request, for long-lived WCGI instances
    /// that serve every visitor; `None` when `env` holds no per-request values.
    pub site_env: Option<Vec<(String, String)>>,
    /// The guest's arguments as configured (`argv`), evaluated for this request; empty
    /// means the default, the module's path alone.
    pub args: Vec<String>,
    /// The same arguments evaluated without the request, for long-lived WCGI instances;
    /// `None` when `args` hold no per-request values.
    pub site_args: Option<Vec<String>>,
    /// The exported function run instead of `_start` (`entrypoint`); `None` is `_start`.
    pub entrypoint: Option<String>,
    pub mounts: Vec<Mount>,
    pub limits: Limits,
    pub cache: CacheSettings,
    pub mode: Mode,
    /// Long-lived instances per module in WCGI mode (0 means 1).
    pub wcgi_instances: u32,
    /// Whether the guest's stderr is logged.
    pub stderr: StderrMode,
    /// Outbound network (`/dev/tcp/...` files); `None`: no `/dev` at all.
    pub network: Option<std::sync::Arc<crate::net::NetPolicy>>,
}

impl RunSpec {
    /// The arguments of a guest run for this request.
    pub fn request_args(&self) -> Vec<String> {
        self.args_or_default(&self.args)
    }

    /// The arguments of a long-lived instance, which serves every visitor: never one
    /// request's values.
    pub fn instance_args(&self) -> Vec<String> {
        self.args_or_default(self.site_args.as_ref().unwrap_or(&self.args))
    }

    fn args_or_default(&self, args: &[String]) -> Vec<String> {
        if args.is_empty() {
            return vec![self.module_path.to_string_lossy().into_owned()];
        }
        args.to_vec()
    }
}
