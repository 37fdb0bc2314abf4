//! caddy-wagi's engine: runs WASI preview1 modules as CGI programs with wasmtime.
//!
//! The host (Caddy, through the FFI crate) describes a request as a [`RunSpec`] and
//! implements [`Host`]; [`Engine::handle`] runs the module and streams the response.

mod cgi;
mod cgi_env;
mod cgi_output;
pub mod cgi_response;
mod compile;
mod deadline;
mod disk_cache;
mod engine;
mod failure;
mod guest;
mod host;
mod limiter;
mod locks;
mod module_cache;
mod pipe;
mod request;
mod response_fields;
mod stdio;
mod trim;
mod wasi_ctx;
mod wcgi;

pub use deadline::EPOCH_TICK;
pub use engine::{Engine, EngineConfig, Site};
pub use failure::{Failure, FailureKind};
pub use host::{ClientGone, EngineLog, Host, LogLevel};
pub use request::{CacheSettings, HttpFacts, Limits, Mode, Mount, RunSpec, ScriptFacts};
pub use response_fields::ResponseHead;
