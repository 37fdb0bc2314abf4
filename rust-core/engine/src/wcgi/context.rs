//! What long-lived instances need from the engine that runs them, handed down instead of
//! the engine itself.

use std::sync::Arc;

use super::budget::InstanceBudget;
use crate::host::EventLog;
use crate::stats::EngineStats;

/// What long-lived instances need from the engine that runs them. The wasmtime engine and
/// linker come with each module (`LoadedModule::wcgi_pre`): each compile tier has its own.
pub struct WcgiContext {
    /// Long-lived instances alive now, against the engine's `wcgi_instance_slots`.
    pub budget: Arc<InstanceBudget>,
    /// Where an instance's stderr and its end are logged: it outlives any request.
    pub log: Option<EventLog>,
    /// Where instances started and replaced are counted.
    pub stats: Arc<EngineStats>,
}
