//! The C ABI of caddy-wagi, built as `libwagi.a`; `include/wagi.h` is generated from it by
//! cbindgen. Every exported function catches panics and reports them as `WAGI_PANIC`.
//!
//! Lifecycle: `wagi_engine_new` once per process; `wagi_site_new` per configured site (equal
//! configurations share one site); `wagi_handle` per request (from any thread,
//! concurrently), and `wagi_pending_poll` for a request it left waiting on a WCGI instance;
//! `wagi_site_free` when no request of that handle runs; `wagi_engine_free` whenever (sites
//! keep what they need).
#![allow(non_camel_case_types)]

mod admin;
mod api;
mod error;
mod guard;
mod host;
mod pending;
mod request;
mod site;
mod stats;

pub use admin::*;
pub use api::*;
pub use error::*;
pub use host::wagi_host;
pub use pending::*;
pub use request::wagi_field;
pub use site::*;
pub use stats::*;
