//! What the server's admin API asks of the engine: list the loaded modules and long-lived
//! instances, restart instances, evict modules.

use std::fmt::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use wagi_core::{Engine, InstanceInfo, ModuleInfo};

use crate::api::{internal, wagi_engine};
use crate::error::{wagi_error, wagi_result};
use crate::guard::guard;

/// Writes the loaded modules and the long-lived instances as JSON into `buf` (up to `cap`
/// bytes) and their full length into `*len_out`; when that is over `cap`, nothing is
/// written and the caller asks again with a larger buffer. The JSON is
/// `{"modules":[{"path","size","loaded_at","last_used","wcgi_export","tier","code_ready_at",
/// "component"}],
/// "instances":[{"module","site","started_at","inflight","memory_bytes"}]}`, with times in
/// milliseconds since the Unix epoch (`loaded_at` is null when unknown).
///
/// # Safety
/// `engine` is live; `buf` is valid for `cap` bytes (or null with `cap` 0); `len_out` is
/// valid for writes; `err_out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_engine_list(
    engine: *const wagi_engine,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        guard(err_out, || {
            let engine = engine.as_ref().ok_or_else(|| internal("engine is null"))?;
            let len_out = len_out
                .as_mut()
                .ok_or_else(|| internal("len_out is null"))?;
            let (modules, instances) = engine.engine.list();
            let json = listing_json(&modules, &instances);
            *len_out = json.len();
            if json.len() <= cap && !buf.is_null() {
                std::ptr::copy_nonoverlapping(json.as_ptr(), buf, json.len());
            }
            Ok(())
        })
    }
}

/// Drains the long-lived instances of the module at `module` (`module_len` bytes; every
/// module when 0) in every site: requests in flight finish, the next request starts new
/// ones. Returns how many were drained in `*count_out`.
///
/// # Safety
/// `engine` is live; `module` is valid for `module_len` bytes; `count_out` is valid for
/// writes; `err_out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_engine_restart(
    engine: *const wagi_engine,
    module: *const u8,
    module_len: usize,
    count_out: *mut usize,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        per_module(
            engine,
            module,
            module_len,
            count_out,
            err_out,
            Engine::restart,
        )
    }
}

/// Drops the loaded module at `module` (`module_len` bytes; every module when 0), so the
/// next request loads it again. Returns how many were dropped in `*count_out`.
///
/// # Safety
/// As for `wagi_engine_restart`.
#[no_mangle]
pub unsafe extern "C" fn wagi_engine_evict(
    engine: *const wagi_engine,
    module: *const u8,
    module_len: usize,
    count_out: *mut usize,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        per_module(
            engine,
            module,
            module_len,
            count_out,
            err_out,
            Engine::evict,
        )
    }
}

/// Runs `op` on the engine for the module at `module` (`module_len` bytes; every module
/// when 0) and writes what it returns to `*count_out`.
///
/// # Safety
/// As for `wagi_engine_restart`.
unsafe fn per_module(
    engine: *const wagi_engine,
    module: *const u8,
    module_len: usize,
    count_out: *mut usize,
    err_out: *mut *mut wagi_error,
    op: fn(&Engine, Option<&Path>) -> usize,
) -> wagi_result {
    // SAFETY: as documented above.
    unsafe {
        guard(err_out, || {
            let engine = engine.as_ref().ok_or_else(|| internal("engine is null"))?;
            let count_out = count_out
                .as_mut()
                .ok_or_else(|| internal("count_out is null"))?;
            *count_out = op(&engine.engine, module_path(module, module_len)?);
            Ok(())
        })
    }
}

/// The module path argument: `None` (every module) when empty.
///
/// # Safety
/// `ptr` is valid for `len` bytes when `len` is not 0.
unsafe fn module_path<'a>(
    ptr: *const u8,
    len: usize,
) -> Result<Option<&'a Path>, wagi_core::Failure> {
    if len == 0 {
        return Ok(None);
    }
    if ptr.is_null() {
        return Err(internal("module is null"));
    }
    // SAFETY: as documented above.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let text = std::str::from_utf8(bytes).map_err(|_| internal("module path is not UTF-8"))?;
    Ok(Some(Path::new(text)))
}

fn listing_json(modules: &[ModuleInfo], instances: &[InstanceInfo]) -> String {
    let mut out = String::from("{\"modules\":[");
    for (i, m) in modules.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"path\":");
        json_string(&mut out, &m.path.to_string_lossy());
        let loaded_at = m
            .loaded_at
            .map_or("null".to_string(), |t| millis(t).to_string());
        let _ = write!(
            out,
            ",\"size\":{},\"loaded_at\":{loaded_at},\"last_used\":{},\"wcgi_export\":{},\"tier\":\"{}\",\"code_ready_at\":{},\"component\":{}}}",
            m.size,
            millis(m.last_used),
            m.wcgi_export,
            m.tier.name(),
            millis(m.ready_at),
            m.component
        );
    }
    out.push_str("],\"instances\":[");
    for (i, inst) in instances.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"module\":");
        json_string(&mut out, &inst.module.to_string_lossy());
        out.push_str(",\"site\":");
        json_string(&mut out, &inst.site);
        let _ = write!(
            out,
            ",\"started_at\":{},\"inflight\":{},\"memory_bytes\":{}}}",
            millis(inst.started_at),
            inst.inflight,
            inst.memory_bytes
        );
    }
    out.push_str("]}");
    out
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// Appends `s` as a JSON string.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#""a\"b\\c\u000ad""#);
    }
}
