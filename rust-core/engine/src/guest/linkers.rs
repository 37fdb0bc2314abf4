//! The linkers guests are instantiated with: wasmtime-wasi's preview1 with this crate's
//! replacements of some of its functions.

use wasmtime::Linker;

use super::{cli_strings, net, poll, stdin, symlinks, GuestState};

/// The two linkers of an engine.
pub struct Linkers {
    /// WASI with arguments and environment from the guest's state, symlinks kept
    /// downward, `poll_oneoff` bounded by the request's watch, and the `/dev` connection
    /// files.
    pub cgi: Linker<GuestState>,
    /// `cgi` with stdin made non-blocking, for long-lived instances.
    pub wcgi: Linker<GuestState>,
}

impl Linkers {
    pub fn new(engine: &wasmtime::Engine) -> wasmtime::Result<Self> {
        let mut cgi = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut cgi, |s: &mut GuestState| &mut s.wasi)?;
        cli_strings::serve_args_and_environ(&mut cgi)?;
        symlinks::restrict_symlinks(&mut cgi)?;
        poll::bound_poll_oneoff(&mut cgi)?;
        net::shadow_net(&mut cgi)?;
        let mut wcgi = cgi.clone();
        stdin::shadow_stdin(&mut wcgi)?;
        Ok(Linkers { cgi, wcgi })
    }
}
