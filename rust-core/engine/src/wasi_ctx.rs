//! The WASI context every guest gets, CGI or WCGI: argv, environment, stdio and mounts.

use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::failure::{Failure, FailureKind};
use crate::request::RunSpec;

/// Builds the guest's WASI context for `spec` with the given arguments, environment and
/// stdio. Only the mounts in `spec` are visible; nothing of the host's environment is.
pub fn build(
    spec: &RunSpec,
    args: &[String],
    env: &[(String, String)],
    stdin: impl StdinStream + 'static,
    stdout: impl StdoutStream + 'static,
    stderr: impl StdoutStream + 'static,
) -> Result<WasiP1Ctx, Failure> {
    let mut wasi = WasiCtxBuilder::new();
    // File and stream calls stay on the guest's own thread (the CGI request's, or the WCGI
    // instance's): faster than a hop to a blocking pool. The one blocking call that a
    // deadline must cut short, a plain sleep, is served by `guest/poll.rs`.
    wasi.allow_blocking_current_thread(true)
        .args(args)
        .envs(env)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    for m in &spec.mounts {
        let perms = if m.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&m.host_path, &m.guest_path, perms)
            .map_err(|e| {
                Failure::new(
                    FailureKind::Internal,
                    format!("cannot mount {}: {e:#}", m.host_path.display()),
                )
            })?;
    }
    Ok(wasi.build_p1())
}
