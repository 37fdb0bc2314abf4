//! Where a guest run starts: `_start` for a WASI command, or the function the site names
//! with `entrypoint` (deislabs wagi's option). A module built as a WASI reactor (it exports
//! `_initialize` rather than `_start`) is initialised before its entrypoint runs, as the
//! WASI application ABI asks.

use wasmtime::{AsContextMut, Instance, TypedFunc};

/// The entry of a WASI command.
pub const START: &str = "_start";
/// The initialiser of a WASI reactor.
const INITIALIZE: &str = "_initialize";

/// The function `entrypoint` (default `_start`) names in `instance`, checked to take and
/// return nothing.
pub fn entry(
    mut store: impl AsContextMut,
    instance: &Instance,
    entrypoint: Option<&str>,
) -> wasmtime::Result<TypedFunc<(), ()>> {
    let name = entrypoint.unwrap_or(START);
    instance
        .get_typed_func::<(), ()>(store.as_context_mut(), name)
        .map_err(|e| e.context(format!("the module has no entrypoint {name}() to run")))
}

/// Runs `_initialize` when the module is a reactor and the run starts elsewhere than
/// `_start` (a command initialises itself in `_start`).
pub fn initialize(
    mut store: impl AsContextMut,
    instance: &Instance,
    entrypoint: Option<&str>,
) -> wasmtime::Result<()> {
    if entrypoint.is_none_or(|name| name == START) {
        return Ok(());
    }
    match instance.get_typed_func::<(), ()>(store.as_context_mut(), INITIALIZE) {
        Ok(init) => init.call(store, ()),
        Err(_) => Ok(()),
    }
}
