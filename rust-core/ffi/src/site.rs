//! Sites and the requests they serve.

use std::sync::Arc;

use wagi_core::{Engine, Failure, RunSpec, Site};

use crate::api::{internal, wagi_engine};
use crate::error::{wagi_error, wagi_result};
use crate::guard::{free_boxed, guard};
use crate::host::{wagi_host, CallbackHost};
use crate::pending::{wagi_pending, wagi_waker};
use crate::request::{decode_request, decode_site};

/// A site: the configuration its requests share (env, mounts, limits, cache, mode) and its
/// long-lived WCGI instances. Thread-safe; free with `wagi_site_free` once no call on it is
/// running.
pub struct wagi_site {
    engine: Arc<Engine>,
    site: Arc<Site>,
}

/// The record at `ptr`, checked for null.
///
/// # Safety
/// `ptr` is null or valid for `len` bytes.
unsafe fn record<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(internal("record is null"));
    }
    // SAFETY: as documented above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The site at `site` and the request record decoded on top of its configuration.
///
/// # Safety
/// `site` is null or live; `request` is null or valid for `request_len` bytes.
unsafe fn site_and_request<'a>(
    site: *const wagi_site,
    request: *const u8,
    request_len: usize,
) -> Result<(&'a wagi_site, RunSpec), Failure> {
    // SAFETY: as documented above.
    let site = unsafe { site.as_ref() }.ok_or_else(|| internal("site is null"))?;
    // SAFETY: as documented above.
    let spec = decode_request(site.site.base(), unsafe { record(request, request_len) }?)?;
    Ok((site, spec))
}

/// Makes a site from its configuration record: the `wagi_field`s that hold for every
/// request (env without request placeholders, mounts, limits, cache, mode, instances).
/// Equal records give the same site, so a config reload that changes nothing keeps its
/// long-lived instances. On success `*site_out` owns a handle; free it with
/// `wagi_site_free`.
///
/// # Safety
/// `engine` is live; `config` is valid for `config_len` bytes; `site_out` and `err_out`
/// are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_site_new(
    engine: *const wagi_engine,
    config: *const u8,
    config_len: usize,
    site_out: *mut *mut wagi_site,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        guard(err_out, || {
            let engine = engine.as_ref().ok_or_else(|| internal("engine is null"))?;
            let site_out = site_out
                .as_mut()
                .ok_or_else(|| internal("site_out is null"))?;
            let config = record(config, config_len)?;
            let base = decode_site(config)?;
            let site = engine.engine.site(config, || base);
            *site_out = Box::into_raw(Box::new(wagi_site {
                engine: engine.engine.clone(),
                site,
            }));
            Ok(())
        })
    }
}

/// Frees a site handle. No call on it may be running. When no other handle has the same
/// configuration, its long-lived instances stop. Null is allowed.
///
/// # Safety
/// `site` is null or from `wagi_site_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn wagi_site_free(site: *mut wagi_site) {
    // SAFETY: the caller guarantees ownership.
    unsafe { free_boxed(site) }
}

/// Runs one request of `site`, calling `host`'s callbacks with `ctx` meanwhile, on this
/// thread.
///
/// `request` is the request record (see `wagi_field`): the request's own fields, added to
/// the site's. On `WAGI_ERROR`/`WAGI_PANIC`, `*err_out` owns an error: if no head was sent
/// yet, answer with `wagi_error_status`; otherwise abort the response.
///
/// With a null `waker`, it returns once the request is over. With a waker, a request
/// relayed to a long-lived WCGI instance does not block this thread while the guest works:
/// it returns `WAGI_OK` with `*pending_out` set, and the server calls `wagi_pending_poll`
/// whenever the waker's descriptor turns readable, until that reports it done. The
/// request's `ctx` and callbacks must stay valid until then. `*pending_out` is null when
/// the request is over.
///
/// # Safety
/// `site` is live; `request` is valid for `request_len` bytes; `host` is valid; `waker` is
/// null or live; `pending_out` is null (only without a waker) or valid for writes;
/// `err_out` is valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_handle(
    site: *const wagi_site,
    request: *const u8,
    request_len: usize,
    host: *const wagi_host,
    ctx: u64,
    waker: *const wagi_waker,
    pending_out: *mut *mut wagi_pending,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        if let Some(out) = pending_out.as_mut() {
            *out = std::ptr::null_mut();
        }
        guard(err_out, || {
            let (site, spec) = site_and_request(site, request, request_len)?;
            let callbacks = host.as_ref().ok_or_else(|| internal("host is null"))?;
            let host = CallbackHost::new(callbacks, ctx)
                .ok_or_else(|| internal("a host callback is null"))?;
            // Checked before the request starts, not once it waits.
            let waiting_out = match (waker.as_ref(), pending_out.as_mut()) {
                (Some(waker), Some(out)) => Some((waker, out)),
                (Some(_), None) => return Err(internal("a waker needs pending_out")),
                (None, _) => None,
            };
            let Some(waiting) = site.engine.start(&site.site, spec, Arc::new(host))? else {
                return Ok(());
            };
            let Some((waker, out)) = waiting_out else {
                return waiting.wait();
            };
            if let Some(pending) = wagi_pending::start(waiting, waker)? {
                *out = Box::into_raw(pending);
            }
            Ok(())
        })
    }
}

/// Loads the module named by the record's `WAGI_FIELD_MODULE_PATH` into the cache, with
/// the site's cache settings (compiling it, or reading it from the disk cache), without
/// running it, and logs what it did through the engine's log. For warming up.
///
/// # Safety
/// As for `wagi_handle`.
#[no_mangle]
pub unsafe extern "C" fn wagi_prepare(
    site: *const wagi_site,
    request: *const u8,
    request_len: usize,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        guard(err_out, || {
            let (site, spec) = site_and_request(site, request, request_len)?;
            site.engine.prepare(&spec.module_path, &spec.cache)
        })
    }
}
