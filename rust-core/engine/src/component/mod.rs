//! wasi:http components: a `.wasm` that is a `wasi:http/proxy` component is served like a
//! CGI module (same mapping, limits, cache and logs), one fresh instance per request, its
//! `incoming-handler` called with the request and the response streamed back.
//!
//! - `state`: what a component's store holds and the linker it is instantiated with
//!   (WASI preview2, wasi:http, and `waits`). Layer 2.
//! - `waits`: the guest's waits (`wasi:io/poll`, blocking streams), bounded by the
//!   request's deadline and preceded by sending the response so far.
//! - `respond`: the response, sent to the host from the guest's thread.
//! - `outgoing`: the guest's outgoing requests, through the site's network rules.
//! - `body`: the request body, read from the host on a thread of its own. Layer 1.
//! - `serve`: one request. Layer 4, beside `cgi`.

mod body;
mod outgoing;
mod respond;
mod serve;
mod state;
mod waits;

pub use serve::serve;
pub use state::{linker, HttpCode, HttpState};

/// True when `bytes` are a component rather than a core module: the preamble's layer field
/// (bytes 6..8) is 1 for components, 0 for modules.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm") && bytes.get(6..8) == Some(&[1, 0])
}

#[cfg(test)]
mod tests {
    use super::is_component;

    #[test]
    fn tells_components_from_modules_by_the_layer_field() {
        assert!(is_component(b"\0asm\x0d\x00\x01\x00"));
        assert!(!is_component(b"\0asm\x01\x00\x00\x00"));
        assert!(!is_component(b"(component)"));
        assert!(!is_component(b"\0asm"));
    }
}
