//! Giving freed heap memory back to the OS.
//!
//! Compiling a large module makes Cranelift allocate hundreds of MiB for a few seconds;
//! glibc keeps freed memory in its arenas, so without a trim Caddy's RSS would stay at that
//! peak long after the compile (or after idle modules are dropped).

/// Returns free heap memory to the OS where the allocator supports it.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
