//! How a guest's call ended, as a [`Failure`]: shared by every way of running a request on
//! a fresh instance (CGI modules and wasi:http components).

use wasmtime::{PoolConcurrencyLimitError, Trap};
use wasmtime_wasi::I32Exit;

use crate::deadline::RequestWatch;
use crate::failure::{Failure, FailureKind};

/// Reads the guest's ending: `Ok(None)` for success, `Ok(Some(code))` for a non-zero exit.
pub fn classify(
    result: wasmtime::Result<()>,
    memory_denied: bool,
    watch: &RequestWatch,
) -> Result<Option<i32>, Failure> {
    let err = match result {
        Ok(()) => return Ok(None),
        Err(err) => err,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Ok((exit.0 != 0).then_some(exit.0));
    }
    if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
        // Interrupted by its watch.
        return Err(watch.ending());
    }
    if memory_denied {
        return Err(Failure::new(
            FailureKind::MemoryLimit,
            format!("guest hit its memory limit: {}", first_line(&err)),
        ));
    }
    if err.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return Err(Failure::new(
            FailureKind::Busy,
            format!("no instance slot free: {}", first_line(&err)),
        ));
    }
    Err(Failure::new(FailureKind::Trap, format!("{err:#}")))
}

fn first_line(err: &wasmtime::Error) -> String {
    format!("{err:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
