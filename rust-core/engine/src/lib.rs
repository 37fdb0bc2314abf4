//! caddy-wagi's engine: runs WASI preview1 modules as CGI programs with wasmtime.
//!
//! The host (Caddy, through the FFI crate) describes a request as a [`RunSpec`] and
//! implements [`Host`]; [`Engine::handle`] runs the module and streams the response.
//!
//! Layers, bottom up; a module imports only from layers below its own (and, among the
//! leaves, only from leaves listed before it):
//! 1. Leaves: `failure`, `locks`, `trim`, `request`, `response_fields`, `cgi_response`,
//!    `host`, `cgi_env`, `cgi_output`, `stdio`, `wasi_ctx`, `limiter`, `deadline`, `pipe`,
//!    `sealed`, `disk_cache`, `stats`, `net` (after `host`, `locks` and `deadline`; `wasi_ctx`
//!    makes its table), `outcome` (after `deadline`), `wake_fd`.
//! 2. `guest/`: the state a guest's store holds, and the linkers with the WASI functions
//!    this crate replaces (`poll`, `stdin`, `symlinks`); `component/` the same for
//!    wasi:http components (its `serve` belongs to layer 4).
//! 3. `tier` (the engines of the two compile tiers), `background` (the low-priority
//!    thread), `compile` (owns `LoadedModule`), then `module_cache`.
//! 4. `cgi`, `wcgi/` and `component::serve` side by side, none importing another: one
//!    request on a fresh instance, on a long-lived one, or on a fresh component instance.
//! 5. `engine/`, the facade: configuration, sites, dispatch between CGI and WCGI, and the
//!    housekeeping thread.

// 1. Leaves.
mod cgi_env;
mod cgi_output;
pub mod cgi_response;
mod deadline;
mod disk_cache;
mod failure;
mod host;
mod limiter;
mod locks;
mod net;
mod outcome;
mod pipe;
mod request;
mod response_fields;
mod sealed;
mod stats;
mod stdio;
mod trim;
mod wake_fd;
mod wasi_ctx;

// 2. The guest's side of wasmtime.
mod component;
mod guest;
mod kept_threads;

// 3. Loaded modules.
mod background;
mod compile;
mod module_cache;
mod tier;

// 4. The two modes.
mod cgi;
mod wcgi;

// 5. The facade.
mod engine;

pub use deadline::EPOCH_TICK;
pub use engine::{Engine, EngineConfig, Site};
pub use failure::{Failure, FailureKind};
pub use host::{ClientGone, EngineLog, EventLog, Host, LogFields, LogLevel};
pub use module_cache::{FileIdentity, ModuleInfo};
pub use net::gost::GostRules;
pub use net::{
    counters as net_counters, Entry as NetEntry, ListRules, NetCounters, NetLimits, NetPolicy,
    RuleSet,
};
pub use request::{
    CacheSettings, HttpFacts, Limits, Mode, Mount, RunSpec, ScriptFacts, StderrMode,
};
pub use response_fields::ResponseHead;
pub use stats::StatsSnapshot;
pub use tier::Tier;
pub use wake_fd::WakeFd;
pub use wcgi::{InstanceInfo, Waiting};
