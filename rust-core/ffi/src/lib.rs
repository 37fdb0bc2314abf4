//! The C ABI of caddy-wagi, built as `libwagi.a`; `include/wagi.h` is generated from it by
//! cbindgen. Every exported function catches panics and reports them as `WAGI_PANIC`.
//!
//! Lifecycle: `wagi_engine_new` once per process, `wagi_handle` per request (from any
//! thread, concurrently), `wagi_engine_free` when no request is running.
#![allow(non_camel_case_types)]

mod api;
mod error;
mod guard;
mod host;
mod request;

pub use api::*;
pub use error::*;
pub use host::wagi_host;
pub use request::wagi_field;
