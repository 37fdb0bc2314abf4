//! The WASI context every guest gets, CGI or WCGI: argv, environment, stdio and mounts.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::failure::{Failure, FailureKind};
use crate::net::files::NetLog;
use crate::net::NetFiles;
use crate::request::RunSpec;

/// WASI preview1 calls that cannot reach a preopened directory: they take no descriptor,
/// or (`fd_read`, `fd_write`) fail with EBADF on a directory exactly as on a descriptor that
/// is not open. A module that imports nothing else cannot tell whether mounts are there.
const CALLS_BLIND_TO_DIRECTORIES: [&str; 12] = [
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_read",
    "fd_write",
    "proc_exit",
    "proc_raise",
    "random_get",
    "sched_yield",
];

/// Whether `module` imports a call that can reach a directory. Only such a module gets the
/// site's mounts (and `/dev`): each is opened again for every instance.
pub fn reaches_files(module: &wasmtime::Module) -> bool {
    module.imports().any(|import| {
        matches!(import.ty(), wasmtime::ExternType::Func(_))
            && !(import.module() == "wasi_snapshot_preview1"
                && CALLS_BLIND_TO_DIRECTORIES.contains(&import.name()))
    })
}

/// Builds a module's WASI context for `spec` with the given stdio. Only the mounts in
/// `spec` are visible, and only when `files` (see [`reaches_files`]). Its arguments and
/// environment are the guest state's (`guest::CStrings`): nothing of the host's is seen.
pub fn build(
    spec: &RunSpec,
    files: bool,
    stdin: impl StdinStream + 'static,
    stdout: impl StdoutStream + 'static,
    stderr: impl StdoutStream + 'static,
) -> Result<WasiP1Ctx, Failure> {
    let mut wasi = builder(spec, files, stdin, stdout, stderr)?;
    if files && spec.network.is_some() {
        // Last, so its fd is `dev_fd(spec)`.
        wasi.preopened_dir(empty_dir()?, "/dev", FsPerms::ReadOnly)
            .map_err(|e| {
                Failure::new(FailureKind::Internal, format!("cannot mount /dev: {e:#}"))
            })?;
    }
    Ok(wasi.build_p1())
}

/// The part of the context that modules and components share: stdio and, with `mounts`,
/// the site's mounts (no `/dev`: connection files are a preview1 matter).
pub fn builder(
    spec: &RunSpec,
    mounts: bool,
    stdin: impl StdinStream + 'static,
    stdout: impl StdoutStream + 'static,
    stderr: impl StdoutStream + 'static,
) -> Result<WasiCtxBuilder, Failure> {
    let mut wasi = WasiCtxBuilder::new();
    // File and stream calls stay on the guest's own thread (the CGI request's, or the WCGI
    // instance's): faster than a hop to a blocking pool. The one blocking call that a
    // deadline must cut short, a plain sleep, is served by `guest/poll.rs`.
    wasi.allow_blocking_current_thread(true)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    let mounts: &[crate::request::Mount] = if mounts { &spec.mounts } else { &[] };
    for m in mounts {
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
    Ok(wasi)
}

/// The guest's connection-file table when its site has networking on and the guest can
/// reach files (`files`). The `/dev` preopen comes after stdio (0-2) and the site's mounts,
/// each one fd, as wasmtime-wasi numbers them.
pub fn net_files(spec: &RunSpec, files: bool, log: NetLog) -> Option<NetFiles> {
    if !files {
        return None;
    }
    let dev_fd = 3 + u32::try_from(spec.mounts.len()).ok()?;
    Some(NetFiles::new(spec.network.clone()?, dev_fd, log))
}

/// An empty directory of ours to stand for `/dev` (the guest sees it read-only and empty;
/// its entries are connection paths served by `guest::net`).
fn empty_dir() -> Result<&'static Path, Failure> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("caddy-wagi-dev-{}", std::process::id()));
        let fresh = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| e.to_string())?;
        let empty = std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .next()
            .is_none();
        let ours = meta.is_dir() && meta.uid() == own_uid() && empty;
        match (fresh, ours) {
            (_, true) => Ok(dir),
            (Err(e), false) => Err(format!("{}: {e}", dir.display())),
            (Ok(()), false) => Err(format!(
                "{} is not an empty directory of ours",
                dir.display()
            )),
        }
    });
    made.as_deref()
        .map_err(|e| Failure::new(FailureKind::Internal, format!("cannot make /dev: {e}")))
}

/// This process's user id (the owner of its /proc entry).
fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}
