//! The tests' Rust wasi:http component: one component whose behaviour is picked by the
//! last segment of the path (the site serves it as /r.wasm/<route>), like the JavaScript
//! guest in tests/guests/httpjs.
//!
//! It builds two ways (scripts/build-rust-component.sh): for `wasm32-wasip2` with rustup's
//! target, as an ordinary std crate; or, where that target cannot be installed, `no_std`
//! for `wasm32-unknown-unknown` (core and alloc built from Debian's Rust sources), turned
//! into a component by wasm-tools. Only the allocator and the panic handler differ.
#![cfg_attr(not(target_env = "p2"), no_std)]

extern crate alloc;

mod files;
mod http;
mod routes;

struct Component;

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: wasip2::http::types::IncomingRequest, out: http::ResponseOut) {
        routes::route(request, out);
    }
}

wasip2::http::proxy::export!(Component with_types_in wasip2);

// std brings its own allocator and panic handling on wasm32-wasip2; without std the
// component needs both.
#[cfg(not(target_env = "p2"))]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic writes its message to stderr (the host logs it) and traps.
#[cfg(not(target_env = "p2"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let message = alloc::format!("panic: {info}\n");
    let _ = wasip2::cli::stderr::get_stderr().blocking_write_and_flush(message.as_bytes());
    core::arch::wasm32::unreachable()
}
