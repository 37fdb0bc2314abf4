//! Engine lifecycle.

use std::sync::Arc;

use wagi_core::{Engine, EngineConfig, Failure, FailureKind, LogFields, LogLevel};

use crate::error::{wagi_error, wagi_result};
use crate::guard::{free_boxed, guard};

/// An engine: compiled-module cache, instance pool and time-limit ticker. Shared by all
/// requests of a process; thread-safe.
pub struct wagi_engine {
    pub(crate) engine: Arc<Engine>,
}

/// Logs a line that belongs to no request, with the module path and site root it is
/// about (each empty when it is about none).
pub type EngineLogFn = unsafe extern "C" fn(
    level: u8,
    msg: *const u8,
    len: usize,
    module: *const u8,
    module_len: usize,
    site: *const u8,
    site_len: usize,
);

/// Settings fixed for the life of an engine. Zero means "use the default".
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wagi_engine_config {
    /// Most guest instances alive at once (default 128). The server must not run more
    /// concurrent `wagi_handle` calls than this; extra ones fail with status 503.
    pub instance_slots: u32,
    /// Largest linear memory any guest may have, in bytes (default 4 GiB).
    pub memory_ceiling_bytes: u64,
    /// Most long-lived (WCGI) instances alive at once over all sites (default 64); one
    /// more answers 503.
    pub wcgi_instance_slots: u32,
    /// Most modules compiling at once (default: half the CPUs, at least 1).
    pub compile_concurrency: u32,
    /// Where the engine logs events outside requests (idle modules dropped, modules
    /// prepared by `wagi_prepare`, WCGI instances ending and their stderr), with the levels
    /// of `wagi_host.log`, and the module path and site root the line is about. May be
    /// null. Called from the engine's own threads.
    // Spelled out, not `Option<EngineLogFn>`: cbindgen makes a nullable function pointer
    // only of an `Option` of a function type written here.
    pub log: Option<
        unsafe extern "C" fn(
            level: u8,
            msg: *const u8,
            len: usize,
            module: *const u8,
            module_len: usize,
            site: *const u8,
            site_len: usize,
        ),
    >,
}

/// Wraps the C log function for the engine's own threads.
fn engine_log(f: EngineLogFn) -> wagi_core::EventLog {
    Arc::new(move |level: LogLevel, msg: &str, fields: LogFields<'_>| {
        let module = fields.module.map(|p| p.as_os_str().as_encoded_bytes());
        let module = module.unwrap_or_default();
        let site = fields.site.unwrap_or_default();
        // SAFETY: the server registered `f` for the engine's lifetime; each pointer is
        // valid for its length.
        unsafe {
            f(
                level as u8,
                msg.as_ptr(),
                msg.len(),
                module.as_ptr(),
                module.len(),
                site.as_ptr(),
                site.len(),
            )
        }
    })
}

pub(crate) fn internal(message: &str) -> Failure {
    Failure::new(FailureKind::Internal, message)
}

/// Creates an engine. On success `*engine_out` owns it; free it with `wagi_engine_free`.
///
/// # Safety
/// `config` is null (all defaults) or valid; `engine_out` and `err_out` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn wagi_engine_new(
    config: *const wagi_engine_config,
    engine_out: *mut *mut wagi_engine,
    err_out: *mut *mut wagi_error,
) -> wagi_result {
    // SAFETY: the caller guarantees the pointers' validity.
    unsafe {
        guard(err_out, || {
            let engine_out = engine_out
                .as_mut()
                .ok_or_else(|| internal("engine_out is null"))?;
            let mut settings = EngineConfig::default();
            let log = config.as_ref().and_then(|c| c.log);
            if let Some(c) = config.as_ref() {
                if c.instance_slots != 0 {
                    settings.instance_slots = c.instance_slots;
                }
                if c.memory_ceiling_bytes != 0 {
                    settings.memory_ceiling = c.memory_ceiling_bytes;
                }
                if c.wcgi_instance_slots != 0 {
                    settings.wcgi_instance_slots = c.wcgi_instance_slots;
                }
                if c.compile_concurrency != 0 {
                    settings.compile_concurrency = c.compile_concurrency;
                }
            }
            let engine = Engine::new(settings, log.map(engine_log))?;
            let engine = Arc::new(engine);
            *engine_out = Box::into_raw(Box::new(wagi_engine { engine }));
            Ok(())
        })
    }
}

/// Frees an engine. Sites made from it keep what they need of it alive until they are
/// freed too. Null is allowed.
///
/// # Safety
/// `engine` is null or from `wagi_engine_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn wagi_engine_free(engine: *mut wagi_engine) {
    // SAFETY: the caller guarantees ownership.
    unsafe { free_boxed(engine) }
}
