//! What long-lived instances need from the engine that runs them, handed down instead of
//! the engine itself.

use std::sync::Arc;

use wasmtime::Linker;

use super::budget::InstanceBudget;
use crate::guest::GuestState;
use crate::host::EventLog;
use crate::stats::EngineStats;

/// What long-lived instances need from the engine that runs them.
pub struct WcgiContext {
    pub engine: wasmtime::Engine,
    /// The linker with non-blocking stdin.
    pub linker: Linker<GuestState>,
    /// Long-lived instances alive now, against the engine's `wcgi_instance_slots`.
    pub budget: Arc<InstanceBudget>,
    /// Where an instance's stderr and its end are logged: it outlives any request.
    pub log: Option<EventLog>,
    /// Where instances started and replaced are counted.
    pub stats: Arc<EngineStats>,
}
