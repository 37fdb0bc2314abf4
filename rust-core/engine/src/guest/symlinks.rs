//! Guests may create symlinks only to paths below the link's own directory.
//!
//! WASI resolves every guest path inside its mount, so a symlink cannot lead the guest out.
//! But the link itself lands on the host's disk, where other programs follow it: a guest
//! with a writable mount inside the site root could plant `uploads/pw -> ../../../etc/passwd`
//! and have `file_server` serve the host's files. wasmtime-wasi already refuses absolute
//! targets; this override of `path_symlink` also refuses any target with a `..` component,
//! so every link a guest makes points downward from where it stands, wherever it is moved.

use std::path::{Component, Path};

use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::runtime::in_tokio;

use super::{errno, exported_memory, GuestState, WASI};

/// True for a target that stays below the link's directory.
pub fn target_stays_below(target: &str) -> bool {
    Path::new(target)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Replaces `path_symlink` in `linker` with one that refuses targets leaving the link's
/// directory, then calls wasmtime-wasi's own.
pub fn restrict_symlinks(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        WASI,
        "path_symlink",
        |mut caller: Caller<'_, GuestState>,
         old_ptr: i32,
         old_len: i32,
         fd: i32,
         new_ptr: i32,
         new_len: i32|
         -> wasmtime::Result<i32> {
            let memory = exported_memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let start = old_ptr as u32 as usize;
            let Some(target) = data.get(start..start.saturating_add(old_len as u32 as usize))
            else {
                return Ok(errno::FAULT);
            };
            let Ok(target) = std::str::from_utf8(target) else {
                return Ok(errno::ILSEQ);
            };
            if !target_stays_below(target) {
                return Ok(errno::PERM);
            }
            let mut guest = wiggle::GuestMemory::Unshared(data);
            in_tokio(p1::path_symlink(
                &mut state.wasi,
                &mut guest,
                old_ptr,
                old_len,
                fd,
                new_ptr,
                new_len,
            ))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::target_stays_below;

    #[test]
    fn only_downward_targets() {
        for ok in ["a", "a/b", "./a", "a/./b", "file.txt"] {
            assert!(target_stays_below(ok), "{ok}");
        }
        for bad in [
            "..",
            "../x",
            "a/../b",
            "a/../../etc/passwd",
            "/etc/passwd",
            "a/..",
        ] {
            assert!(!target_stays_below(bad), "{bad}");
        }
    }
}
